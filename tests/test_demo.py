"""`credwarden demo`: the real operator on the example cluster, end to end."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from credwarden import scenario
from credwarden.cli import main

pytestmark = pytest.mark.timeout(120)


def test_demo_in_audit_mode_reports_and_posts_events(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--mode", "Audit"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["STATUS", "KIND", "NAMESPACE/NAME"]
    assert "kube-system/john-smith" in out
    assert "Events posted by credwarden" in out
    for reason in ("HumanIdentity", "ClusterAdminBinding", "LongLivedToken", "CertificateExpiring"):
        assert reason in out
    # Audit mode: nothing revoked or rotated
    assert "Revoked" not in out and "Rotated" not in out
    assert "Converged in" in out


def test_demo_defaults_enforce_only_where_the_example_policies_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    # financial-ml's own policy is in Enforce; the platform policy is in Audit
    assert "Revoked                        Secret/financial-ml/ml-deployer-token" in out
    assert "Revoked                        Secret/kube-system" not in out
    assert "Rotated                        Secret/financial-ml/ml-platform" in out


def test_demo_in_enforce_mode_revokes_and_rotates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "dump.yaml"
    assert main(["demo", "--mode", "Enforce", "--dump", str(dump)]) == 0
    out = capsys.readouterr().out
    assert "Revoked" in out and "Rotated" in out and "ConsumersRestarted" in out
    document = yaml.safe_load(dump.read_text())
    assert document["kind"] == "List"
    names = {
        (i["kind"], i["metadata"].get("namespace"), i["metadata"]["name"])
        for i in document["items"]
    }
    # the personal tokens the policy names are gone; ml-platform has its previous values
    assert ("Secret", "kube-system", "john-smith-token") not in names
    assert ("Secret", "financial-ml", "ml-platform-previous") in names
    assert any(i["kind"] == "Event" and i["reason"] == "Revoked" for i in document["items"])
    # the dump carries no Secret value, in any form
    text = dump.read_text()
    for body in scenario.build_objects(scenario.REFERENCE_NOW):
        for key, value in (body.get("data") or {}).items():
            plain = base64.b64decode(value).decode(errors="replace")
            if key in ("namespace", "ca.crt") or len(plain) < 16:
                continue  # public or not a secret (a token Secret's namespace, the CA)
            assert value not in text
            assert plain not in text
    for item in document["items"]:
        if item["kind"] == "Secret":
            assert set((item.get("data") or {}).values()) <= {""}


def test_demo_rejects_a_bad_policy_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(
        "apiVersion: credwarden.io/v1alpha1\nkind: ClusterCredentialPolicy\n"
        "metadata: {name: bad}\nspec: {limits: {secrets: {maxAge: soon}}}\n"
    )
    assert main(["demo", "--policy", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "spec.limits.secrets.maxAge" in err
