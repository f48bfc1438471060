"""The rules: small functions from a credential's context to findings, run in order.

Each rule reads the `RuleContext` the engine prepared (governing policies, owner,
consumers, deadline) and returns zero or more findings. Messages name objects, keys,
dates and policies, never a value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from credwarden.durations import add, format_duration, parse_duration
from credwarden.facts import (
    SA_TOKEN_TYPE,
    TLS_TYPE,
    Meta,
    PolicyFacts,
    SecretFacts,
    ServiceAccountFacts,
)
from credwarden.identity import is_control_plane_account, looks_like_person
from credwarden.immutable import immutable
from credwarden.inventory import CredentialKey, Inventory
from credwarden.records import Consumer, Finding
from credwarden.selection import name_matches, precedence_key


@immutable
class Deadline:
    """When a credential expires, and which policy said so."""

    expires_at: datetime
    warn_from: datetime
    policy: PolicyFacts
    action: str  # Warn | Revoke | Rotate
    why: str  # e.g. "90d after creation", "the certificate's notAfter"
    # every governing policy's own deadline: (expires_at, policy, action, why)
    candidates: tuple[tuple[datetime, PolicyFacts, str, str], ...] = ()

    def acting(self, now: datetime) -> tuple[datetime, PolicyFacts, str, str] | None:
        """Which policy acts at `now`: among those whose own limit has passed, the strongest
        action, then Enforce, then precedence. A shorter Audit/Warn limit in a namespace
        therefore never masks a cluster policy's Enforce/Revoke once that one has passed."""
        candidates = self.candidates
        if len(candidates) == 1:  # the common case: one governing limit
            return candidates[0] if candidates[0][0] <= now else None
        passed = [c for c in candidates if c[0] <= now]
        if not passed:
            return None
        strength = {"Warn": 0, "Revoke": 1, "Rotate": 1}
        return min(
            passed,
            key=lambda c: (
                -strength[c[2]],
                0 if c[1].spec is not None and c[1].spec.mode == "Enforce" else 1,
                precedence_key(c[1], 0),
            ),
        )


@dataclass(slots=True)
class RuleContext:
    key: CredentialKey
    meta: Meta
    secret: SecretFacts | None
    account: ServiceAccountFacts | None
    inventory: Inventory
    now: datetime
    policies: Sequence[PolicyFacts]
    owner: str | None
    owner_required_by: PolicyFacts | None
    consumers: tuple[Consumer, ...]
    deadline: Deadline | None
    # token Secrets of a ServiceAccount with their deadlines
    token_deadlines: Sequence[tuple[SecretFacts, Deadline]] = ()
    # future instants at which this credential's evaluation changes by itself
    milestones: list[datetime] = field(default_factory=list)
    # what Enforce mode would do (credwarden.enforcement.Decision), if anything
    decision: Any = None

    def milestone(self, moment: datetime) -> None:
        if moment > self.now:
            self.milestones.append(moment)


Rule = Callable[[RuleContext], list[Finding]]


def _age(now: datetime, since: datetime) -> str:
    return format_duration(timedelta(days=max(0, (now - since).days)))


def _expiry_findings(context: RuleContext, expired_rule: str, expiring_rule: str) -> list[Finding]:
    deadline = context.deadline
    if deadline is None:
        return []
    now, warn_from, expires_at = context.now, deadline.warn_from, deadline.expires_at
    # context.milestone() for both, written out (this runs for most credentials)
    if warn_from > now:
        context.milestones.append(warn_from)
    if expires_at > now:
        context.milestones.append(expires_at)
    if now >= expires_at:
        rule = expired_rule  # "expired <instant>, ..."
    elif now >= warn_from:
        rule = expiring_rule  # "expires <instant>, ..."
    else:
        return []
    return [
        Finding.dated(rule, expires_at, f", {deadline.why} (policy {deadline.policy.display_name})")
    ]


def rule_token_age(context: RuleContext) -> list[Finding]:
    """long-lived-token: a legacy token Secret past its limit (and the account holding it)."""
    if context.secret is not None and context.secret.is_token:
        return _expiry_findings(context, "long-lived-token", "credential-expiring")
    findings: list[Finding] = []
    for token, deadline in context.token_deadlines:
        context.milestone(deadline.expires_at)
        if context.now >= deadline.expires_at:
            created = token.meta.created_at
            age = f", {_age(context.now, created)} old" if created else ""
            findings.append(
                Finding.of(
                    "long-lived-token",
                    f"holds legacy token Secret {token.meta.name}{age}, past its limit "
                    f"({deadline.why}, policy {deadline.policy.display_name})",
                )
            )
    return findings


def rule_unused_token(context: RuleContext) -> list[Finding]:
    """unused-token: not used since the limit, or never recorded as used and mounted by no Pod."""
    secret = context.secret
    if secret is None or not secret.is_token or context.deadline is None:
        return []
    limits = context.deadline.policy.spec.limits.serviceAccountTokens  # type: ignore[union-attr]
    if limits is None:
        return []
    window = parse_duration(limits.unusedAfter or limits.maxAge)
    if secret.legacy_last_used is not None:
        last_used = datetime.combine(
            secret.legacy_last_used, datetime.min.time(), tzinfo=context.now.tzinfo
        )
        context.milestone(add(last_used, window))
        if context.now - last_used >= window:
            return [
                Finding.of(
                    "unused-token",
                    f"last used {secret.legacy_last_used.isoformat()}, more than "
                    f"{format_duration(window)} ago",
                )
            ]
        return []
    # every workload counts here, the Pods a Deployment runs included
    if not context.inventory.consumers_of(*secret.key):
        return [Finding.of("unused-token", "used by no workload and no recorded use")]
    return []


def rule_secret_age(context: RuleContext) -> list[Finding]:
    """credential-expired / credential-expiring for stored credentials."""
    secret = context.secret
    if secret is None or secret.is_token or secret.is_tls:
        return []
    return _expiry_findings(context, "credential-expired", "credential-expiring")


def rule_certificate(context: RuleContext) -> list[Finding]:
    """certificate-expired / certificate-expiring / certificate-unreadable for TLS Secrets."""
    secret = context.secret
    if secret is None or not secret.is_tls or not context.policies:
        return []
    if secret.cert_error is not None:
        return [Finding.of("certificate-unreadable", secret.cert_error)]
    return _expiry_findings(context, "certificate-expired", "certificate-expiring")


def rule_human_identity(context: RuleContext) -> list[Finding]:
    """human-identity: a ServiceAccount named like a person that no workload runs as."""
    if context.account is None:
        return []
    name = context.key.name
    for policy in context.policies:
        identity = policy.spec.identity if policy.spec else None
        if identity is None or not identity.flagPersonNames:
            continue
        if not looks_like_person(name, identity.personNamePatterns):
            continue
        if context.inventory.workloads_running_as(context.key.namespace, name):
            return []
        return [
            Finding.of(
                "human-identity",
                f"named like a person and no workload runs as it (policy {policy.display_name})",
            )
        ]
    return []


def rule_cluster_admin(context: RuleContext) -> list[Finding]:
    """cluster-admin-binding: a ServiceAccount bound to the cluster-admin ClusterRole."""
    if context.account is None:
        return []
    bindings = context.inventory.cluster_admin_bindings(context.key.namespace, context.key.name)
    if not bindings:
        return []
    for policy in context.policies:
        identity = policy.spec.identity if policy.spec else None
        if identity is None or not identity.forbidClusterAdmin:
            continue
        if name_matches(identity.clusterAdminAllowed, context.key.namespace, context.key.name):
            continue
        via = ", ".join(
            f"{binding.kind} {binding.namespace + '/' if binding.namespace else ''}{binding.name}"
            for binding in bindings
        )
        return [
            Finding.of(
                "cluster-admin-binding",
                f"bound to cluster-admin by {via} (policy {policy.display_name})",
            )
        ]
    return []


def rule_system_namespace(context: RuleContext) -> list[Finding]:
    """user-identity-in-system-namespace: an account in a protected namespace that is
    neither a control-plane account nor used by a workload there."""
    if context.account is None:
        return []
    namespace, name = context.key.namespace, context.key.name
    if context.inventory.workloads_running_as(namespace, name):
        return []
    for policy in context.policies:
        identity = policy.spec.identity if policy.spec else None
        if identity is None or namespace not in identity.protectedNamespaces:
            continue
        # an allow-list relaxes only the rule of the policy it is written in
        if is_control_plane_account(name, identity.systemAccounts):
            continue
        return [
            Finding.of(
                "user-identity-in-system-namespace",
                f"in protected namespace {namespace}, not a control-plane account, and no "
                f"workload there runs as it (policy {policy.display_name})",
            )
        ]
    return []


def rule_missing_owner(context: RuleContext) -> list[Finding]:
    policy = context.owner_required_by
    if policy is None or context.owner:
        return []
    return [
        Finding.of(
            "missing-owner",
            f"no owner: set the credwarden.io/owner annotation (policy {policy.display_name})",
        )
    ]


def rule_duplicate(context: RuleContext) -> list[Finding]:
    """duplicate-secret: a value that is also stored in another Secret (keyed hashes)."""
    secret = context.secret
    if secret is None or not context.policies:
        return []
    inventory = context.inventory
    own = secret.key
    # the data keys whose value another Secret also holds, and each such value's holders
    # (sorted, cached by the inventory: a value copied k times is not re-sorted k times)
    keys: list[str] = []
    holder_lists: list[tuple[tuple[str, str], ...]] = []
    by_hash = inventory._by_hash
    for data_key, digest in zip(secret.data_keys, secret.digests, strict=False):  # () or aligned
        if digest is None or type(by_hash.get(digest)) is not set:
            continue  # held by this Secret alone (most values): no sorting, no search
        holders = inventory.secrets_holding(digest)
        if inventory.others_holding(holders, own):
            keys.append(data_key)
            if holders not in holder_lists:  # a copied TLS Secret shares crt and key alike
                holder_lists.append(holders)
    if not keys:
        return []
    if len(holder_lists) == 1:
        holders = holder_lists[0]
        count = inventory.others_holding(holders, own)
        shown_places = [place for place in holders[:4] if place != own][:3]
    else:
        places = sorted({place for holders in holder_lists for place in holders} - {own})
        count, shown_places = len(places), places[:3]
    shown = ", ".join(f"{namespace}/{name}" for namespace, name in shown_places)
    more = f" and {count - 3} more" if count > 3 else ""
    return [
        Finding.of(
            "duplicate-secret",
            f"value of key {', '.join(sorted(set(keys)))} also stored in Secret {shown}{more}",
        )
    ]


def rule_secret_in_env(context: RuleContext) -> list[Finding]:
    if context.secret is None or not context.policies or not context.consumers:
        return []
    readers = sorted({f"{c.kind}/{c.name}" for c in context.consumers if c.via == "env"})
    if not readers:
        return []
    more = f" and {len(readers) - 3} more" if len(readers) > 3 else ""
    return [
        Finding.of(
            "secret-in-env",
            f"read through environment variables by {', '.join(readers[:3])}{more}; "
            "prefer a mounted file",
        )
    ]


def rule_enforcement_blocked(context: RuleContext) -> list[Finding]:
    """revocation-blocked / rotation-blocked: the acting policy asks for an action that a
    safety rail stops (protected namespace, token in use, Secret written elsewhere)."""
    decision = context.decision
    if decision is None or decision.blocked is None:
        return []
    rule = "revocation-blocked" if decision.action == "Revoke" else "rotation-blocked"
    return [
        Finding.of(
            rule,
            f"{decision.action.lower()} not done: {decision.blocked} "
            f"(policy {decision.policy.display_name})",
        )
    ]


# The chain, in order. A finding's rule id is stable; see records.RULES.
RULE_CHAIN: tuple[Rule, ...] = (
    rule_token_age,
    rule_unused_token,
    rule_secret_age,
    rule_certificate,
    rule_human_identity,
    rule_cluster_admin,
    rule_system_namespace,
    rule_missing_owner,
    rule_duplicate,
    rule_secret_in_env,
    rule_enforcement_blocked,
)
# The rules that can find anything for each kind of credential, in chain order: the
# others return no finding (and record no milestone) at once for that kind, so the
# engine skips calling them.
_ACCOUNT_ONLY = (rule_human_identity, rule_cluster_admin, rule_system_namespace)
_SECRET_ONLY = (
    rule_unused_token,
    rule_secret_age,
    rule_certificate,
    rule_duplicate,
    rule_secret_in_env,
    rule_enforcement_blocked,  # an account has no enforcement decision
)
SECRET_RULES: tuple[Rule, ...] = tuple(rule for rule in RULE_CHAIN if rule not in _ACCOUNT_ONLY)
ACCOUNT_RULES: tuple[Rule, ...] = tuple(rule for rule in RULE_CHAIN if rule not in _SECRET_ONLY)
# and for each kind of Secret: the age rules apply to one kind each
_TOKEN_ONLY = (rule_token_age, rule_unused_token)
TOKEN_RULES = tuple(r for r in SECRET_RULES if r not in (rule_secret_age, rule_certificate))
TLS_RULES = tuple(r for r in SECRET_RULES if r not in (*_TOKEN_ONLY, rule_secret_age))
STORED_RULES = tuple(r for r in SECRET_RULES if r not in (*_TOKEN_ONLY, rule_certificate))


_RULES_BY_TYPE = {SA_TOKEN_TYPE: TOKEN_RULES, TLS_TYPE: TLS_RULES}


def rules_for(secret: SecretFacts | None) -> tuple[Rule, ...]:
    """The rules of the chain that can find anything for this credential, in chain order."""
    if secret is None:
        return ACCOUNT_RULES
    return _RULES_BY_TYPE.get(secret.type, STORED_RULES)
