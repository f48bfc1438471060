"""The reconcile loop: evaluate what changed or fell due, queue the plans, keep status.

One loop evaluates. Watch handlers only update the inventory and mark credentials dirty;
deadlines sit in one heap. Nothing runs before every watched kind has been listed once
(an evaluation on a half-read cluster would flap annotations and events).

Evaluation never waits for a write. Each credential's plan (annotations, Events,
enforcement) goes to the write queue (`writequeue`), newest plan per credential, and a
fixed pool of workers carries the plans out, fresh changes before the backlog of a pass
over every credential (the first start). Policy statuses come from per-policy tallies kept
as records change (`tallies`); one more task writes them, at most once a second.

`converged` is set while nothing waits to be evaluated, no plan waits or is being
carried out, and every policy's status is written: the demo, the tests and the
benchmark wait on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from credwarden import logs
from credwarden.enforcer import Enforcer
from credwarden.engine import evaluate_credential
from credwarden.facts import PolicyFacts
from credwarden.gcpause import freeze_long_lived, settle_long_lived
from credwarden.inventory import CredentialKey, Inventory
from credwarden.kube import (
    ApiError,
    Conflict,
    KubeClient,
    NotFound,
    background,
    involved_object,
    path_of,
)
from credwarden.records import (
    COMPLIANT,
    EXPIRING,
    NON_COMPLIANT,
    Action,
    Annotate,
    LifecycleRecord,
    PostEvent,
    Revoke,
    rfc3339,
)
from credwarden.schedule import DeadlineSchedule
from credwarden.tallies import TalliedRecords
from credwarden.writequeue import Lane, Plan, WriteQueue

log = logging.getLogger("credwarden.reconciler")

YIELD_EVERY = 200  # evaluations between yields to the event loop (watches keep flowing)
HEARTBEAT = 30.0  # the loop wakes at least this often
RETRY_AFTER_CONFLICT = timedelta(seconds=5)
WORST_OFFENDERS = 10
# seconds between two passes writing policy statuses: a burst of changes (a first start,
# a namespace of new Secrets) rewrites each policy's status about once a second, not once
# per change; the first pass after a quiet second starts at once
STATUS_INTERVAL = 1.0

PolicyKey = tuple[str, str, str]


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
        self.records = TalliedRecords()
        # policy key -> its status as last seen on the cluster (to write only on change)
        self.policy_status_seen: dict[PolicyKey, dict[str, Any]] = {}
        self.enforcer = Enforcer(
            inventory, client, clock=clock, instance=instance, status_seen=self.policy_status_seen
        )
        self.schedule = DeadlineSchedule(self._next_review)
        self.queue = WriteQueue()
        self.stats = ReconcileStats()
        self.ready = asyncio.Event()
        self.converged = asyncio.Event()
        self.last_tick = time.monotonic()
        self.listeners: list[Callable[[LifecycleRecord | None, CredentialKey], None]] = []
        # (seconds, credentials evaluated) after every evaluation pass: the metrics' histogram
        self.pass_listeners: list[Callable[[float, int], None]] = []
        self._dirty: set[CredentialKey] = set()
        # marked by a pass over every credential (the first, or after a policy changed):
        # their plans queue in the backlog lane, behind fresh changes
        self._dirty_in_bulk: set[CredentialKey] = set()
        # marked while their plan was being carried out: evaluated once it is done
        self._deferred: dict[CredentialKey, Lane] = {}
        self._wake = asyncio.Event()
        self._concurrency = concurrency
        # Event reasons already posted for a credential whose annotations (which record
        # them) have not come back through the watch yet
        self._announced: dict[CredentialKey, set[str]] = {}
        # policy statuses: stale when what they show may have changed since last written
        self._statuses_stale = True
        self._statuses_writing = False
        self._status_changes_seen = (-1, -1)  # (records.changes, enforcer.changes)
        self._last_status_pass = float("-inf")
        self._status_pass_due = asyncio.Event()
        self._first_pass_evaluated = asyncio.Event()

    # ---- inputs from the watches ----------------------------------------------------
    def mark(self, keys: Iterable[CredentialKey]) -> None:
        before = len(self._dirty)
        self._dirty.update(keys)
        if len(self._dirty) != before:
            self.converged.clear()
            self._wake.set()

    def mark_all(self) -> None:
        """Evaluate every credential again; their plans queue behind fresh changes."""
        self._mark_in(Lane.BACKLOG, self.inventory.credentials())

    def _mark_in(self, lane: Lane, keys: Iterable[CredentialKey]) -> None:
        if lane is Lane.FRESH:
            self.mark(keys)
            return
        self._dirty_in_bulk.update(keys)
        self.converged.clear()
        self._wake.set()

    def policies_changed(self) -> None:
        self._statuses_stale = True
        self.mark_all()

    def forget(self, keys: Iterable[CredentialKey]) -> None:
        """Credentials that left the cluster: re-evaluate (drops them) and unschedule."""
        self.mark(keys)

    # ---- the tasks ------------------------------------------------------------------
    async def run(self) -> None:
        """Evaluate, carry out plans and write statuses until cancelled."""
        await self.ready.wait()
        log.info("inventory listed: %d credentials; reconciling", len(self.inventory))
        self.mark_all()
        # a fixed number of tasks whatever the number of credentials; cancelling run()
        # cancels them all
        async with asyncio.TaskGroup() as tasks:
            for number in range(self._concurrency):
                tasks.create_task(self._carry_out_plans(), name=f"credwarden-writer-{number}")
            tasks.create_task(self._keep_policy_statuses(), name="credwarden-policy-status")
            await self._reconcile()

    async def _reconcile(self) -> None:
        first_pass = first_start = True
        while True:
            self.last_tick = time.monotonic()
            now = self.clock()
            self.mark(self.schedule.pop_due(now))
            if self._dirty or self._dirty_in_bulk:
                fresh, self._dirty = self._dirty, set()
                bulk, self._dirty_in_bulk = self._dirty_in_bulk - fresh, set()
                if bulk:
                    self.queue.hold_backlog()
                try:
                    await self._evaluate(fresh, bulk, now)
                finally:
                    self.queue.release_backlog()
                if first_pass:
                    # the inventory and records of the first listing live as long as the
                    # process and hold no cycles: keep the cyclic GC from re-walking them
                    first_pass = False
                    freeze_long_lived()
                    self._first_pass_evaluated.set()
                continue
            self.enforcer.budgets_reopened(now)  # a BudgetExhausted condition ends
            timeout = self._start_status_pass()
            if not (self._statuses_stale or self._statuses_writing or self.queue.busy):
                self.converged.set()
                if first_start:
                    # and the facts and records the first start's writes brought back
                    # through the watches
                    first_start = False
                    settle_long_lived()
            self._wake.clear()
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

    async def _evaluate(
        self, fresh: set[CredentialKey], bulk: set[CredentialKey], now: datetime
    ) -> None:
        """Evaluate the credentials, keep their records and queue their plans (those of
        `bulk` in the backlog lane)."""
        started = time.perf_counter()
        keys = [*sorted(fresh), *sorted(bulk)]
        for index, key in enumerate(keys):
            lane = Lane.FRESH if index < len(fresh) else Lane.BACKLOG
            if self.queue.carrying_out(key):
                # evaluated once its plan is done: evaluated now, it would be planned
                # again from a version the plan's own writes are replacing
                self._deferred[key] = min(lane, self._deferred.get(key, lane))
                continue
            old = self.records.get(key)
            if old is not None:
                # one key object per credential however often it is evaluated again (the
                # schedule's heap and the records hold it; a copy each time adds up)
                key = old.key
            result = evaluate_credential(self.inventory, key, now)
            self.stats.evaluations += 1
            actions = self._keep(key, result)
            if result is None:
                continue
            if actions:
                # a backlog entry keeps no actions: its plan is made again when its turn
                # comes, from the version current then (a first start's backlog would
                # otherwise hold a plan per credential, half a KiB each, for hours)
                planned = actions if lane is Lane.FRESH else None
                self.queue.put(Plan(result[0], planned, self._version_of(key), lane))
            else:
                self.queue.drop(key)  # the object already shows what it should
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
        self.stats.last_pass_seconds = time.perf_counter() - started
        for pass_listener in self.pass_listeners:
            pass_listener(self.stats.last_pass_seconds, len(keys))

    def _keep(
        self, key: CredentialKey, result: tuple[LifecycleRecord, list[Action]] | None
    ) -> list[Action]:
        """Keep a credential's evaluation (its record, its next deadline, the listeners
        told); the actions of its plan."""
        if result is None:
            self.records.pop(key, None)
            self.schedule.discard(key)
            self._forget_announced(key)
            self.queue.drop(key)  # its plan would write to an object that is gone
            self._notify(None, key)
            return []
        record, actions = result
        before = self.records.record_of(key)
        self.records[key] = record
        if before is None or before.next_review_at != record.next_review_at:
            self.schedule.follow(key, record.next_review_at)
        self._notify(record, key)
        if not any(isinstance(action, Annotate) for action in actions):
            # the object carries what we announced: nothing is pending any more
            self._forget_announced(key)
        return actions

    def _next_review(self, key: CredentialKey) -> datetime | None:
        """When the credential's record says to evaluate it again (the schedule's truth)."""
        record = self.records.record_of(key)
        return record.next_review_at if record is not None else None

    def _forget_announced(self, key: CredentialKey) -> None:
        if self._announced.pop(key, None) is not None and not self._announced:
            # A dict never shrinks: a first start fills this one with up to every
            # credential, then empties it. A new one gives back the table (about 5 MiB
            # at 100,000 credentials).
            self._announced = {}

    def _plan_now(self, plan: Plan) -> Plan | None:
        """A backlog entry's plan, made from the credential as it is now; None when it
        has nothing left to write (or is gone)."""
        key = plan.key
        result = evaluate_credential(self.inventory, key, self.clock())
        self.stats.evaluations += 1
        actions = self._keep(key, result)
        if result is None or not actions:
            return None
        return Plan(result[0], actions, self._version_of(key), plan.lane)

    def _version_of(self, key: CredentialKey) -> str:
        facts = self.inventory.facts_of(key)
        return facts.meta.resource_version if facts else ""

    def _notify(self, record: LifecycleRecord | None, key: CredentialKey) -> None:
        for listener in self.listeners:
            listener(record, key)

    def _retry_later(self, key: CredentialKey, not_before: datetime | None = None) -> None:
        """Evaluate the credential again about RETRY_AFTER_CONFLICT from now, or just
        after `not_before` (when the spent budget that held its action back reopens:
        looking again every few seconds before then would only be held back again, and
        count as blocked each time). On the half second, so that retries planned within
        a second (a batch blocked by a spent budget) are evaluated together, and apart
        from the deadlines, which fall on whole seconds (the annotations' precision)."""
        when = (self.clock() + RETRY_AFTER_CONFLICT).replace(microsecond=500_000)
        if not_before is not None and not_before >= when:
            # the budget's oldest action leaves its hour just after not_before (rounded
            # here, still at least half a second after it)
            when = (not_before + timedelta(seconds=1)).replace(microsecond=500_000)
        earliest = self.schedule.next_deadline()
        self.schedule.set(key, when)
        if earliest is None or when < earliest:
            self._wake.set()  # the loop sleeps until the earliest deadline: now this one

    # ---- carrying out plans (a fixed pool of workers) ------------------------------------
    async def _carry_out_plans(self) -> None:
        # no write before every credential has been evaluated once: the writes' replies
        # and their echoes through the watches would share the CPU with the first pass,
        # which shows the cluster's state (metrics, statuses) as soon as it ends
        await self._first_pass_evaluated.wait()
        while True:
            taken = await self.queue.take()
            key = taken.key
            enforced = self.enforcer.changes
            try:
                plan = taken if taken.actions is not None else self._plan_now(taken)
                if plan is None:
                    pass
                elif plan.lane is Lane.BACKLOG:
                    # its requests give way to fresh plans', the watches' and statuses'
                    with background():
                        await self._carry_out(plan)
                else:
                    await self._carry_out(plan)
            finally:
                self.queue.done(key)
                lane = self._deferred.pop(key, None)
                if lane is not None:
                    self._mark_in(lane, (key,))  # evaluated now, from what was written
                if not self.queue.busy or self.enforcer.changes != enforced:
                    self._wake.set()  # converged, or a policy's status has news

    async def _carry_out(self, plan: Plan) -> None:
        """Post the plan's new Events, enforce, then annotate."""
        record, key = plan.record, plan.key
        actions = plan.actions or ()  # (a backlog entry is planned before it gets here)
        undelivered = False
        for action in actions:
            if isinstance(action, PostEvent) and action.reason not in self._announced.get(key, ()):
                if await self._post_event(plan, action):
                    # only credentials with an Event posted get a set (216 bytes each)
                    self._announced.setdefault(key, set()).add(action.reason)
                else:
                    undelivered = True
        # the annotations are written on the version evaluated, or on the one the plan's
        # own enforcement left (a rotation): a change by anyone else makes the write fail
        version = plan.resource_version
        gone = False
        for action in actions:
            if isinstance(action, Annotate | PostEvent):
                continue
            done = await self.enforcer.carry_out(record, action)
            if not done:
                self._retry_later(key, not_before=self.enforcer.held_until(key))
            version = self.enforcer.version_left(key) or version
            gone |= done and isinstance(action, Revoke) and action.enforced
        if undelivered and not gone:
            # the annotations record which findings were announced: written now, they
            # would say so of an Event that never got through. Evaluated again soon, the
            # plan posts it again, then annotates
            self._retry_later(key)
            return
        for action in actions:
            if isinstance(action, Annotate) and not gone:
                # events stay remembered until the watch shows the annotation written:
                # until then a re-evaluation from the older version plans them again
                await self._annotate(record, action, version)

    async def _post_event(self, plan: Plan, event: PostEvent) -> bool:
        record = plan.record
        try:
            await self.client.post_event(
                involved_object(record.key, record.uid, plan.resource_version),
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
            return False
        logs.action(
            "event",
            record,
            result="success",
            rule=logs.rule_of(event.reason),
            reason=event.reason,
            event_type=event.type,
        )
        return True

    async def _annotate(self, record: LifecycleRecord, action: Annotate, version: str) -> bool:
        """Write the annotations if the object is still at `version`."""
        key = record.key
        facts = self.inventory.facts_of(key)
        if facts is None or facts.meta.uid != action.uid:
            return False  # gone, or another object by that name now: its own plan follows
        changes: dict[str, str | None] = {**action.set, **dict.fromkeys(action.remove)}
        try:
            await self.client.annotate(
                path_of(key.kind, key.namespace, key.name),
                changes,
                resource_version=version,
                parse=False,
            )
        except Conflict:
            # changed since it was evaluated: the watch brings the new version (and its
            # plan); should it not, look again soon
            self._retry_later(key)
            logs.action("annotate", record, result="conflict")
            return False
        except NotFound:
            logs.action("annotate", record, result="not-found")
            return False
        except ApiError as error:
            self.stats.write_errors += 1
            logs.action("annotate", record, result="error", error=str(error))
            self._retry_later(key)
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
    def _start_status_pass(self) -> float:
        """Start writing policy statuses if they may have changed and the last pass ended
        STATUS_INTERVAL ago; the seconds the loop may sleep as far as statuses go."""
        changes = (self.records.changes, self.enforcer.changes)
        if changes != self._status_changes_seen:
            self._status_changes_seen = changes
            self._statuses_stale = True
        if not self._statuses_stale or self._statuses_writing:
            return HEARTBEAT
        wait = self._last_status_pass + STATUS_INTERVAL - time.monotonic()
        if wait > 0:
            return wait
        self._statuses_stale = False
        self._statuses_writing = True
        self._status_pass_due.set()
        return HEARTBEAT

    async def _keep_policy_statuses(self) -> None:
        while True:
            await self._status_pass_due.wait()
            self._status_pass_due.clear()
            try:
                await self._write_policy_statuses()
            finally:
                self._last_status_pass = time.monotonic()
                self._statuses_writing = False
                self._wake.set()

    async def _write_policy_statuses(self) -> None:
        for key in list(self.inventory.policies):
            # one policy at a time, evaluation and the watches going on in between; each
            # costs O(its violating and expiring credentials), compared in C
            await asyncio.sleep(0)
            policy = self.inventory.policies.get(key)
            if policy is None:
                continue
            async with self.enforcer.status_lock(key):
                now = self.clock()
                desired = self.policy_status(policy, now)
                seen = self.policy_status_seen.get(key, {})
                if _without(seen, "lastEvaluated") == _without(desired, "lastEvaluated"):
                    continue
                desired["lastEvaluated"] = rfc3339(now)
                kind, namespace, name = key
                try:
                    await self.client.merge_patch(
                        path_of(kind, namespace, name, "status"),
                        {"status": desired},
                        parse=False,
                    )
                except NotFound:
                    continue
                except ApiError as error:
                    self.stats.write_errors += 1
                    log.warning("status of %s %s not written: %s", kind, name, error)
                    continue
                self.stats.writes += 1
                self.policy_status_seen[key] = desired

    def policy_statuses(self, now: datetime) -> dict[PolicyKey, dict[str, Any]]:
        """Each policy's status as it should be (without lastEvaluated)."""
        return {
            policy.key: self.policy_status(policy, now)
            for policy in self.inventory.policies.values()
        }

    def policy_status(self, policy: PolicyFacts, now: datetime) -> dict[str, Any]:
        """A policy's status as it should be (without lastEvaluated), from its tally."""
        seen = self.policy_status_seen.get(policy.key, {})
        if policy.error:
            ready = _condition(seen, "False", "InvalidSpec", policy.error, policy.generation, now)
            return {"observedGeneration": policy.generation, "conditions": [ready]}
        tally = self.records.tally(policy.display_name)
        message = f"governs {tally.matched} credentials"
        status: dict[str, Any] = {
            "observedGeneration": policy.generation,
            "matched": tally.matched,
            "compliant": tally.by_status[COMPLIANT],
            "expiring": tally.by_status[EXPIRING],
            "violating": tally.by_status[NON_COMPLIANT],
            "worstOffenders": [
                {
                    "kind": r.key.kind,
                    "namespace": r.key.namespace,
                    "name": r.key.name,
                    "status": r.status,
                    "findings": list(r.rule_ids),
                }
                for r in map(self.records.__getitem__, tally.worst(WORST_OFFENDERS))
            ],
            "conditions": [
                _condition(seen, "True", "Evaluated", message, policy.generation, now),
                *self.enforcer.conditions(policy.display_name),
            ],
        }
        # the action budget's memory (an empty list clears what aged out)
        recent = self.enforcer.recent_actions(policy)
        if recent or seen.get("recentActions"):
            status["recentActions"] = {
                kind: recent.get(kind, []) for kind in ("revocations", "rotations")
            }
        return status


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
