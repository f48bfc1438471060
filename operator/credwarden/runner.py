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

from credwarden.controller import (
    Login,
    OperatorState,
    build_registry,
    configure_settings,
    connection_info,
    feed,
)
from credwarden.kopfimport import kopf
from credwarden.kube import credentials_from
from credwarden.leader import LeaderElection, LeadershipLost

log = logging.getLogger("credwarden.runner")


@contextlib.asynccontextmanager
async def running(
    state: OperatorState,
    *,
    login: Login | None = None,
    namespaces: Sequence[str] = (),
    settings: kopf.OperatorSettings | None = None,
    liveness_endpoint: str | None = None,
    election: LeaderElection | None = None,
) -> AsyncIterator[asyncio.Task[Any]]:
    """Run the operator until the block exits; yields the kopf task (to watch for crashes).

    With `election`, nothing starts until this replica leads, and everything stops the
    moment it no longer does (the kopf task then ends with LeadershipLost).
    """
    registry = build_registry(state, login=login)
    if settings is None:
        settings = kopf.OperatorSettings()
    configure_settings(settings)
    stop_flag = asyncio.Event()
    holding: asyncio.Task[None] | None = None
    # logged in before kopf is: the informers and the election read the API at once
    # (kopf's login handler then keeps the credentials fresh)
    info = await connection_info(login, settings=settings, logger=log)
    if info is not None:
        await state.client.login(credentials_from(info))
    if election is not None:
        await election.acquire()
    # started before kopf, so kopf does not count them among its own tasks
    reconciler = asyncio.create_task(state.reconciler.run(), name="credwarden-reconciler")
    feeding = asyncio.create_task(feed(state, namespaces), name="credwarden-informers")
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
    if election is not None:
        holding = asyncio.create_task(election.hold(), name="credwarden-leadership")

        def lost(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and isinstance(task.exception(), LeadershipLost):
                log.error("leadership lost: %s; stopping", task.exception())
                reconciler.cancel()  # stop acting at once, before kopf winds down
                feeding.cancel()
                stop_flag.set()

        holding.add_done_callback(lost)
    try:
        yield operator
    finally:
        stop_flag.set()
        reconciler.cancel()
        feeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        if holding is not None:
            holding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reconciler
        try:
            await asyncio.wait_for(operator, timeout=15)
        except (TimeoutError, asyncio.CancelledError):
            operator.cancel()
        if election is not None:
            await election.release()
        await state.client.close()
