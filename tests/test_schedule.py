from __future__ import annotations

from datetime import UTC, datetime, timedelta

from credwarden.inventory import CredentialKey
from credwarden.schedule import DeadlineSchedule

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def key(name: str) -> CredentialKey:
    return CredentialKey("Secret", "ns", name)


def test_pops_due_keys_in_time_order_and_only_once() -> None:
    schedule = DeadlineSchedule()
    schedule.set(key("late"), T0 + timedelta(hours=2))
    schedule.set(key("early"), T0 + timedelta(hours=1))
    schedule.set(key("future"), T0 + timedelta(days=1))
    assert schedule.next_deadline() == T0 + timedelta(hours=1)
    assert schedule.pop_due(T0) == []
    assert schedule.pop_due(T0 + timedelta(hours=3)) == [key("early"), key("late")]
    assert schedule.pop_due(T0 + timedelta(hours=3)) == []
    assert len(schedule) == 1
    assert schedule.next_deadline() == T0 + timedelta(days=1)


def test_rescheduling_replaces_the_old_deadline() -> None:
    schedule = DeadlineSchedule()
    schedule.set(key("a"), T0 + timedelta(hours=1))
    schedule.set(key("a"), T0 + timedelta(hours=5))
    assert schedule.pop_due(T0 + timedelta(hours=2)) == []
    assert schedule.next_deadline() == T0 + timedelta(hours=5)
    assert schedule.pop_due(T0 + timedelta(hours=5)) == [key("a")]


def test_discard_and_none_remove_a_key() -> None:
    schedule = DeadlineSchedule()
    schedule.set(key("a"), T0)
    schedule.set(key("b"), T0)
    schedule.discard(key("a"))
    schedule.set(key("b"), None)
    assert schedule.next_deadline() is None
    assert schedule.pop_due(T0 + timedelta(days=1)) == []


def test_heap_stays_bounded_under_constant_rescheduling() -> None:
    schedule = DeadlineSchedule()
    for round_ in range(200):
        for index in range(50):
            schedule.set(key(str(index)), T0 + timedelta(seconds=round_ * 100 + index))
    assert len(schedule) == 50
    assert len(schedule._heap) <= 2 * 50 + 64 + 1
    assert schedule.pop_due(T0 + timedelta(days=1)) == [key(str(i)) for i in range(50)]


def test_times_followed_from_the_records_are_due_while_the_record_still_names_them() -> None:
    # the reconciler's records are the truth: no map of the schedule's own beside them
    reviews: dict[CredentialKey, datetime] = {}
    schedule = DeadlineSchedule(reviews.get)
    for name, hours in (("a", 1), ("b", 2), ("c", 3)):
        reviews[key(name)] = T0 + timedelta(hours=hours)
        schedule.follow(key(name), reviews[key(name)])
    reviews[key("b")] = T0 + timedelta(hours=5)  # re-evaluated: a later review
    schedule.follow(key("b"), reviews[key("b")])
    del reviews[key("c")]  # the credential is gone
    assert len(schedule) == 2
    assert schedule.next_deadline() == T0 + timedelta(hours=1)
    assert schedule.pop_due(T0 + timedelta(hours=4)) == [key("a")]
    assert schedule.pop_due(T0 + timedelta(hours=4)) == []  # popped: not due again
    schedule.set(key("b"), T0 + timedelta(hours=4, minutes=30))  # a retry, apart
    assert schedule.pop_due(T0 + timedelta(hours=6)) == [key("b")]  # once, though due twice
    assert schedule.next_deadline() is None
