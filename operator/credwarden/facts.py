"""Derived facts: what credwarden keeps of a Kubernetes object.

Raw bodies are turned into small frozen records the moment they arrive. A Secret's
values are reduced to keyed hashes (HMAC-SHA256 under a key that lives only in the
process) and its certificate to a date; the bodies themselves are never kept, so no
secret value sits in the operator's long-lived memory. Every function here accepts any
shape the Kubernetes schema allows (and worse) without raising.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from credwarden.certificates import CertificateError, certificate_not_after
from credwarden.models import CredentialPolicySpec

SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
TLS_TYPE = "kubernetes.io/tls"
DOCKERCONFIG_TYPES = ("kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg")
# Secret types that hold credentials; others (helm.sh/release.v1, ...) are not governed
# unless a policy lists them in secretTypes.
CREDENTIAL_TYPES = (
    "Opaque",
    SA_TOKEN_TYPE,
    TLS_TYPE,
    *DOCKERCONFIG_TYPES,
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
    "bootstrap.kubernetes.io/token",
)
# kubectl apply copies the whole object, Secret data included, into this annotation.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
LEGACY_LAST_USED = "kubernetes.io/legacy-token-last-used"
LEGACY_INVALID_SINCE = "kubernetes.io/legacy-token-invalid-since"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
WORKLOAD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
HASH_BYTES = 16
# Values shared by design (every token Secret carries the cluster CA) or too short to
# mean anything when equal are not compared for duplicate-secret.
NOT_COMPARED_KEYS = frozenset({"ca.crt", "namespace"})
MIN_COMPARED_BYTES = 8


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _str_map(value: Any) -> dict[str, str]:
    return {str(k): v for k, v in _dict(value).items() if isinstance(v, str)}


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime; None if absent or malformed."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return None


def parse_date(value: Any) -> date | None:
    """A `YYYY-MM-DD` label value (legacy-token labels) as a date."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class OwnerRef:
    kind: str
    name: str
    api_version: str
    controller: bool


@dataclass(frozen=True, slots=True)
class Meta:
    namespace: str
    name: str
    uid: str
    resource_version: str
    created_at: datetime | None
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    owner_references: tuple[OwnerRef, ...]
    # field managers that own each annotation key (from managedFields), when known
    annotation_managers: Mapping[str, str]
    # newest managedFields time that touched data/stringData
    data_changed_at: datetime | None
    deleting: bool

    @property
    def controller(self) -> OwnerRef | None:
        return next((ref for ref in self.owner_references if ref.controller), None)


def _managed_fields(metadata: dict[str, Any]) -> tuple[dict[str, str], datetime | None]:
    managers: dict[str, str] = {}
    data_changed_at: datetime | None = None
    for entry in _list(metadata.get("managedFields")):
        entry = _dict(entry)
        fields = _dict(entry.get("fieldsV1"))
        manager = _str(entry.get("manager"))
        annotations = _dict(_dict(fields.get("f:metadata")).get("f:annotations"))
        for key in annotations:
            if isinstance(key, str) and key.startswith("f:"):
                managers[key[2:]] = manager
        if "f:data" in fields or "f:stringData" in fields:
            when = parse_time(entry.get("time"))
            if when and (data_changed_at is None or when > data_changed_at):
                data_changed_at = when
    return managers, data_changed_at


def meta_of(body: Mapping[str, Any]) -> Meta:
    metadata = _dict(body.get("metadata"))
    annotations = _str_map(metadata.get("annotations"))
    annotations.pop(LAST_APPLIED, None)
    owners = tuple(
        OwnerRef(
            kind=_str(ref.get("kind")),
            name=_str(ref.get("name")),
            api_version=_str(ref.get("apiVersion")),
            controller=ref.get("controller") is True,
        )
        for ref in map(_dict, _list(metadata.get("ownerReferences")))
    )
    managers, data_changed_at = _managed_fields(metadata)
    return Meta(
        namespace=_str(metadata.get("namespace")),
        name=_str(metadata.get("name")),
        uid=_str(metadata.get("uid")),
        resource_version=_str(metadata.get("resourceVersion")),
        created_at=parse_time(metadata.get("creationTimestamp")),
        labels=_str_map(metadata.get("labels")),
        annotations=annotations,
        owner_references=owners,
        annotation_managers=managers,
        data_changed_at=data_changed_at,
        deleting=bool(metadata.get("deletionTimestamp")),
    )


@dataclass(frozen=True, slots=True)
class SecretFacts:
    meta: Meta
    type: str
    # data key -> keyed hash of its value (hex), for values worth comparing; never a value
    value_hashes: Mapping[str, str]
    cert_not_after: datetime | None = None
    cert_error: str | None = None
    service_account: str | None = None
    service_account_uid: str | None = None
    legacy_last_used: date | None = None
    legacy_invalid_since: date | None = None
    data_keys: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.meta.namespace, self.meta.name)

    @property
    def is_token(self) -> bool:
        return self.type == SA_TOKEN_TYPE

    @property
    def is_tls(self) -> bool:
        return self.type == TLS_TYPE


@dataclass(frozen=True, slots=True)
class ServiceAccountFacts:
    meta: Meta
    secret_names: tuple[str, ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    automount: bool | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.meta.namespace, self.meta.name)


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class BindingFacts:
    kind: str  # RoleBinding | ClusterRoleBinding
    namespace: str
    name: str
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class NamespaceFacts:
    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    deleting: bool = False


@dataclass(frozen=True, slots=True)
class SecretUse:
    secret: str
    via: str  # env | file | imagePullSecret


@dataclass(frozen=True, slots=True)
class WorkloadFacts:
    kind: str
    namespace: str
    name: str
    uses: tuple[SecretUse, ...]
    service_account: str | None
    # the workload that runs this one (a Pod's ReplicaSet, a Job's CronJob), if any
    controller: tuple[str, str] | None = None

    @property
    def controlled(self) -> bool:
        return self.controller is not None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


def value_hash(hash_key: bytes, value: bytes) -> str:
    digest = hmac.new(hash_key, value, hashlib.sha256).digest()
    return digest[:HASH_BYTES].hex()


def _decode(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return None


def secret_facts(body: Mapping[str, Any], hash_key: bytes) -> SecretFacts:
    """Reduce a Secret to facts. Values are hashed and the certificate read, then dropped."""
    meta = meta_of(body)
    secret_type = _str(body.get("type")) or "Opaque"
    hashes: dict[str, str] = {}
    raw: dict[str, bytes] = {}
    for key, encoded in _dict(body.get("data")).items():
        decoded = _decode(encoded)
        if decoded is not None:
            raw[str(key)] = decoded
    for key, text in _dict(body.get("stringData")).items():
        if isinstance(text, str):
            raw[str(key)] = text.encode()
    for key, value in raw.items():
        if key not in NOT_COMPARED_KEYS and len(value) >= MIN_COMPARED_BYTES:
            hashes[key] = value_hash(hash_key, value)
    not_after: datetime | None = None
    cert_error: str | None = None
    if secret_type == TLS_TYPE:
        try:
            not_after = certificate_not_after(raw.get("tls.crt"))
        except CertificateError as error:
            cert_error = str(error)
    data_keys = tuple(sorted(raw))
    raw.clear()  # the values go now; only their hashes and the certificate's date stay
    return SecretFacts(
        meta=meta,
        type=secret_type,
        value_hashes=hashes,
        cert_not_after=not_after,
        cert_error=cert_error,
        service_account=meta.annotations.get(SA_NAME_ANNOTATION) or None,
        service_account_uid=meta.annotations.get(SA_UID_ANNOTATION) or None,
        legacy_last_used=parse_date(meta.labels.get(LEGACY_LAST_USED)),
        legacy_invalid_since=parse_date(meta.labels.get(LEGACY_INVALID_SINCE)),
        data_keys=data_keys,
    )


def service_account_facts(body: Mapping[str, Any]) -> ServiceAccountFacts:
    automount = body.get("automountServiceAccountToken")
    return ServiceAccountFacts(
        meta=meta_of(body),
        secret_names=tuple(
            name for ref in _list(body.get("secrets")) if (name := _str(_dict(ref).get("name")))
        ),
        image_pull_secrets=tuple(
            name
            for ref in _list(body.get("imagePullSecrets"))
            if (name := _str(_dict(ref).get("name")))
        ),
        automount=automount if isinstance(automount, bool) else None,
    )


def binding_facts(body: Mapping[str, Any]) -> BindingFacts:
    metadata = _dict(body.get("metadata"))
    role = _dict(body.get("roleRef"))
    kind = _str(body.get("kind")) or "RoleBinding"
    namespace = _str(metadata.get("namespace"))
    subjects = tuple(
        Subject(
            kind=_str(subject.get("kind")),
            # a ServiceAccount subject of a RoleBinding defaults to the binding's namespace
            namespace=_str(subject.get("namespace")) or namespace,
            name=_str(subject.get("name")),
        )
        for subject in map(_dict, _list(body.get("subjects")))
    )
    return BindingFacts(
        kind=kind,
        namespace=namespace,
        name=_str(metadata.get("name")),
        role_kind=_str(role.get("kind")),
        role_name=_str(role.get("name")),
        subjects=subjects,
    )


def namespace_facts(body: Mapping[str, Any]) -> NamespaceFacts:
    meta = meta_of(body)
    return NamespaceFacts(
        name=meta.name, labels=meta.labels, annotations=meta.annotations, deleting=meta.deleting
    )


def pod_spec_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The Pod spec inside any workload kind (CronJob nests it twice)."""
    kind = _str(body.get("kind"))
    spec = _dict(body.get("spec"))
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = _dict(_dict(spec.get("jobTemplate")).get("spec"))
    return _dict(_dict(spec.get("template")).get("spec"))


def secret_uses(pod_spec: Mapping[str, Any]) -> tuple[SecretUse, ...]:
    uses: set[SecretUse] = set()
    containers: Iterable[Any] = (
        _list(pod_spec.get("containers"))
        + _list(pod_spec.get("initContainers"))
        + _list(pod_spec.get("ephemeralContainers"))
    )
    for container in map(_dict, containers):
        for env in map(_dict, _list(container.get("env"))):
            ref = _dict(_dict(env.get("valueFrom")).get("secretKeyRef"))
            if name := _str(ref.get("name")):
                uses.add(SecretUse(name, "env"))
        for env_from in map(_dict, _list(container.get("envFrom"))):
            if name := _str(_dict(env_from.get("secretRef")).get("name")):
                uses.add(SecretUse(name, "env"))
    for volume in map(_dict, _list(pod_spec.get("volumes"))):
        if name := _str(_dict(volume.get("secret")).get("secretName")):
            uses.add(SecretUse(name, "file"))
        for source in map(_dict, _list(_dict(volume.get("projected")).get("sources"))):
            if name := _str(_dict(source.get("secret")).get("name")):
                uses.add(SecretUse(name, "file"))
    for ref in map(_dict, _list(pod_spec.get("imagePullSecrets"))):
        if name := _str(ref.get("name")):
            uses.add(SecretUse(name, "imagePullSecret"))
    return tuple(sorted(uses, key=lambda use: (use.secret, use.via)))


def workload_facts(body: Mapping[str, Any]) -> WorkloadFacts:
    meta = meta_of(body)
    kind = _str(body.get("kind"))
    pod_spec = pod_spec_of(body)
    service_account = _str(pod_spec.get("serviceAccountName")) or _str(
        pod_spec.get("serviceAccount")
    )
    return WorkloadFacts(
        kind=kind,
        namespace=meta.namespace,
        name=meta.name,
        uses=secret_uses(pod_spec),
        # Pods always run as some account; "default" when the spec names none
        service_account=service_account or ("default" if pod_spec or kind == "Pod" else None),
        controller=(
            (meta.controller.kind, meta.controller.name)
            if meta.controller is not None and meta.controller.kind in WORKLOAD_KINDS
            else None
        ),
    )


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """A CredentialPolicy or ClusterCredentialPolicy: its parsed spec, or why it is invalid."""

    kind: str
    namespace: str
    name: str
    uid: str = ""
    generation: int | None = None
    spec: CredentialPolicySpec | None = None  # ClusterCredentialPolicySpec for the cluster kind
    error: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    @property
    def display_name(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name
