"""`credwarden run`: the operator as a process, with health, heartbeat and clean shutdown."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket

from credwarden import logs
from credwarden.controller import OperatorState, namespace_matches
from credwarden.health import Health, Heartbeat
from credwarden.kube import KubeClient
from credwarden.leader import LeaderElection
from credwarden.metrics import MetricsServer, serve_metrics
from credwarden.runner import running

log = logging.getLogger("credwarden")


async def operate(args: argparse.Namespace) -> int:
    namespace = os.environ.get("POD_NAMESPACE", "")
    instance = os.environ.get("POD_NAME") or socket.gethostname()
    client = KubeClient(qps=args.qps, burst=args.burst)
    # the heartbeat proves the Secrets watch of its own namespace: only if it is watched
    watched = not args.namespace or any(
        namespace_matches(namespace, pattern) for pattern in args.namespace
    )
    heartbeat = Heartbeat(namespace) if namespace and watched else None
    if namespace and not watched:
        log.warning(
            "namespace %s is outside --namespace: /healthz cannot check the Secrets watch",
            namespace,
        )
    state = OperatorState(client=client, instance=instance, heartbeat=heartbeat)
    health = Health(state.reconciler, heartbeat)
    health_runner = await health.serve("0.0.0.0", args.health_port)
    metrics: MetricsServer | None = None
    if args.metrics_port:  # 0: off
        metrics = await serve_metrics(
            state, args.metrics_port, per_credential=args.per_credential_metrics
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    tasks: list[asyncio.Task[None]] = []
    # two replicas: one acts (a Lease in its namespace); a standby waits here, alive
    election = (
        LeaderElection(client, namespace, instance) if namespace and args.leader_election else None
    )
    try:
        async with running(state, namespaces=args.namespace, election=election) as operator:
            if heartbeat is not None:
                tasks.append(asyncio.create_task(heartbeat.run(client)))
            stopping = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({operator, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if metrics is not None:
                # before kopf stops: it waits for connection tasks still open (keep-alive)
                await metrics.stop()
                metrics = None
            # kopf installs its own SIGTERM/SIGINT handlers: a clean stop is a signal
            error = operator.exception() if operator in done and not stop.is_set() else None
            if error is not None:
                log.error("kopf stopped unexpectedly: %s", error)
                return 1
            if election is not None and not election.leading and not stop.is_set():
                return 1  # leadership lost: exit so the Pod restarts as a standby
    finally:
        for task in tasks:
            task.cancel()
        if metrics is not None:
            await metrics.stop()
        await health_runner.cleanup()
    return 0


def run_operator(args: argparse.Namespace) -> int:
    logs.configure(args.log_format)
    return asyncio.run(operate(args))
