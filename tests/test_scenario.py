"""The example scenario (credwarden/scenario.py, examples/): its rendering, and its story.

The story is asserted through the engine: each object of the field brief must come out of
an evaluation with the findings the brief expects, at any `now`, without leaking a value.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from credwarden import scenario
from credwarden.engine import evaluate
from credwarden.inventory import CredentialKey
from credwarden.policies import policy_from_manifest
from credwarden.records import Annotate, Evaluation, LifecycleRecord, Revoke, Rotate
from credwarden.snapshot import inventory_from_objects, load_snapshot

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT_FILE = ROOT / "examples" / "mlops-cluster.yaml"
POLICIES_FILE = ROOT / "examples" / "policies.yaml"
REGENERATE = (
    "regenerate with `python -m credwarden.scenario --output examples/mlops-cluster.yaml "
    "--policies-output examples/policies.yaml` (from the repository root, in the venv)"
)
HASH_KEY = b"test-scenario-hash-key-32-bytes!"
REF = scenario.REFERENCE_NOW
LATER = REF + timedelta(days=400)
LATER_ODD = REF + timedelta(days=400, hours=13, minutes=37, seconds=11)

PEOPLE = ("john-smith", "daniel-wilson")
PERSON_RULES = {
    "human-identity",
    "cluster-admin-binding",
    "user-identity-in-system-namespace",
    "long-lived-token",
}
CONTROL_PLANE = ("coredns", "kube-proxy", "metrics-server")
COPIED = (
    ("airflow", "airflow-creds"),
    ("monitoring", "airflow-creds"),
    ("default", "airflow-creds"),
    ("monitoring", "grafana-creds"),
    ("default", "grafana-creds"),
)
HEALTHY_ACCOUNTS = (
    ("airflow", "airflow-scheduler"),
    ("airflow", "airflow-worker"),
    ("monitoring", "grafana"),
    ("ml-platform-system", "mlflow"),
    ("financial-ml", "model-server"),
    ("financial-ml", "trainer"),
    ("financial-ml-dev", "model-server"),
)


def baseline_documents() -> list[dict[str, Any]]:
    text = resources.files("credwarden").joinpath("data/baseline.yaml").read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def example_documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(POLICIES_FILE.read_text()) if doc]


POLICY_SETS = {"baseline": baseline_documents, "examples": example_documents}


def run(
    now: datetime, documents: Sequence[dict[str, Any]], at: datetime | None = None
) -> Evaluation:
    """Evaluate build_objects(now) under these policies, as of `at` (default: now)."""
    inventory = inventory_from_objects(scenario.build_objects(now), HASH_KEY)
    for document in documents:
        policy = policy_from_manifest(document)
        assert policy.error is None, f"{policy.kind} {policy.name}: {policy.error}"
        inventory.upsert_policy(policy)
    return evaluate(inventory, at or now)


def by_key(evaluation: Evaluation) -> dict[tuple[str, str, str], LifecycleRecord]:
    return {(r.key.kind, r.key.namespace, r.key.name): r for r in evaluation.records}


@pytest.fixture(scope="module", params=sorted(POLICY_SETS))
def evaluated(request: pytest.FixtureRequest) -> dict[tuple[str, str, str], LifecycleRecord]:
    return by_key(run(REF, POLICY_SETS[request.param]()))


@pytest.fixture(scope="module")
def with_examples() -> Evaluation:
    return run(REF, example_documents())


def secret(
    records: dict[tuple[str, str, str], LifecycleRecord], ns: str, name: str
) -> LifecycleRecord:
    return records[("Secret", ns, name)]


def account(
    records: dict[tuple[str, str, str], LifecycleRecord], ns: str, name: str
) -> LifecycleRecord:
    return records[("ServiceAccount", ns, name)]


def find_object(objects: list[dict[str, Any]], kind: str, ns: str, name: str) -> dict[str, Any]:
    for obj in objects:
        meta = obj["metadata"]
        if obj["kind"] == kind and meta.get("namespace", "") == ns and meta["name"] == name:
            return obj
    raise AssertionError(f"no {kind} {ns}/{name} in the scenario")


def certificate_of(obj: dict[str, Any]) -> x509.Certificate:
    return x509.load_pem_x509_certificates(base64.b64decode(obj["data"]["tls.crt"]))[0]


# ---- (a) the committed rendering -------------------------------------------------------


def test_committed_snapshot_is_the_rendering_at_reference_now() -> None:
    committed = SNAPSHOT_FILE.read_text(encoding="utf-8")
    assert yaml.safe_load(committed) == scenario.build_list(REF), (
        f"{SNAPSHOT_FILE} differs from build_list(REFERENCE_NOW): {REGENERATE}"
    )
    assert committed == scenario.render(REF), f"{SNAPSHOT_FILE} is not render(): {REGENERATE}"


def test_committed_policies_are_the_example_policies() -> None:
    assert POLICIES_FILE.read_text(encoding="utf-8") == scenario.EXAMPLE_POLICIES_YAML, (
        f"{POLICIES_FILE} differs from scenario.EXAMPLE_POLICIES_YAML: {REGENERATE}"
    )
    documents = example_documents()
    assert documents == scenario.example_policies()
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("ClusterCredentialPolicy", "platform-baseline"),
        ("ClusterCredentialPolicy", "registry-credentials"),
        ("CredentialPolicy", "ml-platform-rotation"),
    ]
    for document in documents:
        policy = policy_from_manifest(document)
        assert policy.error is None, policy.error


def test_the_snapshot_loader_reads_the_committed_file() -> None:
    snapshot = load_snapshot([SNAPSHOT_FILE], HASH_KEY)
    objects = scenario.build_objects(REF)
    assert snapshot.objects == len(objects)
    assert snapshot.policies == []
    assert len(snapshot.inventory) == len(inventory_from_objects(objects, HASH_KEY))


def test_rendering_is_deterministic() -> None:
    for now in (REF, LATER_ODD):
        assert scenario.build_list(now) == scenario.build_list(now)
        assert scenario.render(now) == scenario.render(now)
    assert scenario.render(REF + timedelta(microseconds=500)) == scenario.render(REF)


def test_main_writes_the_rendering(tmp_path: Path) -> None:
    snapshot, policies = tmp_path / "cluster.yaml", tmp_path / "policies.yaml"
    assert scenario.main(["--output", str(snapshot), "--policies-output", str(policies)]) == 0
    assert snapshot.read_text() == scenario.render(REF)
    assert policies.read_text() == scenario.EXAMPLE_POLICIES_YAML
    assert scenario.main(["--now", "2027-03-04T05:06:07Z", "--output", str(snapshot)]) == 0
    text = snapshot.read_text()
    assert text == scenario.render(datetime.fromisoformat("2027-03-04T05:06:07+00:00"))
    assert "now = 2027-03-04T05:06:07Z" in text.splitlines()[2]
    with pytest.raises(SystemExit):
        scenario.main(["--now", "next tuesday"])


def test_objects_have_the_shape_kubectl_prints() -> None:
    listing = scenario.build_list(REF)
    assert listing["apiVersion"] == "v1"
    assert listing["kind"] == "List"
    assert listing["metadata"] == {"resourceVersion": ""}
    kinds = {item["kind"] for item in listing["items"]}
    assert kinds == {
        "ServiceAccount",
        "Secret",
        "RoleBinding",
        "ClusterRoleBinding",
        "Namespace",
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
    }
    uids = set()
    for item in listing["items"]:
        meta = item["metadata"]
        assert {"name", "uid", "resourceVersion", "creationTimestamp"} <= set(meta), meta
        assert meta["creationTimestamp"] <= "2026-11-22T00:00:00Z"
        if item["kind"] not in ("Namespace", "ClusterRoleBinding"):
            assert meta["namespace"], meta
        uids.add(meta["uid"])
        assert list(item) == sorted(item), "keys in kubectl's (sorted) order"
        for value in item.get("data", {}).values():
            base64.b64decode(value, validate=True)
    assert len(uids) == len(listing["items"])


def test_certificates_are_real_ed25519_and_relative_to_now() -> None:
    for now in (REF, LATER_ODD):
        objects = scenario.build_objects(now)
        expiring = certificate_of(
            find_object(objects, "Secret", "ml-platform-system", "mlflow-tls")
        )
        healthy = certificate_of(find_object(objects, "Secret", "financial-ml", "model-server-tls"))
        assert expiring.not_valid_after_utc == now + timedelta(days=9)
        assert healthy.not_valid_after_utc == now + timedelta(days=70)
        for certificate in (expiring, healthy):
            assert certificate.not_valid_before_utc < now < certificate.not_valid_after_utc
            assert isinstance(certificate.public_key(), Ed25519PublicKey)


# ---- (b) the story, through the engine --------------------------------------------------


@pytest.mark.parametrize("person", PEOPLE)
def test_personal_accounts_are_flagged(evaluated: dict[Any, LifecycleRecord], person: str) -> None:
    record = account(evaluated, "kube-system", person)
    assert set(record.rule_ids) >= PERSON_RULES, record.findings
    assert record.status == "NonCompliant"
    token = secret(evaluated, "kube-system", f"{person}-token")
    assert "long-lived-token" in token.rule_ids, token.findings
    assert token.status == "NonCompliant"


def test_the_forgotten_token_is_also_unused(evaluated: dict[Any, LifecycleRecord]) -> None:
    # daniel-wilson's token was last used 381 days ago; john-smith's two days ago
    assert "unused-token" in secret(evaluated, "kube-system", "daniel-wilson-token").rule_ids
    assert "unused-token" not in secret(evaluated, "kube-system", "john-smith-token").rule_ids


@pytest.mark.parametrize("name", CONTROL_PLANE)
def test_control_plane_accounts_are_not_people(
    evaluated: dict[Any, LifecycleRecord], name: str
) -> None:
    record = account(evaluated, "kube-system", name)
    assert "human-identity" not in record.rule_ids
    assert "user-identity-in-system-namespace" not in record.rule_ids
    assert record.status == "Compliant", record.findings
    assert any(consumer.via == "serviceAccount" for consumer in record.consumers)


@pytest.mark.parametrize(("ns", "name"), COPIED)
def test_copied_ownerless_secrets(
    evaluated: dict[Any, LifecycleRecord], ns: str, name: str
) -> None:
    record = secret(evaluated, ns, name)
    assert set(record.rule_ids) >= {"duplicate-secret", "missing-owner", "credential-expired"}, (
        record.findings
    )
    assert record.owner is None
    assert record.status == "NonCompliant"


def test_certificate_near_expiry(evaluated: dict[Any, LifecycleRecord]) -> None:
    record = secret(evaluated, "ml-platform-system", "mlflow-tls")
    obj = find_object(scenario.build_objects(REF), "Secret", "ml-platform-system", "mlflow-tls")
    assert record.rule_ids == ("certificate-expiring",), record.findings
    assert record.status == "Expiring"
    assert record.expires_at == certificate_of(obj).not_valid_after_utc
    assert (record.owner, record.owner_source) == ("Certificate/mlflow-tls", "ownerReference")


def test_healthy_certificate(evaluated: dict[Any, LifecycleRecord]) -> None:
    record = secret(evaluated, "financial-ml", "model-server-tls")
    assert record.status == "Compliant", record.findings
    assert record.findings == ()
    assert record.expires_at == REF + timedelta(days=70)


@pytest.mark.parametrize(("ns", "name"), HEALTHY_ACCOUNTS)
def test_owned_workload_accounts_are_compliant(
    evaluated: dict[Any, LifecycleRecord], ns: str, name: str
) -> None:
    record = account(evaluated, ns, name)
    assert record.status == "Compliant", record.findings
    assert record.findings == ()
    assert record.owner
    assert record.consumers, "a workload runs as it"


def test_owners_and_where_they_come_from(evaluated: dict[Any, LifecycleRecord]) -> None:
    def owner(kind: str, ns: str, name: str) -> tuple[str | None, str | None]:
        record = evaluated[(kind, ns, name)]
        return record.owner, record.owner_source

    assert owner("Secret", "ml-platform-system", "mlflow-db") == (
        "ExternalSecret/mlflow-db",
        "ownerReference",
    )
    assert owner("Secret", "airflow", "airflow-fernet-key") == ("helm:airflow", "helm")
    assert owner("ServiceAccount", "airflow", "airflow-scheduler") == (
        "data-platform",
        "annotation",
    )
    assert owner("ServiceAccount", "airflow", "airflow-worker") == ("data-platform", "label:team")
    assert owner("Secret", "financial-ml", "ml-platform") == ("team-financial-ml", "namespace")
    assert owner("ServiceAccount", "kube-system", "john-smith") == ("platform-team", "namespace")


def test_fresh_external_secret_and_helm_secret(evaluated: dict[Any, LifecycleRecord]) -> None:
    record = secret(evaluated, "ml-platform-system", "mlflow-db")
    assert record.status == "Compliant", record.findings
    assert record.findings == ()
    assert [(c.kind, c.name, c.via) for c in record.consumers] == [("Deployment", "mlflow", "file")]
    helm = secret(evaluated, "airflow", "airflow-fernet-key")
    assert helm.status == "Compliant", helm.findings
    assert helm.rule_ids == ("secret-in-env",)


def test_exempt_and_ungoverned(evaluated: dict[Any, LifecycleRecord]) -> None:
    exempt = secret(evaluated, "ml-platform-system", "minio-root")
    assert exempt.status == "Exempt"
    assert exempt.findings == ()
    release = secret(evaluated, "airflow", "sh.helm.release.v1.airflow.v3")
    assert release.status == "Ungoverned"
    assert release.findings == ()
    assert release.policies == ()


def test_consolidated_platform_secrets(evaluated: dict[Any, LifecycleRecord]) -> None:
    for ns in ("financial-ml", "financial-ml-dev"):
        platform = secret(evaluated, ns, "ml-platform")
        assert set(platform.rule_ids) >= {"credential-expired", "duplicate-secret", "secret-in-env"}
        pull = secret(evaluated, ns, "ghcr")
        assert set(pull.rule_ids) >= {"credential-expired", "duplicate-secret"}
        assert any(c.via == "imagePullSecret" for c in pull.consumers)
    prod = secret(evaluated, "financial-ml", "ml-platform")
    assert {(c.kind, c.name, c.via) for c in prod.consumers} == {
        ("Deployment", "financial-model-server", "env"),
        ("CronJob", "nightly-retrain", "env"),
    }
    deployer = account(evaluated, "financial-ml", "ml-deployer")
    assert {"cluster-admin-binding", "long-lived-token"} <= set(deployer.rule_ids)
    assert "human-identity" not in deployer.rule_ids


def test_the_baseline_only_warns() -> None:
    plan = run(REF, baseline_documents()).plan
    assert not [action for action in plan if isinstance(action, Revoke | Rotate)]


def test_example_policies_rotate_and_revoke_in_financial_ml(with_examples: Evaluation) -> None:
    rotations = {a.target: a for a in with_examples.plan if isinstance(a, Rotate)}
    revocations = {a.target: a for a in with_examples.plan if isinstance(a, Revoke)}

    rotate = rotations.pop(CredentialKey("Secret", "financial-ml", "ml-platform"))
    assert rotate.enforced is True
    assert rotate.keys == ("MLFLOW_TRACKING_PASSWORD",)
    assert rotate.policy == "financial-ml/ml-platform-rotation"
    assert rotations == {}, "nothing else is rotated (financial-ml-dev is not Enforced)"

    revoke = revocations.pop(CredentialKey("Secret", "financial-ml", "ml-deployer-token"))
    assert revoke.enforced is True
    assert revoke.policy == "financial-ml/ml-platform-rotation"
    # the platform policy is in Audit: its revocations are shown, not done
    for person in PEOPLE:
        audit_only = revocations.pop(CredentialKey("Secret", "kube-system", f"{person}-token"))
        assert audit_only.enforced is False
        assert audit_only.policy == "platform-baseline"
    assert revocations == {}

    records = by_key(with_examples)
    assert secret(records, "financial-ml", "ml-platform").mode == "Enforce"
    assert secret(records, "financial-ml-dev", "ml-platform").mode == "Audit"
    assert secret(records, "financial-ml", "ghcr").policy == "registry-credentials"
    assert secret(records, "financial-ml", "ghcr").expires_at == (
        REF - timedelta(days=506, hours=4) + timedelta(days=90)
    )


# ---- (c) the story does not age ----------------------------------------------------------


def _outcome(evaluation: Evaluation) -> dict[Any, tuple[Any, ...]]:
    now = evaluation.now
    return {
        key: (
            record.status,
            record.rule_ids,
            record.owner,
            record.expires_at - now if record.expires_at else None,
        )
        for key, record in by_key(evaluation).items()
    }


def _actions(evaluation: Evaluation) -> set[tuple[str, str, bool]]:
    return {
        (type(a).__name__, str(a.target), a.enforced)
        for a in evaluation.plan
        if isinstance(a, Revoke | Rotate)
    }


@pytest.mark.parametrize("policies", sorted(POLICY_SETS))
@pytest.mark.parametrize("later", [LATER, LATER_ODD], ids=["+400d", "+400d13h37m11s"])
def test_same_story_at_any_now(policies: str, later: datetime) -> None:
    documents = POLICY_SETS[policies]()
    reference, shifted = run(REF, documents), run(later, documents)
    assert _outcome(shifted) == _outcome(reference)
    assert _actions(shifted) == _actions(reference)


def test_an_old_snapshot_evaluated_later_ages() -> None:
    # the reference snapshot read 400 days later: the healthy certificate has expired
    records = by_key(run(REF, baseline_documents(), at=LATER))
    assert "certificate-expired" in secret(records, "financial-ml", "model-server-tls").rule_ids
    assert "credential-expired" in secret(records, "ml-platform-system", "mlflow-db").rule_ids


# ---- (d) no value leaks ------------------------------------------------------------------


# Keys whose values are pure secret material: no 16-character piece of them may show.
# (Other values, such as endpoint URLs or Helm's release record, share words and dates with
# names and messages, so only their whole value and lines are looked for.)
SECRET_KEYS = {
    "password",
    "admin-password",
    "rootPassword",
    "token",
    "tls.key",
    "fernet-key",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MLFLOW_TRACKING_PASSWORD",
    "REGISTRY_TOKEN",
}
WINDOW = 16


def planted_values() -> Iterator[tuple[str, str, bool]]:
    """(where, text, pure) for every value of the scenario's Secrets and the parts of it a
    leak could show: each line of a PEM, each segment of a JWT, each auth of a dockerconfig.
    `pure`: secret material, of which no piece may appear either."""
    for obj in scenario.build_objects(REF):
        if obj["kind"] != "Secret":
            continue
        meta = obj["metadata"]
        for key, encoded in obj.get("data", {}).items():
            where = f"{meta['namespace']}/{meta['name']}[{key}]"
            text = base64.b64decode(encoded).decode()
            if obj["type"] == "kubernetes.io/service-account-token" and key == "namespace":
                # the token Secret's own namespace, public by construction
                assert text == meta["namespace"]
                continue
            pure = key in SECRET_KEYS
            yield where, encoded, False
            yield where, text, False
            parts = [line for line in text.splitlines() if not line.startswith("-----")]
            if key == "token":
                header, payload, signature = text.split(".")
                parts += [header, payload]
                yield where, signature, True
            if key == ".dockerconfigjson":
                for auth in json.loads(text)["auths"].values():
                    yield where, auth["password"], True
                    yield where, auth["auth"], True
            if key == "release":  # Helm's own base64 layer
                parts.append(base64.b64decode(text, validate=True).decode())
            for part in parts:
                if len(part) >= 12:
                    yield where, part, pure


def leaks(haystack: str) -> list[str]:
    windows = {haystack[i : i + WINDOW] for i in range(len(haystack) - WINDOW + 1)}
    found = set()
    for where, text, pure in planted_values():
        if text in haystack:
            found.add(f"{where}: {len(text)} characters")
        elif pure and any(text[i : i + WINDOW] in windows for i in range(len(text) - WINDOW + 1)):
            found.add(f"{where}: a {WINDOW}-character piece")
    return sorted(found)


def test_the_leak_check_finds_leaks() -> None:
    assert leaks(f"x {scenario.REGISTRY_TOKEN} y") != []
    assert leaks(f"rotated, was {scenario.REGISTRY_TOKEN[3:22]}...") != []
    assert leaks("Secret financial-ml/ml-platform, key REGISTRY_TOKEN, 2026-11-22") == []
    assert sum(1 for _ in planted_values()) > 200


@pytest.mark.parametrize("policies", sorted(POLICY_SETS))
def test_no_value_in_records_or_plan(policies: str) -> None:
    evaluation = run(REF, POLICY_SETS[policies]())
    haystack = "\n".join(
        [
            json.dumps([record.to_json() for record in evaluation.records]),
            json.dumps(evaluation.summary()),
            *(action.describe() for action in evaluation.plan),
            *(json.dumps(dict(a.set)) for a in evaluation.plan if isinstance(a, Annotate)),
        ]
    )
    assert leaks(haystack) == [], "secret values appear in the records or the plan"
