"""An in-process Kubernetes API for `credwarden demo` and the tests.

kmock's KubernetesEmulator (by kopf's author) serves the Kubernetes HTTP API from memory.
`ClusterEmulator` adds, in this one place, the API-server behaviour credwarden relies on
and kmock 0.8 leaves out. Each addition names what Kubernetes does:

- create assigns metadata.uid, resourceVersion, creationTimestamp and generation, and
  turns generateName into a unique name (kube-apiserver does; kmock stores bodies as sent);
- every write bumps resourceVersion (etcd's revision), and generation on spec changes;
- a merge patch that carries a stale metadata.resourceVersion is refused with 409
  (optimistic concurrency), as is a DELETE whose preconditions (uid, resourceVersion) fail;
- a failed JSON-patch `test` op is 422 Invalid (kmock answers 500);
- LIST and WATCH honour labelSelector and fieldSelector, LIST returns a numeric
  resourceVersion, and WATCH from a resourceVersion does not replay what the client has
  already seen (kmock replays every object as ADDED on each connection);
- writes from `fail()` are refused *before* any change, as a real server's errors are
  (kmock's own reactions answer after the write has been applied);
- `/api/v1/namespaces` and `/api/v1/namespaces/NAME` address Namespaces (kmock 0.8
  parses them as a namespace prefix and fails).

Research notes with evidence: shared/notes/kopf-and-kmock.md.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import attrs
import jsonpatch
import kmock
from kmock._internal import enums, parsing

_kmock_parse_path = parsing.parse_path


def _parse_path(path: str) -> Any:
    """kmock 0.8 reads `/api/v1/namespaces[/NAME]` as the prefix of a namespaced path and
    fails; Kubernetes serves the Namespace resource itself there (list, get, and the
    `status`/`finalize` subresources)."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and (
        len(parts) <= 4 or (len(parts) == 5 and parts[4] in ("status", "finalize"))
    ):
        name = parts[3] if len(parts) > 3 else None
        subresource = parts[4] if len(parts) > 4 else None
        return parsing.ParsedPath("", "v1", "namespaces", None, name, subresource)
    return _kmock_parse_path(path)


parsing.parse_path = _parse_path

# as in k8s.io/apiserver/pkg/storage/names: no vowels, no confusable characters
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
ALL_VERBS = frozenset(
    {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
)


def _info(kind: str, namespaced: bool, subresources: Iterable[str] = ()) -> kmock.ResourceInfo:
    return kmock.ResourceInfo(
        kind=kind,
        singular=kind.lower(),
        namespaced=namespaced,
        verbs=set(ALL_VERBS),
        subresources=set(subresources),
    )


# What kopf discovers. v1/namespaces is needed even cluster-wide: kopf's namespace
# observer waits for it before any watch starts; v1/events for posting events.
RESOURCES: dict[str, tuple[str, bool, tuple[str, ...]]] = {
    "v1/namespaces": ("Namespace", False, ()),
    "v1/events": ("Event", True, ()),
    "v1/secrets": ("Secret", True, ()),
    "v1/serviceaccounts": ("ServiceAccount", True, ("token",)),
    "v1/pods": ("Pod", True, ("status",)),
    "apps/v1/deployments": ("Deployment", True, ("status", "scale")),
    "apps/v1/statefulsets": ("StatefulSet", True, ("status", "scale")),
    "apps/v1/daemonsets": ("DaemonSet", True, ("status",)),
    "batch/v1/jobs": ("Job", True, ("status",)),
    "batch/v1/cronjobs": ("CronJob", True, ("status",)),
    "rbac.authorization.k8s.io/v1/rolebindings": ("RoleBinding", True, ()),
    "rbac.authorization.k8s.io/v1/clusterrolebindings": ("ClusterRoleBinding", False, ()),
    "coordination.k8s.io/v1/leases": ("Lease", True, ()),
    "credwarden.io/v1alpha1/credentialpolicies": ("CredentialPolicy", True, ("status",)),
    "credwarden.io/v1alpha1/clustercredentialpolicies": (
        "ClusterCredentialPolicy",
        False,
        ("status",),
    ),
    # owners credwarden asks for a refresh instead of rotating their Secrets
    "external-secrets.io/v1/externalsecrets": ("ExternalSecret", True, ("status",)),
    "cert-manager.io/v1/certificates": ("Certificate", True, ("status",)),
    "kopf.dev/v1/clusterkopfpeerings": ("ClusterKopfPeering", False, ()),
    "kopf.dev/v1/kopfpeerings": ("KopfPeering", True, ()),
}
KIND_TO_RESOURCE = {kind: resource for resource, (kind, _, _) in RESOURCES.items()}


class _DropWatch(Exception):
    """Put into a watch bus: every open watch of that resource ends (after a 410 if gone)."""

    def __init__(self, gone: bool = False) -> None:
        super().__init__()
        self.gone = gone


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conflict(message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=409, reason="Conflict", message=message)


_COMMAS = re.compile(r",(?![^()]*\))")  # commas outside parentheses


def match_labels(selector: str, labels: dict[str, str]) -> bool:
    """The label selector syntax: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b)."""
    for term in filter(None, (t.strip() for t in _COMMAS.split(selector))):
        if found := re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term):
            key, operator, values = found.groups()
            allowed = {value.strip() for value in values.split(",")}
            if (operator == "in") != (key in labels and labels[key] in allowed):
                return False
        elif found := re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)", term):
            key, operator, value = found.groups()
            if (operator == "!=") == (labels.get(key) == value):
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def match_fields(selector: str, body: dict[str, Any]) -> bool:
    """Field selectors: a.b=v, a.b==v, a.b!=v."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        found = re.fullmatch(r"([\w.]+)\s*(==|=|!=)\s*(.*)", term)
        if not found:
            raise kmock.KubernetesError(
                status=400, reason="BadRequest", message=f"invalid field selector {term!r}"
            )
        path, operator, value = found.groups()
        current: Any = body
        for part in path.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if (operator == "!=") == (str(current if current is not None else "") == value):
            return False
    return True


@attrs.define(kw_only=True)
class ClusterEmulator(kmock.KubernetesEmulator):
    _revisions: Any = attrs.field(factory=lambda: itertools.count(1000), init=False)
    _last_revision: int = attrs.field(default=999, init=False)
    _faults: list[list[Any]] = attrs.field(factory=list, init=False)
    _frozen: set[str] = attrs.field(factory=set, init=False)

    def declare_resources(self) -> None:
        for resource, (kind, namespaced, subresources) in RESOURCES.items():
            # ResourceInfo is mutable: each emulator gets its own copies
            self.resources[resource] = copy.deepcopy(_info(kind, namespaced, subresources))

    def next_revision(self) -> str:
        self._last_revision = next(self._revisions)
        return str(self._last_revision)

    def preload(self, body: dict[str, Any]) -> None:
        """Store an object as if it had been created (no watch event: call before starting)."""
        resource = KIND_TO_RESOURCE[body["kind"]]
        body = copy.deepcopy(body)
        metadata = body.setdefault("metadata", {})
        self._stamp(metadata, keep_existing=True)
        self.objects[resource, metadata.get("namespace"), metadata["name"]] = body

    def fail(self, predicate: Callable[[kmock.Request], bool], *responses: Any) -> None:
        """Answer the next matching requests with these errors, before any state change.

        Items are exceptions (kmock.KubernetesError(status=500)) or kmock.Response objects.
        """
        self._faults.append([predicate, list(responses)])

    def freeze_watches(self, resource: str, frozen: bool = True) -> None:
        """Open watches of a resource stay connected but deliver nothing: the silently
        stalled stream seen in production (nolar/kopf#585, #957)."""
        (self._frozen.add if frozen else self._frozen.discard)(str(kmock.resource(resource)))

    async def drop_watches(self, resource: str, *, gone: bool = False) -> None:
        """End every open watch of a resource; with gone=True, with a 410 Gone first."""
        await self._buses[kmock.resource(resource)].put(_DropWatch(gone))

    # ---- writes ---------------------------------------------------------------------
    async def _handle(self, request: kmock.Request) -> Any:
        for fault in self._faults:
            predicate, queue = fault
            if queue and predicate(request):
                item = queue.pop(0)
                if isinstance(item, BaseException):
                    raise item
                return await item(request)
        if request.resource is not None and request.action == enums.action.CREATE:
            self._prepare_create(request)
        elif request.resource is not None and request.action == enums.action.UPDATE:
            self._prepare_update(request)
        elif request.resource is not None and request.action == enums.action.DELETE:
            await self._prepare_delete(request)
        try:
            return await super()._handle(request)
        except jsonpatch.JsonPatchTestFailed as error:
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(error)) from None

    def _stamp(self, metadata: dict[str, Any], *, keep_existing: bool = False) -> None:
        if not keep_existing or not metadata.get("uid"):
            metadata["uid"] = str(uuid.uuid4())
        metadata["resourceVersion"] = self.next_revision()
        if not keep_existing or not metadata.get("creationTimestamp"):
            metadata["creationTimestamp"] = _now()
        metadata.setdefault("generation", 1)

    def _current(self, request: kmock.Request) -> Any:
        objects: Any = self.objects  # kmock's key types are narrower than what it accepts
        key = (request.resource, request.namespace, request.name)
        found = objects[key] if key in objects else None  # noqa: SIM401 (no .get on it)
        return None if found is None or found.deleted else found

    def _prepare_create(self, request: kmock.Request) -> None:
        # request.data is changed in place: kmock matches requests by identity
        objects: Any = self.objects
        resource: Any = request.resource
        data: Any = request.data
        metadata = data.setdefault("metadata", {})
        if request.namespace and not metadata.get("namespace"):
            metadata["namespace"] = request.namespace
        if not metadata.get("name") and metadata.get("generateName"):
            while True:
                name = metadata["generateName"] + "".join(random.choices(NAME_ALPHABET, k=5))
                if (resource, metadata.get("namespace"), name) not in objects:
                    break
            metadata["name"] = name
        if not metadata.get("name"):
            raise kmock.KubernetesError(
                status=422, reason="Invalid", message="metadata.name or generateName is required"
            )
        key = (resource, metadata.get("namespace"), metadata["name"])
        if key in objects and not objects[key].deleted:
            raise kmock.KubernetesError(
                status=409,
                reason="AlreadyExists",
                message=f'{resource.plural} "{metadata["name"]}" already exists',
            )
        self._stamp(metadata)

    def _prepare_update(self, request: kmock.Request) -> None:
        resource: Any = request.resource
        current = self._current(request)
        if current is None or not request.name:
            return  # kmock answers 404
        current_revision = current.raw.get("metadata", {}).get("resourceVersion")
        revision = self.next_revision()
        if isinstance(request.data, dict):  # merge patch
            wanted = (request.data.get("metadata") or {}).get("resourceVersion")
            if wanted is not None and wanted != current_revision:
                raise _conflict(
                    f'Operation cannot be fulfilled on {resource.plural} "{request.name}": '
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again"
                )
            metadata = request.data.setdefault("metadata", {}) or {}
            request.data["metadata"] = metadata
            metadata["resourceVersion"] = revision
            if "spec" in request.data and request.subresource != "status":
                metadata["generation"] = current.raw["metadata"].get("generation", 1) + 1
        elif isinstance(request.data, list):  # JSON patch: `test` ops are checked by jsonpatch
            request.data.append(
                {"op": "add", "path": "/metadata/resourceVersion", "value": revision}
            )

    async def _prepare_delete(self, request: kmock.Request) -> None:
        resource: Any = request.resource
        current = self._current(request)
        if current is None or not request.name:
            return  # kmock answers 404
        metadata = current.raw.get("metadata", {})
        options = request.data if isinstance(request.data, dict) else {}
        preconditions = options.get("preconditions") or {}
        for field, title in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = preconditions.get(field)
            if wanted is not None and wanted != metadata.get(field):
                raise _conflict(
                    f"Precondition failed: {title} in precondition: {wanted}, "
                    f"{title} in object meta: {metadata.get(field)}"
                )
        # marking for deletion with finalizers is a write too: it gets a new revision
        if metadata.get("finalizers") and not metadata.get("deletionTimestamp"):
            async with self._lock:
                current.patch(
                    {
                        "metadata": {
                            "deletionTimestamp": _now(),
                            "resourceVersion": self.next_revision(),
                        }
                    }
                )
                await self._buses[resource].put({"type": "MODIFIED", "object": current.raw})

    # ---- reads ----------------------------------------------------------------------
    def _selected(self, request: kmock.Request, body: dict[str, Any]) -> bool:
        labels = (body.get("metadata") or {}).get("labels") or {}
        label_selector = request.params.get("labelSelector")
        field_selector = request.params.get("fieldSelector")
        return (not label_selector or match_labels(label_selector, labels)) and (
            not field_selector or match_fields(field_selector, body)
        )

    async def _serve_list(self, request: kmock.Request) -> Any:
        result: Any = await super()._serve_list(request)
        items = [item for item in result["items"] if self._selected(request, item)]
        result["metadata"]["resourceVersion"] = str(self._last_revision)
        # Paged lists (`limit` and `continue`), which kmock ignores: the token here is
        # the offset into the list (the API server's is opaque; clients only echo it)
        limit = request.params.get("limit", "")
        if limit.isdigit() and int(limit) > 0:
            token = request.params.get("continue", "")
            start = int(token) if token.isdigit() else 0
            end = start + int(limit)
            if end < len(items):
                result["metadata"]["continue"] = str(end)
            items = items[start:end]
        result["items"] = items
        return result

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        since = request.params.get("resourceVersion", "")
        seen = int(since) if since.isdigit() and since != "0" else None
        stream: Any = super()._serve_watch(request)
        try:
            async for event in stream:
                if not isinstance(event, dict):
                    yield event  # the header flush
                    continue
                body = event.get("object") or {}
                revision = str((body.get("metadata") or {}).get("resourceVersion", ""))
                replayed = event["type"] == "ADDED" and seen is not None
                if replayed and (not revision.isdigit() or int(revision) <= (seen or 0)):
                    continue
                if str(request.resource) in self._frozen:
                    continue
                if self._selected(request, body):
                    yield event
        except _DropWatch as drop:
            if drop.gone:
                yield {
                    "type": "ERROR",
                    "object": {
                        "apiVersion": "v1",
                        "kind": "Status",
                        "code": 410,
                        "status": "Failure",
                        "reason": "Expired",
                        "message": "too old resource version",
                    },
                }
        finally:
            await stream.aclose()


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    """Poll a condition (tests and the demo's convergence check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)
