"""`credwarden audit`: outputs, exit codes, and one-line errors for bad input."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from credwarden.cli import main

NOW = "2026-11-22T00:00:00Z"
CANARY = "canary-Value-7f3e9a1c-do-not-print"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(
    name: str,
    namespace: str = "team-a",
    *,
    created: str = "2026-10-01T00:00:00Z",
    type_: str = "Opaque",
    data: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": type_,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "creationTimestamp": created,
            "annotations": annotations or {},
        },
        # a distinct value per Secret: equal values would be a duplicate-secret finding
        "data": {
            key: b64(value)
            for key, value in (data or {"password": f"{CANARY}-{namespace}-{name}"}).items()
        },
    }


def as_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": list(items),
    }


def write(tmp_path: Path, name: str, content: Any) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(yaml.safe_dump(content))
    return path


def audit(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["audit", "--now", NOW, *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


OWNED = {"credwarden.io/owner": "team-a"}


def test_json_output_has_one_entry_per_credential_with_documented_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = write(
        tmp_path,
        "snap.yaml",
        as_list(
            secret("fresh", annotations=OWNED),
            secret("stale", created="2025-01-01T00:00:00Z", annotations=OWNED),
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "builder", "namespace": "team-a", "annotations": OWNED},
            },
        ),
    )
    code, out, err = audit(capsys, "--snapshot", snapshot, "--output", "json")
    report = json.loads(out)
    assert code == 1, err  # the stale secret is a violation under the baseline
    assert report["generatedAt"] == NOW
    by_name = {entry["name"]: entry for entry in report["credentials"]}
    assert set(by_name) == {"fresh", "stale", "builder"}
    for entry in report["credentials"]:
        assert {
            "kind",
            "namespace",
            "name",
            "owner",
            "ownerSource",
            "createdAt",
            "lastRotatedAt",
            "expiresAt",
            "status",
            "policies",
            "consumers",
            "findings",
        } <= set(entry)
    assert by_name["fresh"]["status"] == "Compliant"
    assert by_name["stale"]["status"] == "NonCompliant"
    assert by_name["stale"]["expiresAt"] == "2025-06-30T00:00:00Z"  # 180d baseline
    assert [f["rule"] for f in by_name["stale"]["findings"]] == ["credential-expired"]
    assert by_name["stale"]["policies"] == ["credwarden-baseline"]
    assert report["summary"]["byStatus"] == {"NonCompliant": 1, "Compliant": 2}
    assert CANARY not in out and b64(CANARY) not in out


def test_fail_on_controls_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an Opaque secret read through env: a warning (secret-in-env), no violation
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "team-a"},
        "spec": {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "creds"}}]}]},
    }
    snapshot = write(tmp_path, "s.yaml", as_list(secret("creds", annotations=OWNED), pod))
    assert audit(capsys, "--snapshot", snapshot)[0] == 0
    assert audit(capsys, "--snapshot", snapshot, "--fail-on", "warning")[0] == 1
    assert audit(capsys, "--snapshot", snapshot, "--fail-on", "never")[0] == 0


def test_table_fits_100_columns_and_lists_worst_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_name = "a-really-long-secret-name-that-goes-on-and-on-and-on-forever"
    snapshot = write(
        tmp_path,
        "s.yaml",
        as_list(
            secret("fresh", annotations=OWNED),
            secret(long_name, created="2024-01-01T00:00:00Z", namespace="some-namespace"),
        ),
    )
    code, out, _ = audit(capsys, "--snapshot", snapshot)
    lines = out.splitlines()
    assert code == 1
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)
    assert lines[0].split()[:3] == ["STATUS", "KIND", "NAMESPACE/NAME"]
    assert lines[1].startswith("NonCompliant")
    assert lines[2].startswith("Compliant")
    assert "2 credentials: 1 NonCompliant, 1 Compliant" in out


def test_markdown_output_is_a_pasteable_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = write(tmp_path, "s.yaml", as_list(secret("stale", created="2024-01-01T00:00:00Z")))
    _, out, _ = audit(capsys, "--snapshot", snapshot, "--output", "markdown")
    assert "| Status | Kind | Namespace/Name | Owner | Expires | Findings |" in out
    assert "| NonCompliant | secret | team-a/stale | - | 2024-06-29 |" in out
    assert "`missing-owner` violation" in out


def test_tls_secret_without_certificate_is_a_finding_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = secret(
        "web-tls",
        type_="kubernetes.io/tls",
        data={"tls.crt": "not a certificate", "tls.key": CANARY},
        annotations=OWNED,
    )
    snapshot = write(tmp_path, "s.yaml", as_list(broken))
    code, out, err = audit(capsys, "--snapshot", snapshot, "--output", "json")
    assert err == ""
    (entry,) = json.loads(out)["credentials"]
    assert [f["rule"] for f in entry["findings"]] == ["certificate-unreadable"]
    assert code == 1


def test_policy_file_replaces_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = {
        "apiVersion": "credwarden.io/v1alpha1",
        "kind": "CredentialPolicy",
        "metadata": {"name": "short", "namespace": "team-a"},
        "spec": {"limits": {"secrets": {"maxAge": "30d", "warnBefore": "7d"}}},
    }
    snapshot = write(tmp_path, "s.yaml", as_list(secret("s", created="2026-10-01T00:00:00Z")))
    policies = write(tmp_path, "p.yaml", policy)
    _, out, _ = audit(capsys, "--snapshot", snapshot, "--policy", policies, "--output", "json")
    (entry,) = json.loads(out)["credentials"]
    assert entry["policies"] == ["team-a/short"]
    assert entry["expiresAt"] == "2026-10-31T00:00:00Z"
    # this policy has no ownership block: no missing-owner finding
    assert [f["rule"] for f in entry["findings"]] == ["credential-expired"]


BAD_POLICY = {
    "apiVersion": "credwarden.io/v1alpha1",
    "kind": "ClusterCredentialPolicy",
    "metadata": {"name": "broken"},
    "spec": {"limits": {"secrets": {"maxAge": "ninety days"}}},
}


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, "missing.yaml: no such file"),
        ({"snap.yaml": "items: [\n  - {kind: Secret\n"}, "snap.yaml: line"),
        (
            {
                "snap.yaml": as_list(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "x", "namespace": "y"},
                    }
                )
            },
            "snap.yaml: document 1, item 1: kind: unknown kind 'ConfigMap'",
        ),
        (
            {
                "snap.yaml": as_list(
                    secret("ok"), {"kind": "Secret", "metadata": {"namespace": "a"}}
                )
            },
            "snap.yaml: document 1, item 2: metadata.name: required",
        ),
        (
            {"snap.yaml": as_list(secret("ok")), "policy.yaml": BAD_POLICY},
            "policy.yaml: document 1 (ClusterCredentialPolicy broken): spec.limits.secrets.maxAge:",
        ),
        (
            {
                "snap.yaml": as_list(secret("ok")),
                "policy.yaml": {
                    **BAD_POLICY,
                    "spec": {"limits": {"secrets": {"maxAge": "7d", "warnBefore": "30d"}}},
                },
            },
            "spec.limits.secrets.warnBefore: must be shorter than spec.limits.secrets.maxAge",
        ),
        (
            {
                "snap.yaml": as_list(secret("ok")),
                "policy.yaml": {**BAD_POLICY, "spec": {"mood": "Audit"}},
            },
            "spec.mood: unknown field",
        ),
        ({"snap.json": '{"kind": "List", "items": [}'}, "snap.json: line 1: malformed JSON"),
    ],
    ids=[
        "missing-file",
        "malformed-yaml",
        "unknown-kind",
        "no-name",
        "bad-duration",
        "warn-longer-than-max",
        "unknown-field",
        "malformed-json",
    ],
)
def test_bad_input_exits_2_with_one_line_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, Any], expected: str
) -> None:
    args: list[str | Path] = []
    for name, content in files.items():
        path = write(tmp_path, name, content)
        args += ["--policy" if name.startswith("policy") else "--snapshot", path]
    if not files:
        args = ["--snapshot", tmp_path / "missing.yaml"]
    code, out, err = audit(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("credwarden: error: ")
    assert expected in err
    assert "Traceback" not in err


def test_bad_now_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["audit", "--now", "yesterday", "--snapshot", "x.yaml"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--now: expected an RFC 3339 time" in err


def test_policies_inside_the_snapshot_are_used_without_policy_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = {
        "apiVersion": "credwarden.io/v1alpha1",
        "kind": "ClusterCredentialPolicy",
        "metadata": {"name": "in-cluster"},
        "spec": {"limits": {"secrets": {"maxAge": "10d", "warnBefore": "1d"}}},
    }
    snapshot = write(tmp_path, "s.yaml", as_list(secret("s"), policy))
    _, out, _ = audit(capsys, "--snapshot", snapshot, "--output", "json")
    (entry,) = json.loads(out)["credentials"]
    assert entry["policies"] == ["in-cluster"]


def test_multi_document_yaml_and_json_snapshots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    multi = tmp_path / "multi.yaml"
    multi.write_text(
        yaml.safe_dump_all([secret("one", annotations=OWNED), secret("two", annotations=OWNED)])
    )
    as_json = tmp_path / "three.json"
    as_json.write_text(json.dumps(as_list(secret("three", annotations=OWNED))))
    code, out, _ = audit(capsys, "--snapshot", multi, "--snapshot", as_json, "--output", "json")
    assert code == 0
    assert sorted(e["name"] for e in json.loads(out)["credentials"]) == ["one", "three", "two"]


def test_console_script_reports_bad_input_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "credwarden.cli",
            "audit",
            "--snapshot",
            str(tmp_path / "nope.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith("nope.yaml: no such file")
    assert "Traceback" not in result.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("credwarden ")
