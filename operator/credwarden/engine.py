"""The lifecycle engine: inventory + `now` -> lifecycle records and a plan of actions.

Pure: no I/O, no clock. The audit calls `evaluate` once; the operator calls
`evaluate_credential` for the credentials a watch event affected. Events are planned
on transitions only: the previous state is what credwarden last annotated on the object,
so a restart or a resync plans no event twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from credwarden.durations import add, parse_duration, subtract
from credwarden.enforcement import (
    DELETE_AFTER,
    PREVIOUS_OF,
    RECREATE_OF,
    RECREATE_UID,
    REFRESH_INTERVAL_SECONDS,
    REFRESH_REQUESTED,
    RESTART_PENDING,
    ROTATION_PENDING,
    ROTATIONS,
    Decision,
    decide,
    pending_rotation,
    restartable,
)
from credwarden.facts import (
    EXPIRES_ANNOTATION,
    SA_TOKEN_TYPE,
    TLS_TYPE,
    Meta,
    PolicyFacts,
    SecretFacts,
    WorkloadFacts,
    parse_time,
)
from credwarden.gcpause import paused_collection
from credwarden.inventory import CredentialKey, Inventory
from credwarden.models import OwnershipRules, SecretLimits, TokenLimits
from credwarden.owner import OWNER_ANNOTATION, OWNER_SOURCE_ANNOTATION, explicit_owner, infer_owner
from credwarden.records import (
    COMPLIANT,
    EXEMPT,
    EXPIRING,
    EXPIRING_RULES,
    NON_COMPLIANT,
    UNGOVERNED,
    Action,
    Annotate,
    Consumer,
    DeletePrevious,
    Evaluation,
    Finding,
    LifecycleRecord,
    PostEvent,
    RecreateAccount,
    Refresh,
    RestartConsumers,
    Revoke,
    Rotate,
    findings_tuple,
    rfc3339,
    traits_of,
)
from credwarden.rules import Deadline, RuleContext, rules_for
from credwarden.selection import (
    governs_kind,
    governs_object,
    policy_covers_namespace,
    precedence_key,
)

EXEMPT_ANNOTATION = "credwarden.io/exempt"
STATUS_ANNOTATION = "credwarden.io/status"
FINDINGS_ANNOTATION = "credwarden.io/findings"
POLICY_ANNOTATION = "credwarden.io/policy"
LAST_ROTATED_ANNOTATION = "credwarden.io/last-rotated"
# Every annotation credwarden writes. The owner annotation is removed only when
# credwarden set it: a person's own owner annotation is an input, never ours to delete.
MANAGED_ANNOTATIONS = (
    OWNER_ANNOTATION,
    OWNER_SOURCE_ANNOTATION,
    EXPIRES_ANNOTATION,
    STATUS_ANNOTATION,
    POLICY_ANNOTATION,
    FINDINGS_ANNOTATION,
)
ACTION_STRENGTH = {"Warn": 0, "Revoke": 1, "Rotate": 1}
_DEFAULT_OWNERSHIP = OwnershipRules()
_Candidate = tuple[datetime, timedelta, PolicyFacts, str, str]
TOKEN_WARNING = timedelta(days=14)
SECRET_WARNING = timedelta(days=14)
CERTIFICATE_WARNING = timedelta(days=30)
NOT_AFTER = "the certificate's notAfter"


def governing_policies(
    inventory: Inventory,
    *,
    kind: str,
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    secret_type: str | None,
) -> tuple[PolicyFacts, ...]:
    """Valid policies that govern this credential, in precedence order."""
    return _governing(inventory, kind, namespace, name, labels, secret_type).policies


def _governing(
    inventory: Inventory,
    kind: str,
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    secret_type: str | None,
) -> _PolicySet:
    """The policies that govern this credential and what derives from them alone."""
    memo_key = (kind, namespace, secret_type)
    found = inventory.policy_memo.get(memo_key)
    if found is None:
        found = inventory.policy_memo[memo_key] = _candidates(
            inventory, kind, namespace, secret_type
        )
    candidates, every_one = found
    if every_one is not None:  # no selector, no exemptions: the same for every credential
        return every_one
    governing: list[PolicyFacts] = []
    for policy in candidates:
        spec = policy.spec
        # governs_object, inlined for the common policy without selector or exemptions
        if (spec is not None and spec.selector is None and not spec.exemptions) or (
            governs_object(policy, namespace=namespace, name=name, labels=labels)
        ):
            governing.append(policy)
    return _policy_set(inventory, governing)


class _Limit:
    """One policy's limit for one kind of Secret (legacy token, TLS, stored), its
    durations parsed and its reasons formatted once per policy list, not per credential.
    A certificate limit may have no maxAge (`by_age` False): its notAfter decides."""

    __slots__ = (
        "action",
        "aged_window",
        "by_age",
        "max_age",
        "policy",
        "why",
        "why_rotated",
        "window",
    )

    def __init__(
        self,
        policy: PolicyFacts,
        action: str,
        max_age: timedelta | None,
        max_age_text: str | None,
        window: timedelta,
        aged_window: timedelta | None = None,
    ) -> None:
        self.policy = policy
        self.action = action
        self.by_age = max_age is not None
        self.max_age = max_age if max_age is not None else timedelta(0)
        self.window = window  # the warning window
        # TLS: the window when maxAge applies (a quarter of it if that is shorter)
        self.aged_window = window if aged_window is None else aged_window
        self.why = f"{max_age_text} after creation"
        self.why_rotated = f"{max_age_text} after last rotation"


def _age_limits(
    policies: Sequence[PolicyFacts],
    limits_of: Callable[[PolicyFacts], TokenLimits | SecretLimits | None],
    default_warning: timedelta,
) -> tuple[_Limit, ...]:
    """The maximum-age limits the policies set for one kind (tokens, or stored Secrets)."""
    limits: list[_Limit] = []
    for policy in policies:
        found = limits_of(policy)
        if found:
            max_age = parse_duration(found.maxAge)
            window = warning_window(max_age, found.warnBefore, default_warning)
            limits.append(_Limit(policy, found.action, max_age, found.maxAge, window))
    return tuple(limits)


def _token_limits(policies: Sequence[PolicyFacts]) -> tuple[_Limit, ...]:
    return _age_limits(policies, _token_limits_of, TOKEN_WARNING)


def _token_limits_of(policy: PolicyFacts) -> TokenLimits | None:
    return policy.spec.limits.serviceAccountTokens if policy.spec else None


def _certificate_limits(policies: Sequence[PolicyFacts]) -> tuple[_Limit, ...]:
    limits: list[_Limit] = []
    for policy in policies:
        certificate = policy.spec.limits.certificates if policy.spec else None
        if certificate is None:
            continue
        warn = parse_duration(certificate.warnBefore) if certificate.warnBefore else None
        max_age = parse_duration(certificate.maxAge) if certificate.maxAge else None
        window = warn if warn is not None else CERTIFICATE_WARNING
        if warn is None and max_age is not None:
            aged_window = min(CERTIFICATE_WARNING, max_age / 4)
        else:
            aged_window = window
        limits.append(_Limit(policy, "Warn", max_age, certificate.maxAge, window, aged_window))
    return tuple(limits)


def _stored_limits(policies: Sequence[PolicyFacts]) -> tuple[_Limit, ...]:
    return _age_limits(policies, _stored_limits_of, SECRET_WARNING)


def _stored_limits_of(policy: PolicyFacts) -> SecretLimits | None:
    return policy.spec.limits.secrets if policy.spec else None


class _PolicySet:
    """What the engine derives from a list of governing policies alone, once per distinct
    list (see `_policy_set`) instead of once per credential."""

    __slots__ = (
        "annotation_keys",
        "first",
        "first_mode",
        "label_keys",
        "names",
        "policies",
        "required_by",
        "stored_limits",
        "tls_limits",
        "token_limits",
    )

    def __init__(self, policies: Sequence[PolicyFacts]) -> None:
        self.policies = tuple(policies)
        self.annotation_keys, self.label_keys, self.required_by = _ownership(policies)
        self.names = tuple(policy.display_name for policy in policies)
        first = policies[0] if policies else None
        self.first = first
        self.first_mode = first.spec.mode if first is not None and first.spec else None
        self.token_limits = _token_limits(policies)
        self.tls_limits = _certificate_limits(policies)
        self.stored_limits = _stored_limits(policies)

    def limits_for(self, secret_type: str) -> tuple[_Limit, ...]:
        if secret_type == SA_TOKEN_TYPE:
            return self.token_limits
        return self.tls_limits if secret_type == TLS_TYPE else self.stored_limits


def _policy_set(inventory: Inventory, policies: Sequence[PolicyFacts]) -> _PolicySet:
    memo_key = tuple(map(id, policies))
    found: _PolicySet | None = inventory.policy_derived.get(memo_key)
    if found is None:
        found = inventory.policy_derived[memo_key] = _PolicySet(policies)
    return found


def _candidates(
    inventory: Inventory, kind: str, namespace: str, secret_type: str | None
) -> tuple[tuple[PolicyFacts, ...], _PolicySet | None]:
    """The policies covering this namespace that govern this kind and type, in precedence
    order: the same for every credential of a namespace, so worked out once and kept in
    the inventory's policy memo (emptied when a policy or a namespace changes); with
    them, their policy set when every one of them governs every such credential."""
    covering = inventory.policies_covering.get(namespace)
    if covering is None:
        covering = inventory.policies_covering[namespace] = _covering(inventory, namespace)
    matching = tuple(
        policy for policy in covering if governs_kind(policy, kind=kind, secret_type=secret_type)
    )
    unconditional = all(
        policy.spec is not None and policy.spec.selector is None and not policy.spec.exemptions
        for policy in matching
    )
    return matching, _policy_set(inventory, matching) if unconditional else None


def _covering(inventory: Inventory, namespace: str) -> tuple[PolicyFacts, ...]:
    """The valid policies covering a namespace, in precedence order (a stable sort of
    `inventory.policies`: filtering this keeps precedence order)."""
    namespace_facts = inventory.namespaces.get(namespace)
    namespace_labels = namespace_facts.labels if namespace_facts else {}
    covering = [
        policy
        for policy in inventory.policies.values()
        if policy.spec is not None and policy_covers_namespace(policy, namespace, namespace_labels)
    ]
    covering.sort(key=lambda policy: precedence_key(policy, 0))
    return tuple(covering)


def last_rotated(secret: SecretFacts) -> datetime | None:
    """The later of credwarden's own record and the newest write to data; else creation.

    The later one, so a Secret rotated by hand after credwarden last rotated it counts.
    """
    meta = secret.meta
    recorded = meta.annotation(LAST_ROTATED_ANNOTATION)
    ours = parse_time(recorded) if recorded else None
    written = meta.data_changed_at
    if ours is None or written is None:
        return ours or written or meta.created_at
    return max(ours, written)


def warning_window(max_age: timedelta, warn_before: str | None, default: timedelta) -> timedelta:
    """warnBefore as written; unset: the default, or a quarter of maxAge if that is shorter
    (so a 24h limit needs no warnBefore of its own)."""
    if warn_before:
        return parse_duration(warn_before)
    return min(default, max_age / 4)


def _pick(candidates: list[_Candidate]) -> Deadline | None:
    """The earliest deadline wins; ties go by action, mode, kind and name.
    The warning starts by the widest window any governing policy asks for."""
    if not candidates:
        return None
    if len(candidates) == 1:  # the common case: no tie to break
        expires_at, widest, policy, action, why = candidates[0]
    else:
        expires_at, _, policy, action, why = min(
            candidates, key=lambda c: (c[0], precedence_key(c[2], ACTION_STRENGTH[c[3]]))
        )
        widest = max(candidate[1] for candidate in candidates)
    if len(candidates) == 1:
        # (a comprehension costs a function object and a frame per call in 3.11)
        every: tuple[tuple[datetime, PolicyFacts, str, str], ...] = (
            (expires_at, policy, action, why),
        )
    else:
        every = tuple((c[0], c[2], c[3], c[4]) for c in candidates)
    return Deadline(expires_at, subtract(expires_at, widest), policy, action, why, every)


def secret_deadline(
    secret: SecretFacts, policies: Sequence[PolicyFacts], rotated: datetime | None
) -> Deadline | None:
    """When this Secret expires under these policies, and which one says so."""
    if secret.is_token:
        limits = _token_limits(policies)
    else:
        limits = _certificate_limits(policies) if secret.is_tls else _stored_limits(policies)
    return _deadline(secret, limits, rotated)


def _deadline(
    secret: SecretFacts, limits: Sequence[_Limit], rotated: datetime | None
) -> Deadline | None:
    """`secret_deadline` from the governing policies' limits for this kind of Secret."""
    if not limits:
        return None
    created = secret.meta.created_at
    candidates: list[_Candidate] = []
    secret_type = secret.type  # compared here rather than through is_token / is_tls calls
    if secret_type == SA_TOKEN_TYPE:
        if created:
            for limit in limits:
                expires_at = add(created, limit.max_age)
                candidates.append((expires_at, limit.window, limit.policy, limit.action, limit.why))
    elif secret_type == TLS_TYPE:
        not_after = secret.cert_not_after
        if not_after is None:
            return None
        since_rotation = rotated and created and rotated > created
        for limit in limits:
            expires_at, window, why = not_after, limit.window, NOT_AFTER
            if limit.by_age and rotated:
                window = limit.aged_window
                by_age = add(rotated, limit.max_age)
                if by_age < expires_at:
                    expires_at = by_age
                    why = limit.why_rotated if since_rotation else limit.why
            candidates.append((expires_at, window, limit.policy, "Warn", why))
    elif rotated:
        since_rotation = created and rotated > created
        for limit in limits:
            expires_at = add(rotated, limit.max_age)
            why = limit.why_rotated if since_rotation else limit.why
            candidates.append((expires_at, limit.window, limit.policy, limit.action, why))
    return _pick(candidates)


def _policies_for_secret(inventory: Inventory, secret: SecretFacts) -> tuple[PolicyFacts, ...]:
    meta = secret.meta
    return _governing(
        inventory, "Secret", meta.namespace, meta.name, meta.labels, secret.type
    ).policies


def _ownership(policies: Sequence[PolicyFacts]) -> tuple[list[str], list[str], PolicyFacts | None]:
    """Owner keys from every governing policy; who requires an owner, if any."""
    annotation_keys: list[str] = []
    label_keys: list[str] = []
    required_by: PolicyFacts | None = None
    declared = False
    for policy in policies:
        ownership = policy.spec.ownership if policy.spec else None
        if ownership is None:
            continue
        declared = True
        annotation_keys += [k for k in ownership.annotationKeys if k not in annotation_keys]
        label_keys += [k for k in ownership.labelKeys if k not in label_keys]
        if ownership.required and required_by is None:
            required_by = policy
    if not declared:
        label_keys = list(_DEFAULT_OWNERSHIP.labelKeys)
    return annotation_keys, label_keys, required_by


def _reported_elsewhere(inventory: Inventory, workload: WorkloadFacts) -> bool:
    """A Pod or Job whose controlling workload is known is reported through that one.
    ReplicaSets are not read: a Pod of ReplicaSet `web-5d8f` goes with Deployment `web`."""
    if workload.controller is None:
        return False
    kind, name = workload.controller
    if (kind, workload.namespace, name) in inventory.workloads:
        return True
    if kind == "ReplicaSet" and "-" in name:
        return ("Deployment", workload.namespace, name.rsplit("-", 1)[0]) in inventory.workloads
    return False


def _consumers(inventory: Inventory, key: CredentialKey) -> tuple[Consumer, ...]:
    found: set[Consumer] = set()
    if key.kind == "Secret":
        if (key.namespace, key.name) not in inventory._consumers:
            return ()  # read by no workload (most Secrets)
        for workload in inventory.consumers_of(key.namespace, key.name):
            if _reported_elsewhere(inventory, workload):
                continue
            for use in workload.uses:
                if use.secret == key.name:
                    found.add(Consumer(workload.kind, workload.namespace, workload.name, use.via))
    else:
        if (key.namespace, key.name) not in inventory._sa_users:
            return ()  # no workload runs as it
        for workload in inventory.workloads_running_as(key.namespace, key.name):
            if not _reported_elsewhere(inventory, workload):
                found.add(
                    Consumer(workload.kind, workload.namespace, workload.name, "serviceAccount")
                )
    # Consumer's own order, by its fields: no Python-level __lt__ per comparison
    return tuple(sorted(found, key=_consumer_order)) if len(found) > 1 else tuple(found)


def _consumer_order(consumer: Consumer) -> tuple[str, str, str, str]:
    return (consumer.kind, consumer.namespace, consumer.name, consumer.via)


def _status(findings: Sequence[Finding]) -> str:
    expiring = False
    for finding in findings:
        if finding.severity == "violation":
            return NON_COMPLIANT
        expiring = expiring or finding.rule in EXPIRING_RULES
    return EXPIRING if expiring else COMPLIANT


def exemption(inventory: Inventory, meta: Meta, secret: SecretFacts | None) -> str | None:
    """Why a credential is exempt, or None. A legacy token shares its ServiceAccount's
    exemption: exempting an account would mean little if its tokens were revoked."""
    if (reason := meta.annotation(EXEMPT_ANNOTATION)) is not None:
        return reason
    if secret is not None and secret.is_token and secret.service_account:
        account = inventory.service_accounts.get((meta.namespace, secret.service_account))
        if (
            account is not None
            and (reason := account.meta.annotation(EXEMPT_ANNOTATION)) is not None
        ):
            return f"its ServiceAccount is exempt: {reason}"
    return None


def evaluate_credential(
    inventory: Inventory, key: CredentialKey, now: datetime
) -> tuple[LifecycleRecord, list[Action]] | None:
    """Evaluate one credential; None when it is no longer in the inventory."""
    secret = account = None
    namespace, name = key.namespace, key.name
    if key.kind == "Secret":
        secret = inventory.secrets.get((namespace, name))
        if secret is None:
            return None
        meta = secret.meta
        record_type = secret.type
        policy_set = _governing(inventory, "Secret", namespace, name, meta.labels, record_type)
    else:
        account = inventory.service_accounts.get((namespace, name))
        if account is None:
            return None
        meta = account.meta
        record_type = "ServiceAccount"
        policy_set = _governing(inventory, "ServiceAccount", namespace, name, meta.labels, None)
    policies = policy_set.policies

    exempt_reason = exemption(inventory, meta, secret)
    owner, owner_source = infer_owner(
        meta,
        inventory,
        secret.service_account if secret else None,
        policy_set.annotation_keys,
        policy_set.label_keys,
    )
    token_deadlines: list[tuple[SecretFacts, Deadline]] = []
    if secret is not None:
        rotated = last_rotated(secret)
        limits = policy_set.limits_for(record_type)
        deadline = _deadline(secret, limits, rotated)
    else:
        rotated = meta.created_at
        deadline = None
        for token in inventory.tokens_of(namespace, name):
            if exemption(inventory, token.meta, token) is not None:
                continue  # an exempt token does not make its account non-compliant
            token_meta = token.meta
            token_set = _governing(
                inventory, "Secret", namespace, token_meta.name, token_meta.labels, token.type
            )
            token_limits = token_set.limits_for(token.type)
            token_deadline = _deadline(token, token_limits, token_meta.created_at)
            if token_deadline is not None:
                token_deadlines.append((token, token_deadline))

    consumers = _consumers(inventory, key)
    decision = (
        decide(inventory, secret, deadline, policies, now)
        # nothing to decide before the earliest limit has passed (`Deadline.acting`)
        if secret is not None
        and exempt_reason is None
        and deadline is not None
        and deadline.expires_at <= now
        else None
    )
    # positional: keywords cost more per field in a slots dataclass's __init__
    context = RuleContext(
        key,
        meta,
        secret,
        account,
        inventory,
        now,
        policies,
        owner,
        policy_set.required_by,
        consumers,
        deadline,
        token_deadlines,
        [],  # milestones
        decision,
    )
    findings: list[Finding] = []
    if policies and exempt_reason is None:
        for rule in rules_for(secret):
            found = rule(context)
            if found:
                findings += found

    if exempt_reason is not None:
        status = EXEMPT
    elif not policies:
        status = UNGOVERNED
    else:
        status = _status(findings)
    expires_at = deadline.expires_at if deadline else None
    if token_deadlines:
        expires_at = min(d.expires_at for _, d in token_deadlines)
    if exempt_reason is not None:
        # an exempt credential has no deadline and no deciding policy to show
        expires_at = policy_name = mode = None
    elif deadline:
        deciding = deadline.policy
        policy_name = deciding.display_name
        mode = deciding.spec.mode if deciding.spec else None
    elif policy_set.first is not None:
        policy_name, mode = policy_set.first.display_name, policy_set.first_mode
    else:
        policy_name = mode = None
    review = context.milestones if status not in (EXEMPT, UNGOVERNED) else []
    if secret is not None and (delete_after := meta.annotation(DELETE_AFTER)):
        cleanup_at = parse_time(delete_after)
        if cleanup_at is not None and meta.annotation(PREVIOUS_OF) is not None and cleanup_at > now:
            review.append(cleanup_at)  # credwarden's own previous-values Secret
    record = LifecycleRecord(
        key,
        meta.identity,
        owner,
        meta.created_at,
        rotated if secret else None,
        expires_at,
        traits_of(record_type, owner_source, status, policy_name, mode, policy_set.names),
        consumers,
        findings_tuple(findings),
        min(review) if review else None,
    )
    return record, plan_for(record, meta, secret, decision, inventory, now)


def desired_annotations(record: LifecycleRecord, meta: Meta) -> dict[str, str | None]:
    """credwarden's annotations as they should be; None means absent."""
    ours_owner = explicit_owner(meta) is None
    traits = record.traits  # the shared part, read once
    if traits.status in (EXEMPT, UNGOVERNED):
        desired: dict[str, str | None] = dict.fromkeys(MANAGED_ANNOTATIONS)
        if not ours_owner:
            # a person's owner stays; without owner-source it still reads as theirs
            del desired[OWNER_ANNOTATION]
        return desired
    desired = {
        OWNER_SOURCE_ANNOTATION: traits.owner_source,
        EXPIRES_ANNOTATION: rfc3339(record.expires_at),
        STATUS_ANNOTATION: traits.status,
        POLICY_ANNOTATION: traits.policy,
        FINDINGS_ANNOTATION: ",".join(record.rule_ids) or None,
    }
    if ours_owner:
        desired[OWNER_ANNOTATION] = record.owner
    return desired


def plan_for(
    record: LifecycleRecord,
    meta: Meta,
    secret: SecretFacts | None,
    decision: Decision | None,
    inventory: Inventory,
    now: datetime,
) -> list[Action]:
    actions: list[Action] = []
    current = meta.annotation
    desired = desired_annotations(record, meta)
    to_set: dict[str, str] = {}
    removed: list[str] = []
    for name, value in desired.items():  # a loop: no comprehension frames per credential
        if value is None:
            if current(name) is not None:
                removed.append(name)
        elif current(name) != value:
            to_set[name] = value
    to_remove = tuple(removed)
    uid = ""  # unpacked once, when an action needs it (most evaluations plan none)
    if to_set or to_remove:
        uid = record.uid
        actions.append(Annotate(record.key, uid, to_set, to_remove))

    # events: transitions from what credwarden last recorded on the object
    status = record.status
    if status not in (EXEMPT, UNGOVERNED):
        previous_rules = (
            set(filter(None, (current(FINDINGS_ANNOTATION) or "").split(",")))
            if record.findings
            else set()
        )
        previous_status = current(STATUS_ANNOTATION)
        for finding in record.findings:
            if finding.rule not in previous_rules:
                uid = uid or record.uid
                actions.append(
                    PostEvent(record.key, uid, "Warning", finding.reason, finding.message)
                )
                previous_rules.add(finding.rule)  # one event per rule, the first message
        if status == COMPLIANT and previous_status in (NON_COMPLIANT, EXPIRING):
            actions.append(
                PostEvent(
                    record.key,
                    uid or record.uid,
                    "Normal",
                    "CredentialCompliant",
                    f"compliant again (policy {record.policy})",
                )
            )

    if secret is not None:
        actions += _enforcement_plan(record, meta, secret, decision, inventory, now)
    return actions


def _enforcement_plan(
    record: LifecycleRecord,
    meta: Meta,
    secret: SecretFacts,
    decision: Decision | None,
    inventory: Inventory,
    now: datetime,
) -> list[Action]:
    """Revoke, rotate (or finish a rotation), restart consumers, clean up previous values."""
    actions: list[Action] = []
    key = record.key
    pending = pending_rotation(secret) if meta.annotation(ROTATION_PENDING) is not None else None
    if pending is not None:
        # recorded as started on the object: finish it whatever the policies say now
        actions.append(
            Rotate(
                key,
                record.uid,
                meta.resource_version,
                str(pending.get("policy", "")),
                tuple(str(k) for k in pending["keys"]),
                "finishing a rotation interrupted before it completed",
                True,
                rotation_id=str(pending.get("id", "1")),
                length=int(pending.get("length", 32)),
                alphabet=str(pending.get("alphabet", "alphanumeric")),
                grace=str(pending.get("grace", "24h")),
                resume=True,
            )
        )
    elif restart := meta.annotation(RESTART_PENDING):
        workloads = restartable(inventory.consumers_of(*secret.key))
        actions.append(RestartConsumers(key, restart, workloads))
    elif (
        decision is not None
        and decision.blocked is None
        and record.status == NON_COMPLIANT
        and decision.policy.spec is not None
    ):
        spec = decision.policy.spec
        enforced = spec.mode == "Enforce"
        reason = f"expired {rfc3339(decision.expired_at)}, {decision.why}"
        policy = decision.policy.display_name
        if decision.action == "Revoke":
            recreate = spec.enforcement.recreateServiceAccounts and secret.service_account
            actions.append(
                Revoke(
                    key,
                    record.uid,
                    meta.resource_version,
                    policy,
                    reason,
                    enforced,
                    recreate_account=secret.service_account if recreate else None,
                )
            )
        elif decision.action == "Refresh" and decision.owner is not None:
            kind, name = decision.owner
            asked = parse_time(meta.annotation(REFRESH_REQUESTED))
            if asked is None or (now - asked).total_seconds() >= REFRESH_INTERVAL_SECONDS:
                actions.append(Refresh(key, kind, name, policy, reason, enforced))
        elif decision.action == "Rotate" and spec.rotation is not None:
            count = meta.annotation(ROTATIONS) or "0"
            actions.append(
                Rotate(
                    key,
                    record.uid,
                    meta.resource_version,
                    policy,
                    tuple(spec.rotation.keys),
                    reason,
                    enforced,
                    rotation_id=str(int(count) + 1 if count.isdigit() else 1),
                    length=spec.rotation.generator.length,
                    alphabet=spec.rotation.generator.alphabet,
                    grace=spec.rotation.gracePeriod,
                )
            )
    if account := meta.annotation(RECREATE_OF):
        # a ServiceAccount recreation recorded and not finished (interrupted)
        actions.append(RecreateAccount(key, account, meta.annotation(RECREATE_UID) or ""))
    if meta.annotation(PREVIOUS_OF) is not None:
        cleanup_at = parse_time(meta.annotation(DELETE_AFTER))
        if cleanup_at is not None and cleanup_at <= now:
            actions.append(DeletePrevious(key, record.uid, meta.resource_version))
    return actions


def evaluate(inventory: Inventory, now: datetime) -> Evaluation:
    """Evaluate every credential in the inventory."""
    evaluation = Evaluation(now=now)
    for policy in inventory.policies.values():
        if policy.error:
            evaluation.policy_errors[f"{policy.kind} {policy.display_name}"] = policy.error
    add_record, add_actions = evaluation.records.append, evaluation.plan.extend
    with paused_collection():
        # CredentialKey's own order: "Secret" sorts before "ServiceAccount", and within a
        # kind the (namespace, name) tuples sort at C speed, with no key objects compared
        for kind, names in (
            ("Secret", inventory.secrets),
            ("ServiceAccount", inventory.service_accounts),
        ):
            for namespace, name in sorted(names):
                result = evaluate_credential(inventory, CredentialKey(kind, namespace, name), now)
                if result is not None:
                    add_record(result[0])
                    add_actions(result[1])
    return evaluation
