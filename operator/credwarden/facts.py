"""Derived facts: what credwarden keeps of a Kubernetes object.

Raw bodies are turned into small frozen records the moment they arrive. A Secret's
values are reduced to keyed hashes (HMAC-SHA256 under a key that lives only in the
process) and its certificate to a date; the bodies themselves are never kept, so no
secret value sits in the operator's long-lived memory. Every function here accepts any
shape the Kubernetes schema allows (and worse) without raising.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from credwarden.certificates import CertificateError, certificate_not_after
from credwarden.immutable import immutable
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


# Annotations whose values repeat across objects: credwarden's own (status, policy,
# findings, owner and its source are a handful of values over a whole cluster), Helm's,
# Argo CD's application, a token's ServiceAccount name. Interned, every object shares one
# copy (about 250 bytes per credential once credwarden has annotated it). Values of other
# annotations are mostly unique (timestamps, ids), and interning those would cost more.
REPEATED_VALUE_ANNOTATIONS = frozenset(
    {
        OWNER_ANNOTATION,
        "credwarden.io/owner-source",
        "credwarden.io/status",
        "credwarden.io/policy",
        "credwarden.io/findings",
        "credwarden.io/exempt",
        "meta.helm.sh/release-name",
        "meta.helm.sh/release-namespace",
        "argocd.argoproj.io/instance",
        SA_NAME_ANNOTATION,
    }
)
# Label sets repeat too (every object of an app carries the same ones): one dict per
# distinct set, shared read-only by the facts of every object that carries it. Keyed by
# the hash of its items, not the items (a tuple of pairs: about 260 bytes per distinct
# set, and one object in three has a set of its own); a hit is compared in full, and a
# collision just goes unshared. Bounded: when full it starts over (objects already read
# keep their dict; sharing resumes).
_LABEL_SETS: dict[int, Mapping[str, str]] = {}
# how many entries each of the sharing caches here (label sets, small tuples, uses) holds
_SHARED_CACHE_SIZE = 1 << 16


# Small tuples of strings that repeat: the data keys of Secrets (`token`, `ca.crt`,
# `namespace`; `tls.crt`, `tls.key`), the controller a ReplicaSet's Pods name. One copy
# of each, bounded like the label sets.
_SHARED_TUPLES: dict[tuple[str, ...], tuple[str, ...]] = {}
_Strings = TypeVar("_Strings", bound=tuple[str, ...])


def _shared_tuple(strings: _Strings) -> _Strings:
    shared = _SHARED_TUPLES.get(strings)
    if shared is None:
        if len(_SHARED_TUPLES) >= _SHARED_CACHE_SIZE:
            _SHARED_TUPLES.clear()
        shared = _SHARED_TUPLES[strings] = strings
    return shared  # type: ignore[return-value]


def _shared_labels(labels: dict[str, str]) -> Mapping[str, str]:
    digest = hash(tuple(labels.items()))
    shared = _LABEL_SETS.get(digest)
    if shared is not None and shared == labels:
        return shared
    if len(_LABEL_SETS) >= _SHARED_CACHE_SIZE:
        _LABEL_SETS.clear()
    _LABEL_SETS[digest] = labels
    return labels


def _interned(value: Any) -> str:
    """A string field that repeats across objects (namespace, type, kind, manager): one
    copy for all of them. Every object arrives from its own JSON document, so without
    this each keeps its own copy of the same few strings. (`str()` first: sys.intern
    refuses str subclasses.)"""
    return _intern(str(value)) if isinstance(value, str) else ""


_fromisoformat = datetime.fromisoformat


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime; None if absent or malformed."""
    if type(value) is str and len(value) == 20 and value[19] == "Z":
        # the API server's own form, `2026-11-22T12:00:00Z`: parsed as is (fromisoformat
        # reads a Z as UTC since 3.11); anything else, or a failure, takes the long way
        try:
            return _fromisoformat(value)
        except ValueError:
            pass
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


# Every object keeps its uid and resourceVersion for as long as the operator runs (for
# write preconditions and Events): as strings, 85 and about 58 bytes; packed as ints, 44
# and 28 to 32. A value that would not read back as the same string stays a string.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def pack_uid(uid: str) -> int | str:
    """A uid in the API server's form (a lowercase UUID) as its 128-bit int."""
    if len(uid) == 36 and _CANONICAL_UUID.fullmatch(uid):
        return int(uid.replace("-", ""), 16)
    return uid


def unpack_uid(packed: int | str) -> str:
    if type(packed) is str:
        return packed
    digits = f"{packed:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


# credwarden's own expires-at annotation, on every governed credential: an instant in
# the API's form, unique to each, 80 bytes as a string and 32 as an int of seconds
EXPIRES_ANNOTATION = "credwarden.io/expires-at"


def _pack_instant(value: str) -> int | str:
    """`2026-11-22T12:00:00Z` as its seconds since the epoch, when it reads back the same."""
    if len(value) == 20 and value[19] == "Z":
        try:  # anyone may write this annotation: any text must come through unharmed
            seconds = int(_fromisoformat(value).timestamp())
            if _unpack_instant(seconds) == value:
                return seconds
        except (ValueError, OverflowError, OSError):
            pass
    return value


def _unpack_instant(seconds: int) -> str:
    return _fromtimestamp(seconds, UTC).isoformat()[:19] + "Z"


def _annotation_text(value: str | int) -> str:
    """An annotation's value as sent: a packed instant unpacked, any other as kept."""
    return value if isinstance(value, str) else _unpack_instant(value)


_fromtimestamp = datetime.fromtimestamp


def pack_version(version: str) -> int | str:
    """A resourceVersion (opaque to clients; etcd's revision, in decimal, in practice) as
    an int when it is a decimal number without a leading zero, of at most 19 digits
    (etcd's revisions are 64-bit; and `int()` refuses strings of over 4,300 digits)."""
    if (
        len(version) <= 19
        and version.isascii()
        and version.isdigit()
        and (version[0] != "0" or version == "0")
    ):
        return int(version)
    return version


def unpack_version(packed: int | str) -> str:
    return packed if type(packed) is str else str(packed)


# An object's uid and resourceVersion, packed together: one int of the uid's 128 bits
# and the version's 64 (56 bytes, against 48 and 32 for the two ints), else the pair.
Identity = int | tuple[int | str, int | str]
_VERSION_BITS = 64
_VERSION_MASK = (1 << _VERSION_BITS) - 1


def pack_identity(uid: str, version: str) -> Identity:
    packed_uid, packed_version = pack_uid(uid), pack_version(version)
    if type(packed_uid) is int and type(packed_version) is int:
        # 19 decimal digits at most (pack_version): below 2**64
        return packed_uid << _VERSION_BITS | packed_version
    return (packed_uid, packed_version)


def identity_uid(identity: Identity) -> str:
    if isinstance(identity, int):
        return unpack_uid(identity >> _VERSION_BITS)
    return unpack_uid(identity[0])


def identity_version(identity: Identity) -> str:
    if isinstance(identity, int):
        return str(identity & _VERSION_MASK)
    return unpack_version(identity[1])


@immutable
class OwnerRef:
    kind: str
    name: str
    api_version: str
    controller: bool


@immutable
class MetaMarks:
    """The field manager that set an object's credwarden.io/owner annotation (from
    managedFields), when known: all that `owner.explicit_owner` needs of managedFields'
    annotation owners; and whether the object is being deleted. A few managers in a
    whole cluster: one shared object for each pair (`marks_of`)."""

    owner_annotation_manager: str | None
    deleting: bool


_MARKS: dict[tuple[str | None, bool], MetaMarks] = {}


def marks_of(owner_annotation_manager: str | None, deleting: bool) -> MetaMarks:
    shared = _MARKS.get((owner_annotation_manager, deleting))
    if shared is None:
        if len(_MARKS) >= _SHARED_CACHE_SIZE:  # managers are few; bounded all the same
            _MARKS.clear()
        shared = _MARKS[(owner_annotation_manager, deleting)] = MetaMarks(
            owner_annotation_manager, deleting
        )
    return shared


@immutable
class Meta:
    """What credwarden keeps of an object's metadata, one per credential for as long as
    the operator runs: ten slots, 112 bytes (uid and resourceVersion in one int, the
    rarely distinct fields in a shared `MetaMarks`)."""

    namespace: str
    name: str
    # uid and resourceVersion packed (see pack_identity): read `uid`, `resource_version`
    identity: Identity
    created_at: datetime | None
    labels: Mapping[str, str]
    # the annotations as two tuples, their keys (one tuple shared by every object with
    # the same keys) and their values: about 60 bytes for an annotated credential against
    # 270 for a dict. Read with `annotation()`.
    annotation_keys: tuple[str, ...]
    annotation_values: tuple[str | int, ...]  # int: a packed instant (see _pack_instant)
    owner_references: tuple[OwnerRef, ...]
    # newest managedFields time that touched data/stringData
    data_changed_at: datetime | None
    marks: MetaMarks

    @property
    def uid(self) -> str:
        return identity_uid(self.identity)

    @property
    def resource_version(self) -> str:
        return identity_version(self.identity)

    @property
    def owner_annotation_manager(self) -> str | None:
        return self.marks.owner_annotation_manager

    @property
    def deleting(self) -> bool:
        return self.marks.deleting

    def annotation(self, key: str) -> str | None:
        """The value of an annotation; None when absent."""
        keys = self.annotation_keys
        if key in keys:  # a scan of a few interned strings, at C speed
            return _annotation_text(self.annotation_values[keys.index(key)])
        return None

    @property
    def annotations(self) -> dict[str, str]:
        """Every annotation kept, as a new dict (`annotation()` reads one)."""
        return dict(
            zip(self.annotation_keys, map(_annotation_text, self.annotation_values), strict=True)
        )

    @property
    def controller(self) -> OwnerRef | None:
        for ref in self.owner_references:  # a loop: no generator frame per call
            if ref.controller:
                return ref
        return None


# the owner annotation as a managedFields key
_OWNER_FIELD = f"f:{OWNER_ANNOTATION}"


def _managed_fields(metadata: dict[str, Any]) -> tuple[str | None, datetime | None]:
    """Who set the owner annotation (the last entry naming it wins), and the newest write
    to data/stringData."""
    owner_manager: str | None = None
    data_changed_at: datetime | None = None
    for entry in _list(metadata.get("managedFields")):
        fields = entry.get("fieldsV1") if isinstance(entry, dict) else None
        if not isinstance(fields, dict):
            continue
        metadata_fields = fields.get("f:metadata")
        if isinstance(metadata_fields, dict):
            annotations = metadata_fields.get("f:annotations")
            if isinstance(annotations, dict) and _OWNER_FIELD in annotations:
                owner_manager = _interned(entry.get("manager"))
        if "f:data" in fields or "f:stringData" in fields:
            when = parse_time(entry.get("time"))
            if when and (data_changed_at is None or when > data_changed_at):
                data_changed_at = when
    return owner_manager, data_changed_at


def meta_of(body: Mapping[str, Any]) -> Meta:
    # The hot path of facts extraction (every Secret, ServiceAccount and Namespace):
    # the helpers above inlined, one dict built per map, absent fields skipped early.
    metadata = body.get("metadata")
    if type(metadata) is not dict:
        metadata = _dict(metadata)
    get = metadata.get
    # loops, not comprehensions: a comprehension is a function call of its own in 3.11
    annotation_keys: tuple[str, ...] = ()
    annotation_values: tuple[str | int, ...] = ()
    found = get("annotations")
    if found and isinstance(found, dict):
        keys: list[str] = []
        values: list[str | int] = []
        for key, value in found.items():
            if (type(value) is str or isinstance(value, str)) and key != LAST_APPLIED:
                keys.append(_intern(str(key)))
                if key in REPEATED_VALUE_ANNOTATIONS:
                    values.append(_intern(str(value)))
                elif key == EXPIRES_ANNOTATION:
                    values.append(_pack_instant(value))
                else:
                    values.append(value)
        if keys:
            annotation_keys = _shared_tuple(tuple(keys))
            annotation_values = tuple(values)
    labels: Mapping[str, str] = _EMPTY_MAP
    found = get("labels")
    if found and isinstance(found, dict):
        kept: dict[str, str] = {}
        for key, value in found.items():
            if type(value) is str or isinstance(value, str):
                kept[_intern(str(key))] = _intern(str(value))
        if kept:
            labels = _shared_labels(kept)
    found = get("ownerReferences")
    if found and isinstance(found, list):
        owners: tuple[OwnerRef, ...] = tuple(
            OwnerRef(
                _interned(ref.get("kind")),
                _str(ref.get("name")),
                _interned(ref.get("apiVersion")),
                ref.get("controller") is True,
            )
            for ref in map(_dict, found)
        )
    else:
        owners = ()
    if get("managedFields"):
        owner_manager, data_changed_at = _managed_fields(metadata)
    else:
        owner_manager = data_changed_at = None
    namespace = get("namespace")
    name = get("name")
    uid = get("uid")
    version = get("resourceVersion")
    return Meta(
        _intern(str(namespace)) if isinstance(namespace, str) else "",
        name if isinstance(name, str) else "",
        pack_identity(
            uid if isinstance(uid, str) else "", version if isinstance(version, str) else ""
        ),
        parse_time(get("creationTimestamp")),
        labels,
        annotation_keys,
        annotation_values,
        owners,
        data_changed_at,
        marks_of(owner_manager, bool(get("deletionTimestamp"))),
    )


@immutable
class SecretFacts:
    meta: Meta
    type: str
    # the keyed hash (see value_hash) of each value worth comparing, never a value:
    # aligned with `data_keys`, None for a value not compared, () when none is. A tuple
    # beside the shared `data_keys`, not a dict by data key (184 bytes per Secret).
    digests: tuple[int | None, ...]
    cert_not_after: datetime | None = None
    cert_error: str | None = None
    data_keys: tuple[str, ...] = ()
    # What the Secret's annotations and labels already say (its ServiceAccount, the
    # legacy-token dates) is read from them, not kept again: six slots, 80 bytes a Secret
    # against 112 with those four of their own.

    @property
    def service_account(self) -> str | None:
        return self.meta.annotation(SA_NAME_ANNOTATION) or None

    @property
    def service_account_uid(self) -> str | None:
        return self.meta.annotation(SA_UID_ANNOTATION) or None

    @property
    def legacy_last_used(self) -> date | None:
        found = self.meta.labels.get(LEGACY_LAST_USED)
        return parse_date(found) if found else None

    @property
    def legacy_invalid_since(self) -> date | None:
        found = self.meta.labels.get(LEGACY_INVALID_SINCE)
        return parse_date(found) if found else None

    @property
    def key(self) -> tuple[str, str]:
        return (self.meta.namespace, self.meta.name)

    @property
    def value_hashes(self) -> dict[str, int]:
        """data key -> keyed hash of its value, for the values worth comparing."""
        return {
            key: digest
            for key, digest in zip(self.data_keys, self.digests, strict=False)
            if digest is not None
        }

    def distinct_digests(self) -> set[int]:
        """The keyed hashes of its compared values, each once."""
        found = set(self.digests)
        found.discard(None)
        return found  # type: ignore[return-value]

    @property
    def is_token(self) -> bool:
        return self.type == SA_TOKEN_TYPE

    @property
    def is_tls(self) -> bool:
        return self.type == TLS_TYPE


@immutable
class ServiceAccountFacts:
    meta: Meta
    secret_names: tuple[str, ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    automount: bool | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.meta.namespace, self.meta.name)


@immutable
class Subject:
    kind: str
    namespace: str
    name: str


@immutable
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


@immutable
class NamespaceFacts:
    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    deleting: bool = False


@immutable
class SecretUse:
    secret: str
    via: str  # env | file | imagePullSecret


@immutable
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


_SHA256_BLOCK = 64
# hash key -> SHA-256 states with the key's inner and outer HMAC pads already absorbed
_HMAC_STATES: dict[bytes, tuple[hashlib._Hash, hashlib._Hash]] = {}


def _hmac_states(hash_key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    states = _HMAC_STATES.get(hash_key)
    if states is None:
        # RFC 2104: a key longer than the block is hashed first, then zero-padded
        block = hashlib.sha256(hash_key).digest() if len(hash_key) > _SHA256_BLOCK else hash_key
        block = block.ljust(_SHA256_BLOCK, b"\0")
        states = (
            hashlib.sha256(bytes(byte ^ 0x36 for byte in block)),
            hashlib.sha256(bytes(byte ^ 0x5C for byte in block)),
        )
        if len(_HMAC_STATES) >= 8:  # one key per process in practice; tests use a few
            _HMAC_STATES.clear()
        _HMAC_STATES[hash_key] = states
    return states


def value_hash(hash_key: bytes, value: bytes) -> int:
    """The keyed hash of a value, truncated to HASH_BYTES bytes, as an int: there is one
    per stored value, and an int of 128 bits takes 48 bytes of memory where a bytes
    object of 16 takes 64 (and a hex string 96).

    HMAC-SHA256, byte for byte `hmac.digest(hash_key, value, sha256)`, from SHA-256
    states that have absorbed the key's pads once per key: `hmac.digest` sets the key up
    again on every call, which costs about 3x the hashing of a short value."""
    inner, outer = _hmac_states(hash_key)
    inner = inner.copy()
    inner.update(value)
    outer = outer.copy()
    outer.update(inner.digest())
    return _from_bytes(outer.digest()[:HASH_BYTES])


_from_bytes = int.from_bytes  # big-endian by default since 3.11


_a2b_base64 = binascii.a2b_base64


def _decode(value: Any) -> bytes | None:
    # base64.b64decode(value, validate=False) without its Python wrapper: a2b_base64
    # takes an ASCII str itself and raises ValueError for any other
    if not isinstance(value, str):
        return None
    try:
        return _a2b_base64(value)
    except (binascii.Error, ValueError):
        return None


# keyed hash of a tls.crt -> (notAfter, error): the same certificate is often stored in
# many Secrets (a wildcard certificate, copies per namespace), and parsing it is the
# dearest part of a TLS Secret. Keyed by the value's keyed hash, so no value is kept.
_CERTIFICATES: dict[int, tuple[datetime | None, str | None]] = {}
_CERTIFICATE_CACHE_SIZE = 4096


def _certificate(data: bytes | None, digest: int | None) -> tuple[datetime | None, str | None]:
    """certificate_not_after as (notAfter, None) or (None, the error's message)."""
    if digest is not None:
        cached = _CERTIFICATES.get(digest)
        if cached is not None:
            return cached
    try:
        found: tuple[datetime | None, str | None] = (certificate_not_after(data), None)
    except CertificateError as error:
        found = (None, str(error))
    if digest is not None:
        if len(_CERTIFICATES) >= _CERTIFICATE_CACHE_SIZE:
            _CERTIFICATES.clear()
        _CERTIFICATES[digest] = found
    return found


def secret_facts(body: Mapping[str, Any], hash_key: bytes) -> SecretFacts:
    """Reduce a Secret to facts. Values are hashed and the certificate read, then dropped."""
    meta = meta_of(body)
    secret_type = _interned(body.get("type")) or "Opaque"
    raw: dict[str, bytes] = {}
    data = body.get("data")
    if data and isinstance(data, dict):
        for key, encoded in data.items():
            if not isinstance(encoded, str):
                continue
            try:  # _decode, inlined
                decoded = _a2b_base64(encoded)
            except (binascii.Error, ValueError):
                continue
            raw[_intern(str(key))] = decoded
    string_data = body.get("stringData")
    if string_data and isinstance(string_data, dict):
        for key, text in string_data.items():
            if isinstance(text, str):
                raw[_intern(str(key))] = text.encode()
    data_keys = _shared_tuple(tuple(sorted(raw)) if len(raw) > 1 else tuple(raw))
    digests: list[int | None] = []
    compared = False
    inner, outer = _hmac_states(hash_key)
    for key in data_keys:
        value = raw[key]
        if key not in NOT_COMPARED_KEYS and len(value) >= MIN_COMPARED_BYTES:
            # value_hash, inlined
            state = inner.copy()
            state.update(value)
            final = outer.copy()
            final.update(state.digest())
            digests.append(_from_bytes(final.digest()[:HASH_BYTES]))
            compared = True
        else:
            digests.append(None)
    not_after: datetime | None = None
    cert_error: str | None = None
    if secret_type == TLS_TYPE:
        crt = raw.get("tls.crt")
        digest = digests[data_keys.index("tls.crt")] if crt is not None else None
        not_after, cert_error = _certificate(crt, digest)
    raw.clear()  # the values go now; only their hashes and the certificate's date stay
    return SecretFacts(
        meta, secret_type, tuple(digests) if compared else (), not_after, cert_error, data_keys
    )


def service_account_facts(body: Mapping[str, Any]) -> ServiceAccountFacts:
    automount = body.get("automountServiceAccountToken")
    return ServiceAccountFacts(
        meta_of(body),
        _names_of(body.get("secrets")),
        _names_of(body.get("imagePullSecrets")),
        automount if isinstance(automount, bool) else None,
    )


def _names_of(refs: Any) -> tuple[str, ...]:
    """The names in a list of object references (`[{"name": ...}, ...]`), interned."""
    if not refs or not isinstance(refs, list):
        return ()
    names: list[str] = []
    for ref in refs:  # a loop, not a generator: no frame per ServiceAccount
        if isinstance(ref, dict):
            name = ref.get("name")
            if isinstance(name, str) and name:
                names.append(_intern(str(name)))
    return tuple(names)


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
    return NamespaceFacts(meta.name, meta.labels, meta.annotations, meta.deleting)


def pod_spec_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The Pod spec inside any workload kind (CronJob nests it twice)."""
    kind = _str(body.get("kind"))
    spec = _dict(body.get("spec"))
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = _dict(_dict(spec.get("jobTemplate")).get("spec"))
    return _dict(_dict(spec.get("template")).get("spec"))


def _name_in(ref: Any, field: str) -> str | None:
    """`ref[field]` when ref is a mapping and that field a non-empty string."""
    if isinstance(ref, dict):
        name = ref.get(field)
        if isinstance(name, str) and name:
            return name
    return None


def secret_uses(pod_spec: Mapping[str, Any]) -> tuple[SecretUse, ...]:
    # Walked for every workload: the shape checks are written out (isinstance is cheap
    # in 3.11) instead of one helper call per level; uses are (secret, via) pairs until
    # the end, so a Secret read twice the same way is built and hashed once.
    found: set[tuple[str, str]] = set()
    containers = (
        _list(pod_spec.get("containers"))
        + _list(pod_spec.get("initContainers"))
        + _list(pod_spec.get("ephemeralContainers"))
    )
    for container in containers:
        if not isinstance(container, dict):
            continue
        for env in _list(container.get("env")):
            value_from = env.get("valueFrom") if isinstance(env, dict) else None
            if isinstance(value_from, dict) and (
                name := _name_in(value_from.get("secretKeyRef"), "name")
            ):
                found.add((name, "env"))
        for env_from in _list(container.get("envFrom")):
            if isinstance(env_from, dict) and (name := _name_in(env_from.get("secretRef"), "name")):
                found.add((name, "env"))
    for volume in _list(pod_spec.get("volumes")):
        if not isinstance(volume, dict):
            continue
        secret = volume.get("secret")
        if secret is not None and (name := _name_in(secret, "secretName")):
            found.add((name, "file"))
        projected = volume.get("projected")
        if isinstance(projected, dict):
            for source in _list(projected.get("sources")):
                secret = source.get("secret") if isinstance(source, dict) else None
                if secret is not None and (name := _name_in(secret, "name")):
                    found.add((name, "file"))
    for ref in _list(pod_spec.get("imagePullSecrets")):
        if name := _name_in(ref, "name"):
            found.add((name, "imagePullSecret"))
    if not found:
        return ()
    # sorted by (secret, via), as SecretUse's fields
    pairs = sorted(found)
    digest = hash(tuple(pairs))
    shared = _USE_TUPLES.get(digest)
    if shared is not None and [(use.secret, use.via) for use in shared] == pairs:
        return shared
    if len(_USE_TUPLES) >= _SHARED_CACHE_SIZE:
        _USE_TUPLES.clear()
    uses = _USE_TUPLES[digest] = tuple(SecretUse(_intern(str(name)), via) for name, via in pairs)
    return uses


# A Deployment, its ReplicaSets and each of their Pods read the same Secrets the same
# way: one tuple of uses for all of them, keyed by the hash of its pairs (as the label
# sets, and bounded like them).
_USE_TUPLES: dict[int, tuple[SecretUse, ...]] = {}


def _controller_of(metadata: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the controlling ownerReference (as `Meta.controller` finds it)."""
    for ref in _list(metadata.get("ownerReferences")):
        if isinstance(ref, dict) and ref.get("controller") is True:
            # every Pod of a ReplicaSet names it: one tuple for all of them
            return _shared_tuple((_interned(ref.get("kind")), _str(ref.get("name"))))
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
        kind,
        _interned(metadata.get("namespace")),
        _str(metadata.get("name")),
        secret_uses(pod_spec),
        # Pods always run as some account; "default" when the spec names none
        service_account or ("default" if pod_spec or kind == "Pod" else None),
        controller if controller is not None and controller[0] in WORKLOAD_KINDS else None,
    )


@immutable
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
