"""Reading notAfter from tls.crt: PEM, PEM chains, DER, and anything else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conftest import (
    CANARY,
    HASH_KEY,
    NOW,
    baseline_policy,
    canaries,
    certificate,
    evaluate_objects,
    everything_printed,
    record_of,
    rules_of,
    secret,
    tls_secret,
)
from credwarden.certificates import CertificateError, certificate_not_after
from credwarden.facts import secret_facts

LEAF_END = datetime(2027, 3, 4, 5, 6, 7, tzinfo=UTC)
CA_END = datetime(2035, 1, 1, tzinfo=UTC)


def test_pem_certificate_gives_its_not_after_in_utc() -> None:
    not_after = certificate_not_after(certificate(LEAF_END))
    assert not_after == LEAF_END
    assert not_after.tzinfo is not None and not_after.utcoffset() == timedelta(0)


def test_pem_chain_uses_the_first_certificate() -> None:
    chain = certificate(LEAF_END, common_name="leaf") + certificate(CA_END, common_name="ca")
    assert certificate_not_after(chain) == LEAF_END
    reversed_chain = certificate(CA_END, common_name="ca") + certificate(LEAF_END)
    assert certificate_not_after(reversed_chain) == CA_END


def test_pem_with_surrounding_text_is_read() -> None:
    data = b"subject=CN = leaf\nissuer=CN = ca\n" + certificate(LEAF_END) + b"\n\n"
    assert certificate_not_after(data) == LEAF_END


def test_der_certificate_is_read() -> None:
    assert certificate_not_after(certificate(LEAF_END, der=True)) == LEAF_END


def test_generalized_time_after_2049_is_read() -> None:
    far = datetime(2070, 6, 1, tzinfo=UTC)
    assert certificate_not_after(certificate(far)) == far


@pytest.mark.parametrize("data", [None, b""])
def test_missing_certificate_is_a_certificate_error(data: bytes | None) -> None:
    with pytest.raises(CertificateError, match="missing"):
        certificate_not_after(data)


@pytest.mark.parametrize(
    "data",
    [
        b"not a certificate at all",
        CANARY.encode(),
        b"\x00\x01\x02\x03" * 20,
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        b"0\x82\x01\x00" + b"\xff" * 40,  # a DER SEQUENCE header and junk
    ],
)
def test_unreadable_certificate_is_a_certificate_error(data: bytes) -> None:
    with pytest.raises(CertificateError) as raised:
        certificate_not_after(data)
    assert CANARY not in str(raised.value)


def test_truncated_pem_and_der_are_certificate_errors() -> None:
    pem = certificate(LEAF_END)
    der = certificate(LEAF_END, der=True)
    for data in (pem[: len(pem) // 2], der[: len(der) // 2]):
        with pytest.raises(CertificateError):
            certificate_not_after(data)


def test_certificate_error_is_a_value_error() -> None:
    assert issubclass(CertificateError, ValueError)


# ---- through the facts -----------------------------------------------------------------
def test_tls_secret_facts_keep_the_date_not_the_certificate() -> None:
    facts = secret_facts(tls_secret("web-tls", cert=certificate(LEAF_END)), HASH_KEY)
    assert facts.cert_not_after == LEAF_END
    assert facts.cert_error is None


def test_tls_secret_from_string_data_is_read() -> None:
    body = secret(
        "web-tls",
        type="kubernetes.io/tls",
        string_data={"tls.crt": certificate(LEAF_END).decode(), "tls.key": "k" * 20},
    )
    assert secret_facts(body, HASH_KEY).cert_not_after == LEAF_END


@pytest.mark.parametrize(
    "data",
    [
        {"tls.crt": CANARY, "tls.key": "x" * 20},
        {"tls.key": "x" * 20},
        {"tls.crt": "", "tls.key": "x" * 20},
    ],
)
def test_unreadable_tls_secret_is_a_fact_not_an_exception(data: dict[str, str]) -> None:
    facts = secret_facts(secret("bad-tls", type="kubernetes.io/tls", data=data), HASH_KEY)
    assert facts.cert_not_after is None
    assert facts.cert_error
    assert CANARY not in facts.cert_error


def test_tls_data_not_valid_base64_is_unreadable_not_an_exception() -> None:
    body = secret("bad-tls", type="kubernetes.io/tls")
    body["data"] = {"tls.crt": "%%%not base64%%%", "tls.key": 12}
    facts = secret_facts(body, HASH_KEY)
    assert facts.cert_not_after is None and facts.cert_error


def test_certificate_in_an_opaque_secret_is_not_read() -> None:
    body = secret("copy", data={"tls.crt": certificate(LEAF_END)})
    facts = secret_facts(body, HASH_KEY)
    assert facts.cert_not_after is None and facts.cert_error is None


# ---- through the engine ----------------------------------------------------------------
def test_garbage_tls_secret_is_a_certificate_unreadable_finding() -> None:
    body = secret(
        "bad-tls",
        type="kubernetes.io/tls",
        data={"tls.crt": f"garbage {CANARY}", "tls.key": CANARY},
        annotations={"credwarden.io/owner": "web-team"},
    )
    evaluation = evaluate_objects([body], [baseline_policy()])
    record = record_of(evaluation, "bad-tls")
    assert rules_of(record) == {"certificate-unreadable"}
    assert record.status == "NonCompliant"
    assert record.expires_at is None
    printed = everything_printed(evaluation)
    assert all(form not in printed for form in canaries())


def test_expiry_of_a_tls_secret_is_the_certificate_not_after() -> None:
    not_after = NOW + timedelta(days=100)
    body = tls_secret("web-tls", not_after=not_after, annotations={"credwarden.io/owner": "w"})
    record = record_of(evaluate_objects([body], [baseline_policy()]), "web-tls")
    assert record.expires_at == not_after
    assert record.status == "Compliant"
    assert record.to_json()["expiresAt"] == not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
