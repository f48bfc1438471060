"""The write queue on its own: newest plan per credential, one at a time, fresh first."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from conftest import lifecycle_record
from credwarden.inventory import CredentialKey
from credwarden.kube import RateLimiter, background
from credwarden.records import COMPLIANT, NON_COMPLIANT, Action, Annotate, LifecycleRecord
from credwarden.writequeue import Lane, Plan, WriteQueue


def key(name: str) -> CredentialKey:
    return CredentialKey("Secret", "team", name)


def record(name: str, status: str = NON_COMPLIANT) -> LifecycleRecord:
    return lifecycle_record(key(name), status, policy="p", policies=("p",))


def plan(name: str, status: str = NON_COMPLIANT, *, lane: Lane = Lane.FRESH, version="1") -> Plan:
    actions: Sequence[Action] = [
        Annotate(key(name), f"uid-{name}", {"credwarden.io/status": status}, ())
    ]
    return Plan(record(name, status), actions, version, lane)


async def take_now(queue: WriteQueue) -> Plan | None:
    """The plan a worker would take now, if any."""
    try:
        async with asyncio.timeout(0.01):
            return await queue.take()
    except TimeoutError:
        return None


async def take_all(queue: WriteQueue) -> list[Plan]:
    """Every plan a worker would take, one after the other (each done at once)."""
    taken = []
    while (plan := await take_now(queue)) is not None:
        taken.append(plan)
        queue.done(plan.key)
    return taken


async def test_fresh_plans_are_taken_before_the_backlog_each_in_arrival_order() -> None:
    queue = WriteQueue()
    for name in ("b1", "b2", "b3"):
        queue.put(plan(name, lane=Lane.BACKLOG))
    queue.put(plan("f1"))
    queue.put(plan("f2"))
    taken = [p.key.name for p in await take_all(queue)]
    assert taken == ["f1", "f2", "b1", "b2", "b3"]


async def test_a_held_backlog_waits_for_its_release_while_fresh_plans_go() -> None:
    # a pass over every credential is evaluated whole before its backlog is written
    queue = WriteQueue()
    queue.hold_backlog()
    queue.put(plan("b1", lane=Lane.BACKLOG))
    queue.put(plan("f1"))
    assert [p.key.name for p in await take_all(queue)] == ["f1"]
    waiting = asyncio.create_task(queue.take())  # an idle worker
    await asyncio.sleep(0.01)
    assert not waiting.done()
    queue.release_backlog()
    assert (await asyncio.wait_for(waiting, 1)).key.name == "b1"


async def test_a_newer_plan_replaces_the_waiting_one_in_its_place() -> None:
    queue = WriteQueue()
    queue.put(plan("a", lane=Lane.BACKLOG))
    queue.put(plan("b", lane=Lane.BACKLOG))
    queue.put(plan("a", COMPLIANT, lane=Lane.BACKLOG, version="2"))
    assert len(queue) == 2
    first = await take_now(queue)
    assert first is not None
    assert (first.key.name, first.record.status, first.resource_version) == ("a", COMPLIANT, "2")


async def test_a_transition_moves_a_backlog_plan_ahead_and_the_same_plan_keeps_its_place() -> None:
    queue = WriteQueue()
    for name in ("a", "b", "c"):
        queue.put(plan(name, lane=Lane.BACKLOG))
    queue.put(plan("c", COMPLIANT))  # changed: a fresh transition
    queue.put(plan("b", version="7"))  # re-evaluated, the same writes: not a transition
    queue.put(plan("a", COMPLIANT, lane=Lane.BACKLOG))  # a pass over everything
    taken = [(p.key.name, p.lane) for p in await take_all(queue)]
    assert taken == [("c", Lane.FRESH), ("a", Lane.BACKLOG), ("b", Lane.BACKLOG)]


async def test_a_fresh_plan_is_never_moved_back_to_the_backlog() -> None:
    queue = WriteQueue()
    queue.put(plan("b", lane=Lane.BACKLOG))
    queue.put(plan("f"))
    queue.put(plan("f", COMPLIANT, lane=Lane.BACKLOG))
    assert [p.key.name for p in await take_all(queue)] == ["f", "b"]


async def test_a_dropped_plan_is_never_taken() -> None:
    queue = WriteQueue()
    queue.put(plan("gone", lane=Lane.BACKLOG))
    queue.put(plan("kept", lane=Lane.BACKLOG))
    queue.drop(key("gone"))
    assert [p.key.name for p in await take_all(queue)] == ["kept"]
    assert not queue.busy


async def test_one_plan_per_credential_at_a_time() -> None:
    queue = WriteQueue()
    queue.put(plan("a"))
    first = await take_now(queue)
    assert first is not None and queue.carrying_out(key("a"))
    queue.put(plan("a", COMPLIANT, version="2"))  # made while the first is carried out
    queue.put(plan("z"))
    second = await take_now(queue)
    assert second is not None and second.key.name == "z"  # not "a": it is in flight
    assert await take_now(queue) is None
    queue.done(key("a"))
    third = await take_now(queue)
    assert third is not None and (third.key.name, third.resource_version) == ("a", "2")
    queue.done(key("a"))
    queue.done(key("z"))
    assert not queue.busy


async def test_many_replacements_and_drops_keep_the_queue_small() -> None:
    queue = WriteQueue()
    for round_ in range(50):
        for number in range(100):
            name = f"s{number}"
            queue.put(plan(name, lane=Lane.BACKLOG, version=str(round_)))
            queue.put(plan(name, COMPLIANT if round_ % 2 else NON_COMPLIANT, version=str(round_)))
            if number % 3 == 0:
                queue.drop(key(name))
    assert len(queue) == 66
    # entries skipped later (replaced, moved, dropped) are compacted away
    assert all(len(order) <= 2 * len(queue) + 1024 for order in queue._order)
    taken = await take_all(queue)
    assert len(taken) == len({p.key for p in taken}) == 66
    assert {p.resource_version for p in taken} == {"49"}


async def test_a_fresh_write_waits_for_the_rate_limit_behind_at_most_one_backlog_write() -> None:
    limiter = RateLimiter(qps=50, burst=1)
    order: list[str] = []

    async def write(name: str, *, backlog: bool) -> None:
        if backlog:
            with background():
                await limiter.acquire()
        else:
            await limiter.acquire()
        order.append(name)

    backlog = [asyncio.create_task(write(f"b{n}", backlog=True)) for n in range(10)]
    await asyncio.sleep(0.05)  # the backlog's requests are all waiting for tokens
    served_before = len(order)
    await write("fresh", backlog=False)
    assert order.index("fresh") - served_before <= 1, order  # the one waiting already
    await asyncio.gather(*backlog)
    assert sorted(order) == sorted(["fresh", *(f"b{n}" for n in range(10))])
