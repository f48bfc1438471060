"""What Enforce mode may do to a credential, and what stops it. Pure: no I/O.

A decision names the acting policy (the strongest whose own limit has passed, see
`Deadline.acting`) and the action. Safety rails turn an action into a *blocked* one,
reported as a finding (`revocation-blocked`, `rotation-blocked`) instead of carried out:

- a credential in a protected namespace (kube-system, ...) is touched only when the acting
  policy names it in `spec.enforcement.protectedTargets`;
- a legacy token that a workload mounts or reads is not revoked unless the policy says
  `revokeInUse` (Kubernetes' own cleaner skips mounted tokens too);
- a Secret that another system writes is not rotated here: an ExternalSecret or a
  cert-manager Certificate is asked to refresh instead; a controller, Helm release or
  Argo CD application would put the old value back, so it is reported.

Rotation state lives on the Secret itself (annotations below), so an interrupted rotation
is completed after a restart from what the object says, never started twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from credwarden.facts import PolicyFacts, SecretFacts, WorkloadFacts
from credwarden.immutable import immutable
from credwarden.inventory import Inventory
from credwarden.owner import (
    ARGOCD_INSTANCE,
    ARGOCD_TRACKING,
    CERT_MANAGER_CERTIFICATE,
    HELM_RELEASE,
)
from credwarden.rules import Deadline
from credwarden.selection import name_matches

ROTATION_PENDING = "credwarden.io/rotation-pending"
RESTART_PENDING = "credwarden.io/restart-pending"
ROTATIONS = "credwarden.io/rotations"
PREVIOUS = "credwarden.io/previous"
PREVIOUS_OF = "credwarden.io/previous-of"
DELETE_AFTER = "credwarden.io/delete-after"
RESTARTED_AT = "credwarden.io/restarted-at"
RESTARTED_FOR = "credwarden.io/restarted-for"
REFRESH_REQUESTED = "credwarden.io/refresh-requested"
RECREATE_OF = "credwarden.io/recreate-of"
RECREATE_UID = "credwarden.io/recreate-uid"
RECREATED_AT = "credwarden.io/recreated-at"
REFRESH_INTERVAL_SECONDS = 3600  # ask an owner again at most this often
DEFAULT_PROTECTED = ("kube-system", "kube-public", "kube-node-lease")
RESTARTABLE = ("Deployment", "StatefulSet", "DaemonSet")
# owners that can be asked to produce a new value: (kind, API group) -> how
REFRESHABLE = {
    "ExternalSecret": "external-secrets.io",
    "Certificate": "cert-manager.io",
}


@immutable
class Decision:
    action: str  # Revoke | Rotate | Refresh
    policy: PolicyFacts
    expired_at: datetime
    why: str
    blocked: str | None = None
    # for Refresh: the owner asked for a new value (kind, name)
    owner: tuple[str, str] | None = None


def restartable(workloads: Iterable[WorkloadFacts]) -> tuple[tuple[str, str], ...]:
    """(kind, name) of the workloads a rolling restart reaches, sorted. Pods and Jobs
    cannot be rolled; CronJobs pick a new value up on their next run."""
    return tuple(sorted({(w.kind, w.name) for w in workloads if w.kind in RESTARTABLE}))


def recreate_record_name(uid: str) -> str:
    """The Secret that records a ServiceAccount being recreated (its manifest, no value)."""
    return f"credwarden-recreate-{uid[:36]}"


def previous_name(name: str) -> str:
    """The companion Secret that keeps the values a rotation replaced."""
    return f"{name[:244]}-previous"


def pending_rotation(secret: SecretFacts) -> dict[str, Any] | None:
    """The rotation recorded as started on the Secret, if any (crash recovery)."""
    raw = secret.meta.annotation(ROTATION_PENDING)
    if not raw:
        return None
    try:
        pending = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(pending, dict) or not isinstance(pending.get("keys"), list):
        return None
    return pending


def _protected(policies: Sequence[PolicyFacts], namespace: str) -> bool:
    declared = [p.spec.identity.protectedNamespaces for p in policies if p.spec and p.spec.identity]
    protected = {ns for namespaces in declared for ns in namespaces} if declared else set()
    return namespace in (protected or set(DEFAULT_PROTECTED))


def _writer(secret: SecretFacts) -> str | None:
    """Who else writes this Secret (and would undo a rotation), if anyone."""
    meta = secret.meta
    if meta.controller is not None:
        return f"{meta.controller.kind}/{meta.controller.name}"
    if release := meta.annotation(HELM_RELEASE):
        return f"Helm release {release}"
    if meta.annotation(ARGOCD_TRACKING) or meta.labels.get(ARGOCD_INSTANCE):
        return "Argo CD"
    return None


def decide(
    inventory: Inventory,
    secret: SecretFacts,
    deadline: Deadline | None,
    policies: Sequence[PolicyFacts],
    now: datetime,
) -> Decision | None:
    """The enforcement action for an expired credential, blocked or not; None if none."""
    acting = deadline.acting(now) if deadline is not None else None
    if acting is None:
        return None
    expired_at, policy, action, why = acting
    spec = policy.spec
    if spec is None or action == "Warn":
        return None
    enforcement = spec.enforcement
    namespace, name = secret.key
    protected = _protected(policies, namespace) and not name_matches(
        enforcement.protectedTargets, namespace, name
    )
    if action == "Revoke":
        if not secret.is_token:
            return None
        blocked = None
        users = sorted({f"{w.kind}/{w.name}" for w in inventory.consumers_of(namespace, name)})
        if protected:
            blocked = (
                f"in protected namespace {namespace}: name it in "
                f"spec.enforcement.protectedTargets of {policy.display_name} to allow"
            )
        elif users and not enforcement.revokeInUse:
            blocked = (
                f"still used by {', '.join(users[:3])}: move it to a bound token, or set "
                f"spec.enforcement.revokeInUse in {policy.display_name}"
            )
        return Decision("Revoke", policy, expired_at, why, blocked)
    if action == "Rotate" and spec.rotation is not None and not secret.is_token:
        controller = secret.meta.controller
        if controller is not None and controller.kind in REFRESHABLE:
            return Decision(
                "Refresh", policy, expired_at, why, owner=(controller.kind, controller.name)
            )
        certificate = secret.meta.annotation(CERT_MANAGER_CERTIFICATE)
        if certificate and controller is None:
            return Decision("Refresh", policy, expired_at, why, owner=("Certificate", certificate))
        blocked = None
        missing = [key for key in spec.rotation.keys if key not in secret.data_keys]
        if protected:
            blocked = (
                f"in protected namespace {namespace}: name it in "
                f"spec.enforcement.protectedTargets of {policy.display_name} to allow"
            )
        elif writer := _writer(secret):
            blocked = f"written by {writer}, which would put the old value back: rotate it there"
        elif missing:
            blocked = f"has no key {', '.join(missing)} to rotate"
        return Decision("Rotate", policy, expired_at, why, blocked)
    return None
