"""`credwarden run`: the operator as a process, with health, heartbeat and clean shutdown."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket

from credwarden.controller import OperatorState
from credwarden.health import Health, Heartbeat
from credwarden.kube import KubeClient
from credwarden.runner import running

log = logging.getLogger("credwarden")


async def operate(args: argparse.Namespace) -> int:
    namespace = os.environ.get("POD_NAMESPACE", "")
    instance = os.environ.get("POD_NAME") or socket.gethostname()
    client = KubeClient(qps=args.qps, burst=args.burst)
    heartbeat = Heartbeat(namespace) if namespace else None
    state = OperatorState(client=client, instance=instance, heartbeat=heartbeat)
    health = Health(state.reconciler, heartbeat)
    health_runner = await health.serve("0.0.0.0", args.health_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    tasks: list[asyncio.Task[None]] = []
    try:
        async with running(state, namespaces=args.namespace) as operator:
            if heartbeat is not None:
                tasks.append(asyncio.create_task(heartbeat.run(client)))
            stopping = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({operator, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if operator in done and not stop.is_set():
                log.error("kopf stopped unexpectedly: %s", operator.exception())
                return 1
    finally:
        for task in tasks:
            task.cancel()
        await health_runner.cleanup()
    return 0


def run_operator(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO)
    return asyncio.run(operate(args))
