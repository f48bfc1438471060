"""Lifecycle records by credential, with each policy's tally kept as they change.

A policy's status shows how many credentials it governs, how many of them are compliant,
expiring and violating, and its worst offenders. Counting these over every record each
time anything changed cost about 600 ms at 100,000 credentials, and every new credential
waited behind it. `TalliedRecords` is the reconciler's map of records; each assignment or
removal updates the tallies of the policies the record names (O(those policies)), and
each policy also indexes its violating and expiring records, the only candidates for its
worst offenders, ready to be picked when its status is written.
"""

from __future__ import annotations

import heapq
from collections.abc import ItemsView, Iterator, KeysView, MutableMapping, ValuesView
from dataclasses import dataclass, field
from operator import attrgetter

from credwarden.inventory import CredentialKey
from credwarden.namespaced import NamespacedMap, WalkedItems, WalkedValues
from credwarden.records import COMPLIANT, EXPIRING, NON_COMPLIANT, STATUS_ORDER, LifecycleRecord

COUNTED = (COMPLIANT, EXPIRING, NON_COMPLIANT)
OFFENDING = frozenset({NON_COMPLIANT, EXPIRING})

# How bad an offender is, worst first: its status (NonCompliant, then Expiring), then the
# number of its findings, most first. A small int (Python shares one object for each of
# them), not a tuple per offender (88 bytes, and most credentials of a neglected cluster
# offend). Offenders of equal severity are ordered by key when picked.
Severity = int
MAX_COUNTED_FINDINGS = 63
_by_key = attrgetter("kind", "namespace", "name")


def severity(record: LifecycleRecord) -> Severity:
    fewer_findings = MAX_COUNTED_FINDINGS - min(len(record.findings), MAX_COUNTED_FINDINGS)
    return STATUS_ORDER[record.status] * (MAX_COUNTED_FINDINGS + 1) + fewer_findings


@dataclass(slots=True)
class PolicyTally:
    """What one policy governs: counts by status, and its offenders by severity."""

    matched: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    # severity -> the offenders of that severity. The key, not the record: a record
    # replaced by an equal one (the same status and findings) stays where it is, and must
    # not be kept alive by it.
    offenders: dict[Severity, set[CredentialKey]] = field(default_factory=dict)

    def worst(self, count: int) -> list[CredentialKey]:
        """The `count` worst offenders: NonCompliant before Expiring, then most findings
        first, then by credential."""
        picked: list[CredentialKey] = []
        for level in sorted(self.offenders):  # a few levels: statuses x finding counts
            if len(picked) >= count:
                break
            picked.extend(heapq.nsmallest(count - len(picked), self.offenders[level], key=_by_key))
        return picked

    def add_offender(self, key: CredentialKey, level: Severity) -> None:
        held = self.offenders.get(level)
        if held is None:
            held = self.offenders[level] = set()
        held.add(key)

    def remove_offender(self, key: CredentialKey, level: Severity) -> None:
        held = self.offenders.get(level)
        if held is not None:
            held.discard(key)
            if not held:
                del self.offenders[level]


EMPTY = PolicyTally()


class TalliedRecords(MutableMapping[CredentialKey, LifecycleRecord]):
    """credential -> its lifecycle record, plus a `PolicyTally` per policy named."""

    def __init__(self) -> None:
        # kind -> (namespace, name) -> record: one small table of names per namespace,
        # not one table of key objects (see namespaced.py); a record knows its own key
        self._records: dict[str, NamespacedMap[LifecycleRecord]] = {}
        self._tallies: dict[str, PolicyTally] = {}
        # moves whenever a policy's status may change (a record came, went, or changed
        # status, policies or findings): the reconciler writes statuses only then
        self.changes = 0

    def tally(self, policy: str) -> PolicyTally:
        """The tally of a policy by display name (empty when it governs nothing)."""
        return self._tallies.get(policy, EMPTY)

    # ---- the mapping --------------------------------------------------------------------
    def __getitem__(self, key: CredentialKey) -> LifecycleRecord:
        record = self.record_of(key)
        if record is None:
            raise KeyError(key)
        return record

    def record_of(self, key: CredentialKey) -> LifecycleRecord | None:
        """The record, or None (`get` without the mixin's frames)."""
        table = self._records.get(key.kind)
        return None if table is None else table.get((key.namespace, key.name))

    def __setitem__(self, key: CredentialKey, record: LifecycleRecord) -> None:
        if record.key is not key and record.key != key:
            # iteration yields each record's own key: the two must be one
            raise ValueError(f"the record of {record.key} kept as {key}")
        table = self._records.get(key.kind)
        if table is None:
            table = self._records[key.kind] = NamespacedMap()
        where = (key.namespace, key.name)
        old = table.get(where)
        table[where] = record
        if old is not None:
            if (
                old.status == record.status
                and old.policies == record.policies
                and old.findings == record.findings
            ):
                return  # the same in every tally, which shows status, key and rule ids
            self._untally(old)
        self._tally(record)
        self.changes += 1

    def __delitem__(self, key: CredentialKey) -> None:
        table = self._records.get(key.kind)
        if table is None:
            raise KeyError(key)
        self._untally(table.pop((key.namespace, key.name)))
        self.changes += 1

    def __iter__(self) -> Iterator[CredentialKey]:
        for record in self._walk_values():
            yield record.key

    def __len__(self) -> int:
        return sum(map(len, self._records.values()))  # a table per kind

    def __contains__(self, key: object) -> bool:
        return isinstance(key, CredentialKey) and self.record_of(key) is not None

    def _walk_values(self) -> Iterator[LifecycleRecord]:
        for table in self._records.values():
            yield from table.values()

    def _walk_items(self) -> Iterator[tuple[CredentialKey, LifecycleRecord]]:
        for record in self._walk_values():
            yield record.key, record

    # views that walk the tables once (the mixins' would look every key up again)
    def keys(self) -> KeysView[CredentialKey]:
        return KeysView(self)

    def values(self) -> ValuesView[LifecycleRecord]:
        return WalkedValues(self)

    def items(self) -> ItemsView[CredentialKey, LifecycleRecord]:
        return WalkedItems(self)

    # ---- the tallies ----------------------------------------------------------------------
    def _tally(self, record: LifecycleRecord) -> None:
        status = record.status
        level = severity(record) if status in OFFENDING else 0
        for name in record.policies:
            tally = self._tallies.get(name)
            if tally is None:
                tally = self._tallies[name] = PolicyTally()
            tally.matched += 1
            if status in tally.by_status:
                tally.by_status[status] += 1
            if status in OFFENDING:
                tally.add_offender(record.key, level)

    def _untally(self, record: LifecycleRecord) -> None:
        status = record.status
        level = severity(record) if status in OFFENDING else 0
        for name in record.policies:
            tally = self._tallies[name]
            tally.matched -= 1
            if tally.matched == 0:
                del self._tallies[name]  # a policy deleted or renamed leaves nothing behind
                continue
            if status in tally.by_status:
                tally.by_status[status] -= 1
            if status in OFFENDING:
                tally.remove_offender(record.key, level)
