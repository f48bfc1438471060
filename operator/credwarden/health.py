"""Liveness that means something: the Secrets watch must be delivering events.

A live event loop proves little: kopf can keep running on a watch stream that silently
stopped delivering (nolar/kopf#585, #957). So credwarden writes a heartbeat annotation on
a Secret of its own every `interval` seconds and expects to *receive* that change through
its cluster-wide Secrets watch. `/healthz` fails when a heartbeat written more than
`grace` seconds ago has not come back, when the reconcile loop has stopped ticking, or when
the API has refused the heartbeat for longer than `grace`. `/readyz` succeeds once every
watched kind has been listed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from credwarden.kube import ApiError, KubeClient, NotFound, path_of
from credwarden.reconciler import HEARTBEAT, Reconciler

log = logging.getLogger("credwarden.health")

HEARTBEAT_NAME = "credwarden-heartbeat"
HEARTBEAT_ANNOTATION = "credwarden.io/heartbeat"


@dataclass
class Heartbeat:
    namespace: str
    name: str = HEARTBEAT_NAME
    interval: float = 30.0
    grace: float = 120.0
    # heartbeats written and not yet seen coming back, oldest first: (stamp, when)
    unseen: deque[tuple[str, float]] = field(default_factory=lambda: deque(maxlen=64))
    seen_at: float | None = None
    last_success: float = field(default_factory=time.monotonic)

    def observe(self, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
        """Called for every Secret event: is it our heartbeat coming back?"""
        if namespace != self.namespace or name != self.name:
            return
        stamp = annotations.get(HEARTBEAT_ANNOTATION)
        if any(written == stamp for written, _ in self.unseen):
            # this one and every older one have come through
            while self.unseen and self.unseen.popleft()[0] != stamp:
                pass
            self.seen_at = time.monotonic()

    def problems(self, now: float) -> list[str]:
        found = []
        if self.unseen and now - self.unseen[0][1] > self.grace:
            found.append(
                f"the Secrets watch has not delivered the heartbeat written "
                f"{now - self.unseen[0][1]:.0f}s ago"
            )
        if now - self.last_success > self.grace:
            found.append(f"the API has refused the heartbeat for {now - self.last_success:.0f}s")
        return found

    async def run(self, client: KubeClient) -> None:
        path = path_of("Secret", self.namespace, self.name)
        while True:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            try:
                try:
                    await client.annotate(path, {HEARTBEAT_ANNOTATION: stamp}, parse=False)
                except NotFound:
                    await client.request(
                        "POST",
                        f"/api/v1/namespaces/{self.namespace}/secrets",
                        body=_heartbeat_secret(self.namespace, self.name, stamp),
                    )
                self.unseen.append((stamp, time.monotonic()))
                self.last_success = time.monotonic()
            except ApiError as error:
                log.warning("heartbeat not written: %s", error)
            await asyncio.sleep(self.interval)


def _heartbeat_secret(namespace: str, name: str, stamp: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "credwarden"},
            "annotations": {
                HEARTBEAT_ANNOTATION: stamp,
                # it holds no credential; it proves the Secrets watch is alive
                "credwarden.io/exempt": "credwarden's own watch heartbeat, holds no data",
            },
        },
    }


@dataclass
class Health:
    reconciler: Reconciler
    heartbeat: Heartbeat | None = None

    def problems(self) -> list[str]:
        now = time.monotonic()
        found = self.heartbeat.problems(now) if self.heartbeat else []
        if self.reconciler.ready.is_set() and now - self.reconciler.last_tick > 3 * HEARTBEAT:
            found.append(f"the reconcile loop last ran {now - self.reconciler.last_tick:.0f}s ago")
        return found

    async def healthz(self, _: web.Request) -> web.Response:
        problems = self.problems()
        return web.json_response(
            {"status": "fail" if problems else "ok", "problems": problems},
            status=503 if problems else 200,
        )

    async def readyz(self, _: web.Request) -> web.Response:
        ready = self.reconciler.ready.is_set()
        return web.json_response(
            {"status": "ok" if ready else "listing"}, status=200 if ready else 503
        )

    async def serve(self, host: str, port: int) -> web.AppRunner:
        app = web.Application()
        app.add_routes([web.get("/healthz", self.healthz), web.get("/readyz", self.readyz)])
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner
