"""The alert rules: valid, unit-tested with promtool, documented, on exported metrics only."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from credwarden.metrics import exported_sample_names
from promtools import (
    RULE_TESTS,
    RULES,
    binary,
    metric_names,
    runbook_anchors,
)

ALERTS = {
    "CredentialExpired",
    "CredentialExpiringSoon",
    "LongLivedServiceAccountToken",
    "HumanServiceAccount",
    "ClusterAdminServiceAccount",
    "CredentialRotationFailing",
    "CredwardenDown",
}
RUNBOOK_PREFIX = "https://github.com/credwarden/credwarden/blob/main/docs/runbook.md#"


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )


def test_the_rules_file_is_a_plain_prometheus_rules_file_with_every_alert() -> None:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert set(document) == {"groups"}
    assert {rule["alert"] for rule in rules()} == ALERTS


def test_promtool_check_rules_passes_with_every_lint() -> None:
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_not_firing_unit_test() -> None:
    document = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    firing: set[str] = set()
    silent: set[str] = set()
    for group in document["tests"]:
        for case in group.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    assert firing == ALERTS
    assert silent == ALERTS


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_each_alert_has_summary_description_and_a_runbook_section(name: str) -> None:
    rule = next(rule for rule in rules() if rule["alert"] == name)
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    assert rule["labels"]["severity"] in ("warning", "critical")
    url = annotations["runbook_url"]
    assert url.startswith(RUNBOOK_PREFIX)
    assert url.removeprefix(RUNBOOK_PREFIX) == name.lower()
    assert name.lower() in runbook_anchors(), f"docs/runbook.md has no section {name}"


@pytest.mark.parametrize("name", sorted(ALERTS - {"CredwardenDown", "CredentialRotationFailing"}))
def test_credential_alerts_name_the_credential(name: str) -> None:
    description = next(r for r in rules() if r["alert"] == name)["annotations"]["description"]
    assert "{{ $labels.namespace }}/{{ $labels.name }}" in description


def test_rules_select_only_metrics_credwarden_exports() -> None:
    exported = exported_sample_names() | {"up"}  # up: Prometheus' own, for CredwardenDown
    used = set().union(*(metric_names(rule["expr"]) for rule in rules()))
    assert used, "no metric found in the rules: the extraction is broken"
    assert used <= exported, sorted(used - exported)


def test_credwarden_down_assumes_the_documented_job_name() -> None:
    rule = next(rule for rule in rules() if rule["alert"] == "CredwardenDown")
    assert 'up{job="credwarden"}' in rule["expr"]
    assert rule["labels"]["job"] == "credwarden"


def test_the_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """Mutation: without its `for:`, CredentialExpired fires too early; without the join on
    the finding, it fires for compliant credentials. promtool must say so."""
    text = RULES.read_text(encoding="utf-8")
    for broken in (
        text.replace("        for: 10m\n", "", 1),
        text.replace('rule=~"credential-expired|certificate-expired"} > 0', "} >= 0", 1),
    ):
        assert broken != text
        (tmp_path / RULES.name).write_text(broken, encoding="utf-8")
        (tmp_path / RULE_TESTS.name).write_text(
            RULE_TESTS.read_text(encoding="utf-8"), encoding="utf-8"
        )
        result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
        assert result.returncode != 0, result.stdout
        assert "CredentialExpired" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (job, policy) (increase(x_total{result="error"}[1h])) > 0', {"x_total"}),
        ('a and on (job, name) b{rule=~"x|y"} > 0 or c unless on (job) d', {"a", "b", "c", "d"}),
        ('absent(up{job="credwarden"} == 1)', {"up"}),
        ("time() - m offset 5m > 7 * 86400 + 1e3", {"m"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))", {"h_bucket"}),
    ],
)
def test_metric_name_extraction(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
