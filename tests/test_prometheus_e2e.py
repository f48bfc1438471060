"""End to end: a real Prometheus scrapes `credwarden demo` and fires credwarden's alerts.

Two processes on loopback: `credwarden demo --mode Audit --for N --metrics-port P` (the
real operator on the example cluster; Audit, so nothing it revokes or rotates changes the
scenario under the test's feet) and Debian's `prometheus` with a temporary data dir,
1 s scrape and evaluation intervals, and credwarden-rules.yaml. The rules' `for:`
durations (minutes, checked by the promtool unit tests) are rewritten to 0s in a temporary
copy, so alerts fire on the first evaluation. The expected alerts are derived from the
engine's own evaluation of the same scenario, not written down.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import build_inventory
from credwarden import scenario
from credwarden.demo import with_mode
from credwarden.engine import evaluate
from credwarden.records import COMPLIANT, EXEMPT, UNGOVERNED, Evaluation
from promtools import DASHBOARD, RULES, binary

pytestmark = pytest.mark.timeout(90)

DEMO_SECONDS = 50  # the demo outlives the test; the fixture stops it
WAIT = 40.0
JOB = "credwarden"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass
class Stack:
    prometheus: str  # base URL
    metrics: str  # the demo's /metrics URL
    expected: Evaluation
    logs: Path

    def query(self, expr: str) -> Any:
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        return get_json(url)

    def firing(self) -> list[dict[str, Any]]:
        alerts = get_json(f"{self.prometheus}/api/v1/alerts")["data"]["alerts"]
        return [alert for alert in alerts if alert["state"] == "firing"]

    def settle(self) -> None:
        """Wait until Prometheus has scraped the converged demo and evaluated the rules."""
        expired = with_rules(self.expected, "Secret", "credential-expired", "certificate-expired")
        wait_for_alerts(self, {"CredentialExpired": expired})

    def diagnostics(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.logs.glob("*.log"))
        )


def rules_without_for(target: Path) -> None:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def expected_evaluation(now: datetime) -> Evaluation:
    objects = scenario.build_objects(now)
    policies = with_mode(scenario.example_policies(), "Audit")
    return evaluate(build_inventory([*objects, *policies]), now)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = binary("prometheus")
    work = tmp_path_factory.mktemp("prometheus-e2e")
    rules = work / "rules.yaml"
    rules_without_for(rules)
    metrics_port, web_port = free_port(), free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    now = datetime.now(UTC).replace(microsecond=0)
    demo_log = (work / "demo.log").open("wb")
    prometheus_log = (work / "prometheus.log").open("wb")
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "credwarden.cli",
            "demo",
            "--mode",
            "Audit",
            "--for",
            str(DEMO_SECONDS),
            "--metrics-port",
            str(metrics_port),
        ],
        stdout=demo_log,
        stderr=subprocess.STDOUT,
    )
    prometheus = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
            "--log.level=warn",
        ],
        stdout=prometheus_log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield Stack(
            prometheus=f"http://127.0.0.1:{web_port}",
            metrics=f"http://127.0.0.1:{metrics_port}/metrics",
            expected=expected_evaluation(now),
            logs=work,
        )
    finally:
        stop(prometheus)
        # kopf takes SIGTERM and stops the operator, but `demo --for` sleeps on until its
        # time is up; everything it holds is in-process, so a kill loses nothing
        stop(demo, grace=2.0)
        demo_log.close()
        prometheus_log.close()
    assert demo.returncode is not None and prometheus.returncode is not None


def credentials(alerts: list[dict[str, Any]], name: str) -> set[tuple[str, str, str]]:
    return {
        (a["labels"].get("kind", ""), a["labels"].get("namespace", ""), a["labels"].get("name", ""))
        for a in alerts
        if a["labels"]["alertname"] == name
    }


def with_rules(evaluation: Evaluation, kind: str, *rules: str) -> set[tuple[str, str, str]]:
    return {
        (r.key.kind, r.key.namespace, r.key.name)
        for r in evaluation.records
        if r.key.kind == kind and set(rules) & set(r.rule_ids)
    }


def wait_for_alerts(stack: Stack, expected: dict[str, set[tuple[str, str, str]]]) -> list[Any]:
    """Poll until the alerts match (or WAIT passes); the caller asserts on what was last seen."""
    deadline = time.monotonic() + WAIT
    firing: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            firing = stack.firing()
        except OSError:
            firing = []  # Prometheus still starting
        if all(credentials(firing, name) == want for name, want in expected.items()):
            time.sleep(2)  # two more evaluations: nothing extra may appear
            return stack.firing()
        time.sleep(0.5)
    return firing


def test_alerts_fire_for_exactly_the_expected_credentials(stack: Stack) -> None:
    started = time.monotonic()
    evaluation = stack.expected
    expected = {
        "CredentialExpired": with_rules(
            evaluation, "Secret", "credential-expired", "certificate-expired"
        ),
        "LongLivedServiceAccountToken": with_rules(evaluation, "Secret", "long-lived-token"),
        "HumanServiceAccount": with_rules(evaluation, "ServiceAccount", "human-identity"),
        "ClusterAdminServiceAccount": with_rules(
            evaluation, "ServiceAccount", "cluster-admin-binding"
        ),
        "CredentialExpiringSoon": with_rules(evaluation, "Secret", "credential-expiring")
        | with_rules(evaluation, "Secret", "certificate-expiring")
        | with_rules(evaluation, "ServiceAccount", "credential-expiring", "certificate-expiring"),
    }
    # the scenario has both kinds of offender: otherwise this test would prove nothing
    assert expected["CredentialExpired"] and expected["LongLivedServiceAccountToken"]
    firing = wait_for_alerts(stack, expected)
    for name, want in expected.items():
        assert credentials(firing, name) == want, f"{name}\n{stack.diagnostics()}"

    # nothing fires for a compliant, exempt or ungoverned credential
    quiet = {
        (r.key.kind, r.key.namespace, r.key.name)
        for r in evaluation.records
        if r.status in (COMPLIANT, EXEMPT, UNGOVERNED)
    }
    assert quiet
    named = {c for a in firing for c in credentials([a], a["labels"]["alertname"]) if c[2]}
    assert not named & quiet
    # the operator is up and scraped; no rotation fails in Audit mode
    names = {a["labels"]["alertname"] for a in firing}
    assert "CredwardenDown" not in names and "CredentialRotationFailing" not in names
    # the per-namespace fallback stays silent while per-credential series exist
    assert all(a["labels"].get("name") for a in firing)
    # every alert names its credential in its description
    for alert in firing:
        labels = alert["labels"]
        assert f"{labels['namespace']}/{labels['name']}" in alert["annotations"]["description"]
    assert time.monotonic() - started < 60


def test_prometheus_scrapes_every_family_and_no_scrape_fails(stack: Stack) -> None:
    stack.settle()
    result = stack.query('up{job="credwarden"}')["data"]["result"]
    assert [sample["value"][1] for sample in result] == ["1"]
    families = {
        sample["metric"]["__name__"]
        for sample in stack.query('{__name__=~"credwarden_.+", job="credwarden"}')["data"]["result"]
    }
    for name in (
        "credwarden_credential_expiration_timestamp_seconds",
        "credwarden_credential_last_rotation_timestamp_seconds",
        "credwarden_credential_status",
        "credwarden_credential_findings",
        "credwarden_findings",
        "credwarden_tracked_credentials",
        "credwarden_namespace_credentials",
        "credwarden_revocations_total",
        "credwarden_rotations_total",
        "credwarden_reconcile_duration_seconds_bucket",
        "credwarden_last_event_timestamp_seconds",
        "credwarden_build_info",
    ):
        assert name in families, name
    tracked = stack.query('sum(credwarden_tracked_credentials{job="credwarden"})')
    assert float(tracked["data"]["result"][0]["value"][1]) == len(stack.expected.records)


def dashboard_queries() -> list[tuple[str, str]]:
    document = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = []
    for panel in document["panels"]:
        for target in panel.get("targets", []):
            expr = (
                target["expr"]
                .replace("$__rate_interval", "1m")
                .replace("$__range", "1h")
                .replace("$__interval", "15s")
                .replace("${namespace:regex}", ".*")
                .replace("$namespace", ".*")
                .replace("$job", JOB)
            )
            found.append((panel["title"], expr))
    return found


def test_every_dashboard_query_evaluates_against_the_demo(stack: Stack) -> None:
    stack.settle()
    empty = []
    for title, expr in dashboard_queries():
        answer = stack.query(expr)
        assert answer["status"] == "success", (title, expr, answer)
        if not answer["data"]["result"]:
            empty.append(title)
    # some panels are rightly empty on the demo (no API errors, no blocked action)
    assert len(empty) <= len(dashboard_queries()) // 3, empty
