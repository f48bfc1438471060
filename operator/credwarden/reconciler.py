"""The reconcile loop: evaluate what changed or fell due, carry out the plan, keep status.

One task does all of it. Watch handlers only update the inventory and mark credentials
dirty; deadlines sit in one heap. Nothing runs before every watched kind has been listed
once (an evaluation on a half-read cluster would flap annotations and events).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from credwarden import logs
from credwarden.enforcer import Enforcer
from credwarden.engine import evaluate_credential
from credwarden.inventory import CredentialKey, Inventory
from credwarden.kube import ApiError, Conflict, KubeClient, NotFound, involved_object, path_of
from credwarden.records import (
    COMPLIANT,
    EXPIRING,
    NON_COMPLIANT,
    STATUS_ORDER,
    Action,
    Annotate,
    LifecycleRecord,
    PostEvent,
    Revoke,
    rfc3339,
)
from credwarden.schedule import DeadlineSchedule

log = logging.getLogger("credwarden.reconciler")

YIELD_EVERY = 200  # evaluations between yields to the event loop (watches keep flowing)
HEARTBEAT = 30.0  # the loop wakes at least this often
RETRY_AFTER_CONFLICT = timedelta(seconds=5)
WORST_OFFENDERS = 10


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class ReconcileStats:
    """Counters the metrics and the demo read."""

    evaluations: int = 0
    writes: int = 0
    events_posted: int = 0
    write_errors: int = 0
    last_pass_seconds: float = 0.0


class Reconciler:
    def __init__(
        self,
        inventory: Inventory,
        client: KubeClient,
        *,
        clock: Callable[[], datetime] = utcnow,
        concurrency: int = 16,
        instance: str = "",
    ) -> None:
        self.inventory = inventory
        self.client = client
        self.clock = clock
        self.instance = instance
        self.records: dict[CredentialKey, LifecycleRecord] = {}
        # policy key -> its status as last seen on the cluster (to write only on change)
        self.policy_status_seen: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.enforcer = Enforcer(
            inventory, client, clock=clock, instance=instance, status_seen=self.policy_status_seen
        )
        self.schedule = DeadlineSchedule()
        self.stats = ReconcileStats()
        self.ready = asyncio.Event()
        self.converged = asyncio.Event()
        self.last_tick = time.monotonic()
        self.listeners: list[Callable[[LifecycleRecord | None, CredentialKey], None]] = []
        # (seconds, credentials evaluated) after every reconcile pass: the metrics' histogram
        self.pass_listeners: list[Callable[[float, int], None]] = []
        self._dirty: set[CredentialKey] = set()
        self._policies_dirty = True
        self._wake = asyncio.Event()
        self._concurrency = concurrency
        self._semaphore = asyncio.Semaphore(concurrency)
        # Event reasons already posted for a credential whose annotations (which record
        # them) have not come back through the watch yet
        self._announced: dict[CredentialKey, set[str]] = {}

    # ---- inputs from the watches ----------------------------------------------------
    def mark(self, keys: Iterable[CredentialKey]) -> None:
        before = len(self._dirty)
        self._dirty.update(keys)
        if len(self._dirty) != before:
            self.converged.clear()
            self._wake.set()

    def policies_changed(self) -> None:
        self._policies_dirty = True
        self.mark(self.inventory.credentials())
        self.converged.clear()
        self._wake.set()

    def forget(self, keys: Iterable[CredentialKey]) -> None:
        """Credentials that left the cluster: re-evaluate (drops them) and unschedule."""
        self.mark(keys)

    # ---- the loop -------------------------------------------------------------------
    async def run(self) -> None:
        await self.ready.wait()
        log.info("inventory listed: %d credentials; reconciling", len(self.inventory))
        self.mark(self.inventory.credentials())
        first_pass = True
        while True:
            self.last_tick = time.monotonic()
            now = self.clock()
            self.mark(self.schedule.pop_due(now))
            if self._dirty:
                batch, self._dirty = self._dirty, set()
                if await self._reconcile(batch, now):
                    self._policies_dirty = True
                if first_pass:
                    # the inventory and records of the first listing live as long as the
                    # process and hold no cycles: keep the cyclic GC from re-walking them
                    first_pass = False
                    # collect first: garbage still uncollected would be frozen for good
                    gc.collect()
                    gc.freeze()
                continue
            if self.enforcer.budgets_reopened(now):
                self._policies_dirty = True  # a BudgetExhausted condition ends
            if self._policies_dirty:
                self._policies_dirty = False
                await self._write_policy_statuses(now)
                continue
            self.converged.set()
            self._wake.clear()
            timeout = HEARTBEAT
            upcoming = min(
                filter(None, (self.schedule.next_deadline(), self.enforcer.next_reopening())),
                default=None,
            )
            if upcoming is not None:
                timeout = min(timeout, max(0.0, (upcoming - self.clock()).total_seconds()))
            # asyncio.timeout, not wait_for: in 3.11, wait_for swallows a cancellation that
            # arrives as the wake-up does, and the loop would then run on after shutdown
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _reconcile(self, batch: set[CredentialKey], now: datetime) -> bool:
        """Evaluate the batch and carry out the plans; whether any policy's status may
        have changed (a credential came, went or changed status, policies or findings, or
        the enforcer spent or exhausted a budget)."""
        started = time.perf_counter()
        work: list[tuple[LifecycleRecord, list[Action]]] = []
        changed = False
        for index, key in enumerate(sorted(batch)):
            old = self.records.get(key)
            if old is not None:
                # one key object per credential however often it is evaluated again (the
                # schedule's heap and the records hold it; a copy each time adds up)
                key = old.key
            result = evaluate_credential(self.inventory, key, now)
            self.stats.evaluations += 1
            if result is None:
                changed |= self.records.pop(key, None) is not None
                self.schedule.discard(key)
                self._announced.pop(key, None)
                self._notify(None, key)
            else:
                record, actions = result
                changed = changed or (
                    old is None
                    or old.status != record.status
                    or old.policies != record.policies
                    or old.findings != record.findings
                )
                self.records[key] = record
                self.schedule.set(key, record.next_review_at)
                self._notify(record, key)
                if any(isinstance(action, Annotate) for action in actions):
                    work.append((record, actions))
                else:
                    # the object carries what we announced: nothing is pending any more
                    self._announced.pop(key, None)
                    if actions:
                        work.append((record, actions))
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
        enforced = self.enforcer.changes
        if work:
            # a fixed pool of workers over the plans, not a task per credential (the
            # first pass on a large cluster has work for nearly every one)
            plans = iter(work)

            async def carry_out_plans() -> None:
                for record, actions in plans:
                    await self._carry_out(record, actions)

            await asyncio.gather(
                *(carry_out_plans() for _ in range(min(self._concurrency, len(work))))
            )
        self.stats.last_pass_seconds = time.perf_counter() - started
        for pass_listener in self.pass_listeners:
            pass_listener(self.stats.last_pass_seconds, len(batch))
        return changed or self.enforcer.changes != enforced

    def _notify(self, record: LifecycleRecord | None, key: CredentialKey) -> None:
        for listener in self.listeners:
            listener(record, key)

    # ---- carrying out a plan ----------------------------------------------------------
    async def _carry_out(self, record: LifecycleRecord, actions: list[Action]) -> None:
        async with self._semaphore:
            key = record.key
            announced = self._announced.setdefault(key, set())
            for action in actions:
                if isinstance(action, PostEvent) and action.reason not in announced:
                    await self._post_event(record, action)
                    announced.add(action.reason)
            gone = False
            for action in actions:
                if isinstance(action, Annotate | PostEvent):
                    continue
                done = await self.enforcer.carry_out(record, action)
                if not done:
                    self.schedule.set(key, self.clock() + RETRY_AFTER_CONFLICT)
                gone |= done and isinstance(action, Revoke) and action.enforced
            for action in actions:
                if isinstance(action, Annotate) and not gone:
                    # events stay remembered until the watch shows the annotation written:
                    # until then a re-evaluation from the older version plans them again
                    await self._annotate(record, action)

    def _involved(self, record: LifecycleRecord) -> dict[str, str]:
        facts = self.inventory.facts_of(record.key)
        version = facts.meta.resource_version if facts else ""
        return involved_object(record.key, record.uid, version)

    async def _post_event(self, record: LifecycleRecord, event: PostEvent) -> None:
        try:
            await self.client.post_event(
                self._involved(record),
                type_=event.type,
                reason=event.reason,
                message=event.message,
                instance=self.instance,
            )
            self.stats.events_posted += 1
        except ApiError as error:
            self.stats.write_errors += 1
            logs.action(
                "event",
                record,
                result="error",
                rule=logs.rule_of(event.reason),
                reason=event.reason,
                error=str(error),
            )
            return
        logs.action(
            "event",
            record,
            result="success",
            rule=logs.rule_of(event.reason),
            reason=event.reason,
            event_type=event.type,
        )

    async def _annotate(self, record: LifecycleRecord, action: Annotate) -> bool:
        key = record.key
        facts = self.inventory.facts_of(key)
        if facts is None or facts.meta.uid != action.uid:
            return False
        changes: dict[str, str | None] = {**action.set, **dict.fromkeys(action.remove)}
        try:
            await self.client.annotate(
                path_of(key.kind, key.namespace, key.name),
                changes,
                resource_version=facts.meta.resource_version,
                parse=False,
            )
        except Conflict:
            # changed since we read it: the watch brings the new version; look again soon
            self.schedule.set(key, self.clock() + RETRY_AFTER_CONFLICT)
            logs.action("annotate", record, result="conflict")
            return False
        except NotFound:
            logs.action("annotate", record, result="not-found")
            return False
        except ApiError as error:
            self.stats.write_errors += 1
            logs.action("annotate", record, result="error", error=str(error))
            self.schedule.set(key, self.clock() + RETRY_AFTER_CONFLICT)
            return False
        self.stats.writes += 1
        logs.action(
            "annotate",
            record,
            result="success",
            status=record.status,
            findings=list(record.rule_ids),
            annotations=sorted(changes),
        )
        return True

    # ---- policy status --------------------------------------------------------------
    def policy_statuses(self, now: datetime) -> dict[tuple[str, str, str], dict[str, Any]]:
        """Each policy's status as it should be (without lastEvaluated)."""
        counts: dict[str, list[LifecycleRecord]] = {}
        for record in self.records.values():
            for name in record.policies:
                counts.setdefault(name, []).append(record)
        statuses: dict[tuple[str, str, str], dict[str, Any]] = {}
        for policy in self.inventory.policies.values():
            seen = self.policy_status_seen.get(policy.key, {})
            if policy.error:
                ready = _condition(
                    seen, "False", "InvalidSpec", policy.error, policy.generation, now
                )
                statuses[policy.key] = {
                    "observedGeneration": policy.generation,
                    "conditions": [ready],
                }
                continue
            governed = counts.get(policy.display_name, [])
            by_status = {COMPLIANT: 0, EXPIRING: 0, NON_COMPLIANT: 0}
            for record in governed:
                if record.status in by_status:
                    by_status[record.status] += 1
            worst = sorted(
                (r for r in governed if r.status in (NON_COMPLIANT, EXPIRING)),
                key=lambda r: (STATUS_ORDER[r.status], -len(r.findings), r.key),
            )[:WORST_OFFENDERS]
            message = f"governs {len(governed)} credentials"
            statuses[policy.key] = {
                "observedGeneration": policy.generation,
                "matched": len(governed),
                "compliant": by_status[COMPLIANT],
                "expiring": by_status[EXPIRING],
                "violating": by_status[NON_COMPLIANT],
                "worstOffenders": [
                    {
                        "kind": r.key.kind,
                        "namespace": r.key.namespace,
                        "name": r.key.name,
                        "status": r.status,
                        "findings": list(r.rule_ids),
                    }
                    for r in worst
                ],
                "conditions": [
                    _condition(seen, "True", "Evaluated", message, policy.generation, now),
                    *self.enforcer.conditions(policy.display_name),
                ],
            }
            # the action budget's memory (an empty list clears what aged out)
            recent = self.enforcer.recent_actions(policy)
            if recent or seen.get("recentActions"):
                statuses[policy.key]["recentActions"] = {
                    kind: recent.get(kind, []) for kind in ("revocations", "rotations")
                }
        return statuses

    async def _write_policy_statuses(self, now: datetime) -> None:
        for key, desired in self.policy_statuses_to_write(now).items():
            kind, namespace, name = key
            try:
                await self.client.merge_patch(
                    path_of(kind, namespace, name, "status"), {"status": desired}, parse=False
                )
            except NotFound:
                continue
            except ApiError as error:
                self.stats.write_errors += 1
                log.warning("status of %s %s not written: %s", kind, name, error)
                continue
            self.stats.writes += 1
            self.policy_status_seen[key] = desired

    def policy_statuses_to_write(self, now: datetime) -> dict[tuple[str, str, str], dict[str, Any]]:
        changed: dict[tuple[str, str, str], dict[str, Any]] = {}
        for key, desired in self.policy_statuses(now).items():
            seen = self.policy_status_seen.get(key, {})
            if _without(seen, "lastEvaluated") != _without(desired, "lastEvaluated"):
                changed[key] = {**desired, "lastEvaluated": rfc3339(now)}
        return changed


def _without(status: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k not in keys and k != "kopf"}


def _condition(
    seen: Mapping[str, Any],
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> dict[str, Any]:
    """A Ready condition; its transition time moves only when its status does."""
    previous = next(
        (
            c
            for c in seen.get("conditions") or []
            if isinstance(c, dict) and c.get("type") == "Ready"
        ),
        {},
    )
    since = previous.get("lastTransitionTime") if previous.get("status") == status else None
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or rfc3339(now),
        "observedGeneration": generation,
    }
