"""List, then watch, every kind credwarden reads: the inventory is the only per-object state.

Why not kopf's watches for these kinds (kopf 1.45.2): kopf holds every handler until each
object of every kind that has an `@kopf.index` is indexed, and every object's index toggle
wakes every waiting worker. That is O(N²) at start (a kopf-idiomatic operator took 62 s on
2,000 credentials before its first handler ran), and with `worker_limit` set, a kind with
more objects than worker slots never becomes ready at all (nolar/kopf#1243: 250 Secrets
with worker_limit=200 stayed unready). kopf also keeps a ResourceMemory for every object.

So each kind is read the way client-go's reflector reads it:
- a LIST in pages of `page_size`, then a WATCH from the list's resourceVersion, with
  bookmarks;
- a watch that ends (the server's timeout, a dropped connection) resumes from the last
  resourceVersion seen, without listing again;
- 410 Gone (that version was compacted away) lists again, and every object of the kind
  that the new list lacks is forgotten: it was deleted while no watch ran;
- a kind whose API is not served (the policy CRDs not installed yet) counts as listed and
  empty, and is listed again every `retry_missing` seconds;
- any other failure backs off and tries again (the client retries 5xx, 429 and timeouts
  of single requests itself).
kopf still runs the operator around this: logins (kubeconfig, in-cluster token, relogin
after a 401), signals and shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from credwarden.kube import ApiError, KubeClient, NotFound

log = logging.getLogger("credwarden.informer")

Body = Mapping[str, Any]
ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds


class Gone(Exception):
    """The resourceVersion to watch from is too old (410): list again."""


@dataclass(frozen=True)
class WatchedKind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    def path(self, namespace: str = "") -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        scope = f"/namespaces/{namespace}" if namespace else ""
        return f"{prefix}{scope}/{self.plural}"


@dataclass
class Informer:
    """Keeps one kind's objects flowing into `on_object` / `on_deleted`."""

    client: KubeClient
    watched: WatchedKind
    on_object: Callable[[str, Body], None]
    on_deleted: Callable[[str, Body], None]
    # the (namespace, name) keys of this kind that the consumer holds, for the diff after
    # a re-list
    known: Callable[[str], Iterable[ObjectKey]]
    # one namespace's objects only ("": the whole cluster)
    namespace: str = ""
    listed: asyncio.Event = field(default_factory=asyncio.Event)
    page_size: int = 500
    watch_seconds: int = 600
    backoffs: tuple[float, ...] = (0.5, 1, 2, 4, 8, 16, 30)
    retry_missing: float = 30.0
    # counters for metrics and tests
    lists: int = 0
    watches: int = 0
    events: int = 0

    @property
    def path(self) -> str:
        return self.watched.path(self.namespace)

    async def run(self) -> None:
        resource_version: str | None = None
        failures = 0
        while True:
            try:
                if resource_version is None:
                    resource_version = await self._list()
                    self.listed.set()
                resource_version = await self._watch(resource_version)
                failures = 0
            except Gone:
                log.info("%s: resourceVersion too old; listing again", self.watched.kind)
                resource_version = None
            except NotFound:
                # the API is not served (e.g. the CRDs are not installed): nothing to read
                if not self.listed.is_set():
                    log.warning(
                        "%s: %s is not served; treating it as empty and retrying every %gs",
                        self.watched.kind,
                        self.path,
                        self.retry_missing,
                    )
                self.listed.set()
                resource_version = None
                await asyncio.sleep(self.retry_missing)
            except (ApiError, aiohttp.ClientError, TimeoutError, ValueError) as error:
                delay = self.backoffs[min(failures, len(self.backoffs) - 1)]
                failures += 1
                log.warning(
                    "%s: %s; again in %.1fs",
                    self.watched.kind,
                    _describe(error),
                    delay,
                )
                await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))

    # ---- list -----------------------------------------------------------------------
    async def _list(self) -> str:
        """One full, paged listing; forget what it no longer holds. The list's version."""
        self.lists += 1
        kind = self.watched.kind
        seen: set[ObjectKey] = set()
        token = ""
        while True:
            params = {"limit": str(self.page_size)}
            if token:
                params["continue"] = token
            try:
                page = await self.client.request("GET", self.path, params=params)
            except ApiError as error:
                if error.status == 410:  # the continue token expired: start over
                    raise Gone from None
                raise
            metadata = _mapping(page.get("metadata"))
            for item in page.get("items") or ():
                if not isinstance(item, dict):
                    continue
                seen.add(_key(item))
                self.on_object(kind, item)
            token = str(metadata.get("continue") or "")
            if not token:
                break
        held = self.known(kind)
        if self.namespace:
            held = [key for key in held if key[0] == self.namespace]
        for namespace, name in [key for key in held if key not in seen]:
            self.on_deleted(kind, {"metadata": {"namespace": namespace, "name": name}})
        return str(metadata.get("resourceVersion") or "")

    # ---- watch ----------------------------------------------------------------------
    async def _watch(self, resource_version: str) -> str:
        """Follow changes from `resource_version` until the stream ends; the last version."""
        self.watches += 1
        kind = self.watched.kind
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.watch_seconds),
        }
        if resource_version:
            params["resourceVersion"] = resource_version
        async for event in self._stream(params):
            kind_of_event = event.get("type")
            body = _mapping(event.get("object"))
            if kind_of_event == "ERROR":
                if body.get("code") == 410:
                    raise Gone
                raise ApiError(int(body.get("code") or 0), "WATCH", self.path, "")
            version = _mapping(body.get("metadata")).get("resourceVersion")
            if version:
                resource_version = str(version)
            if kind_of_event == "BOOKMARK":
                continue
            self.events += 1
            if kind_of_event == "DELETED":
                self.on_deleted(kind, body)
            elif kind_of_event in ("ADDED", "MODIFIED"):
                self.on_object(kind, body)
        return resource_version

    async def _stream(self, params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The watch's events, one JSON document per line (lines can exceed aiohttp's
        64 KiB readline limit: a Secret holds up to 1 MiB)."""
        client = self.client
        await client.limiter.acquire()
        client.requests += 1
        credentials = client.credentials
        if credentials is None:
            raise ApiError(0, "WATCH", self.path, "not logged in yet")
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=30, sock_read=self.watch_seconds + 60
        )
        async with client.session.get(
            f"{credentials.server}{self.path}",
            params=params,
            headers={"Accept": "application/json"},
            timeout=timeout,
        ) as response:
            if response.status == 401 and client.relogin is not None:
                fresh = await client.relogin()
                if fresh is not None:
                    await client.login(fresh)
            if response.status == 410:
                raise Gone
            if response.status == 404:
                raise NotFound(404, "WATCH", self.path, "")
            if response.status >= 400:
                text = await response.text()
                raise ApiError(response.status, "WATCH", self.path, text[:200])
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        event = json.loads(line)
                        if isinstance(event, dict):
                            yield event


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _key(body: Body) -> ObjectKey:
    metadata = _mapping(body.get("metadata"))
    return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


def _describe(error: BaseException) -> str:
    if isinstance(error, ApiError):
        return f"HTTP {error.status} from the API" + (f": {error}" if str(error) else "")
    return f"{type(error).__name__}: {error}"
