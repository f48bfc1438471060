"""kopf wiring: watches feed the inventory; the reconciler does the rest.

Only `@kopf.index` and `@kopf.on.event` handlers touch Secrets and ServiceAccounts, and
both return None: kopf then stores nothing on them (no last-handled-configuration, which
would copy a Secret's data into an annotation, and no finalizer). Index handlers run for
every object before kopf lets any other handler run, so when the first `on.event` call
arrives, every watched kind has been listed into the inventory: that is the signal for
the reconciler to start.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from credwarden.facts import WORKLOAD_KINDS, PolicyFacts, SecretFacts
from credwarden.health import Heartbeat
from credwarden.inventory import CredentialKey, Inventory
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
            self.inventory.upsert_policy(policy)
            status = body.get("status")
            self.reconciler.policy_status_seen[policy.key] = (
                dict(status) if isinstance(status, Mapping) else {}
            )
            if policy.error:
                log.warning("invalid %s %s: %s", kind, policy.display_name, policy.error)
            self.reconciler.policies_changed()
        elif facts is not None:
            self.reconciler.mark(self.inventory.upsert(facts))

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
    """kopf settings for watching every Secret of a cluster without writing to them."""
    # kopf's own state, if it ever keeps any, goes to the policies' status, never to
    # annotations of users' objects
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
    settings.watching.chunk_size = 500
    settings.queueing.worker_limit = 200
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

    for group, version, plural, kind in WATCHED:
        _watch(registry, state, group, version, plural, kind)

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


def _watch(
    registry: kopf.OperatorRegistry,
    state: OperatorState,
    group: str,
    version: str,
    plural: str,
    kind: str,
) -> None:
    # async handlers: they run in the event loop, not in kopf's thread pool
    @kopf.index(group, version, plural, registry=registry, id=f"observe-{plural}")
    async def observe(body: kopf.Body, **_: Any) -> None:
        state.observe(kind, body)

    @kopf.on.event(group, version, plural, registry=registry, id=f"events-{plural}")
    async def on_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        if type == "DELETED":
            state.forget(kind, body)
        state.reconciler.ready.set()
