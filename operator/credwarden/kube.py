"""A small Kubernetes API client for the operator's own writes.

kopf has no public client for objects other than the one a handler handles, and the
official `kubernetes` package costs more memory than the rest of the operator. This one
is aiohttp (already kopf's) with the credentials kopf logs in with, a client-side rate
limit, and retries on the failures a real API server produces (429 with Retry-After,
5xx, timeouts, dropped connections). A 409 is never retried here: the caller re-reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

FIELD_MANAGER = "credwarden"
USER_AGENT = "credwarden"
MERGE_PATCH = "application/merge-patch+json"
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"{method} {path}: {status} {message}")
        self.status = status


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """The object changed (resourceVersion) or is not the one meant (uid precondition)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where and how to connect; built from kopf's ConnectionInfo."""

    server: str
    headers: Mapping[str, str]
    ssl_context: ssl.SSLContext | bool | None


def credentials_from(info: Any) -> Credentials:
    """From a kopf.ConnectionInfo (duck-typed so this module does not import kopf)."""
    context = info.as_ssl_context() if info.server.startswith("https") else None
    return Credentials(info.server.rstrip("/"), dict(info.as_http_headers()), context)


# set while carrying out background work (the backlog of a first start): its requests
# give way to every other request waiting for the rate limit
_background = contextvars.ContextVar("credwarden_background_requests", default=False)


@contextlib.contextmanager
def background() -> Iterator[None]:
    """Requests made inside this block (in this task) wait for their token behind the
    others: fresh writes, watches and status writes are not queued behind a backlog."""
    token = _background.set(True)
    try:
        yield
    finally:
        _background.reset(token)


class RateLimiter:
    """A token bucket: `qps` requests per second on average, bursts up to `burst`.

    Waiting requests get tokens first come, first served, except background ones
    (`background()`): only one of those queues for a token at a time, so any other
    request waits behind at most one of them."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._last = time.monotonic()
        self._lock = asyncio.Lock()
        self._background_turn = asyncio.Lock()

    async def acquire(self) -> None:
        if self.qps <= 0:
            return
        if _background.get():
            async with self._background_turn:
                await self._take()
        else:
            await self._take()

    async def _take(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.qps)


ErrorHook = Callable[[str, str], None]  # (verb, status code or error kind)
Relogin = Callable[[], Awaitable[Credentials | None]]


class KubeClient:
    def __init__(
        self,
        *,
        qps: float = 20.0,
        burst: int = 50,
        backoffs: tuple[float, ...] = (0.5, 1, 2, 4, 8),
        timeout: float = 30.0,
        on_error: ErrorHook | None = None,
    ) -> None:
        self.credentials: Credentials | None = None
        self.limiter = RateLimiter(qps, burst)
        self.backoffs = backoffs
        self.timeout = timeout
        self.on_error = on_error
        # fresh credentials after a 401 (a rotated ServiceAccount token, an expired one)
        self.relogin: Relogin | None = None
        self.requests = 0
        self.last_success: float | None = None
        self._session: aiohttp.ClientSession | None = None

    async def login(self, credentials: Credentials) -> None:
        """Take new credentials (kopf re-logs in after a 401 or an expiry)."""
        if credentials != self.credentials:
            await self.close()
            self.credentials = credentials

    @property
    def session(self) -> aiohttp.ClientSession:
        if self.credentials is None:
            raise RuntimeError("no credentials yet: the login handler has not run")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={**self.credentials.headers, "User-Agent": USER_AGENT},
                connector=aiohttp.TCPConnector(ssl=self.credentials.ssl_context or False),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
        parse: bool = True,
    ) -> Any:
        """The response's JSON body, or None without `parse` (a write whose result the
        caller ignores: parsing a whole Secret per annotation or Event was most of the
        operator's transient garbage on a first start)."""
        attempts = len(self.backoffs) + 1
        relogged = False
        for attempt in range(attempts):
            await self.limiter.acquire()
            self.requests += 1
            retry_after: float | None = None
            try:
                session = self.session  # raises when not logged in yet
                assert self.credentials is not None
                async with session.request(
                    method,
                    f"{self.credentials.server}{path}",
                    data=None if body is None else json.dumps(body),
                    headers={"Content-Type": content_type, "Accept": "application/json"},
                    params=params,
                ) as response:
                    if response.status < 400:
                        self.last_success = time.monotonic()
                        if not parse:
                            await response.release()
                            return None
                        text = await response.text()
                        return json.loads(text) if text else None
                    text = await response.text()
                    message = _status_message(text)
                    self._error(method, str(response.status))
                    if response.status == 401 and self.relogin is not None and not relogged:
                        relogged = True
                        fresh = await self.relogin()
                        if fresh is not None:
                            await self.login(fresh)
                            continue
                    if response.status == 404:
                        raise NotFound(404, method, path, message)
                    if response.status == 409:
                        raise Conflict(409, method, path, message)
                    if response.status not in RETRIED_STATUSES or attempt == attempts - 1:
                        raise ApiError(response.status, method, path, message)
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientConnectionError, TimeoutError) as error:
                self._error(method, type(error).__name__)
                if attempt == attempts - 1:
                    raise ApiError(0, method, path, f"{type(error).__name__}: {error}") from None
            delay = self.backoffs[attempt] * (0.8 + 0.4 * random.random())
            # Retry-After is the server's minimum, not a suggestion
            await asyncio.sleep(max(delay, retry_after or 0.0))
        raise AssertionError("unreachable")

    def _error(self, method: str, code: str) -> None:
        if self.on_error is not None:
            self.on_error(method.lower(), code)

    # ---- the operations credwarden performs -------------------------------------------
    async def get(self, path: str) -> Any:
        return await self.request("GET", path)

    async def merge_patch(self, path: str, patch: Mapping[str, Any], *, parse: bool = True) -> Any:
        return await self.request(
            "PATCH",
            path,
            body=patch,
            content_type=MERGE_PATCH,
            params={"fieldManager": FIELD_MANAGER},
            parse=parse,
        )

    async def annotate(
        self,
        path: str,
        annotations: Mapping[str, str | None],
        *,
        resource_version: str | None = None,
        parse: bool = True,
    ) -> Any:
        """Set (or, with None, remove) annotations; with a resourceVersion lock if given."""
        metadata: dict[str, Any] = {"annotations": dict(annotations)}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        return await self.merge_patch(path, {"metadata": metadata}, parse=parse)

    async def delete(
        self, path: str, *, uid: str | None = None, resource_version: str | None = None
    ) -> Any:
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        preconditions = {
            key: value
            for key, value in (("uid", uid), ("resourceVersion", resource_version))
            if value
        }
        if preconditions:
            options["preconditions"] = preconditions
        return await self.request("DELETE", path, body=options)

    async def post_event(
        self,
        involved: Mapping[str, str],
        *,
        type_: str,
        reason: str,
        message: str,
        instance: str = "",
    ) -> None:
        """A core/v1 Event, named as client-go names them (no generateName round trip)."""
        # Events of cluster-scoped objects go to `default`, as kubectl looks for them there
        namespace = involved.get("namespace") or "default"
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{involved['name']}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": dict(involved),
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": "credwarden.io/operator",
            "reportingInstance": instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        await self.request("POST", f"/api/v1/namespaces/{namespace}/events", body=body, parse=False)


def _status_message(text: str) -> str:
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:200]
    message = parsed.get("message") if isinstance(parsed, dict) else None
    if isinstance(message, str):
        return message[:500]
    return text[:200]


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def involved_object(key: Any, uid: str, resource_version: str | None = None) -> dict[str, str]:
    """An Event's involvedObject for a Secret or ServiceAccount (a CredentialKey)."""
    involved = {
        "apiVersion": "v1",
        "kind": key.kind,
        "namespace": key.namespace,
        "name": key.name,
        "uid": uid,
    }
    if resource_version is not None:
        involved["resourceVersion"] = resource_version
    return involved


def path_of(kind: str, namespace: str, name: str, subresource: str = "") -> str:
    """The API path of an object credwarden writes to."""
    plural, prefix = RESOURCE_PATHS[kind]
    scope = f"/namespaces/{namespace}" if namespace else ""
    suffix = f"/{subresource}" if subresource else ""
    return f"{prefix}{scope}/{plural}/{name}{suffix}"


RESOURCE_PATHS = {
    "Secret": ("secrets", "/api/v1"),
    "ServiceAccount": ("serviceaccounts", "/api/v1"),
    "Deployment": ("deployments", "/apis/apps/v1"),
    "StatefulSet": ("statefulsets", "/apis/apps/v1"),
    "DaemonSet": ("daemonsets", "/apis/apps/v1"),
    "CredentialPolicy": ("credentialpolicies", "/apis/credwarden.io/v1alpha1"),
    "ClusterCredentialPolicy": ("clustercredentialpolicies", "/apis/credwarden.io/v1alpha1"),
}
