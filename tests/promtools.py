"""Prometheus tooling for the tests: the Debian binaries, and metric names in PromQL.

`binary("promtool")` returns the path of an installed binary. When it is missing, the
test is skipped with the install line, except in CI (`CI=true`): there a missing binary
means `.ci/run` did not install it, and the test fails.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "deploy" / "prometheus" / "credwarden-rules.yaml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "credwarden-rules.test.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "credwarden-dashboard.json"
RUNBOOK = REPO / "docs" / "runbook.md"
# Debian 12 ships promtool inside `prometheus`; from Debian 13 on it is its own package
INSTALL = (
    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
    "--no-install-recommends prometheus "
    "$(apt-cache show promtool >/dev/null 2>&1 && echo promtool)"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def binary(name: str) -> str:
    """Path of `name` (promtool, prometheus); skip without it, fail without it in CI."""
    found = shutil.which(name)
    if found:
        return found
    message = f"`{name}` is not installed; install it with: {INSTALL}"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "inf",
        "nan",
        "Inf",
        "NaN",
    }
)
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+|@\s*(?:start\(\)|end\(\)|[0-9.]+)")
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names: set[str] = set()
    for found in _IDENTIFIER.finditer(text):
        before = text[found.start() - 1] if found.start() else " "
        if before.isdigit() or before in ".$":
            continue  # 1e3, 0.5e-3, a leftover $variable
        if text[found.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if found.group() in _KEYWORDS:
            continue
        names.add(found.group())
    return names


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    return {
        github_anchor(line.lstrip("#"))
        for line in RUNBOOK.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
