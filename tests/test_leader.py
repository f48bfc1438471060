"""Two replicas started together: one acts; the other takes over when it stops."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any

import pytest

from credwarden.emulator import wait_until
from credwarden.kube import KubeClient
from credwarden.leader import LeaderElection
from credwarden.sandbox import Sandbox, emulated_cluster, operator_on

pytestmark = pytest.mark.timeout(90)


def objects() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": f"s{i}", "namespace": "team"},
            "data": {"password": base64.b64encode(f"value-number-{i}-xyz".encode()).decode()},
        }
        for i in range(3)
    ] + [
        {
            "apiVersion": "credwarden.io/v1alpha1",
            "kind": "ClusterCredentialPolicy",
            "metadata": {"name": "p"},
            "spec": {"limits": {"secrets": {}}},
        }
    ]


async def replica(sandbox: Sandbox, name: str, states: dict[str, Any], stop: asyncio.Event) -> None:
    client = KubeClient(qps=0, backoffs=(0.05, 0.1))
    election = LeaderElection(client, "credwarden", name, duration=2.0, renew_every=0.3)
    async with operator_on(sandbox, client=client, election=election) as state:
        states[name] = (state, election)
        await stop.wait()


async def test_two_replicas_started_together_only_one_acts_and_the_other_takes_over() -> None:
    async with emulated_cluster(objects()) as sandbox:
        states: dict[str, Any] = {}
        stops = {name: asyncio.Event() for name in ("a", "b")}
        tasks = {
            name: asyncio.create_task(replica(sandbox, name, states, stops[name]))
            for name in ("a", "b")
        }
        try:
            await wait_until(lambda: len(states) == 1, 15)
            (leader,) = states
            standby = "b" if leader == "a" else "a"
            state, _ = states[leader]
            await asyncio.wait_for(state.reconciler.converged.wait(), 15)
            written = state.reconciler.stats.writes
            assert written > 0
            await asyncio.sleep(1.0)  # the standby keeps waiting, acting on nothing
            assert standby not in states
            lease = sandbox.emulator.objects[
                "coordination.k8s.io/v1/leases", "credwarden", "credwarden-leader"
            ]
            assert lease.raw["spec"]["holderIdentity"] == leader

            stops[leader].set()  # the leader stops cleanly and hands the Lease over
            await tasks[leader]
            await wait_until(lambda: standby in states, 10)
            successor, election = states[standby]
            assert election.leading
            await asyncio.wait_for(successor.reconciler.converged.wait(), 15)
            # nothing left to do: the leader converged the cluster before it stopped
            assert successor.reconciler.stats.writes == 0
        finally:
            for stop in stops.values():
                stop.set()
            for task in tasks.values():
                with contextlib.suppress(asyncio.CancelledError):
                    task.cancel()
                    await task


async def test_a_leader_that_cannot_renew_stops_acting() -> None:
    async with emulated_cluster(objects()) as sandbox:
        client = KubeClient(qps=0, backoffs=(0.05,))
        election = LeaderElection(client, "credwarden", "a", duration=1.0, renew_every=0.2)
        async with operator_on(sandbox, client=client, election=election) as state:
            await asyncio.wait_for(state.reconciler.converged.wait(), 15)
            # another replica takes the Lease over (e.g. after a network partition)
            await sandbox.emulator.patch(
                "/apis/coordination.k8s.io/v1/namespaces/credwarden/leases/credwarden-leader",
                json={"spec": {"holderIdentity": "b", "renewTime": "2099-01-01T00:00:00.000000Z"}},
            )
            await wait_until(lambda: not election.leading, 5)
            assert sandbox.operator is not None
            await asyncio.wait_for(sandbox.operator, 10)  # kopf stopped, reconciler cancelled
