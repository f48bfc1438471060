"""A baseline operator for issue 7: credwarden's job, written the way kopf's docs suggest.

The benchmark runs the same workload against credwarden's operator and against this
module, and reports each figure as a ratio. This operator has the same inputs, the same
engine (`credwarden.engine.evaluate_credential` over a `credwarden.inventory.Inventory`
filled through `credwarden.snapshot.facts_of`), and writes the same `credwarden.io/*`
annotations and posts the same Events on transitions. Only the reaction machinery
differs, and it is what a newcomer following kopf's documentation would write:

- `@kopf.on.create`, `@kopf.on.update` and `@kopf.on.resume` on `v1/secrets` and
  `v1/serviceaccounts` evaluate the object and write annotations through the `patch`
  kwarg (docs: handlers.rst, kwargs.rst);
- one `@kopf.timer` per Secret and per ServiceAccount re-evaluates it every
  `timer_interval` seconds, so a credential that crosses its expiry is noticed
  (docs: timers.rst; one asyncio task per object and handler, as kopf implements it);
- cross-object inputs (policies, namespaces, ServiceAccounts, Secrets, RoleBindings,
  ClusterRoleBindings, workloads) are kept with `@kopf.index` handlers (docs:
  indexing.rst, "Mirroring resources"): each returns the object's facts into kopf's
  index and puts the same facts into the Inventory the engine reads. kopf's indices
  drop deleted objects by themselves; a `@kopf.on.event` handler per kind drops them
  from the Inventory too;
- Events go through `kopf.warn` / `kopf.info` (docs: events.rst);
- kopf's default settings and default persistence: kopf stores
  `kopf.zalando.org/last-handled-configuration` (a copy of each Secret's data) and its
  progress annotations on every handled object, and puts its finalizer on every object a
  timer runs for. That cost is part of what the benchmark measures.

Kept as a careful newcomer would: annotations are patched only when a value changes (the
engine plans an `Annotate` only then), and Events only on transitions (the engine plans
them from the object's own annotations). The timer and the create/update handlers of one
object can run at the same moment before the first annotations come back through the
watch, so the per-object `memo` (docs: memos.rst) remembers the Event reasons already
posted until the object carries them, as credwarden's reconciler does.

Left out, and why that does not bias the comparison:

- enforcement (revoke, rotate, refresh, restarts): the comparison runs in Audit mode, in
  which credwarden writes nothing but annotations, Events and policy status either;
- policy status (`status.matched`, conditions...): credwarden writes it once per policy
  and only on change, a handful of writes per run. Leaving it out lowers the baseline's
  cost, so ratios in credwarden's favour are conservative. The harness can count
  credwarden's status writes apart;
- health probes and the heartbeat Secret, Prometheus metrics, leader election, namespace
  scoping, credwarden's client-side rate limit (QPS): none is part of reacting to
  objects, and each only adds work to credwarden;
- immediate re-evaluation of dependants: when a policy, a namespace, a binding or a
  workload changes, credwarden re-evaluates the credentials it affects at once. kopf has
  no way for one object's event to run another object's handlers; its docs suggest a
  timer that reads the indices, so the baseline notices such a change at the affected
  credentials' next timer tick (within `timer_interval`). That is a difference of the
  machinery, which is what is measured, not a missing feature.

One baseline runs at a time per process: the counters (`evaluated_count`,
`baseline_stats`) are module-level, reset when `run_baseline` starts and kept after it
ends so the harness can read the final figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from credwarden.controller import WATCHED
from credwarden.engine import evaluate_credential
from credwarden.facts import WORKLOAD_KINDS
from credwarden.inventory import CredentialKey, Inventory
from credwarden.policies import POLICY_KINDS
from credwarden.records import Annotate, PostEvent
from credwarden.snapshot import facts_of

# (plural, kind) of the credentials: the kinds with changing handlers and a timer
CREDENTIAL_RESOURCES = (("secrets", "Secret"), ("serviceaccounts", "ServiceAccount"))
DEFAULT_TIMER_INTERVAL = 60.0
EVALUATE_ID = "evaluate"
TIMER_ID = "recheck"
# the per-object memo's key for Event reasons posted but not yet on the object
ANNOUNCED = "announced"


@dataclass
class BaselineRun:
    """What one run of the baseline shares between its handlers, and its counters."""

    inventory: Inventory = field(default_factory=Inventory)
    # keyed hashes of Secret values (facts_of); the key lives only in this process
    hash_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    evaluated: set[CredentialKey] = field(default_factory=set)
    evaluations: int = 0
    evaluations_by_trigger: Counter[str] = field(default_factory=Counter)
    annotation_patches: int = 0
    events_posted: int = 0
    events_by_trigger: Counter[str] = field(default_factory=Counter)
    index_calls: int = 0
    deletions: int = 0
    running: bool = False


_run = BaselineRun()


def evaluated_count() -> int:
    """How many credentials the current (or last) run has evaluated at least once."""
    return len(_run.evaluated)


def baseline_stats() -> dict[str, Any]:
    """Counters of the current (or last) run; `timer_tasks` and `asyncio_tasks` are
    counted only when called from the event loop the baseline runs in."""
    stats: dict[str, Any] = {
        "running": _run.running,
        "evaluated": len(_run.evaluated),
        "evaluations": _run.evaluations,
        "evaluations_by_trigger": dict(_run.evaluations_by_trigger),
        "annotation_patches": _run.annotation_patches,
        "events_posted": _run.events_posted,
        "events_by_trigger": dict(_run.events_by_trigger),
        "index_calls": _run.index_calls,
        "deletions": _run.deletions,
        "inventory_credentials": len(_run.inventory),
    }
    with contextlib.suppress(RuntimeError):  # no running loop: leave the task counts out
        tasks = asyncio.all_tasks()
        stats["asyncio_tasks"] = len(tasks)
        # kopf names each timer's task `runner of <handler id>` (engines/daemons.py)
        stats["timer_tasks"] = sum(1 for t in tasks if t.get_name() == f"runner of {TIMER_ID}")
    return stats


def evaluate(
    run: BaselineRun,
    kind: str,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    trigger: str,
) -> None:
    """Evaluate one credential; annotations into kopf's patch, Events through kopf."""
    key = CredentialKey(kind, body.metadata.namespace or "", body.metadata.name or "")
    result = evaluate_credential(run.inventory, key, datetime.now(UTC))
    run.evaluations += 1
    run.evaluations_by_trigger[trigger] += 1
    if result is None:
        return  # not in the inventory (deleted meanwhile)
    run.evaluated.add(key)
    _, actions = result
    annotating = [action for action in actions if isinstance(action, Annotate)]
    announced: set[str] = memo.setdefault(ANNOUNCED, set())
    if not annotating:
        # the object carries what was announced: nothing is pending any more
        announced.clear()
    for action in actions:
        # Audit semantics: Revoke, Rotate and the other enforcement actions are not taken
        if isinstance(action, PostEvent) and action.reason not in announced:
            post = kopf.warn if action.type == "Warning" else kopf.info
            post(body, reason=action.reason, message=action.message)
            announced.add(action.reason)
            run.events_posted += 1
            run.events_by_trigger[trigger] += 1
    for annotate in annotating:
        for name, value in annotate.set.items():
            patch.metadata.annotations[name] = value
        for name in annotate.remove:
            patch.metadata.annotations[name] = None  # a merge patch's null deletes
        run.annotation_patches += 1


def forget(inventory: Inventory, kind: str, body: kopf.Body) -> None:
    """A deleted object leaves the inventory (kopf's own indices drop it by themselves)."""
    namespace = body.metadata.namespace or ""
    name = body.metadata.name or ""
    if kind == "Secret":
        inventory.remove_secret(namespace, name)
    elif kind == "ServiceAccount":
        inventory.remove_service_account(namespace, name)
    elif kind == "Namespace":
        inventory.remove_namespace(name)
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        inventory.remove_binding(kind, namespace, name)
    elif kind in WORKLOAD_KINDS:
        inventory.remove_workload(kind, namespace, name)
    elif kind in POLICY_KINDS:
        inventory.remove_policy(kind, namespace if kind == "CredentialPolicy" else "", name)


def build_registry(
    run: BaselineRun, server_url: str, timer_interval: float
) -> kopf.OperatorRegistry:
    """The baseline's handlers in a registry of their own."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=server_url)

    for group, version, plural, kind in WATCHED:
        _index(registry, run, group, version, plural, kind)
    for plural, kind in CREDENTIAL_RESOURCES:
        _credential_handlers(registry, run, plural, kind, timer_interval)
    return registry


def _index(
    registry: kopf.OperatorRegistry,
    run: BaselineRun,
    group: str,
    version: str,
    plural: str,
    kind: str,
) -> None:
    @kopf.index(group, version, plural, registry=registry, id=f"{plural}_facts")
    async def index_facts(
        body: kopf.Body, **_: Any
    ) -> dict[tuple[str, str], Any] | None:  # a dict: kopf merges it into the index
        run.index_calls += 1
        facts = facts_of(body, run.hash_key, kind)
        if facts is None:
            return None
        run.inventory.upsert(facts)
        return {(body.metadata.namespace or "", body.metadata.name or ""): facts}

    @kopf.on.event(group, version, plural, registry=registry, id=f"{plural}_deleted")
    async def deleted(type: str | None, body: kopf.Body, **_: Any) -> None:
        if type == "DELETED":
            run.deletions += 1
            forget(run.inventory, kind, body)


def _credential_handlers(
    registry: kopf.OperatorRegistry,
    run: BaselineRun,
    plural: str,
    kind: str,
    timer_interval: float,
) -> None:
    # async handlers: kopf runs sync ones in its thread pool, and the engine is quick
    @kopf.on.resume("v1", plural, registry=registry, id=EVALUATE_ID)
    @kopf.on.create("v1", plural, registry=registry, id=EVALUATE_ID)
    @kopf.on.update("v1", plural, registry=registry, id=EVALUATE_ID)
    async def evaluate_on_change(
        body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, reason: str, **_: Any
    ) -> None:
        evaluate(run, kind, body, patch, memo, kopf.Reason(reason).value)

    @kopf.timer("v1", plural, registry=registry, id=TIMER_ID, interval=timer_interval)
    async def recheck(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        evaluate(run, kind, body, patch, memo, "timer")


def baseline_settings() -> kopf.OperatorSettings:
    """kopf's defaults, persistence included: nothing is tuned.

    Even `settings.scanning` keeps its default: kopf then watches
    CustomResourceDefinitions if the server serves them (the benchmark's server does),
    and waits quietly if it does not (credwarden's emulated cluster)."""
    return kopf.OperatorSettings()


@contextlib.contextmanager
def _no_debug_bodies() -> Iterator[None]:
    """kopf logs whole bodies and patches at DEBUG, Secret data included: keep its
    loggers at INFO or above for the run, whatever the caller configured."""
    kopf_logger = logging.getLogger("kopf")
    previous = kopf_logger.level
    if kopf_logger.getEffectiveLevel() < logging.INFO:
        kopf_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        kopf_logger.setLevel(previous)


async def run_baseline(
    server_url: str,
    *,
    stop_flag: asyncio.Event,
    timer_interval: float = DEFAULT_TIMER_INTERVAL,
    ready_flag: asyncio.Event | None = None,
) -> None:
    """Run the baseline against `server_url` (plain http, no credentials) until
    `stop_flag` is set. The counters start from zero."""
    global _run
    run = _run = BaselineRun(running=True)
    registry = build_registry(run, server_url, timer_interval)
    try:
        with _no_debug_bodies():
            await kopf.operator(
                registry=registry,
                settings=baseline_settings(),
                clusterwide=True,
                standalone=True,
                stop_flag=stop_flag,
                ready_flag=ready_flag,
            )
    finally:
        run.running = False
