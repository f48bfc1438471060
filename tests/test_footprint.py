"""What the operator's process loads: kopf without the `kubernetes` client's models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OPERATOR_ROOT = Path(__file__).resolve().parent.parent / "operator"


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(OPERATOR_ROOT)},
    )
    return done.stdout.strip()


def test_the_operator_runs_kopf_without_importing_the_kubernetes_client() -> None:
    # kopf imports `kubernetes` (every API model, about 6 MiB) whenever it is installed
    loaded = _run(
        "import sys, credwarden.operate, credwarden.sandbox; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))"
    )
    assert loaded == "[]"


def test_the_client_stays_importable_after_kopf_for_the_live_audit() -> None:
    found = _run(
        "import credwarden.operate, kubernetes.client, kopf; "
        "print(kubernetes.client.CoreV1Api.__name__, kopf.OperatorRegistry.__name__)"
    )
    assert found == "CoreV1Api OperatorRegistry"
