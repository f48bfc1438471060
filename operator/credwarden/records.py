"""What the engine produces: lifecycle records, findings, and the plan of actions."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from credwarden.facts import Identity, identity_uid
from credwarden.immutable import immutable
from credwarden.inventory import CredentialKey

Severity = Literal["warning", "violation"]

COMPLIANT = "Compliant"
EXPIRING = "Expiring"
NON_COMPLIANT = "NonCompliant"
EXEMPT = "Exempt"
UNGOVERNED = "Ungoverned"
# worst first, for sorting reports
STATUS_ORDER = {NON_COMPLIANT: 0, EXPIRING: 1, COMPLIANT: 2, EXEMPT: 3, UNGOVERNED: 4}

# The stable rule ids, in the order the rules run. docs/rules.md documents each.
RULES: dict[str, tuple[Severity, str]] = {
    "long-lived-token": ("violation", "LongLivedToken"),
    "unused-token": ("warning", "UnusedToken"),
    "credential-expired": ("violation", "CredentialExpired"),
    "credential-expiring": ("warning", "CredentialExpiring"),
    "certificate-expired": ("violation", "CertificateExpired"),
    "certificate-expiring": ("warning", "CertificateExpiring"),
    "certificate-unreadable": ("violation", "CertificateUnreadable"),
    "human-identity": ("violation", "HumanIdentity"),
    "cluster-admin-binding": ("violation", "ClusterAdminBinding"),
    "user-identity-in-system-namespace": ("violation", "UserIdentityInSystemNamespace"),
    "missing-owner": ("violation", "MissingOwner"),
    "duplicate-secret": ("warning", "DuplicateSecret"),
    "secret-in-env": ("warning", "SecretInEnv"),
    "revocation-blocked": ("warning", "RevocationBlocked"),
    "rotation-blocked": ("warning", "RotationBlocked"),
}
EXPIRING_RULES = frozenset({"credential-expiring", "certificate-expiring"})


# "00" to "99", for rfc3339: assembling an instant from these costs about half of
# %-formatting its six integers, and the engine formats a few instants per credential
_TWO_DIGITS = tuple(f"{number:02d}" for number in range(100))


def rfc3339(moment: datetime | None) -> str | None:
    """`2026-11-22T12:00:00Z`: UTC, whole seconds."""
    if moment is None:
        return None
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    # not isoformat() (2x dearer on an aware datetime) nor strftime (4x, and it leaves
    # years below 1000 unpadded on glibc)
    two, year = _TWO_DIGITS, utc.year
    return (
        f"{two[year // 100]}{two[year % 100]}-{two[utc.month]}-{two[utc.day]}"
        f"T{two[utc.hour]}:{two[utc.minute]}:{two[utc.second]}Z"
    )


@immutable
class Finding:
    rule: str
    severity: Severity
    # the message; for a dated finding (`at` set), what follows its verb and instant
    text: str
    at: datetime | None = None

    @classmethod
    def dated(cls, rule: str, at: datetime, rest: str) -> Finding:
        """`expired <at><rest>` (`expires` for an expiring rule). Most credentials of a
        neglected cluster have one, each naming its own instant: the instant is the
        datetime their record holds anyway, the rest is one string shared by all, and
        the message is built when read (a message of its own cost about 100 bytes)."""
        return cls(rule, RULES[rule][0], _intern(rest), at)

    @property
    def message(self) -> str:
        at = self.at
        if at is None:
            return self.text
        return f"{'expires' if self.rule in EXPIRING_RULES else 'expired'} {rfc3339(at)}{self.text}"

    @classmethod
    def of(cls, rule: str, message: str) -> Finding:
        if rule in _DATED_RULES:
            return cls(rule, RULES[rule][0], message)
        # Most messages repeat across credentials ("no owner: ... (policy p)"): the
        # operator keeps a record per credential for as long as it runs, so equal
        # findings share one object and one message. Bounded: when full it starts over.
        shared = _SHARED_FINDINGS.get((rule, message))
        if shared is None:
            if len(_SHARED_FINDINGS) >= _SHARED_FINDINGS_SIZE:
                _SHARED_FINDINGS.clear()
            shared = _SHARED_FINDINGS[(rule, message)] = cls(rule, RULES[rule][0], message)
        return shared

    @property
    def reason(self) -> str:
        return RULES[self.rule][1]

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "message": self.message}


_intern = sys.intern
# rules whose messages name an instant: as good as unique, not worth sharing
_DATED_RULES = frozenset({"long-lived-token", "credential-expired", "credential-expiring"})
_SHARED_FINDINGS: dict[tuple[str, str], Finding] = {}
_SHARED_FINDINGS_SIZE = 1 << 14
# tuples of shared findings, keyed by their identities (the tuple kept holds them, so
# none of those identities can be reused while its entry lives)
_FINDING_TUPLES: dict[tuple[int, ...], tuple[Finding, ...]] = {}


def findings_tuple(findings: list[Finding]) -> tuple[Finding, ...]:
    """A record's findings as a tuple: one tuple for every record with the same shared
    findings (most records of a neglected cluster carry the same one or two), a tuple of
    its own when any finding is dated."""
    if not findings:
        return ()
    identities = tuple(map(id, findings))
    shared = _FINDING_TUPLES.get(identities)
    if shared is not None:
        return shared
    made = tuple(findings)
    if all(_SHARED_FINDINGS.get((finding.rule, finding.text)) is finding for finding in made):
        if len(_FINDING_TUPLES) >= _SHARED_FINDINGS_SIZE:
            _FINDING_TUPLES.clear()
        _FINDING_TUPLES[identities] = made
    return made


@immutable(order=True)
class Consumer:
    kind: str
    namespace: str
    name: str
    via: str  # env | file | imagePullSecret | serviceAccount

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name, "via": self.via}


@immutable
class RecordTraits:
    """What a record has in common with many others: one object for all of them."""

    type: str  # the Secret type, or "ServiceAccount"
    owner_source: str | None
    status: str
    policy: str | None  # the policy that decides the deadline and the action
    mode: str | None
    policies: tuple[str, ...]


# A handful of types, owner sources and statuses, times the policy sets in force: a few
# hundred distinct traits in a whole cluster. Bounded like the shared findings.
_TRAITS: dict[tuple[Any, ...], RecordTraits] = {}


def traits_of(
    type: str,  # the record's own word for it
    owner_source: str | None,
    status: str,
    policy: str | None,
    mode: str | None,
    policies: tuple[str, ...],
) -> RecordTraits:
    """The shared `RecordTraits` with these values."""
    found = (type, owner_source, status, policy, mode, policies)
    shared = _TRAITS.get(found)
    if shared is None:
        if len(_TRAITS) >= _SHARED_FINDINGS_SIZE:
            _TRAITS.clear()
        shared = _TRAITS[found] = RecordTraits(*found)
    return shared


@immutable
class LifecycleRecord:
    """One credential as the engine judged it, kept for as long as it is tracked.

    The operator keeps one per credential: the fields most records share (type, owner
    source, status, policies) live in one shared `RecordTraits`, which keeps the record
    at ten slots (112 bytes, against 160 with those six of its own)."""

    key: CredentialKey
    # the facts' uid and resourceVersion as they keep them (one object, shared): read `uid`
    identity: Identity
    owner: str | None
    created_at: datetime | None
    last_rotated_at: datetime | None
    expires_at: datetime | None
    traits: RecordTraits
    consumers: tuple[Consumer, ...]
    findings: tuple[Finding, ...]
    next_review_at: datetime | None = None

    @property
    def uid(self) -> str:
        return identity_uid(self.identity)

    @property
    def type(self) -> str:
        return self.traits.type

    @property
    def owner_source(self) -> str | None:
        return self.traits.owner_source

    @property
    def status(self) -> str:
        return self.traits.status

    @property
    def policy(self) -> str | None:
        return self.traits.policy

    @property
    def mode(self) -> str | None:
        return self.traits.mode

    @property
    def policies(self) -> tuple[str, ...]:
        return self.traits.policies

    @property
    def rule_ids(self) -> tuple[str, ...]:
        findings = self.findings
        if len(findings) < 2:  # most records: no sorting, no set
            return (findings[0].rule,) if findings else ()
        return tuple(sorted({finding.rule for finding in findings}))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.key.kind,
            "namespace": self.key.namespace,
            "name": self.key.name,
            "type": self.type,
            "owner": self.owner,
            "ownerSource": self.owner_source,
            "createdAt": rfc3339(self.created_at),
            "lastRotatedAt": rfc3339(self.last_rotated_at),
            "expiresAt": rfc3339(self.expires_at),
            "status": self.status,
            "policy": self.policy,
            "mode": self.mode,
            "policies": list(self.policies),
            "consumers": [consumer.to_json() for consumer in self.consumers],
            "findings": [finding.to_json() for finding in self.findings],
        }


def _target(key: CredentialKey) -> dict[str, str]:
    return {"kind": key.kind, "namespace": key.namespace, "name": key.name}


@immutable
class Annotate:
    """Set and remove credwarden's annotations on the credential."""

    target: CredentialKey
    uid: str
    set: Mapping[str, str]
    remove: tuple[str, ...]

    def describe(self) -> str:
        changed = ", ".join([*sorted(self.set), *(f"-{key}" for key in self.remove)])
        return f"annotate {self.target}: {changed}"

    def to_json(self) -> dict[str, Any]:
        return {
            "action": "annotate",
            **_target(self.target),
            "set": dict(sorted(self.set.items())),
            "remove": list(self.remove),
        }


@immutable
class PostEvent:
    target: CredentialKey
    uid: str
    type: Literal["Normal", "Warning"]
    reason: str
    message: str

    def describe(self) -> str:
        return f"event {self.type} {self.reason} on {self.target}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "action": "event",
            **_target(self.target),
            "type": self.type,
            "reason": self.reason,
            "message": self.message,
        }


@immutable
class Revoke:
    """Delete a legacy token Secret, preconditioned on its uid and resourceVersion."""

    target: CredentialKey
    uid: str
    resource_version: str
    policy: str
    reason: str
    enforced: bool  # False: the policy is in Audit mode; shown, not done
    # also recreate this ServiceAccount (enforcement.recreateServiceAccounts)
    recreate_account: str | None = None

    def describe(self) -> str:
        verb = "revoke" if self.enforced else "would revoke (Audit)"
        also = (
            f" and recreate ServiceAccount {self.recreate_account}" if self.recreate_account else ""
        )
        return f"{verb} {self.target}{also}: {self.reason} [{self.policy}]"

    def to_json(self) -> dict[str, Any]:
        return {
            "action": "revoke",
            **_target(self.target),
            "policy": self.policy,
            "reason": self.reason,
            "enforced": self.enforced,
        }


@immutable
class Rotate:
    """Regenerate the named keys of a Secret, keeping the old values for `grace`."""

    target: CredentialKey
    uid: str
    resource_version: str
    policy: str
    keys: tuple[str, ...]
    reason: str
    enforced: bool
    rotation_id: str = "1"
    length: int = 32
    alphabet: str = "alphanumeric"
    grace: str = "24h"
    resume: bool = False  # a rotation recorded as started on the Secret: finish it

    def describe(self) -> str:
        verb = "rotate" if self.enforced else "would rotate (Audit)"
        if self.resume:
            verb = "finish rotating"
        return f"{verb} {self.target} keys {', '.join(self.keys)}: {self.reason} [{self.policy}]"

    def to_json(self) -> dict[str, Any]:
        return {
            "action": "rotate",
            **_target(self.target),
            "policy": self.policy,
            "keys": list(self.keys),
            "reason": self.reason,
            "enforced": self.enforced,
            "resume": self.resume,
        }


@immutable
class Refresh:
    """Ask the Secret's owner (ExternalSecret, cert-manager Certificate) for a new value."""

    target: CredentialKey
    owner_kind: str
    owner_name: str
    policy: str
    reason: str
    enforced: bool

    def describe(self) -> str:
        verb = "ask" if self.enforced else "would ask (Audit)"
        return (
            f"{verb} {self.owner_kind}/{self.owner_name} to refresh {self.target}: "
            f"{self.reason} [{self.policy}]"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "action": "refresh",
            **_target(self.target),
            "owner": f"{self.owner_kind}/{self.owner_name}",
            "policy": self.policy,
            "reason": self.reason,
            "enforced": self.enforced,
        }


@immutable
class RestartConsumers:
    """Roll the workloads that use a rotated Secret (a pod-template annotation)."""

    target: CredentialKey
    rotation_id: str
    workloads: tuple[tuple[str, str], ...]  # (kind, name), same namespace

    def describe(self) -> str:
        names = ", ".join(f"{kind}/{name}" for kind, name in self.workloads) or "none"
        return f"restart consumers of {self.target}: {names}"

    def to_json(self) -> dict[str, Any]:
        return {
            "action": "restart",
            **_target(self.target),
            "workloads": [f"{kind}/{name}" for kind, name in self.workloads],
        }


@immutable
class RecreateAccount:
    """Finish recreating a ServiceAccount from the record Secret that describes it."""

    target: CredentialKey  # the record Secret
    account: str
    old_uid: str

    def describe(self) -> str:
        return f"finish recreating ServiceAccount {self.target.namespace}/{self.account}"

    def to_json(self) -> dict[str, Any]:
        return {"action": "recreate-account", **_target(self.target), "account": self.account}


@immutable
class DeletePrevious:
    """Delete the Secret keeping a rotation's previous values once its grace has passed."""

    target: CredentialKey
    uid: str
    resource_version: str

    def describe(self) -> str:
        return f"delete {self.target}: previous values past their grace period"

    def to_json(self) -> dict[str, Any]:
        return {"action": "delete-previous", **_target(self.target)}


Action = (
    Annotate
    | PostEvent
    | Revoke
    | Rotate
    | Refresh
    | RestartConsumers
    | DeletePrevious
    | RecreateAccount
)


@dataclass(slots=True)
class Evaluation:
    """A whole evaluation: one record per credential and the plan for all of them."""

    now: datetime
    records: list[LifecycleRecord] = field(default_factory=list)
    plan: list[Action] = field(default_factory=list)
    policy_errors: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        by_rule: dict[str, int] = {}
        for record in self.records:
            by_status[record.status] = by_status.get(record.status, 0) + 1
            for rule in record.rule_ids:
                by_rule[rule] = by_rule.get(rule, 0) + 1
        return {
            "credentials": len(self.records),
            "byStatus": dict(sorted(by_status.items(), key=lambda kv: STATUS_ORDER[kv[0]])),
            "byRule": dict(sorted(by_rule.items())),
            "plannedActions": _count_actions(self.plan),
        }


def _count_actions(plan: list[Action]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for action in plan:
        name = type(action).__name__
        counts[name] = counts.get(name, 0) + 1
    return counts
