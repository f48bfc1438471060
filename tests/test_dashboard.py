"""The Grafana dashboard: well formed, every query parses and reads only credwarden's metrics.

promtool parses PromQL without a server: every panel query becomes a recording rule in a
temporary rules file and `promtool check rules` must accept it (a broken query in the same
file must be refused, so the check is known to bite). The metric names a query selects
must be among those a running credwarden exports (its registry's own output, so the
process_/python_ collectors count too). tests/test_prometheus_e2e.py also runs every
query against a real Prometheus scraping the demo.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import build_inventory
from credwarden import scenario
from credwarden.controller import OperatorState
from credwarden.engine import evaluate
from credwarden.kube import KubeClient
from credwarden.metrics import OperatorMetrics, exported_sample_names
from promtools import DASHBOARD, binary, metric_names

# what Grafana puts in place of its variables before a query is sent
GRAFANA_VARIABLES = {
    "${namespace:regex}": ".*",
    "$namespace": ".*",
    "$job": "credwarden",
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
}


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def substitute(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def queries() -> list[tuple[str, str]]:
    return [
        (panel["title"], substitute(target["expr"]))
        for panel in panels()
        for target in panel["targets"]
    ]


def exported_names() -> set[str]:
    """Every sample name a credwarden operator's /metrics shows on the example cluster."""
    now = scenario.REFERENCE_NOW
    inventory = build_inventory([*scenario.build_objects(now), *scenario.example_policies()])
    evaluation = evaluate(inventory, now)

    async def render() -> bytes:
        state = OperatorState(client=KubeClient(), inventory=inventory)
        for record in evaluation.records:
            state.reconciler.records[record.key] = record
        metrics = OperatorMetrics(state).attach()
        for record in evaluation.records:  # what the reconciler calls after each evaluation
            for listener in state.reconciler.listeners:
                listener(record, record.key)
        metrics.count_blocked("p", "budget")
        assert state.client.on_error is not None
        state.client.on_error("get", "500")
        chunks = [chunk async for chunk in metrics.render()]
        metrics.close()
        return b"".join(chunks)

    text = asyncio.run(render()).decode()
    return {
        match.group(1)
        for match in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.MULTILINE)
    }


def test_the_dashboard_is_grafana_json_with_a_datasource_variable() -> None:
    document = dashboard()
    assert document["uid"] == "credwarden"
    assert document["schemaVersion"] >= 36
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "namespace"):
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert metric_names(substitute(variables[name]["query"]["query"].split("(", 1)[1]))
    ids = [panel["id"] for panel in document["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip()


def test_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


@pytest.mark.parametrize(
    "words",
    [
        ("expiring", "7 days"),
        ("expiring", "30 days"),
        ("findings by rule",),
        ("findings by namespace",),
        ("revocations",),
        ("rotations",),
        ("reconcile",),
        ("api errors",),
        ("ready",),
    ],
)
def test_the_dashboard_has_the_panels_the_issue_asks_for(words: tuple[str, ...]) -> None:
    titles = [panel["title"].lower() for panel in panels()]
    assert any(all(word in title for word in words) for title in titles), (words, titles)


def test_the_health_row_and_the_enforcement_row_exist() -> None:
    rows = [panel["title"] for panel in dashboard()["panels"] if panel["type"] == "row"]
    assert {"Overview", "Expiry", "Findings", "Enforcement", "Operator health"} <= set(rows)


def promtool_check(tmp_path: Path, exprs: list[str]) -> subprocess.CompletedProcess[str]:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{index}", "expr": expr}
                    for index, expr in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    return subprocess.run(
        [binary("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_panel_query_parses(tmp_path: Path) -> None:
    exprs = [expr for _, expr in queries()]
    result = promtool_check(tmp_path, exprs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promtool_refuses_a_query_that_does_not_parse(tmp_path: Path) -> None:
    result = promtool_check(tmp_path, ["sum by (rule) (credwarden_findings"])
    assert result.returncode != 0


def test_every_query_reads_only_metrics_credwarden_exports() -> None:
    exported = exported_names()
    # the registry's output is the truth; the static list in metrics.py must agree with it
    assert exported_sample_names() <= exported
    for title, expr in queries():
        used = metric_names(expr)
        assert used, (title, expr)
        assert used <= exported, (title, sorted(used - exported))
