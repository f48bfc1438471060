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
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import MappingProxyType
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
# who owns a credential (owner.py reads it; defined here for managedFields parsing)
OWNER_ANNOTATION = "credwarden.io/owner"
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


_intern = sys.intern
# One shared, read-only mapping for every object without labels or annotations (about a
# third of Secrets) or without compared values, instead of an empty dict each.
_EMPTY_MAP: Mapping[str, Any] = MappingProxyType({})


def _interned(value: Any) -> str:
    """A string field that repeats across objects (namespace, type, kind, manager): one
    copy for all of them. Every object arrives from its own JSON document, so without
    this each keeps its own copy of the same few strings. (`str()` first: sys.intern
    refuses str subclasses.)"""
    return _intern(str(value)) if isinstance(value, str) else ""


def _str_map(value: Any, *, intern_values: bool = True) -> dict[str, str]:
    """String entries of a labels/annotations object. Keys repeat across objects and are
    interned; so are values unless they are likely unique (annotation values)."""
    if intern_values:
        return {
            _intern(str(k)): _intern(str(v)) for k, v in _dict(value).items() if isinstance(v, str)
        }
    return {_intern(str(k)): v for k, v in _dict(value).items() if isinstance(v, str)}


def _frozen_map(found: dict[str, str]) -> Mapping[str, str]:
    return found if found else _EMPTY_MAP


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
    # the field manager that set the credwarden.io/owner annotation (from managedFields),
    # when known: all that `owner.explicit_owner` needs of managedFields' annotation owners
    owner_annotation_manager: str | None
    # newest managedFields time that touched data/stringData
    data_changed_at: datetime | None
    deleting: bool

    @property
    def controller(self) -> OwnerRef | None:
        return next((ref for ref in self.owner_references if ref.controller), None)


# the owner annotation as a managedFields key
_OWNER_FIELD = f"f:{OWNER_ANNOTATION}"


def _managed_fields(metadata: dict[str, Any]) -> tuple[str | None, datetime | None]:
    """Who set the owner annotation (the last entry naming it wins), and the newest write
    to data/stringData."""
    owner_manager: str | None = None
    data_changed_at: datetime | None = None
    for entry in _list(metadata.get("managedFields")):
        entry = _dict(entry)
        fields = _dict(entry.get("fieldsV1"))
        annotations = _dict(_dict(fields.get("f:metadata")).get("f:annotations"))
        if _OWNER_FIELD in annotations:
            owner_manager = _interned(entry.get("manager"))
        if "f:data" in fields or "f:stringData" in fields:
            when = parse_time(entry.get("time"))
            if when and (data_changed_at is None or when > data_changed_at):
                data_changed_at = when
    return owner_manager, data_changed_at


def meta_of(body: Mapping[str, Any]) -> Meta:
    metadata = _dict(body.get("metadata"))
    annotations = _str_map(metadata.get("annotations"), intern_values=False)
    annotations.pop(LAST_APPLIED, None)
    owners = tuple(
        OwnerRef(
            kind=_interned(ref.get("kind")),
            name=_str(ref.get("name")),
            api_version=_interned(ref.get("apiVersion")),
            controller=ref.get("controller") is True,
        )
        for ref in map(_dict, _list(metadata.get("ownerReferences")))
    )
    owner_manager, data_changed_at = _managed_fields(metadata)
    return Meta(
        namespace=_interned(metadata.get("namespace")),
        name=_str(metadata.get("name")),
        uid=_str(metadata.get("uid")),
        resource_version=_str(metadata.get("resourceVersion")),
        created_at=parse_time(metadata.get("creationTimestamp")),
        labels=_frozen_map(_str_map(metadata.get("labels"))),
        annotations=_frozen_map(annotations),
        owner_references=owners,
        owner_annotation_manager=owner_manager,
        data_changed_at=data_changed_at,
        deleting=bool(metadata.get("deletionTimestamp")),
    )


@dataclass(frozen=True, slots=True)
class SecretFacts:
    meta: Meta
    type: str
    # data key -> keyed hash of its value (HASH_BYTES raw bytes), for values worth
    # comparing; never a value
    value_hashes: Mapping[str, bytes]
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


def value_hash(hash_key: bytes, value: bytes) -> bytes:
    """The keyed hash of a value, truncated to HASH_BYTES raw bytes (a hex string would
    take twice the room, and there is one per stored value)."""
    return hmac.digest(hash_key, value, hashlib.sha256)[:HASH_BYTES]


def _decode(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return None


def _frozen_hashes(found: dict[str, bytes]) -> Mapping[str, bytes]:
    return found if found else _EMPTY_MAP


def secret_facts(body: Mapping[str, Any], hash_key: bytes) -> SecretFacts:
    """Reduce a Secret to facts. Values are hashed and the certificate read, then dropped."""
    meta = meta_of(body)
    secret_type = _interned(body.get("type")) or "Opaque"
    hashes: dict[str, bytes] = {}
    raw: dict[str, bytes] = {}
    for key, encoded in _dict(body.get("data")).items():
        decoded = _decode(encoded)
        if decoded is not None:
            raw[_intern(str(key))] = decoded
    for key, text in _dict(body.get("stringData")).items():
        if isinstance(text, str):
            raw[_intern(str(key))] = text.encode()
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
        value_hashes=_frozen_hashes(hashes),
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
            _intern(str(name))
            for ref in _list(body.get("secrets"))
            if (name := _str(_dict(ref).get("name")))
        ),
        image_pull_secrets=tuple(
            _intern(str(name))
            for ref in _list(body.get("imagePullSecrets"))
            if (name := _str(_dict(ref).get("name")))
        ),
        automount=automount if isinstance(automount, bool) else None,
    )


def binding_facts(body: Mapping[str, Any]) -> BindingFacts:
    metadata = _dict(body.get("metadata"))
    role = _dict(body.get("roleRef"))
    kind = _interned(body.get("kind")) or "RoleBinding"
    namespace = _interned(metadata.get("namespace"))
    subjects = tuple(
        Subject(
            kind=_interned(subject.get("kind")),
            # a ServiceAccount subject of a RoleBinding defaults to the binding's namespace
            namespace=_interned(subject.get("namespace")) or namespace,
            name=_str(subject.get("name")),
        )
        for subject in map(_dict, _list(body.get("subjects")))
    )
    return BindingFacts(
        kind=kind,
        namespace=namespace,
        name=_str(metadata.get("name")),
        role_kind=_interned(role.get("kind")),
        role_name=_interned(role.get("name")),
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
                uses.add(SecretUse(_intern(str(name)), "env"))
        for env_from in map(_dict, _list(container.get("envFrom"))):
            if name := _str(_dict(env_from.get("secretRef")).get("name")):
                uses.add(SecretUse(_intern(str(name)), "env"))
    for volume in map(_dict, _list(pod_spec.get("volumes"))):
        if name := _str(_dict(volume.get("secret")).get("secretName")):
            uses.add(SecretUse(_intern(str(name)), "file"))
        for source in map(_dict, _list(_dict(volume.get("projected")).get("sources"))):
            if name := _str(_dict(source.get("secret")).get("name")):
                uses.add(SecretUse(_intern(str(name)), "file"))
    for ref in map(_dict, _list(pod_spec.get("imagePullSecrets"))):
        if name := _str(ref.get("name")):
            uses.add(SecretUse(_intern(str(name)), "imagePullSecret"))
    return tuple(sorted(uses, key=lambda use: (use.secret, use.via)))


def _controller_of(metadata: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the controlling ownerReference (as `Meta.controller` finds it)."""
    for ref in map(_dict, _list(metadata.get("ownerReferences"))):
        if ref.get("controller") is True:
            return _interned(ref.get("kind")), _str(ref.get("name"))
    return None


def workload_facts(body: Mapping[str, Any]) -> WorkloadFacts:
    # only the namespace, name and controller of the metadata matter here: not the whole
    # `meta_of` (labels, annotations, managedFields), which would be thrown away
    metadata = _dict(body.get("metadata"))
    controller = _controller_of(metadata)
    kind = _interned(body.get("kind"))
    pod_spec = pod_spec_of(body)
    service_account = _interned(pod_spec.get("serviceAccountName")) or _interned(
        pod_spec.get("serviceAccount")
    )
    return WorkloadFacts(
        kind=kind,
        namespace=_interned(metadata.get("namespace")),
        name=_str(metadata.get("name")),
        uses=secret_uses(pod_spec),
        # Pods always run as some account; "default" when the spec names none
        service_account=service_account or ("default" if pod_spec or kind == "Pod" else None),
        controller=controller
        if controller is not None and controller[0] in WORKLOAD_KINDS
        else None,
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
