"""Wiring: informers feed the inventory; the reconciler does the rest; kopf runs the process.

The kinds credwarden reads are listed and watched by `informer.Informer` (see there why not
by kopf's own watches), which calls `OperatorState.observe` and `forget`. Nothing is
written to them by this path. When every kind has been listed once, the reconciler starts.
kopf handles the logins (kubeconfig, in-cluster ServiceAccount token, relogin after a 401)
and the process's lifecycle; it has no handler on any resource, so it keeps no state on
users' objects (no last-handled-configuration, no finalizer).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from credwarden.facts import WORKLOAD_KINDS, PolicyFacts, SecretFacts
from credwarden.gcpause import paused_collection
from credwarden.health import Heartbeat
from credwarden.informer import Informer, ObjectKey, WatchedKind
from credwarden.inventory import CredentialKey, Inventory
from credwarden.kopfimport import kopf
from credwarden.kube import Credentials, KubeClient, credentials_from
from credwarden.policies import POLICY_KINDS
from credwarden.reconciler import Reconciler
from credwarden.snapshot import facts_of

log = logging.getLogger("credwarden.controller")

# (group, version, plural, kind) of everything credwarden reads
WATCHED: tuple[tuple[str, str, str, str], ...] = (
    ("", "v1", "namespaces", "Namespace"),
    ("", "v1", "serviceaccounts", "ServiceAccount"),
    ("", "v1", "secrets", "Secret"),
    ("", "v1", "pods", "Pod"),
    ("apps", "v1", "deployments", "Deployment"),
    ("apps", "v1", "statefulsets", "StatefulSet"),
    ("apps", "v1", "daemonsets", "DaemonSet"),
    ("batch", "v1", "jobs", "Job"),
    ("batch", "v1", "cronjobs", "CronJob"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding"),
    ("credwarden.io", "v1alpha1", "credentialpolicies", "CredentialPolicy"),
    ("credwarden.io", "v1alpha1", "clustercredentialpolicies", "ClusterCredentialPolicy"),
)

Login = Callable[..., Awaitable[Any] | Any]


@dataclass
class OperatorState:
    """Everything the handlers share: the inventory, the reconciler and the API client."""

    client: KubeClient
    inventory: Inventory = field(default_factory=Inventory)
    # keyed hashes of Secret values; the key lives only in this process
    hash_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    reconciler: Reconciler = field(init=False)
    instance: str = ""
    heartbeat: Heartbeat | None = None

    def __post_init__(self) -> None:
        self.reconciler = Reconciler(self.inventory, self.client, instance=self.instance)

    def observe(self, kind: str, body: Mapping[str, Any]) -> None:
        """An object as listed or watched: reduce it to facts, remember, mark what changed."""
        facts = facts_of(body, self.hash_key, kind)
        if isinstance(facts, SecretFacts) and self.heartbeat is not None:
            self.heartbeat.observe(facts.meta.namespace, facts.meta.name, facts.meta.annotations)
        if isinstance(facts, PolicyFacts):
            policy = facts
            known = self.inventory.policies.get(policy.key)
            status = body.get("status")
            self.reconciler.policy_status_seen[policy.key] = (
                dict(status) if isinstance(status, Mapping) else {}
            )
            if known is not None and (known.uid, known.generation, known.spec, known.error) == (
                policy.uid,
                policy.generation,
                policy.spec,
                policy.error,
            ):
                # only its status changed (credwarden's own status patches, mostly):
                # nothing to evaluate again
                return
            self.inventory.upsert_policy(policy)
            if policy.error:
                log.warning("invalid %s %s: %s", kind, policy.display_name, policy.error)
            self.reconciler.policies_changed()
        elif facts is not None:
            if self.reconciler.ready.is_set():
                self.reconciler.mark(self.inventory.upsert(facts))
            else:
                # the first listing: everything is evaluated once it is complete, so what
                # each object affects need not be worked out (the bulk path, as the audit's)
                self.inventory.add(facts)

    def known(self, kind: str) -> list[ObjectKey]:
        """(namespace, name) of every object of this kind in the inventory."""
        inventory = self.inventory
        if kind == "Secret":
            return list(inventory.secrets)
        if kind == "ServiceAccount":
            return list(inventory.service_accounts)
        if kind == "Namespace":
            return [("", name) for name in inventory.namespaces]
        if kind in ("RoleBinding", "ClusterRoleBinding"):
            return [(ns, name) for k, ns, name in inventory.bindings if k == kind]
        if kind in WORKLOAD_KINDS:
            return [(ns, name) for k, ns, name in inventory.workloads if k == kind]
        return [(ns, name) for k, ns, name in inventory.policies if k == kind]

    def forget(self, kind: str, body: Mapping[str, Any]) -> None:
        """An object deleted from the cluster."""
        metadata = body.get("metadata") or {}
        namespace = metadata.get("namespace") or ""
        name = metadata.get("name") or ""
        inventory = self.inventory
        affected: set[CredentialKey] = set()
        if kind == "Secret":
            affected = inventory.remove_secret(namespace, name)
        elif kind == "ServiceAccount":
            affected = inventory.remove_service_account(namespace, name)
        elif kind == "Namespace":
            affected = inventory.remove_namespace(name)
        elif kind in ("RoleBinding", "ClusterRoleBinding"):
            affected = inventory.remove_binding(kind, namespace, name)
        elif kind in WORKLOAD_KINDS:
            affected = inventory.remove_workload(kind, namespace, name)
        elif kind in POLICY_KINDS:
            inventory.remove_policy(kind, namespace if kind == "CredentialPolicy" else "", name)
            self.reconciler.policies_changed()
            return
        self.reconciler.forget(affected)


def configure_settings(settings: kopf.OperatorSettings) -> None:
    """kopf handles no resource here (the informers read the cluster): should a handler
    ever be added, kopf's own state goes to the policies' status, never to annotations
    of users' objects, and its events stay off users' objects."""
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(
        field="status.kopf.last-handled-configuration"
    )
    settings.persistence.finalizer = "credwarden.io/finalizer"
    # credwarden posts its own events; kopf's would go onto users' objects
    settings.posting.enabled = False
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60


async def connection_info(login: Login | None, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """Where and how to connect: `login` if given (demo, tests), else kopf's own logins."""
    if login is not None:
        info = login(**kwargs)
        return await info if isinstance(info, Awaitable) else info  # type: ignore[no-any-return]
    # in a Pod: the ServiceAccount token (re-read on every login: kubelet rotates it)
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def build_registry(state: OperatorState, *, login: Login | None = None) -> kopf.OperatorRegistry:
    """Handlers in a registry of their own (the demo and tests run several operators)."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    async def credwarden_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = await connection_info(login, **kwargs)
        if info is not None:
            await state.client.login(credentials_from(info))

            async def relogin() -> Credentials | None:
                fresh = await connection_info(login, **kwargs)
                return credentials_from(fresh) if fresh is not None else None

            state.client.relogin = relogin
        return info

    @kopf.on.cleanup(registry=registry)
    async def close_client(**_: Any) -> None:
        await state.client.close()

    return registry


def namespace_matches(name: str, pattern: str) -> bool:
    """kopf's --namespace syntax: comma-separated globs, `!` excludes; a leading exclusion
    implies everything else is included."""
    globs = [part.strip() for part in pattern.split(",") if part.strip()]
    matched = bool(globs) and globs[0].startswith("!")
    for glob in globs:
        if glob.startswith("!"):
            matched = matched and not fnmatch.fnmatchcase(name, glob[1:])
        else:
            matched = matched or fnmatch.fnmatchcase(name, glob)
    return matched


# seconds the cyclic GC may stay paused while the first listing runs
FIRST_LISTING_GC_PAUSE = 300.0
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRoleBinding", "ClusterCredentialPolicy"})


def _informer(state: OperatorState, watched: WatchedKind, namespace: str = "") -> Informer:
    return Informer(
        state.client,
        watched,
        on_object=state.observe,
        on_deleted=state.forget,
        known=state.known,
        namespace=namespace,
    )


async def feed(state: OperatorState, namespaces: Sequence[str] = ()) -> None:
    """List and watch every kind; the reconciler starts once each has been listed.

    With `namespaces` (kopf's --namespace patterns, ORed), namespaced kinds are read per
    matching namespace only (Roles in those namespaces suffice for them), and namespaces
    that come to match, or stop matching, are picked up or dropped as the Namespace watch
    reports them."""
    kinds = [
        WatchedKind(group, version, plural, kind, namespaced=kind not in CLUSTER_SCOPED)
        for group, version, plural, kind in WATCHED
    ]
    patterns = list(namespaces)
    running: dict[tuple[str, str], tuple[Informer, asyncio.Task[None]]] = {}

    def start(watched: WatchedKind, namespace: str) -> Informer:
        informer = _informer(state, watched, namespace)
        task = asyncio.create_task(informer.run(), name=f"informer {watched.kind} {namespace}")
        running[(watched.kind, namespace)] = (informer, task)
        return informer

    def matching() -> set[str]:
        return {
            name
            for name in state.inventory.namespaces
            if any(namespace_matches(name, pattern) for pattern in patterns)
        }

    try:
        # the first listing, with the cyclic GC paused (see gcpause), for at most
        # FIRST_LISTING_GC_PAUSE seconds: a listing that cannot finish (a 403, an API
        # server down) must not keep the collector off for good
        with paused_collection(), contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_LISTING_GC_PAUSE):
                await _start_reading(kinds, patterns, running, matching, start)
        await _start_reading(kinds, patterns, running, matching, start)  # if not done yet
        state.reconciler.ready.set()
        if not patterns:
            # the informers run until cancelled; nothing else to follow
            await asyncio.gather(*(task for _, task in running.values()))
        while True:
            await asyncio.sleep(1.0)
            _follow_namespaces(state, kinds, running, matching(), start)
    finally:
        tasks = [task for _, task in running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _start_reading(
    kinds: Sequence[WatchedKind],
    patterns: Sequence[str],
    running: dict[tuple[str, str], tuple[Informer, asyncio.Task[None]]],
    matching: Callable[[], set[str]],
    start: Callable[[WatchedKind, str], Informer],
) -> None:
    """Start the informers (each once) and wait until all of them have listed."""
    for watched in kinds:
        if (not patterns or not watched.namespaced) and (watched.kind, "") not in running:
            start(watched, "")
    if patterns:
        await running[("Namespace", "")][0].listed.wait()
        for namespace in sorted(matching()):
            for watched in kinds:
                if watched.namespaced and (watched.kind, namespace) not in running:
                    start(watched, namespace)
    for informer, _ in list(running.values()):
        await informer.listed.wait()


def _follow_namespaces(
    state: OperatorState,
    kinds: Sequence[WatchedKind],
    running: dict[tuple[str, str], tuple[Informer, asyncio.Task[None]]],
    wanted: set[str],
    start: Callable[[WatchedKind, str], Informer],
) -> None:
    """Start reading namespaces that came to match; stop reading, and forget what was
    read from, those that no longer match or no longer exist."""
    current = {namespace for _, namespace in running if namespace}
    for namespace in sorted(wanted - current):
        for watched in kinds:
            if watched.namespaced:
                start(watched, namespace)
    for namespace in current - wanted:
        for watched in kinds:
            entry = running.pop((watched.kind, namespace), None)
            if entry is None:
                continue
            entry[1].cancel()
            for ns, name in state.known(watched.kind):
                if ns == namespace:
                    state.forget(watched.kind, {"metadata": {"namespace": ns, "name": name}})
