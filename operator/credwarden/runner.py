"""Running the operator: kopf's machinery plus the reconcile loop, started and stopped together.

`credwarden run` and `credwarden demo` both come through here, so the demo runs exactly
the code a cluster runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import kopf

from credwarden.controller import Login, OperatorState, build_registry, configure_settings

log = logging.getLogger("credwarden.runner")


@contextlib.asynccontextmanager
async def running(
    state: OperatorState,
    *,
    login: Login | None = None,
    namespaces: Sequence[str] = (),
    settings: kopf.OperatorSettings | None = None,
    liveness_endpoint: str | None = None,
) -> AsyncIterator[asyncio.Task[Any]]:
    """Run the operator until the block exits; yields the kopf task (to watch for crashes)."""
    registry = build_registry(state, login=login)
    if settings is None:
        settings = kopf.OperatorSettings()
    configure_settings(settings)
    stop_flag = asyncio.Event()
    # the reconciler starts before kopf, so kopf does not count it among its own tasks
    reconciler = asyncio.create_task(state.reconciler.run(), name="credwarden-reconciler")
    operator = asyncio.create_task(
        kopf.operator(
            registry=registry,
            settings=settings,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            standalone=True,
            stop_flag=stop_flag,
            liveness_endpoint=liveness_endpoint,
            memo=kopf.Memo(),
        ),
        name="credwarden-kopf",
    )
    try:
        yield operator
    finally:
        stop_flag.set()
        reconciler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reconciler
        try:
            await asyncio.wait_for(operator, timeout=15)
        except (TimeoutError, asyncio.CancelledError):
            operator.cancel()
        await state.client.close()
