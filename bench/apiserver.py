"""A fast, in-memory Kubernetes API server for the operator benchmark.

kmock's emulator (operator/credwarden/emulator.py) scans every stored object on each
request, which is fine for tests and far too slow at 100k objects. This server speaks
the same HTTP API with O(1) work per object request:

- objects live in dicts keyed by resource, then namespace, then name; each stored body
  is never mutated (a write stores a new dict), so a LIST snapshot and the watch logs
  can hold references to old versions safely;
- one global resourceVersion counter (etcd's revision); each resource keeps a log of
  (revision, event type, body) that WATCH replays from a resourceVersion by bisection;
- LIST pages through a snapshot taken at the first page (`limit` / `continue`);
- the semantics credwarden relies on mirror `credwarden.emulator.ClusterEmulator`:
  uid/resourceVersion/creationTimestamp/generation on create, generateName, 409 on an
  existing name, 409 on a stale metadata.resourceVersion in a merge patch, 409 on failed
  DELETE preconditions (uid, resourceVersion), 422 on a failed JSON-patch `test`,
  finalizers with deletionTimestamp, a status subresource that writes only `status`,
  label and field selectors.

Every write is recorded (time, source, verb, resource, namespace/name, status code,
whether credwarden's annotations changed, and an Event's involved object and reason), so
the benchmark measures from the server's side. `/bench/writes?after=N` pages through that
log and `/bench/summary` counts objects and requests.

    python bench/apiserver.py --synthetic 10000 --retime   # prints {"url": ...} when ready
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import json
import random
import re
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonpatch
import yaml
from aiohttp import web

from credwarden.emulator import NAME_ALPHABET, RESOURCES, match_fields, match_labels

Obj = dict[str, Any]

CW_PREFIX = "credwarden.io/"
CW_STATUS = "credwarden.io/status"
HEARTBEAT_ANNOTATION = "credwarden.io/heartbeat"
# the harness marks its own requests; everything else is the operator under test
SOURCE_HEADER = "X-Bench-Source"
LIST_SNAPSHOT_TTL = 300.0
BOOKMARK_EVERY = 60.0
CRD_DIR = Path(__file__).resolve().parent.parent / "crds"


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


def _resource_types() -> list[ResourceType]:
    types = []
    for key, (kind, namespaced, subresources) in RESOURCES.items():
        *group_parts, version, plural = key.split("/")
        group = group_parts[0] if group_parts else ""
        types.append(ResourceType(group, version, plural, kind, namespaced, subresources))
    # kopf watches CRDs to rescan when one appears (unless settings.scanning.disabled)
    types.append(
        ResourceType(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            ("status",),
        )
    )
    return types


RESOURCE_TYPES = _resource_types()
BY_PATH = {(rt.prefix, rt.plural): rt for rt in RESOURCE_TYPES}
BY_KIND = {rt.kind: rt for rt in RESOURCE_TYPES}
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class ApiFailure(Exception):
    """An API error answered as a metav1.Status."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def status(self) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; returns a new value (target is not changed)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _annotations(body: Mapping[str, Any]) -> Mapping[str, Any]:
    return (body.get("metadata") or {}).get("annotations") or {}


def _ours(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in _annotations(body).items()
        if key.startswith(CW_PREFIX) and key != HEARTBEAT_ANNOTATION
    }


@dataclass(slots=True)
class ListSnapshot:
    created: float
    revision: int
    items: list[Obj]


@dataclass(slots=True)
class WatchLog:
    """The events of one resource, oldest first; `floor` is the oldest revision a watch
    can start from (older ones get 410 Gone)."""

    floor: int
    revisions: list[int] = field(default_factory=list)
    entries: list[tuple[str, Obj]] = field(default_factory=list)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def append(self, revision: int, event_type: str, body: Obj) -> None:
        self.revisions.append(revision)
        self.entries.append((event_type, body))
        wakeup, self.wakeup = self.wakeup, asyncio.Event()
        wakeup.set()

    def trim(self, keep: int) -> None:
        if len(self.revisions) > 2 * keep:  # amortised: one slice per `keep` appends
            cut = len(self.revisions) - keep
            self.floor = self.revisions[cut - 1]
            del self.revisions[:cut]
            del self.entries[:cut]


@dataclass(slots=True)
class WriteRecord:
    time: float
    source: str
    method: str
    resource: str
    namespace: str
    name: str
    subresource: str
    code: int
    status_before: str | None = None
    status_after: str | None = None
    ours_changed: bool = False
    involved: tuple[str, str, str] | None = None
    reason: str = ""

    def row(self) -> list[Any]:
        return [
            round(self.time, 6),
            self.source,
            self.method,
            self.resource,
            self.namespace,
            self.name,
            self.subresource,
            self.code,
            self.status_before,
            self.status_after,
            self.ours_changed,
            list(self.involved) if self.involved else None,
            self.reason,
        ]


WRITE_FIELDS = [
    "time",
    "source",
    "method",
    "resource",
    "namespace",
    "name",
    "subresource",
    "code",
    "status_before",
    "status_after",
    "ours_changed",
    "involved",
    "reason",
]


class Store:
    def __init__(self, *, watch_history: int = 1_000_000, keep_events: bool = True) -> None:
        self.revision = 1000
        self.objects: dict[ResourceType, dict[str, dict[str, Obj]]] = {
            rt: {} for rt in RESOURCE_TYPES
        }
        self.counts: dict[ResourceType, int] = dict.fromkeys(RESOURCE_TYPES, 0)
        self.logs: dict[ResourceType, WatchLog] = {}
        self.watch_history = watch_history
        self.keep_events = keep_events
        self.snapshots: dict[str, ListSnapshot] = {}
        self.writes: list[WriteRecord] = []
        self.requests: dict[str, int] = {}
        self.handler_seconds = 0.0
        self.handled = 0
        self.slowest = 0.0
        self.annotated: set[tuple[str, str, str]] = set()  # (kind, namespace, name)

    # ---- storage --------------------------------------------------------------------
    def next_revision(self) -> int:
        self.revision += 1
        return self.revision

    def log_of(self, rt: ResourceType) -> WatchLog:
        log = self.logs.get(rt)
        if log is None:
            log = self.logs[rt] = WatchLog(floor=self.revision)
        return log

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        return self.objects[rt].get(namespace, {}).get(name)

    def _put(self, rt: ResourceType, body: Obj, event_type: str) -> None:
        metadata = body["metadata"]
        namespace = metadata.get("namespace") or ""
        name = metadata["name"]
        bucket = self.objects[rt].setdefault(namespace, {})
        if name not in bucket:
            self.counts[rt] += 1
        bucket[name] = body
        self._track_annotation(rt, namespace, name, body)
        if rt.kind != "Event" or self.keep_events:
            log = self.log_of(rt)
            log.append(int(metadata["resourceVersion"]), event_type, body)
            log.trim(self.watch_history)

    def _remove(self, rt: ResourceType, body: Obj) -> None:
        metadata = body["metadata"]
        namespace = metadata.get("namespace") or ""
        bucket = self.objects[rt].get(namespace, {})
        if bucket.pop(metadata["name"], None) is not None:
            self.counts[rt] -= 1
        self.annotated.discard((rt.kind, namespace, metadata["name"]))
        log = self.log_of(rt)
        log.append(int(metadata["resourceVersion"]), "DELETED", body)
        log.trim(self.watch_history)

    def _track_annotation(self, rt: ResourceType, namespace: str, name: str, body: Obj) -> None:
        if rt.kind in ("Secret", "ServiceAccount"):
            key = (rt.kind, namespace, name)
            if CW_STATUS in _annotations(body):
                self.annotated.add(key)
            else:
                self.annotated.discard(key)

    def _stamp(self, metadata: Obj, *, keep_existing: bool) -> None:
        if not keep_existing or not metadata.get("uid"):
            metadata["uid"] = str(uuid.uuid4())
        metadata["resourceVersion"] = str(self.next_revision())
        if not keep_existing or not metadata.get("creationTimestamp"):
            metadata["creationTimestamp"] = _now()
        metadata.setdefault("generation", 1)

    def preload(self, bodies: Iterable[Obj]) -> int:
        """Store objects as if created earlier: no watch events (call before serving)."""
        count = 0
        for body in bodies:
            rt = BY_KIND[body["kind"]]
            body = dict(body)
            metadata = body["metadata"] = dict(body.get("metadata") or {})
            self._stamp(metadata, keep_existing=True)
            if rt.namespaced:
                metadata.setdefault("namespace", "default")
            else:
                metadata.pop("namespace", None)
            bucket = self.objects[rt].setdefault(metadata.get("namespace") or "", {})
            if metadata["name"] not in bucket:
                self.counts[rt] += 1
            bucket[metadata["name"]] = body
            self._track_annotation(rt, metadata.get("namespace") or "", metadata["name"], body)
            count += 1
        for rt in RESOURCE_TYPES:  # watches start from here on
            self.logs[rt] = WatchLog(floor=self.revision)
        return count

    # ---- reads ----------------------------------------------------------------------
    def iterate(self, rt: ResourceType, namespace: str | None) -> Iterator[Obj]:
        if namespace is not None and rt.namespaced:
            yield from self.objects[rt].get(namespace, {}).values()
            return
        for bucket in self.objects[rt].values():
            yield from bucket.values()

    def list(self, rt: ResourceType, namespace: str | None, params: Mapping[str, str]) -> Obj:
        limit = int(params.get("limit") or 0)
        token = params.get("continue")
        if token:
            try:
                snapshot_id, offset_text = base64.urlsafe_b64decode(token).decode().split(":")
                offset = int(offset_text)
            except ValueError:
                raise ApiFailure(400, "BadRequest", "invalid continue token") from None
            snapshot = self.snapshots.get(snapshot_id)
            if snapshot is None:
                raise ApiFailure(410, "Expired", "the continue token has expired")
        else:
            now = time.monotonic()
            for key in [
                k for k, s in self.snapshots.items() if now - s.created > LIST_SNAPSHOT_TTL
            ]:
                del self.snapshots[key]
            snapshot_id = uuid.uuid4().hex
            snapshot = ListSnapshot(now, self.revision, list(self.iterate(rt, namespace)))
            offset = 0
        end = offset + limit if limit else len(snapshot.items)
        page = snapshot.items[offset:end]
        label_selector = params.get("labelSelector")
        field_selector = params.get("fieldSelector")
        if label_selector or field_selector:
            page = [body for body in page if _selected(body, label_selector, field_selector)]
        metadata: Obj = {"resourceVersion": str(snapshot.revision)}
        if end < len(snapshot.items):
            self.snapshots[snapshot_id] = snapshot
            metadata["continue"] = base64.urlsafe_b64encode(
                f"{snapshot_id}:{end}".encode()
            ).decode()
            metadata["remainingItemCount"] = len(snapshot.items) - end
        else:
            self.snapshots.pop(snapshot_id, None)
        return {
            "apiVersion": rt.api_version,
            "kind": f"{rt.kind}List",
            "metadata": metadata,
            "items": page,
        }

    # ---- writes ---------------------------------------------------------------------
    def create(self, rt: ResourceType, namespace: str | None, body: Obj) -> Obj:
        if not isinstance(body, dict):
            raise ApiFailure(400, "BadRequest", "the body must be an object")
        # a freshly parsed request body: nobody else holds it
        body["apiVersion"] = rt.api_version
        body["kind"] = rt.kind
        metadata = body.setdefault("metadata", {})
        if rt.namespaced:
            metadata["namespace"] = namespace or metadata.get("namespace") or "default"
        else:
            metadata.pop("namespace", None)
        bucket = self.objects[rt].setdefault(metadata.get("namespace") or "", {})
        if not metadata.get("name") and metadata.get("generateName"):
            while True:
                name = metadata["generateName"] + "".join(random.choices(NAME_ALPHABET, k=5))
                if name not in bucket:
                    break
            metadata["name"] = name
        if not metadata.get("name"):
            raise ApiFailure(422, "Invalid", "metadata.name or generateName is required")
        if metadata["name"] in bucket:
            raise ApiFailure(
                409, "AlreadyExists", f'{rt.plural} "{metadata["name"]}" already exists'
            )
        if rt.kind == "Secret" and "stringData" in body:  # as kube-apiserver does
            data = body.setdefault("data", {}) or {}
            for key, value in (body.pop("stringData") or {}).items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            body["data"] = data
        metadata.pop("deletionTimestamp", None)
        self._stamp(metadata, keep_existing=False)
        self._put(rt, body, "ADDED")
        return body

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        subresource: str,
        patch: Any,
        content_type: str,
    ) -> tuple[Obj, Obj]:
        current = self._existing(rt, namespace, name)
        if "json-patch" in content_type:
            if not isinstance(patch, list):
                raise ApiFailure(400, "BadRequest", "a JSON patch must be a list of operations")
            try:
                result = jsonpatch.apply_patch(current, patch)
            except jsonpatch.JsonPatchTestFailed as error:
                raise ApiFailure(422, "Invalid", str(error)) from None
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                raise ApiFailure(422, "Invalid", str(error)) from None
            if subresource == "status":
                result = {**current, "status": result.get("status")}
            elif "status" in rt.subresources:
                result.pop("status", None)
                if "status" in current:
                    result["status"] = current["status"]
        elif "apply-patch" in content_type:
            raise ApiFailure(415, "UnsupportedMediaType", "server-side apply is not emulated")
        else:  # merge patch; a strategic merge patch is treated as one (as kmock does)
            if not isinstance(patch, dict):
                raise ApiFailure(400, "BadRequest", "a merge patch must be an object")
            wanted = (patch.get("metadata") or {}).get("resourceVersion")
            if wanted is not None and wanted != current["metadata"].get("resourceVersion"):
                raise ApiFailure(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {rt.plural} "{name}": the object has '
                    "been modified; please apply your changes to the latest version and try "
                    "again",
                )
            if subresource == "status":
                patch = {"status": patch.get("status")} if "status" in patch else {}
            elif "status" in rt.subresources:
                patch = {key: value for key, value in patch.items() if key != "status"}
            result = merge_patch(current, patch)
            if "spec" in patch and subresource != "status":
                result["metadata"] = {
                    **result["metadata"],
                    "generation": int(current["metadata"].get("generation", 1)) + 1,
                }
        return current, self._replace(rt, current, result)

    def replace(self, rt: ResourceType, namespace: str, name: str, body: Any) -> tuple[Obj, Obj]:
        current = self._existing(rt, namespace, name)
        if not isinstance(body, dict):
            raise ApiFailure(400, "BadRequest", "the body must be an object")
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"].get("resourceVersion"):
            raise ApiFailure(409, "Conflict", f'{rt.plural} "{name}": the object has been modified')
        return current, self._replace(rt, current, body)

    def _existing(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        current = self.get(rt, namespace, name)
        if current is None:
            raise ApiFailure(404, "NotFound", f'{rt.plural} "{name}" not found')
        return current

    def _replace(self, rt: ResourceType, current: Obj, result: Obj) -> Obj:
        old_meta = current["metadata"]
        metadata = dict(result.get("metadata") or {})
        # identity fields stay the server's
        for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
            if key in old_meta:
                metadata[key] = old_meta[key]
            else:
                metadata.pop(key, None)
        metadata.setdefault("generation", old_meta.get("generation", 1))
        metadata["resourceVersion"] = str(self.next_revision())
        result["metadata"] = metadata
        result["apiVersion"], result["kind"] = rt.api_version, rt.kind
        if metadata.get("deletionTimestamp") and not metadata.get("finalizers"):
            self._remove(rt, result)
        else:
            self._put(rt, result, "MODIFIED")
        return result

    def delete(
        self, rt: ResourceType, namespace: str, name: str, options: Any
    ) -> tuple[Obj, Obj | None]:
        current = self._existing(rt, namespace, name)
        metadata = current["metadata"]
        preconditions = (options or {}).get("preconditions") or {}
        for key, title in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = preconditions.get(key)
            if wanted is not None and wanted != metadata.get(key):
                raise ApiFailure(
                    409,
                    "Conflict",
                    f"Precondition failed: {title} in precondition: {wanted}, "
                    f"{title} in object meta: {metadata.get(key)}",
                )
        if metadata.get("finalizers"):
            if metadata.get("deletionTimestamp"):
                return current, current
            marked = {
                **current,
                "metadata": {
                    **metadata,
                    "deletionTimestamp": _now(),
                    "resourceVersion": str(self.next_revision()),
                },
            }
            self._put(rt, marked, "MODIFIED")
            return current, marked
        gone = {**current, "metadata": {**metadata, "resourceVersion": str(self.next_revision())}}
        self._remove(rt, gone)
        return current, None


def _selected(body: Obj, label_selector: str | None, field_selector: str | None) -> bool:
    labels = (body.get("metadata") or {}).get("labels") or {}
    return (not label_selector or match_labels(label_selector, labels)) and (
        not field_selector or match_fields(field_selector, body)
    )


# ---- routing ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str


def parse_path(path: str) -> Target | None:
    """An API path to (resource, namespace, name, subresource); None if not a resource."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        prefix, rest = f"/api/{parts[1]}", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        prefix, rest = f"/apis/{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    namespace: str | None = None
    # /namespaces/NS/<plural>... but /api/v1/namespaces[/NAME[/status]] is the Namespace
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    rt = BY_PATH.get((prefix, rest[0]))
    if rt is None:
        return None
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else ""
    return Target(rt, namespace if rt.namespaced else None, name, subresource)


def discovery(prefix: str) -> Obj | None:
    if prefix == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if prefix == "/apis":
        groups: dict[str, list[str]] = {}
        for rt in RESOURCE_TYPES:
            if rt.group and rt.version not in groups.setdefault(rt.group, []):
                groups[rt.group].append(rt.version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                    "preferredVersion": {
                        "groupVersion": f"{group}/{versions[0]}",
                        "version": versions[0],
                    },
                }
                for group, versions in groups.items()
            ],
        }
    served = [rt for rt in RESOURCE_TYPES if rt.prefix == prefix]
    if not served:
        return None
    resources: list[Obj] = []
    for rt in served:
        resources.append(
            {
                "name": rt.plural,
                "singularName": rt.kind.lower(),
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ALL_VERBS,
            }
        )
        for subresource in rt.subresources:
            resources.append(
                {
                    "name": f"{rt.plural}/{subresource}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": served[0].api_version,
        "resources": resources,
    }


class ApiServer:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, shutdown_timeout=0.5
        )
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.url = f"http://{host}:{sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        store = self.store
        method = request.method
        try:
            if request.path.startswith("/bench/"):
                return await self._bench(request)
            target = parse_path(request.path)
            if target is None:
                body = discovery(request.path.rstrip("/"))
                if body is None or method != "GET":
                    if request.path.rstrip("/") == "/version":
                        return web.json_response({"major": "1", "minor": "34"})
                    raise ApiFailure(404, "NotFound", f"the server could not find {request.path}")
                return _json(200, body)
            verb = method
            if method == "GET" and target.name is None:
                verb = "WATCH" if request.query.get("watch") in ("true", "1") else "LIST"
            store.requests[verb] = store.requests.get(verb, 0) + 1
            if verb == "WATCH":
                return await self._watch(request, target)
            return await self._serve(request, target)
        except ApiFailure as failure:
            if method in ("POST", "PATCH", "PUT", "DELETE") and not request.path.startswith(
                "/bench/"
            ):
                self._record_failure(request, failure.code)
            return _json(failure.code, failure.status())
        finally:
            elapsed = time.perf_counter() - started
            if request.query.get("watch") not in ("true", "1"):
                store.handler_seconds += elapsed
                store.handled += 1
                store.slowest = max(store.slowest, elapsed)

    def _record_failure(self, request: web.Request, code: int) -> None:
        target = parse_path(request.path)
        if target is None:
            return
        self.store.writes.append(
            WriteRecord(
                time=time.time(),
                source=_source(request),
                method=request.method,
                resource=target.rt.plural,
                namespace=target.namespace or "",
                name=target.name or "",
                subresource=target.subresource,
                code=code,
            )
        )

    async def _serve(self, request: web.Request, target: Target) -> web.StreamResponse:
        store = self.store
        rt, method = target.rt, request.method
        namespace = target.namespace or ""
        if method == "GET":
            if target.name is None:
                return _json(200, store.list(rt, target.namespace, request.query))
            found = store.get(rt, namespace, target.name)
            if found is None:
                raise ApiFailure(404, "NotFound", f'{rt.plural} "{target.name}" not found')
            return _json(200, found)
        payload = await _payload(request)
        record = WriteRecord(
            time=time.time(),
            source=_source(request),
            method=method,
            resource=rt.plural,
            namespace=namespace,
            name=target.name or "",
            subresource=target.subresource,
            code=200,
        )
        before: Obj | None = None
        after: Obj | None
        if method == "POST" and target.name is None:
            after = store.create(rt, target.namespace, payload)
            record.code = 201
            record.name = after["metadata"]["name"]
            if rt.kind == "Event":
                involved = after.get("involvedObject") or {}
                record.involved = (
                    str(involved.get("kind", "")),
                    str(involved.get("namespace", "")),
                    str(involved.get("name", "")),
                )
                record.reason = str(after.get("reason", ""))
        elif method == "PATCH" and target.name:
            content_type = request.headers.get("Content-Type", "")
            before, after = store.patch(
                rt, namespace, target.name, target.subresource, payload, content_type
            )
        elif method == "PUT" and target.name:
            before, after = store.replace(rt, namespace, target.name, payload)
        elif method == "DELETE" and target.name:
            before, after = store.delete(rt, namespace, target.name, payload)
        else:
            raise ApiFailure(405, "MethodNotAllowed", f"{method} {request.path}")
        status_before = _annotations(before).get(CW_STATUS) if before else None
        status_after = _annotations(after).get(CW_STATUS) if after else None
        record.status_before, record.status_after = status_before, status_after
        record.ours_changed = _ours(before or {}) != _ours(after or {})
        store.writes.append(record)
        if after is None:  # deleted: Kubernetes answers with a Status
            return _json(200, {"apiVersion": "v1", "kind": "Status", "status": "Success"})
        return _json(record.code, after)

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        store = self.store
        rt = target.rt
        params = request.query
        label_selector = params.get("labelSelector")
        field_selector = params.get("fieldSelector")
        bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(params.get("timeoutSeconds") or 1800)
        since_text = params.get("resourceVersion") or ""
        namespace = target.namespace
        log = store.log_of(rt)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        lines: list[str] = []
        if not since_text or since_text == "0" or params.get("sendInitialEvents") == "true":
            # no resourceVersion: the current state as ADDED events, then what follows
            since = store.revision
            for body in store.iterate(rt, namespace):
                if _selected(body, label_selector, field_selector):
                    lines.append(_dumps({"type": "ADDED", "object": body}))
            if params.get("sendInitialEvents") == "true":
                lines.append(_bookmark(rt, since, initial_end=True))
            if lines:
                await response.write(("\n".join(lines) + "\n").encode())
                lines = []
        else:
            try:
                since = int(since_text)
            except ValueError:
                raise ApiFailure(400, "BadRequest", "invalid resourceVersion") from None
        if since < log.floor:
            gone = {
                "type": "ERROR",
                "object": ApiFailure(410, "Expired", "too old resource version").status(),
            }
            await response.write((_dumps(gone) + "\n").encode())
            return response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        position = bisect.bisect_right(log.revisions, since)
        trimmed_floor = log.floor
        last_sent = loop.time()
        while True:
            wakeup = log.wakeup
            if log.floor != trimmed_floor:  # the log was trimmed: find our place again
                trimmed_floor = log.floor
                position = bisect.bisect_right(log.revisions, since)
            revisions, entries = log.revisions, log.entries
            while position < len(entries):
                event_type, body = entries[position]
                since = revisions[position]
                position += 1
                metadata = body["metadata"]
                if namespace is not None and metadata.get("namespace") != namespace:
                    continue
                if _selected(body, label_selector, field_selector):
                    lines.append(_dumps({"type": event_type, "object": body}))
                if len(lines) >= 200:
                    break
            if lines:
                try:
                    await response.write(("\n".join(lines) + "\n").encode())
                except ConnectionResetError:
                    return response
                lines = []
                last_sent = loop.time()
                continue
            now = loop.time()
            if now >= deadline:
                return response
            if bookmarks and now - last_sent >= BOOKMARK_EVERY:
                await response.write((_bookmark(rt, store.revision) + "\n").encode())
                last_sent = now
            # at most a second: aiohttp does not cancel a handler whose client went away
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), min(deadline - now, 1.0))
            if request.transport is None or request.transport.is_closing():
                return response

    # ---- the benchmark's own endpoints -------------------------------------------------
    async def _bench(self, request: web.Request) -> web.StreamResponse:
        store = self.store
        if request.path == "/bench/writes":
            after = int(request.query.get("after") or 0)
            limit = int(request.query.get("limit") or 200_000)
            rows = [record.row() for record in store.writes[after : after + limit]]
            return _json(200, {"fields": WRITE_FIELDS, "next": after + len(rows), "rows": rows})
        if request.path == "/bench/summary":
            handled = max(1, store.handled)
            return _json(
                200,
                {
                    "revision": store.revision,
                    "objects": {rt.kind: n for rt, n in store.counts.items() if n},
                    "annotated": {
                        kind: sum(1 for key in store.annotated if key[0] == kind)
                        for kind in ("Secret", "ServiceAccount")
                    },
                    "writes": len(store.writes),
                    "requests": dict(store.requests),
                    "handler_mean_ms": round(1000 * store.handler_seconds / handled, 4),
                    "handler_slowest_ms": round(1000 * store.slowest, 3),
                    "handled": store.handled,
                },
            )
        if request.path == "/bench/object":
            rt = BY_KIND[request.query["kind"]]
            found = store.get(rt, request.query.get("namespace", ""), request.query["name"])
            if found is None:
                raise ApiFailure(404, "NotFound", "no such object")
            return _json(200, {"metadata": found["metadata"]})  # never the data
        raise ApiFailure(404, "NotFound", request.path)


def _bookmark(rt: ResourceType, revision: int, *, initial_end: bool = False) -> str:
    metadata: Obj = {"resourceVersion": str(revision)}
    if initial_end:
        metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
    return _dumps(
        {
            "type": "BOOKMARK",
            "object": {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": metadata},
        }
    )


def _source(request: web.Request) -> str:
    marked = request.headers.get(SOURCE_HEADER)
    if marked:
        return marked
    agent = request.headers.get("User-Agent", "")
    return agent.split("/")[0].split(" ")[0] or "unknown"


async def _payload(request: web.Request) -> Any:
    if not request.body_exists:
        return None
    text = await request.text()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise ApiFailure(400, "BadRequest", "the body is not JSON") from None


def _json(code: int, body: Any) -> web.Response:
    return web.Response(status=code, text=_dumps(body), content_type="application/json")


# ---- synthetic clusters -------------------------------------------------------------
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")


def _shift_value(value: str, delta: timedelta) -> str:
    if _TIMESTAMP.match(value):
        moment = datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        return (moment + delta).strftime("%Y-%m-%dT%H:%M:%SZ")
    if _DATE.match(value):
        moment = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        return (moment + timedelta(days=round(delta / timedelta(days=1)))).strftime("%Y-%m-%d")
    return value


def retime(body: Obj, delta: timedelta) -> None:
    """Shift the timestamps of an object's metadata (creation, managedFields, dated
    annotations) by `delta`, in place, so that a cluster generated for a fixed `now`
    holds the same ages relative to the wall clock. Data (certificates) is not changed."""
    metadata = body.get("metadata") or {}
    if "creationTimestamp" in metadata:
        metadata["creationTimestamp"] = _shift_value(metadata["creationTimestamp"], delta)
    for entry in metadata.get("managedFields") or []:
        if isinstance(entry.get("time"), str):
            entry["time"] = _shift_value(entry["time"], delta)
    for group in ("annotations", "labels"):
        values = metadata.get(group)
        if values:
            for key, value in values.items():
                if isinstance(value, str) and value[:2] in ("19", "20"):
                    values[key] = _shift_value(value, delta)


def crd_objects() -> list[Obj]:
    return [yaml.safe_load(path.read_text()) for path in sorted(CRD_DIR.glob("*.yaml"))]


def synthetic_objects(size: int, *, at_wall_clock: bool) -> list[Obj]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import synthetic

    snapshot = synthetic.generate(size)
    objects = snapshot.objects()
    if at_wall_clock:
        delta = datetime.now(UTC).replace(microsecond=0) - synthetic.NOW
        for body in objects:
            retime(body, delta)
    return objects


async def serve(args: argparse.Namespace) -> None:
    store = Store(watch_history=args.watch_history, keep_events=not args.discard_events)
    started = time.perf_counter()
    objects: list[Obj] = crd_objects()
    if args.synthetic:
        objects += synthetic_objects(args.synthetic, at_wall_clock=args.retime)
    loaded = store.preload(objects)
    del objects
    server = ApiServer(store)
    url = await server.start(args.host, args.port)
    print(
        _dumps({"url": url, "objects": loaded, "load_seconds": time.perf_counter() - started}),
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--synthetic", type=int, default=0, help="credentials to preload")
    parser.add_argument(
        "--retime",
        action="store_true",
        help="shift the synthetic cluster's timestamps from its fixed `now` to the wall clock",
    )
    parser.add_argument("--watch-history", type=int, default=1_000_000)
    parser.add_argument("--discard-events", action="store_true", help="log Event writes only")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
