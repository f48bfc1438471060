"""`credwarden audit` without --snapshot reads the cluster named by the kubeconfig."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from credwarden import scenario
from credwarden.sandbox import emulated_cluster

pytestmark = pytest.mark.timeout(120)


async def audit_against(url: str, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulated", "cluster": {"server": url}}],
                "users": [{"name": "auditor", "user": {"token": "not-checked"}}],
                "contexts": [
                    {"name": "emulated", "context": {"cluster": "emulated", "user": "auditor"}}
                ],
                "current-context": "emulated",
            }
        )
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "credwarden.cli",
        "audit",
        *args,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_live_audit_reads_every_kind_and_the_clusters_policies(tmp_path: Path) -> None:
    objects = [*scenario.build_objects(scenario.REFERENCE_NOW), *scenario.example_policies()]
    async with emulated_cluster(objects) as sandbox:
        code, out, err = await audit_against(
            sandbox.url, tmp_path, "--output", "json", "--now", "2026-11-22T00:00:00Z"
        )
        assert code == 1, err  # the example cluster has violations
        report = json.loads(out)
        names = {(c["kind"], c["namespace"], c["name"]) for c in report["credentials"]}
        assert ("ServiceAccount", "kube-system", "john-smith") in names
        assert ("Secret", "financial-ml", "ml-platform") in names
        # the cluster's own policies were used, not the baseline
        policies = {p for c in report["credentials"] for p in c["policies"]}
        assert "platform-baseline" in policies and "credwarden-baseline" not in policies
        # consumers came from the workloads listed
        platform = next(
            c
            for c in report["credentials"]
            if c["name"] == "ml-platform" and c["namespace"] == "financial-ml"
        )
        assert {c["name"] for c in platform["consumers"]} >= {"financial-model-server"}
        lists = [r for r in sandbox.emulator if r.method.value == "GET" and r.params.get("limit")]
        assert {r.params["limit"] for r in lists} == {"500"}  # paged
        # read only: an audit writes nothing
        assert not [r for r in sandbox.emulator if r.method.value in ("PATCH", "POST", "DELETE")]


async def test_live_audit_reports_an_unreachable_cluster_in_one_line(tmp_path: Path) -> None:
    code, out, err = await audit_against("http://127.0.0.1:9", tmp_path)
    assert code == 2 and out == ""
    assert err.startswith("credwarden: error: GET /api/v1/namespaces")
    assert err.count("\n") == 1 and "Traceback" not in err
