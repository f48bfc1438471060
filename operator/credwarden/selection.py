"""Which policies govern which credential, and how several policies combine.

Precedence (documented in docs/policies.md):
- A policy governs a credential when its namespace matches (a CredentialPolicy: its own
  namespace; a ClusterCredentialPolicy: its namespaceSelector), its selector matches the
  credential's labels, the credential's type is governed, and neither the policy's
  exemptions nor the object's `credwarden.io/exempt` annotation exclude it.
- Every governing policy is named in the result. Each limit is taken from the policy
  that sets it strictest (the earliest deadline); ties go to the stronger action
  (Revoke/Rotate over Warn), then Enforce over Audit, then a CredentialPolicy over a
  ClusterCredentialPolicy, then the name. Boolean rules apply if any policy asks for them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from credwarden.facts import CREDENTIAL_TYPES, PolicyFacts
from credwarden.models import ClusterCredentialPolicySpec, LabelSelector

CLUSTER_KIND = "ClusterCredentialPolicy"
NAMESPACED_KIND = "CredentialPolicy"


def selector_matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    for key, value in selector.matchLabels.items():
        if labels.get(key) != value:
            return False
    for requirement in selector.matchExpressions:
        present = requirement.key in labels
        value = labels.get(requirement.key, "")
        if requirement.operator == "In" and (not present or value not in requirement.values):
            return False
        if requirement.operator == "NotIn" and present and value in requirement.values:
            return False
        if requirement.operator == "Exists" and not present:
            return False
        if requirement.operator == "DoesNotExist" and present:
            return False
    return True


def name_matches(patterns: list[str], namespace: str, name: str) -> bool:
    """`namespace/name` or bare `name` globs."""
    qualified = f"{namespace}/{name}"
    return any(
        fnmatch.fnmatchcase(qualified if "/" in pattern else name, pattern) for pattern in patterns
    )


def policy_covers_namespace(
    policy: PolicyFacts, namespace: str, namespace_labels: Mapping[str, str]
) -> bool:
    if policy.kind == NAMESPACED_KIND:
        return policy.namespace == namespace
    spec = policy.spec
    if isinstance(spec, ClusterCredentialPolicySpec):
        # the namespace's name is matchable as Kubernetes labels it
        labels = {"kubernetes.io/metadata.name": namespace, **namespace_labels}
        return selector_matches(spec.namespaceSelector, labels)
    return False


def governs(
    policy: PolicyFacts,
    *,
    kind: str,
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    secret_type: str | None,
    namespace_labels: Mapping[str, str],
) -> bool:
    return (
        policy.spec is not None
        and policy_covers_namespace(policy, namespace, namespace_labels)
        and governs_kind(policy, kind=kind, secret_type=secret_type)
        and governs_object(policy, namespace=namespace, name=name, labels=labels)
    )


def governs_kind(policy: PolicyFacts, *, kind: str, secret_type: str | None) -> bool:
    """The part of `governs` that depends on the credential's kind and type only."""
    spec = policy.spec
    if spec is None:
        return False
    if kind == "ServiceAccount":
        # unset: a policy narrowed to some Secret types (e.g. TLS only) is not about accounts
        accounts = spec.serviceAccounts
        return bool(accounts if accounts is not None else not spec.secretTypes)
    governed_types = spec.secretTypes or CREDENTIAL_TYPES
    return secret_type in governed_types


def governs_object(
    policy: PolicyFacts, *, namespace: str, name: str, labels: Mapping[str, str]
) -> bool:
    """The part of `governs` that depends on the credential itself: selector, exemptions."""
    spec = policy.spec
    if spec is None:
        return False
    if not selector_matches(spec.selector, labels):
        return False
    return not (spec.exemptions and name_matches(spec.exemptions.names, namespace, name))


def precedence_key(policy: PolicyFacts, action_strength: int) -> tuple[int, int, int, str]:
    """Sort key among policies that set the same deadline (smaller wins)."""
    mode_rank = 0 if policy.spec is not None and policy.spec.mode == "Enforce" else 1
    kind_rank = 0 if policy.kind == NAMESPACED_KIND else 1
    return (-action_strength, mode_rank, kind_rank, policy.display_name)
