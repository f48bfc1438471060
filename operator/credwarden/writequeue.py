"""The write queue: plans waiting to be carried out, at most one per credential.

The reconcile loop evaluates and puts each credential's plan here without waiting for
any write; a fixed pool of workers (`Reconciler`) takes plans out and carries them out.
Per credential:

- at most one plan waits. A newer plan replaces the waiting one, which would write what
  is no longer true; a credential that has nothing left to write, or is deleted, has its
  waiting plan dropped;
- at most one plan is carried out at a time, and the reconciler evaluates a credential
  again only once its plan is done (a plan made from the versions its own writes go
  through would be outdated as soon as made).

Two lanes, each first in, first out. `FRESH` holds what happens while the operator
runs: a watch event, a deadline falling due, a retry. `BACKLOG` holds the plans of a pass
over every credential: the first pass after a start (one write or more for nearly every
credential, hours at the default QPS on a large cluster) and the pass after a policy
changes. Workers take from `FRESH` first, so a credential created during a long first
start is written within moments. A fresh plan for a credential waiting in `BACKLOG` moves
it to `FRESH`, unless it plans exactly the same writes (nothing happened to it: it keeps
its place); a plan is never moved back from `FRESH` to `BACKLOG`.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from credwarden.inventory import CredentialKey
from credwarden.records import Action, LifecycleRecord


class Lane(enum.IntEnum):
    FRESH = 0
    BACKLOG = 1


@dataclass(slots=True)
class Plan:
    """What to write for one credential, as evaluated from one version of it."""

    record: LifecycleRecord
    # None: planned when taken, from the version current then (the backlog's entries)
    actions: Sequence[Action] | None
    # the object's resourceVersion when evaluated: the annotation patch is preconditioned
    # on it (a 409 means the plan is outdated)
    resource_version: str
    lane: Lane = Lane.FRESH

    @property
    def key(self) -> CredentialKey:
        return self.record.key


class WriteQueue:
    def __init__(self) -> None:
        self._waiting: dict[CredentialKey, Plan] = {}
        # keys in arrival order per lane; an entry whose plan was taken, dropped or moved
        # to the other lane is skipped when it comes up
        self._order: tuple[deque[CredentialKey], deque[CredentialKey]] = (deque(), deque())
        self._in_flight: set[CredentialKey] = set()
        # workers waiting for a plan; each plan queued wakes one of them, not all
        self._idle_workers: deque[asyncio.Future[None]] = deque()
        # while a pass over every credential is being evaluated, its backlog waits: the
        # pass finishes first (the records, metrics and statuses show the whole cluster
        # within seconds), and no backlog entry is planned twice meanwhile
        self._backlog_held = False

    def __len__(self) -> int:
        """Plans waiting (not counting those being carried out)."""
        return len(self._waiting)

    @property
    def in_flight(self) -> int:
        """Plans being carried out."""
        return len(self._in_flight)

    def waiting_by_lane(self) -> dict[Lane, int]:
        """Plans waiting in each lane (a pass over the waiting plans: for a scrape)."""
        counts = dict.fromkeys(Lane, 0)
        for plan in self._waiting.values():
            counts[plan.lane] += 1
        return counts

    @property
    def planned_ahead(self) -> int:
        """Waiting plans that hold their actions (fresh ones; backlog entries hold none)."""
        return sum(plan.actions is not None for plan in self._waiting.values())

    def carrying_out(self, key: CredentialKey) -> bool:
        return key in self._in_flight

    @property
    def busy(self) -> bool:
        """Whether any plan waits or is being carried out."""
        return bool(self._waiting or self._in_flight)

    # ---- from the reconcile loop --------------------------------------------------------
    def put(self, plan: Plan) -> None:
        """Queue a credential's newest plan, replacing the one waiting, if any."""
        key = plan.key
        older = self._waiting.get(key)
        if older is not None:
            if older.lane is Lane.FRESH:
                plan.lane = Lane.FRESH
            elif older.actions == plan.actions:
                plan.lane = older.lane  # the same writes: not a transition, keep its place
        self._waiting[key] = plan
        if key in self._in_flight:
            return  # queued when the plan being carried out is done
        if older is None or older.lane is not plan.lane:
            self._enqueue(key, plan.lane)

    def drop(self, key: CredentialKey) -> None:
        """The credential needs no plan any more (deleted, or nothing left to write)."""
        self._waiting.pop(key, None)

    # ---- from the workers -----------------------------------------------------------------
    async def take(self) -> Plan:
        """The next plan to carry out (fresh ones first); wait for one if there is none."""
        while (plan := self._next()) is None:
            woken = asyncio.get_running_loop().create_future()
            self._idle_workers.append(woken)
            await woken
        return plan

    def hold_backlog(self) -> None:
        """Take no backlog entry until `release_backlog` (fresh plans still go)."""
        self._backlog_held = True

    def release_backlog(self) -> None:
        self._backlog_held = False
        while self._idle_workers:  # each takes an entry or waits again
            woken = self._idle_workers.popleft()
            if not woken.done():
                woken.set_result(None)

    def done(self, key: CredentialKey) -> None:
        """The plan for `key` has been carried out: a plan queued meanwhile may go."""
        self._in_flight.discard(key)
        plan = self._waiting.get(key)
        if plan is not None:
            self._enqueue(key, plan.lane)

    # ---- internals --------------------------------------------------------------------------
    def _enqueue(self, key: CredentialKey, lane: Lane) -> None:
        order = self._order[lane]
        order.append(key)
        if len(order) > 2 * len(self._waiting) + 1024:
            self._compact(lane)
        while self._idle_workers:
            woken = self._idle_workers.popleft()
            if not woken.done():  # (done: its worker was cancelled)
                woken.set_result(None)
                break

    def _compact(self, lane: Lane) -> None:
        """Forget the skipped entries once they outnumber the live ones."""
        kept: deque[CredentialKey] = deque()
        seen: set[CredentialKey] = set()
        for key in self._order[lane]:
            plan = self._waiting.get(key)
            if plan is not None and plan.lane is lane and key not in seen:
                seen.add(key)
                kept.append(key)
        self._order = (kept, self._order[1]) if lane is Lane.FRESH else (self._order[0], kept)

    def _next(self) -> Plan | None:
        for lane, order in zip(Lane, self._order, strict=True):
            if lane is Lane.BACKLOG and self._backlog_held:
                break
            while order:
                key = order.popleft()
                plan = self._waiting.get(key)
                if plan is None or plan.lane is not lane or key in self._in_flight:
                    continue  # taken, dropped or moved; or queued again once done
                del self._waiting[key]
                if not self._waiting:
                    # a dict keeps the table of its largest size: a first start's backlog
                    # of 100k credentials would hold on to 4 MiB for good
                    self._waiting = {}
                self._in_flight.add(key)
                return plan
        return None
