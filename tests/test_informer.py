"""The informers that read the cluster: paged lists, watches that resume, re-lists that
forget what vanished meanwhile, large objects, APIs not served; and a cluster with more
objects of one kind than kopf has worker slots (nolar/kopf#1243), governed in full."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
from collections.abc import AsyncIterator, Mapping
from typing import Any

import kmock

from credwarden import controller
from credwarden.emulator import wait_until
from credwarden.informer import Informer, WatchedKind
from credwarden.kube import Credentials, KubeClient
from credwarden.sandbox import Sandbox, emulated_cluster, operator_on

SECRETS = "v1/secrets"
SECRET_KIND = WatchedKind("", "v1", "secrets", "Secret")


def secret(name: str, namespace: str = "team", size: int = 24) -> dict[str, Any]:
    value = base64.b64encode(name.encode().ljust(size, b"x")).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {"password": value},
    }


class Recorder:
    """What an informer reported, by (namespace, name)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.deleted: list[tuple[str, str]] = []

    def on_object(self, kind: str, body: Mapping[str, Any]) -> None:
        metadata = body["metadata"]
        self.objects[metadata.get("namespace") or "", metadata["name"]] = body

    def on_deleted(self, kind: str, body: Mapping[str, Any]) -> None:
        metadata = body["metadata"]
        key = (metadata.get("namespace") or "", metadata["name"])
        self.objects.pop(key, None)
        self.deleted.append(key)

    def known(self, kind: str) -> list[tuple[str, str]]:
        return list(self.objects)


@contextlib.asynccontextmanager
async def informing(
    sandbox: Sandbox, watched: WatchedKind = SECRET_KIND, **options: Any
) -> AsyncIterator[tuple[Informer, Recorder]]:
    client = KubeClient(qps=0, backoffs=(0.05, 0.1))
    await client.login(Credentials(sandbox.url.rstrip("/"), {}, None))
    recorder = Recorder()
    informer = Informer(
        client,
        watched,
        on_object=recorder.on_object,
        on_deleted=recorder.on_deleted,
        known=recorder.known,
        backoffs=(0.05, 0.1),
        **options,
    )
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.listed.wait(), 10)
        yield informer, recorder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


async def watching(sandbox: Sandbox) -> None:
    """Until a watch of Secrets is open (a drop before that would reach no one)."""
    await wait_until(
        lambda: any(request.params.get("watch") == "true" for request in sandbox.emulator), 5
    )
    await asyncio.sleep(0.2)


def list_requests(sandbox: Sandbox) -> list[Any]:
    return [
        request
        for request in sandbox.emulator
        if request.method.value == "GET"
        and request.resource is not None
        and request.resource.plural == "secrets"
        and request.params.get("watch") != "true"
    ]


async def test_a_list_is_read_page_by_page_then_watched() -> None:
    objects = [secret(f"s{index:03}") for index in range(230)]
    async with (
        emulated_cluster(objects) as sandbox,
        informing(sandbox, page_size=100) as (
            informer,
            recorder,
        ),
    ):
        assert len(recorder.objects) == 230
        pages = list_requests(sandbox)
        assert [request.params.get("limit") for request in pages] == ["100"] * 3
        assert [request.params.get("continue", "") for request in pages] == ["", "100", "200"]
        # then changes arrive through the watch, without listing again
        await sandbox.emulator.post("/api/v1/namespaces/team/secrets", json=secret("new"))
        await wait_until(lambda: ("team", "new") in recorder.objects, 5)
        assert informer.lists == 1


async def test_a_dropped_watch_resumes_from_the_last_version_without_listing_again() -> None:
    async with emulated_cluster([secret("a")]) as sandbox, informing(sandbox) as (informer, seen):
        await watching(sandbox)
        await sandbox.emulator.drop_watches(SECRETS)
        await sandbox.emulator.post("/api/v1/namespaces/team/secrets", json=secret("b"))
        await wait_until(lambda: ("team", "b") in seen.objects, 5)
        await sandbox.emulator.delete("/api/v1/namespaces/team/secrets/a")
        await wait_until(lambda: ("team", "a") not in seen.objects, 5)
        assert informer.lists == 1 and informer.watches >= 2
        assert seen.deleted == [("team", "a")]


async def test_objects_deleted_while_no_watch_ran_are_forgotten_after_410() -> None:
    objects = [secret("kept"), secret("vanishes")]
    async with emulated_cluster(objects) as sandbox, informing(sandbox) as (informer, seen):
        assert set(seen.objects) == {("team", "kept"), ("team", "vanishes")}
        # gone from the store without any watch event, as while the operator was cut off
        emulator = sandbox.emulator
        del emulator.objects[SECRETS, "team", "vanishes"]  # type: ignore[arg-type]
        await watching(sandbox)
        await emulator.drop_watches(SECRETS, gone=True)  # 410 Gone: list again
        await wait_until(lambda: informer.lists == 2, 5)
        await wait_until(lambda: ("team", "vanishes") not in seen.objects, 5)
        assert set(seen.objects) == {("team", "kept")}
        assert seen.deleted == [("team", "vanishes")]


async def test_a_watch_event_larger_than_aiohttps_line_limit_is_read() -> None:
    async with emulated_cluster([]) as sandbox, informing(sandbox) as (_, seen):
        big = secret("big", size=300_000)  # a 400 KB line; aiohttp's readline stops at 64 KiB
        await sandbox.emulator.post("/api/v1/namespaces/team/secrets", json=big)
        await wait_until(lambda: ("team", "big") in seen.objects, 5)
        assert seen.objects["team", "big"]["data"] == big["data"]


async def test_an_api_not_served_counts_as_listed_and_empty() -> None:
    missing = WatchedKind("example.com", "v1", "widgets", "Widget")
    async with emulated_cluster([]) as sandbox, informing(sandbox, missing) as (informer, seen):
        assert informer.listed.is_set() and not seen.objects


async def test_more_secrets_than_kopf_has_worker_slots_are_all_governed() -> None:
    """With kopf's watches and indexes, 250 Secrets and worker_limit=200 never became
    ready (nolar/kopf#1243): all are listed, evaluated and annotated now."""
    policy = {
        "apiVersion": "credwarden.io/v1alpha1",
        "kind": "ClusterCredentialPolicy",
        "metadata": {"name": "p"},
        "spec": {"limits": {"secrets": {"maxAge": "30d"}}},
    }
    objects: list[dict[str, Any]] = [policy, *(secret(f"s{index:03}") for index in range(250))]
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox) as state:
        await asyncio.wait_for(state.reconciler.ready.wait(), 10)
        assert len(state.inventory.secrets) == 250
        annotated = annotated_count(sandbox)
        await wait_until(lambda: annotated() == 250, 60)


def annotated_count(sandbox: Sandbox) -> Any:
    def count() -> int:
        found = 0
        for index in range(250):
            stored = sandbox.emulator.objects[SECRETS, "team", f"s{index:03}"]
            annotations = stored.raw.get("metadata", {}).get("annotations") or {}
            found += "credwarden.io/status" in annotations
        return found

    return count


async def test_the_gc_pause_of_the_first_listing_ends_even_if_listing_cannot(
    monkeypatch: Any,
) -> None:
    """The cyclic GC is paused while the first listing runs, but not for good: a kind
    that cannot be listed (here the API answers 500, again and again) must not keep it
    off. And once ready, it is on."""
    monkeypatch.setattr(controller, "FIRST_LISTING_GC_PAUSE", 0.5)
    assert gc.isenabled()
    async with emulated_cluster([secret("a")]) as sandbox:
        sandbox.emulator.fail(
            lambda request: bool(
                request.resource is not None
                and request.resource.plural == "secrets"
                and request.params.get("watch") != "true"
            ),
            *[kmock.KubernetesError(status=500) for _ in range(8)],
        )
        async with operator_on(sandbox) as state:
            await asyncio.sleep(0.1)
            assert not gc.isenabled()  # listing: paused
            await wait_until(gc.isenabled, 5)  # the listing goes on failing; GC is back
            assert not state.reconciler.ready.is_set()
            await asyncio.wait_for(state.reconciler.ready.wait(), 20)  # the faults run out
            assert gc.isenabled()
