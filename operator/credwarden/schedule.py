"""One schedule for every deadline: a heap of (when, credential) with lazy removal.

The operator re-evaluates a credential exactly when its evaluation changes by itself
(a warning window opens, a limit passes). One heap serves all credentials, so the
number of timers does not grow with the number of objects, unlike a kopf timer per object.

When a credential is due is, first, what its lifecycle record says (`next_review_at`):
the reconciler's records are the truth, read through `due_of`, and the schedule keeps no
map of its own beside them (a dict entry per credential, about 50 bytes each at 100,000).
A heap entry is live while the record still names its time. Times set apart from the
records (a retry in a few seconds) are kept in a small map of their own.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime

from credwarden.inventory import CredentialKey

DueOf = Callable[[CredentialKey], datetime | None]


def _never(_key: CredentialKey) -> None:
    return None


class DeadlineSchedule:
    def __init__(self, due_of: DueOf = _never) -> None:
        self._heap: list[tuple[datetime, CredentialKey]] = []
        self._due_of = due_of
        # times set with `set`, apart from the records: few (retries), removed when due
        self._set: dict[CredentialKey, datetime] = {}
        # past this many heap entries, stale ones are dropped (the bound doubles with the
        # live entries, so that compacting stays O(1) per entry pushed)
        self._limit = 64

    def __len__(self) -> int:
        """Credentials with a time to come (counted by scanning: for tests and metrics)."""
        return len({key for when, key in self._heap if self._live(when, key)})

    def _live(self, when: datetime, key: CredentialKey) -> bool:
        return self._set.get(key) == when or self._due_of(key) == when

    def follow(self, key: CredentialKey, when: datetime | None) -> None:
        """The credential's record now names `when` as its next review: be due then."""
        if when is not None:
            self._push(when, key)

    def set(self, key: CredentialKey, when: datetime | None) -> None:
        """(Re)schedule key at `when` apart from its record; None removes that time."""
        if when is None:
            self._set.pop(key, None)
            return
        if self._set.get(key) == when:
            return
        self._set[key] = when
        self._push(when, key)

    def _push(self, when: datetime, key: CredentialKey) -> None:
        heapq.heappush(self._heap, (when, key))
        if len(self._heap) > self._limit:
            self._heap = [(due, k) for due, k in self._heap if self._live(due, k)]
            heapq.heapify(self._heap)
            self._limit = 2 * len(self._heap) + 64

    def discard(self, key: CredentialKey) -> None:
        """Forget the time set apart for key (its record's time goes with its record)."""
        self._set.pop(key, None)

    def next_deadline(self) -> datetime | None:
        while self._heap:
            when, key = self._heap[0]
            if self._live(when, key):
                return when
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: datetime) -> list[CredentialKey]:
        """Every key whose time has come, earliest first, each once; the times popped
        are gone (a record naming a past time is not due again)."""
        due: list[CredentialKey] = []
        seen: set[CredentialKey] = set()
        while self._heap and self._heap[0][0] <= now:
            when, key = heapq.heappop(self._heap)
            live = False
            if self._set.get(key) == when:
                del self._set[key]
                live = True
            elif self._due_of(key) == when:
                live = True
            if live and key not in seen:
                seen.add(key)
                due.append(key)
        return due
