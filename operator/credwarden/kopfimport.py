"""kopf, imported without the `kubernetes` client package.

When `kubernetes` is installed (credwarden's live audit reads clusters with it), kopf's
import imports it too, with every one of its API models: about 6 MiB of the operator's
memory, only to recognise those models in handler results and to offer a login through
that client. credwarden's handlers return none, and it logs in with kopf's own
kubeconfig and ServiceAccount logins (`controller.connection_info`). So the package is
hidden from kopf while kopf is first imported, then visible again to anything that
imports it later (the live audit).
"""

from __future__ import annotations

import sys

_hidden = "kubernetes" not in sys.modules
if _hidden:
    sys.modules["kubernetes"] = None  # type: ignore[assignment]  # import -> ImportError
try:
    import kopf
finally:
    if _hidden and sys.modules.get("kubernetes", ...) is None:
        del sys.modules["kubernetes"]

__all__ = ["kopf"]
