"""bench/apiserver.py: the fast API server the operator benchmark runs against.

It must behave like the emulated cluster the operator tests use (so the benchmark
measures the real operator doing its real job) and answer each request in time that
does not grow with the number of objects it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from credwarden.sandbox import Sandbox, emulated_cluster, operator_on

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import apiserver
import synthetic

pytestmark = pytest.mark.timeout(120)

CW = "credwarden.io/"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


@contextlib.asynccontextmanager
async def fast_server(objects: list[dict[str, Any]] = ()) -> AsyncIterator[apiserver.ApiServer]:  # type: ignore[assignment]
    store = apiserver.Store()
    store.preload(objects)
    server = apiserver.ApiServer(store)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def secret(name: str, namespace: str = "ns1", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "data": {"password": "c2VjcmV0"},
    }


# ---- (a) the real operator converges and writes what it writes on the emulator --------
def small_synthetic_cluster() -> list[dict[str, Any]]:
    """A slice of generate(1000): 15 namespaces and everything in them, plus the
    cluster-scoped objects, with timestamps moved to the wall clock."""
    objects = synthetic.generate(1000).objects()
    namespaced: dict[str, int] = {}
    for body in objects:
        namespace = body["metadata"].get("namespace")
        if namespace and body["kind"] in ("Secret", "ServiceAccount"):
            namespaced[namespace] = namespaced.get(namespace, 0) + 1
    kept = {ns for ns, _ in sorted(namespaced.items(), key=lambda item: -item[1])[:15]}
    delta = datetime.now(UTC).replace(microsecond=0) - synthetic.NOW
    chosen = []
    for body in objects:
        metadata = body["metadata"]
        namespace = metadata.get("namespace")
        if body["kind"] == "Namespace":
            keep = metadata["name"] in kept
        elif namespace:
            keep = namespace in kept
        else:
            keep = True  # cluster-scoped policies and bindings
        if keep:
            apiserver.retime(body, delta)
            chosen.append(body)
    return chosen


def outcome(objects: Mapping[tuple[str, str, str], Mapping[str, Any]]) -> dict[Any, Any]:
    """credwarden's annotations on every credential, by (kind, namespace, name)."""
    return {
        key: {k: v for k, v in (body["metadata"].get("annotations") or {}).items() if CW in k}
        for key, body in objects.items()
        if key[0] in ("Secret", "ServiceAccount")
    }


def event_set(events: list[Mapping[str, Any]]) -> set[tuple[str, str, str, str]]:
    return {
        (
            e["involvedObject"]["kind"],
            e["involvedObject"]["namespace"],
            e["involvedObject"]["name"],
            e["reason"],
        )
        for e in events
    }


async def settle(sandbox: Sandbox, quiet: float = 1.0, timeout: float = 60.0) -> None:
    """Converged, and no write for `quiet` seconds."""
    assert sandbox.state is not None
    state = sandbox.state
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = (-1, -1)
    stable_since = loop.time()
    while loop.time() < deadline:
        await asyncio.sleep(0.1)
        counts = (state.client.requests, state.reconciler.stats.evaluations)
        if counts != last or not state.reconciler.converged.is_set():
            last, stable_since = counts, loop.time()
        elif loop.time() - stable_since >= quiet:
            return
    raise TimeoutError("the operator did not settle")


async def test_the_operator_writes_the_same_annotations_and_events_as_on_the_emulator() -> None:
    objects = small_synthetic_cluster()
    assert sum(1 for o in objects if o["kind"] in ("Secret", "ServiceAccount")) > 40

    async with fast_server(objects) as server:
        sandbox = Sandbox(emulator=None, url=server.url)  # type: ignore[arg-type]
        async with operator_on(sandbox):
            await settle(sandbox)
        store = server.store
        fast = outcome(
            {
                (rt.kind, ns, name): body
                for rt, buckets in store.objects.items()
                for ns, bucket in buckets.items()
                for name, body in bucket.items()
            }
        )
        fast_events = event_set(
            list(store.iterate(apiserver.BY_KIND["Event"], None))  # every namespace
        )

    async with emulated_cluster(objects) as sandbox, operator_on(sandbox):
        await settle(sandbox)
        emulator = sandbox.emulator
        emulated = outcome(
            {
                (found.raw["kind"], key[1] or "", key[2]): found.raw
                for key in list(emulator.objects)
                if (found := emulator.objects[key]) is not None and not found.deleted
            }
        )
        emulated_events = event_set(
            [
                found.raw
                for key in list(emulator.objects)
                if key[0].plural == "events"
                and (found := emulator.objects[key]) is not None
                and not found.deleted
            ]
        )

    assert fast.keys() == emulated.keys()  # the same credentials left (revoked tokens gone)
    statuses = {key: value.get(CW + "status") for key, value in fast.items()}
    assert sum(1 for status in statuses.values() if status) > 30
    assert fast == emulated
    assert fast_events == emulated_events
    assert len(fast_events) > 20


# ---- (b) the API semantics the operator relies on ------------------------------------------
async def test_create_assigns_identity_and_generate_name_gives_unique_names() -> None:
    async with fast_server() as server, client() as http:
        url = f"{server.url}/api/v1/namespaces/ns1/events"
        names = set()
        for _ in range(20):
            body = {"metadata": {"generateName": "ev-"}, "reason": "Test"}
            async with http.post(url, json=body) as response:
                assert response.status == 201
                created = await response.json()
            metadata = created["metadata"]
            assert metadata["name"].startswith("ev-") and len(metadata["name"]) == 8
            assert metadata["uid"] and metadata["resourceVersion"].isdigit()
            assert metadata["creationTimestamp"].endswith("Z")
            assert metadata["namespace"] == "ns1"
            names.add(metadata["name"])
        assert len(names) == 20

        secrets_url = f"{server.url}/api/v1/namespaces/ns1/secrets"
        async with http.post(secrets_url, json=secret("s1")) as response:
            assert response.status == 201
        async with http.post(secrets_url, json=secret("s1")) as response:
            assert response.status == 409
            assert (await response.json())["reason"] == "AlreadyExists"


async def test_stale_resource_version_and_failed_preconditions_are_409() -> None:
    async with fast_server([secret("s1")]) as server, client() as http:
        url = f"{server.url}/api/v1/namespaces/ns1/secrets/s1"
        async with http.get(url) as response:
            version = (await response.json())["metadata"]["resourceVersion"]
        patch = {"metadata": {"resourceVersion": version, "annotations": {"a": "1"}}}
        async with http.patch(url, data=json.dumps(patch), headers=MERGE) as response:
            assert response.status == 200
            patched = await response.json()
        assert int(patched["metadata"]["resourceVersion"]) > int(version)
        assert patched["metadata"]["annotations"] == {"a": "1"}
        assert patched["data"] == {"password": "c2VjcmV0"}
        # the same (now stale) version again
        async with http.patch(url, data=json.dumps(patch), headers=MERGE) as response:
            assert response.status == 409
        # merge patch: None removes
        removal = {"metadata": {"annotations": {"a": None}}}
        async with http.patch(url, data=json.dumps(removal), headers=MERGE) as response:
            assert (await response.json())["metadata"].get("annotations") == {}
        # JSON patch with a failed test: 422, as kopf expects
        ops = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": version},
            {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
        ]
        async with http.patch(url, data=json.dumps(ops), headers=JSON_PATCH) as response:
            assert response.status == 422
        # DELETE preconditions
        async with http.get(url) as response:
            current = (await response.json())["metadata"]
        wrong_uid = {"preconditions": {"uid": "not-this-one"}}
        async with http.delete(url, data=json.dumps(wrong_uid)) as response:
            assert response.status == 409
        stale = {"preconditions": {"uid": current["uid"], "resourceVersion": version}}
        async with http.delete(url, data=json.dumps(stale)) as response:
            assert response.status == 409
        right = {
            "preconditions": {"uid": current["uid"], "resourceVersion": current["resourceVersion"]}
        }
        async with http.delete(url, data=json.dumps(right)) as response:
            assert response.status == 200
        async with http.get(url) as response:
            assert response.status == 404


async def test_status_subresource_and_finalizers() -> None:
    policy = {
        "apiVersion": "credwarden.io/v1alpha1",
        "kind": "ClusterCredentialPolicy",
        "metadata": {"name": "p", "finalizers": ["x/y"]},
        "spec": {"mode": "Audit"},
    }
    async with fast_server([policy]) as server, client() as http:
        url = f"{server.url}/apis/credwarden.io/v1alpha1/clustercredentialpolicies/p"
        both = {"spec": {"mode": "Enforce"}, "status": {"matched": 3}}
        async with http.patch(url, data=json.dumps(both), headers=MERGE) as response:
            body = await response.json()
        assert body["spec"]["mode"] == "Enforce" and "status" not in body
        assert body["metadata"]["generation"] == 2
        async with http.patch(f"{url}/status", data=json.dumps(both), headers=MERGE) as response:
            body = await response.json()
        assert body["status"] == {"matched": 3} and body["spec"]["mode"] == "Enforce"
        # a finalizer holds the object: DELETE marks it, removing the finalizer deletes it
        async with http.delete(url) as response:
            assert response.status == 200
        async with http.get(url) as response:
            assert (await response.json())["metadata"]["deletionTimestamp"]
        unfinalize = {"metadata": {"finalizers": None}}
        async with http.patch(url, data=json.dumps(unfinalize), headers=MERGE) as response:
            assert response.status == 200
        async with http.get(url) as response:
            assert response.status == 404


async def test_continue_tokens_page_through_a_consistent_snapshot() -> None:
    objects = [secret(f"s{i:03}", f"ns{i % 7}") for i in range(95)]
    async with fast_server(objects) as server, client() as http:
        url = f"{server.url}/api/v1/secrets"
        seen: list[str] = []
        versions = set()
        params = {"limit": "10"}
        pages = 0
        while True:
            async with http.get(url, params=params) as response:
                page = await response.json()
            pages += 1
            seen += [item["metadata"]["name"] for item in page["items"]]
            versions.add(page["metadata"]["resourceVersion"])
            if pages == 2:  # a write in the middle does not shift the pages
                new = secret("zz-new", "ns0")
                async with http.post(f"{server.url}/api/v1/namespaces/ns0/secrets", json=new):
                    pass
            token = page["metadata"].get("continue")
            if not token:
                break
            params = {"limit": "10", "continue": token}
        assert pages == 10
        assert sorted(seen) == sorted(o["metadata"]["name"] for o in objects)
        assert len(versions) == 1
        # a namespaced list and a label selector
        async with http.get(f"{server.url}/api/v1/namespaces/ns3/secrets") as response:
            names = [i["metadata"]["name"] for i in (await response.json())["items"]]
        assert names and all(int(name[1:]) % 7 == 3 for name in names)


async def read_events(response: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    events = []
    async for line in response.content:
        if line.strip():
            events.append(json.loads(line))
    return events


async def test_watch_from_a_resource_version_replays_only_later_events() -> None:
    async with fast_server([secret("old")]) as server, client() as http:
        base = f"{server.url}/api/v1/namespaces/ns1/secrets"
        async with http.get(f"{server.url}/api/v1/secrets") as response:
            listed = await response.json()
        since = listed["metadata"]["resourceVersion"]
        async with http.post(base, json=secret("a")):
            pass
        async with http.post(base, json=secret("b", "ns2")):
            pass
        patch = {"metadata": {"labels": {"x": "1"}}}
        async with http.patch(f"{base}/a", data=json.dumps(patch), headers=MERGE):
            pass
        async with http.get(f"{base}/a") as response:
            after_a = (await response.json())["metadata"]["resourceVersion"]
        async with http.delete(f"{base}/old"):
            pass
        params = {"watch": "true", "resourceVersion": since, "timeoutSeconds": "1"}
        async with http.get(f"{server.url}/api/v1/secrets", params=params) as response:
            events = await read_events(response)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("ADDED", "a"),
            ("ADDED", "b"),
            ("MODIFIED", "a"),
            ("DELETED", "old"),
        ]
        # from a later version, in one namespace: only what followed there
        params = {"watch": "true", "resourceVersion": after_a, "timeoutSeconds": "1"}
        async with http.get(base, params=params) as response:
            events = await read_events(response)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("DELETED", "old")
        ]
        # a live event reaches an open watch; a version older than the history is 410
        params = {"watch": "true", "resourceVersion": after_a, "timeoutSeconds": "2"}
        async with http.get(f"{server.url}/api/v1/secrets", params=params) as response:
            async with http.post(base, json=secret("live")):
                pass
            events = await read_events(response)
        assert events[-1]["object"]["metadata"]["name"] == "live"
        params = {"watch": "true", "resourceVersion": "5", "timeoutSeconds": "1"}
        async with http.get(f"{server.url}/api/v1/secrets", params=params) as response:
            events = await read_events(response)
        assert events == [{"type": "ERROR", "object": pytest.approx(events[0]["object"])}]
        assert events[0]["object"]["code"] == 410


async def test_writes_are_logged_with_their_effect_on_credwardens_annotations() -> None:
    async with fast_server([secret("s1")]) as server, client() as http:
        url = f"{server.url}/api/v1/namespaces/ns1/secrets/s1"
        patch = {"metadata": {"annotations": {CW + "status": "Compliant"}}}
        headers = {**MERGE, apiserver.SOURCE_HEADER: "harness"}
        async with http.patch(url, data=json.dumps(patch), headers=headers):
            pass
        event = {
            "metadata": {"name": "s1.1"},
            "involvedObject": {"kind": "Secret", "namespace": "ns1", "name": "s1"},
            "reason": "MissingOwner",
        }
        async with http.post(f"{server.url}/api/v1/namespaces/ns1/events", json=event):
            pass
        async with http.get(f"{server.url}/bench/writes") as response:
            log = await response.json()
        rows = [dict(zip(log["fields"], row, strict=True)) for row in log["rows"]]
        assert rows[0]["source"] == "harness" and rows[0]["ours_changed"]
        assert (rows[0]["status_before"], rows[0]["status_after"]) == (None, "Compliant")
        assert rows[1]["involved"] == ["Secret", "ns1", "s1"]
        assert rows[1]["reason"] == "MissingOwner"
        async with http.get(f"{server.url}/bench/summary") as response:
            assert (await response.json())["annotated"]["Secret"] == 1


# ---- (c) request cost does not grow with the number of objects -----------------------------
async def median_request_seconds(server: apiserver.ApiServer, names: list[str]) -> float:
    timings = []
    async with aiohttp.ClientSession() as http:
        for index, name in enumerate(names):
            url = f"{server.url}/api/v1/namespaces/ns{index % 50}/secrets/{name}"
            started = time.perf_counter()
            async with http.get(url) as response:
                await response.read()
            patch = {"metadata": {"labels": {"touched": str(index)}}}
            async with http.patch(url, data=json.dumps(patch), headers=MERGE) as response:
                await response.read()
            timings.append(time.perf_counter() - started)
    return statistics.median(timings)


@pytest.mark.parametrize("attempt", [1])
async def test_get_and_patch_cost_does_not_grow_with_the_object_count(attempt: int) -> None:
    def objects(count: int) -> list[dict[str, Any]]:
        return [secret(f"s{i}", f"ns{i % 50}") for i in range(count)]

    samples = [f"s{i}" for i in range(0, 500, 2)]  # the same 250 objects in both
    async with fast_server(objects(500)) as small:
        await median_request_seconds(small, samples[:20])  # warm up
        small_median = await median_request_seconds(small, samples)
    async with fast_server(objects(50_000)) as large:
        await median_request_seconds(large, samples[:20])
        large_median = await median_request_seconds(large, samples)
    assert large_median < 3 * small_median, (small_median, large_median)
