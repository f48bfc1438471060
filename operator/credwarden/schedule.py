"""One schedule for every deadline: a heap of (when, credential) with lazy removal.

The operator re-evaluates a credential exactly when its evaluation changes by itself
(a warning window opens, a limit passes). One heap serves all credentials, so the
number of timers does not grow with the number of objects, unlike a kopf timer per object.
"""

from __future__ import annotations

import heapq
from datetime import datetime

from credwarden.inventory import CredentialKey


class DeadlineSchedule:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, CredentialKey]] = []
        self._due: dict[CredentialKey, datetime] = {}

    def __len__(self) -> int:
        return len(self._due)

    def set(self, key: CredentialKey, when: datetime | None) -> None:
        """(Re)schedule key at `when`; None removes it."""
        if when is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) == when:
            return
        self._due[key] = when
        heapq.heappush(self._heap, (when, key))
        # stale entries are skipped on pop; compact when they dominate the heap
        if len(self._heap) > 2 * len(self._due) + 64:
            self._heap = [(due, k) for k, due in self._due.items()]
            heapq.heapify(self._heap)

    def discard(self, key: CredentialKey) -> None:
        self._due.pop(key, None)

    def next_deadline(self) -> datetime | None:
        while self._heap:
            when, key = self._heap[0]
            if self._due.get(key) == when:
                return when
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: datetime) -> list[CredentialKey]:
        """Every key whose time has come, earliest first; they leave the schedule."""
        due: list[CredentialKey] = []
        while self._heap and self._heap[0][0] <= now:
            when, key = heapq.heappop(self._heap)
            if self._due.get(key) == when:
                del self._due[key]
                due.append(key)
        return due
