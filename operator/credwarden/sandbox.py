"""An emulated cluster with the real operator running against it (demo and tests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import kmock

from credwarden.controller import OperatorState
from credwarden.emulator import ClusterEmulator
from credwarden.kopfimport import kopf
from credwarden.kube import KubeClient
from credwarden.runner import running


def _client_without_keepalive(base_url: Any) -> aiohttp.ClientSession:
    # kopf waits 5 s on stop for any task created after its start, including aiohttp's
    # server task behind an idle keep-alive connection of kmock's own client
    return aiohttp.ClientSession(base_url, connector=aiohttp.TCPConnector(force_close=True))


@dataclass
class Sandbox:
    emulator: ClusterEmulator
    url: str
    state: OperatorState | None = None
    operator: asyncio.Task[Any] | None = None  # kopf's task: done when kopf stops


@contextlib.asynccontextmanager
async def emulated_cluster(objects: Iterable[Mapping[str, Any]] = ()) -> AsyncIterator[Sandbox]:
    """A ClusterEmulator on a loopback port, preloaded with `objects`."""
    emulator = ClusterEmulator()
    async with (
        emulator,
        kmock.Server(emulator, host="127.0.0.1", client_fct=_client_without_keepalive) as server,
    ):
        emulator.declare_resources()
        for body in objects:
            emulator.preload(dict(body))
        yield Sandbox(emulator, str(server.url))


def fast_settings() -> kopf.OperatorSettings:
    """Fast retries and reconnects for an emulated API on loopback."""
    settings = kopf.OperatorSettings()
    settings.scanning.disabled = True
    settings.networking.error_backoffs = [0.05, 0.1, 0.2]
    settings.watching.reconnect_backoff = 0.05
    settings.queueing.idle_timeout = 0.5
    return settings


@contextlib.asynccontextmanager
async def operator_on(
    sandbox: Sandbox,
    *,
    client: KubeClient | None = None,
    namespaces: Sequence[str] = (),
    election: Any = None,
    **state_options: Any,
) -> AsyncIterator[OperatorState]:
    """The real operator, logged in to the sandbox, until the block exits."""
    state = OperatorState(
        client=client or KubeClient(qps=0, backoffs=(0.05, 0.1, 0.2)), **state_options
    )
    sandbox.state = state

    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=sandbox.url)

    settings = fast_settings()
    # a scoped operator discovers its namespaces by watching them
    settings.scanning.disabled = not namespaces
    async with running(
        state, login=login, settings=settings, namespaces=namespaces, election=election
    ) as task:
        sandbox.operator = task
        yield state
