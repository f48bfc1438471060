"""Reading a live cluster for `credwarden audit` (no --snapshot).

Uses the official `kubernetes` client for its kubeconfig support (exec plugins, OIDC,
in-cluster accounts), imported only here so the operator never pays for it. Lists are
paged, and each page goes into the inventory (Secret values hashed) before the next is
fetched, so no more than one page of Secret bodies is ever held.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from credwarden.facts import PolicyFacts
from credwarden.gcpause import paused_collection
from credwarden.inventory import Inventory
from credwarden.policies import POLICY_KINDS, policy_from_manifest
from credwarden.snapshot import InputError, Snapshot, facts_of

PAGE_SIZE = 500
# (path, kind, optional): optional ones are skipped when the API is not installed
LISTS: tuple[tuple[str, str, bool], ...] = (
    ("/api/v1/namespaces", "Namespace", False),
    ("/api/v1/serviceaccounts", "ServiceAccount", False),
    ("/api/v1/secrets", "Secret", False),
    ("/apis/rbac.authorization.k8s.io/v1/rolebindings", "RoleBinding", False),
    ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "ClusterRoleBinding", False),
    ("/api/v1/pods", "Pod", False),
    ("/apis/apps/v1/deployments", "Deployment", False),
    ("/apis/apps/v1/statefulsets", "StatefulSet", False),
    ("/apis/apps/v1/daemonsets", "DaemonSet", False),
    ("/apis/batch/v1/jobs", "Job", False),
    ("/apis/batch/v1/cronjobs", "CronJob", False),
    ("/apis/credwarden.io/v1alpha1/credentialpolicies", "CredentialPolicy", True),
    ("/apis/credwarden.io/v1alpha1/clustercredentialpolicies", "ClusterCredentialPolicy", True),
)


class ClusterError(InputError):
    """The cluster could not be read: no kubeconfig, unreachable, or forbidden."""


def _api_client() -> Any:
    from kubernetes import client  # heavy: imported only for a live audit
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    config: Any = kube_config  # the client's config loaders are untyped

    try:
        config.load_kube_config()
    except (ConfigException, FileNotFoundError, TypeError):
        try:
            config.load_incluster_config()
        except ConfigException:
            raise ClusterError(
                "no cluster to read: set KUBECONFIG (or ~/.kube/config), run in a Pod, "
                "or pass --snapshot FILE"
            ) from None
    return client.ApiClient()


def _pages(api: Any, path: str, kind: str, optional: bool) -> Iterator[list[dict[str, Any]]]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    token: str | None = None
    while True:
        query: list[tuple[str, Any]] = [("limit", PAGE_SIZE)]
        if token:
            query.append(("continue", token))
        try:
            method, url, headers, _, _ = api.param_serialize(
                "GET",
                path,
                query_params=query,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            response = api.call_api(method, url, header_params=headers, _request_timeout=60)
            data = response.read()
        except ApiException as error:
            raise ClusterError(f"GET {path}: {error.status} {error.reason}") from None
        except (HTTPError, OSError) as error:
            raise ClusterError(f"GET {path}: {type(error).__name__}: {error}") from None
        if response.status == 404 and optional:
            return  # e.g. credwarden's CRDs are not installed
        if response.status >= 400:
            raise ClusterError(f"GET {path}: {response.status} {response.reason}")
        body = json.loads(data)
        items = body.get("items") or []
        for item in items:
            item.setdefault("kind", kind)  # list items carry no kind
        yield items
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return


def read_cluster(hash_key: bytes) -> Snapshot:
    api = _api_client()
    inventory = Inventory()
    # an invalid policy in the cluster is reported with the results, not fatal
    policies: list[PolicyFacts] = []
    count = 0
    with paused_collection():  # the audit evaluates all of it next: see gcpause
        for path, kind, optional in LISTS:
            for page in _pages(api, path, kind, optional):
                for item in page:
                    if kind in POLICY_KINDS:
                        item.setdefault("apiVersion", "credwarden.io/v1alpha1")
                        policies.append(policy_from_manifest(item))
                    else:
                        facts = facts_of(item, hash_key, kind)
                        if facts is not None:
                            inventory.add(facts)
                        count += 1
                page.clear()
    return Snapshot(inventory, count, policies)
