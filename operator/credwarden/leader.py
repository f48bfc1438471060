"""Leader election on a coordination.k8s.io Lease: two replicas, one acts.

kopf's peering is not used: its peers of equal priority pause each other, and the
reconcile loop (deadlines, enforcement) runs outside kopf's pause mechanism. This is the
election client-go's controllers use. The leader holds a Lease in credwarden's namespace
and renews it every `renew_every` seconds. A standby takes it over once the holder has
not renewed for `duration` seconds. Every write carries the Lease's resourceVersion, so
two candidates can never both win. A leader that cannot renew within `duration` stops
acting at once and exits, so at no time do two replicas act.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from credwarden.facts import parse_time
from credwarden.kube import ApiError, Conflict, KubeClient, NotFound

log = logging.getLogger("credwarden.leader")

LEASE_NAME = "credwarden-leader"


class LeadershipLost(Exception):
    """The Lease could not be renewed in time: stop acting now."""


def _micro_time(moment: datetime) -> str:
    # metav1.MicroTime, as the Lease API wants it
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElection:
    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        identity: str,
        *,
        name: str = LEASE_NAME,
        duration: float = 15.0,
        renew_every: float = 5.0,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.identity = identity
        self.name = name
        self.duration = duration
        self.renew_every = renew_every
        self.leading = False
        self._renewed = 0.0  # monotonic time of the last successful renewal

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"

    def _spec(self, transitions: int, acquired: str | None = None) -> dict[str, Any]:
        now = _micro_time(datetime.now(UTC))
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.duration)),
            "acquireTime": acquired or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def try_acquire(self) -> bool:
        """One attempt to take or renew the Lease; True when this replica holds it."""
        try:
            lease = await self.client.get(self.path)
        except NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(0),
            }
            try:
                await self.client.request(
                    "POST",
                    f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases",
                    body=body,
                )
            except ApiError as error:
                if error.status == 409:  # another replica created it first
                    return False
                raise
            return self._won()
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        renewed = parse_time(spec.get("renewTime"))
        seconds = spec.get("leaseDurationSeconds") or self.duration
        expired = renewed is None or renewed + timedelta(seconds=seconds) < datetime.now(UTC)
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        taking_over = holder != self.identity
        patch = {
            "metadata": {"resourceVersion": (lease.get("metadata") or {}).get("resourceVersion")},
            "spec": self._spec(
                transitions + 1 if taking_over else transitions,
                None if taking_over else spec.get("acquireTime"),
            ),
        }
        try:
            await self.client.merge_patch(self.path, patch)
        except Conflict:
            return False  # someone else wrote it in between: not ours
        return self._won()

    def _won(self) -> bool:
        if not self.leading:
            log.info("leader election: %s now leads (Lease %s)", self.identity, self.name)
        self.leading = True
        self._renewed = time.monotonic()
        return True

    async def acquire(self) -> None:
        """Wait until this replica leads."""
        while True:
            try:
                if await self.try_acquire():
                    return
            except ApiError as error:
                log.warning("leader election: %s", error)
            # jitter keeps standbys from retrying in lockstep
            await asyncio.sleep(self.renew_every * (0.8 + 0.4 * random.random()))

    async def hold(self) -> None:
        """Renew until leadership is lost; then raise LeadershipLost."""
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                if not await self.try_acquire():
                    self.leading = False
                    raise LeadershipLost(f"Lease {self.name} is held by another replica")
            except ApiError as error:
                log.warning("leader election: renewal failed: %s", error)
            if time.monotonic() - self._renewed > self.duration:
                self.leading = False
                raise LeadershipLost(f"Lease {self.name} not renewed for {self.duration:.0f}s")

    async def release(self) -> None:
        """On a clean stop: hand the Lease over at once instead of after `duration`."""
        if not self.leading:
            return
        self.leading = False
        try:
            await self.client.merge_patch(self.path, {"spec": {"holderIdentity": ""}})
        except ApiError as error:
            log.warning("leader election: release failed: %s", error)
