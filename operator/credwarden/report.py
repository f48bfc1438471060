"""Rendering an Evaluation: a table for terminals, JSON for tools, Markdown for tickets."""

from __future__ import annotations

import json
from typing import Any

from credwarden.records import (
    STATUS_ORDER,
    Annotate,
    Evaluation,
    LifecycleRecord,
    PostEvent,
    rfc3339,
)

TABLE_WIDTH = 100


def worst_first(records: list[LifecycleRecord]) -> list[LifecycleRecord]:
    def key(record: LifecycleRecord) -> tuple[Any, ...]:
        violations = sum(1 for finding in record.findings if finding.severity == "violation")
        expires = record.expires_at.timestamp() if record.expires_at else float("inf")
        return (STATUS_ORDER[record.status], -violations, expires, record.key)

    return sorted(records, key=key)


def to_json(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "generatedAt": rfc3339(evaluation.now),
        "summary": evaluation.summary(),
        "policyErrors": evaluation.policy_errors,
        "credentials": [record.to_json() for record in evaluation.records],
        # what Enforce would do: revocations and rotations, with `enforced` per policy mode
        "plan": [
            action.to_json()
            for action in evaluation.plan
            if not isinstance(action, Annotate | PostEvent)
        ],
    }


def render_json(evaluation: Evaluation) -> str:
    return json.dumps(to_json(evaluation), indent=2) + "\n"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _kind(record: LifecycleRecord) -> str:
    return "sa" if record.key.kind == "ServiceAccount" else "secret"


def _expires(record: LifecycleRecord) -> str:
    return record.expires_at.strftime("%Y-%m-%d") if record.expires_at else "-"


def _rows(evaluation: Evaluation) -> list[tuple[str, ...]]:
    return [
        (
            record.status,
            _kind(record),
            f"{record.key.namespace}/{record.key.name}",
            record.owner or "-",
            _expires(record),
            ",".join(record.rule_ids) or "-",
        )
        for record in worst_first(evaluation.records)
    ]


def _summary_line(evaluation: Evaluation) -> str:
    summary = evaluation.summary()
    parts = [f"{count} {status}" for status, count in summary["byStatus"].items()]
    return f"{summary['credentials']} credentials: {', '.join(parts) or 'none'}"


def _enforcement_lines(evaluation: Evaluation) -> list[str]:
    return [
        action.describe()
        for action in evaluation.plan
        if not isinstance(action, Annotate | PostEvent)
    ]


def render_table(evaluation: Evaluation) -> str:
    # widths fit 100 columns: 12 + 6 + 34 + 16 + 10 + rest, one space between
    widths = (12, 6, 34, 16, 10)
    rest = TABLE_WIDTH - sum(widths) - len(widths)
    header = ("STATUS", "KIND", "NAMESPACE/NAME", "OWNER", "EXPIRES", "FINDINGS")
    lines = []
    for row in [header, *_rows(evaluation)]:
        cells = [_cut(cell, width).ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append(" ".join([*cells, _cut(row[-1], rest)]).rstrip())
    lines += ["", _summary_line(evaluation)]
    for name, error in sorted(evaluation.policy_errors.items()):
        lines.append(f"invalid policy {name}: {error}")
    enforcement = _enforcement_lines(evaluation)
    if enforcement:
        lines += ["", "Planned enforcement:"] + [f"  {line}" for line in enforcement]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(evaluation: Evaluation) -> str:
    lines = [
        f"## credwarden audit, {rfc3339(evaluation.now)}",
        "",
        _summary_line(evaluation),
        "",
        "| Status | Kind | Namespace/Name | Owner | Expires | Findings |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in _rows(evaluation)]
    details = [record for record in worst_first(evaluation.records) if record.findings]
    if details:
        lines += ["", "### Findings", ""]
        for record in details:
            for finding in record.findings:
                lines.append(
                    f"- **{_md(record.key.namespace)}/{_md(record.key.name)}** "
                    f"({_kind(record)}) `{finding.rule}` {finding.severity}: {_md(finding.message)}"
                )
    enforcement = _enforcement_lines(evaluation)
    if enforcement:
        lines += ["", "### Planned enforcement", ""] + [f"- {_md(line)}" for line in enforcement]
    return "\n".join(lines) + "\n"


RENDERERS = {"table": render_table, "json": render_json, "markdown": render_markdown}
