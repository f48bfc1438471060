"""Liveness fails when the Secrets watch stops delivering, not only when the loop dies."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from credwarden.emulator import wait_until
from credwarden.health import HEARTBEAT_ANNOTATION, Health, Heartbeat
from credwarden.sandbox import emulated_cluster, operator_on

pytestmark = pytest.mark.timeout(60)


async def get(port: int, path: str) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.json()


async def test_healthz_follows_the_heartbeat_through_the_secrets_watch() -> None:
    heartbeat = Heartbeat("credwarden", interval=0.2, grace=1.0)
    async with emulated_cluster() as sandbox, operator_on(sandbox, heartbeat=heartbeat) as state:
        health = Health(state.reconciler, heartbeat)
        runner = await health.serve("127.0.0.1", 0)
        port = runner.addresses[0][1]
        beating = asyncio.create_task(heartbeat.run(state.client))
        try:
            await wait_until(lambda: heartbeat.seen_at is not None, 10)
            assert await get(port, "/readyz") == (200, {"status": "ok"})
            assert await get(port, "/healthz") == (200, {"status": "ok", "problems": []})
            stored = sandbox.emulator.objects["v1/secrets", "credwarden", "credwarden-heartbeat"]
            assert HEARTBEAT_ANNOTATION in stored.raw["metadata"]["annotations"]
            # credwarden's own Secret is exempt: not annotated, not reported
            assert "credwarden.io/status" not in stored.raw["metadata"]["annotations"]

            # the stream stays open but stops delivering: liveness must notice
            sandbox.emulator.freeze_watches("v1/secrets")
            started = time.monotonic()
            await wait_until(lambda: heartbeat.problems(time.monotonic()), 10)
            status, body = await get(port, "/healthz")
            assert status == 503
            assert "has not delivered the heartbeat" in str(body["problems"])
            assert time.monotonic() - started < 5

            sandbox.emulator.freeze_watches("v1/secrets", frozen=False)
            await wait_until(lambda: not heartbeat.problems(time.monotonic()), 10)
            assert (await get(port, "/healthz"))[0] == 200
        finally:
            beating.cancel()
            await runner.cleanup()


def test_a_stalled_reconcile_loop_fails_liveness() -> None:
    from credwarden.inventory import Inventory
    from credwarden.kube import KubeClient
    from credwarden.reconciler import HEARTBEAT, Reconciler

    reconciler = Reconciler(Inventory(), KubeClient())
    health = Health(reconciler)
    assert health.problems() == []  # not listed yet: starting, not dead
    reconciler.ready.set()
    reconciler.last_tick = time.monotonic() - 4 * HEARTBEAT
    assert "the reconcile loop last ran" in health.problems()[0]
