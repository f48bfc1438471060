"""The policy API (`credwarden.io/v1alpha1`), defined once.

These pydantic models are the single source of the CRD schemas (`credwarden crds`
renders them, `crds/` holds the result) and of the validation applied to policy files.
Field names follow Kubernetes conventions (camelCase), so a manifest's `spec` validates
as it is.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from credwarden.durations import DURATION_PATTERN, cel_seconds, parse_duration

GROUP = "credwarden.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

Mode = Literal["Audit", "Enforce"]
TokenAction = Literal["Warn", "Revoke"]
SecretAction = Literal["Warn", "Rotate"]


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        max_length=8,
        description="A whole number and one unit: s, m, h, d or w (e.g. 15m, 720h, 90d).",
    ),
    AfterValidator(_check_duration),
]


class _Model(BaseModel):
    # Unknown fields are typos: reject them in files (the API server prunes them).
    model_config = ConfigDict(extra="forbid", frozen=True)


def _warn_shorter_than_max(path: str) -> JsonDict:
    return {
        "rule": f"!has(self.warnBefore) || !has(self.maxAge) || "
        f"{cel_seconds('self.warnBefore')} < {cel_seconds('self.maxAge')}",
        "message": f"{path}.warnBefore must be shorter than {path}.maxAge",
    }


class LabelSelectorRequirement(_Model):
    key: str = Field(min_length=1, max_length=317, description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the key's value is compared with values."
    )
    values: list[Annotated[str, Field(max_length=63)]] = Field(
        default_factory=list,
        max_length=64,
        description="Values for In and NotIn; empty for Exists and DoesNotExist.",
    )


class LabelSelector(_Model):
    """A Kubernetes label selector (matchLabels AND matchExpressions)."""

    matchLabels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, description="Labels that must all be present with these values."
    )
    matchExpressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=32, description="Requirements that must all hold."
    )


class TokenLimits(_Model):
    """Legacy ServiceAccount token Secrets (`kubernetes.io/service-account-token`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [_warn_shorter_than_max("serviceAccountTokens")]
        }
    )

    maxAge: Duration = Field("90d", description="Age after which a legacy token is expired.")
    warnBefore: Duration | None = Field(
        None,
        description="Warn this long before maxAge is reached. Unset: 14d, or a quarter of "
        "maxAge if that is shorter.",
    )
    unusedAfter: Duration | None = Field(
        None,
        description="Flag `unused-token` when kubernetes.io/legacy-token-last-used is older "
        "than this. Unset: maxAge. A token with no recorded use is flagged when no workload "
        "uses it.",
    )
    action: TokenAction = Field("Warn", description="What Enforce mode does on expiry.")


class SecretLimits(_Model):
    """Stored credentials: Opaque, basic-auth, ssh-auth, dockerconfigjson, ..."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [_warn_shorter_than_max("secrets")]}
    )

    maxAge: Duration = Field("180d", description="Maximum age since creation or last rotation.")
    warnBefore: Duration | None = Field(
        None,
        description="Warn this long before maxAge is reached. Unset: 14d, or a quarter of "
        "maxAge if that is shorter.",
    )
    action: SecretAction = Field("Warn", description="What Enforce mode does on expiry.")


class CertificateLimits(_Model):
    """TLS Secrets (`kubernetes.io/tls`): expiry is the certificate's notAfter."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [_warn_shorter_than_max("certificates")]}
    )

    warnBefore: Duration | None = Field(
        None,
        description="Warn this long before expiry. Unset: 30d, or a quarter of maxAge if "
        "that is set and shorter.",
    )
    maxAge: Duration | None = Field(
        None, description="Optional age limit; the sooner of this and notAfter applies."
    )


class Limits(_Model):
    """Limits per kind of credential. A kind left out is not checked by this policy."""

    serviceAccountTokens: TokenLimits | None = None
    secrets: SecretLimits | None = None
    certificates: CertificateLimits | None = None


class IdentityRules(_Model):
    """Rules about what ServiceAccounts stand for and what they may do."""

    flagPersonNames: bool = Field(
        True, description="Flag ServiceAccounts named like a person that no workload runs as."
    )
    personNamePatterns: list[Annotated[str, Field(max_length=256)]] = Field(
        default_factory=list,
        max_length=64,
        description="Extra regular expressions for person-like names (full match).",
    )
    forbidClusterAdmin: bool = Field(
        True, description="Flag ServiceAccounts bound to the cluster-admin ClusterRole."
    )
    clusterAdminAllowed: list[Annotated[str, Field(max_length=317)]] = Field(
        default_factory=list,
        max_length=256,
        description="`namespace/name` globs of ServiceAccounts allowed cluster-admin.",
    )
    protectedNamespaces: list[Annotated[str, Field(max_length=63)]] = Field(
        default_factory=lambda: ["kube-system", "kube-public", "kube-node-lease"],
        max_length=256,
        description="Namespaces where only control-plane or workload accounts belong.",
    )
    systemAccounts: list[Annotated[str, Field(max_length=253)]] = Field(
        default_factory=list,
        max_length=256,
        description="Extra ServiceAccount name globs that count as control-plane accounts.",
    )


class OwnershipRules(_Model):
    """Who owns a credential: where to read it, and whether one is required."""

    required: bool = Field(True, description="A credential with no owner is a violation.")
    annotationKeys: list[Annotated[str, Field(max_length=317)]] = Field(
        default_factory=list,
        max_length=32,
        description="Annotation keys naming an owner, after credwarden.io/owner.",
    )
    labelKeys: list[Annotated[str, Field(max_length=317)]] = Field(
        default_factory=lambda: ["owner", "team"],
        max_length=32,
        description="Label keys naming an owner.",
    )


class Generator(_Model):
    """How new values are made: cryptographically random characters."""

    length: int = Field(32, ge=16, le=4096, description="Characters per generated value.")
    alphabet: Literal["alphanumeric", "ascii-printable", "hex", "base64url"] = Field(
        "alphanumeric", description="Characters a generated value is drawn from."
    )


class Rotation(_Model):
    """How Enforce mode regenerates a Secret (limits.secrets.action: Rotate)."""

    keys: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        min_length=1, max_length=64, description="Data keys to regenerate."
    )
    generator: Generator = Field(default_factory=Generator)
    gracePeriod: Duration = Field(
        "24h", description="How long the previous values are kept for rollback."
    )


class Exemptions(_Model):
    """Credentials this policy leaves alone."""

    names: list[Annotated[str, Field(max_length=317)]] = Field(
        default_factory=list,
        max_length=1024,
        description="`namespace/name` or `name` globs this policy does not govern.",
    )


class ActionBudget(_Model):
    """At most this many actions per policy per hour; the rest waits for a person."""

    revocationsPerHour: int = Field(10, ge=0, le=10000, description="Revocations per hour.")
    rotationsPerHour: int = Field(10, ge=0, le=10000, description="Rotations per hour.")


class Enforcement(_Model):
    """Safety rails for Enforce mode."""

    budget: ActionBudget = Field(
        default_factory=ActionBudget,
        description="A brake on mass revocation by a bad policy or a clock jump.",
    )
    revokeInUse: bool = Field(
        False,
        description="Revoke a legacy token even while a workload mounts or reads it. "
        "Off: such a token is reported as revocation-blocked, as Kubernetes' own legacy "
        "token cleaner skips mounted tokens.",
    )
    recreateServiceAccounts: bool = Field(
        False,
        description="When a legacy token is revoked, also recreate its ServiceAccount: the "
        "new uid invalidates every token bound to the old one (labels, annotations, "
        "imagePullSecrets and automount are kept; workloads running as it are restarted).",
    )
    protectedTargets: list[Annotated[str, Field(max_length=317)]] = Field(
        default_factory=list,
        max_length=256,
        description="`namespace/name` globs that may be revoked or rotated even in a "
        "protected namespace (kube-system, ...). Nothing there is touched otherwise.",
    )


_ROTATE_NEEDS_ROTATION: JsonDict = {
    "rule": "!has(self.limits) || !has(self.limits.secrets) || "
    "!has(self.limits.secrets.action) || self.limits.secrets.action != 'Rotate' || "
    "has(self.rotation)",
    "message": "limits.secrets.action Rotate needs spec.rotation (which keys to regenerate)",
}


class CredentialPolicySpec(_Model):
    """What a CredentialPolicy governs and how (its own namespace only)."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [_ROTATE_NEEDS_ROTATION]}
    )

    mode: Mode = Field("Audit", description="Audit reports; Enforce also revokes and rotates.")
    selector: LabelSelector | None = Field(
        None, description="Label selector on the credentials. Unset: all of them."
    )
    secretTypes: list[Annotated[str, Field(max_length=253)]] = Field(
        default_factory=list,
        max_length=64,
        description="Secret types governed. Empty: every credential type.",
    )
    serviceAccounts: bool | None = Field(
        None,
        description="Govern ServiceAccounts too. Unset: yes, unless secretTypes narrows the "
        "policy to some Secret types.",
    )
    limits: Limits = Field(default_factory=Limits)
    identity: IdentityRules | None = None
    ownership: OwnershipRules | None = None
    rotation: Rotation | None = None
    exemptions: Exemptions | None = None
    enforcement: Enforcement = Field(
        default_factory=Enforcement, description="Safety rails for Enforce mode."
    )


class ClusterCredentialPolicySpec(CredentialPolicySpec):
    """A CredentialPolicy for every namespace its namespaceSelector matches."""

    namespaceSelector: LabelSelector | None = Field(
        None, description="Namespaces governed. Unset: all namespaces."
    )


class Condition(BaseModel):
    """A Kubernetes-style condition (e.g. Ready)."""

    type: str = Field(description="The condition's name, e.g. Ready.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field("", description="One CamelCase word, e.g. InvalidSpec.")
    message: str = Field("", description="What a person should know, in one line.")
    lastTransitionTime: str | None = Field(None, description="When status last changed.")
    observedGeneration: int | None = Field(None, description="The spec generation it describes.")


class Offender(BaseModel):
    """A credential among the worst this policy governs."""

    kind: str = Field(description="Secret or ServiceAccount.")
    namespace: str = Field(description="Its namespace.")
    name: str = Field(description="Its name.")
    status: str = Field(description="NonCompliant or Expiring.")
    findings: list[str] = Field(default_factory=list, description="Its findings' rule ids.")


class PolicyStatus(BaseModel):
    """Written by the operator; read by `kubectl get cpol`."""

    observedGeneration: int | None = Field(None, description="The spec generation evaluated.")
    lastEvaluated: str | None = Field(None, description="When the counts were last updated.")
    matched: int | None = Field(None, ge=0, description="Credentials this policy governs.")
    compliant: int | None = Field(None, ge=0, description="Of those, how many are Compliant.")
    expiring: int | None = Field(None, ge=0, description="Of those, how many are Expiring.")
    violating: int | None = Field(None, ge=0, description="Of those, how many are NonCompliant.")
    worstOffenders: list[Offender] = Field(
        default_factory=list, max_length=20, description="Up to 10 credentials, worst first."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready: False with reason InvalidSpec when the spec cannot be used.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    recentActions: dict[str, list[Annotated[str, Field(max_length=32)]]] | None = Field(
        None,
        description="When this policy's revocations and rotations of the last hour were "
        "taken (RFC 3339): the action budget outlives a restart of the operator.",
    )
    kopf: dict[str, Any] | None = Field(
        None,
        description="Handler progress kept by the operator framework.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


KINDS = {
    "CredentialPolicy": CredentialPolicySpec,
    "ClusterCredentialPolicy": ClusterCredentialPolicySpec,
}


def limit_age(limit: TokenLimits | SecretLimits | CertificateLimits) -> timedelta | None:
    """The maxAge of a limit block as a timedelta (None where unset)."""
    return parse_duration(limit.maxAge) if limit.maxAge else None
