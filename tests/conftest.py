"""Shared builders for credwarden's tests.

Plain functions that build Kubernetes object dicts (as `kubectl get -o yaml` shows them)
and policies, plus a few helpers to evaluate them. Import them directly:

    from conftest import NOW, opaque_secret, cluster_policy, evaluate_objects

Secret data passed to the builders is plain text: the builders base64-encode it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from credwarden import snapshot
from credwarden.engine import evaluate
from credwarden.facts import (
    PolicyFacts,
    pack_identity,
)
from credwarden.inventory import CredentialKey, Inventory
from credwarden.models import API_VERSION
from credwarden.policies import policy_from_manifest
from credwarden.records import Evaluation, LifecycleRecord, RecordTraits, traits_of

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
HASH_KEY = b"credwarden-tests-hash-key-32byte"
# A value that must never appear in any output. Tests plant it in Secret data.
CANARY = "CANARY-5f1c9e7a-do-not-print-me"

Obj = dict[str, Any]


# ---- small helpers ---------------------------------------------------------------------
def ts(moment: datetime) -> str:
    """RFC 3339 as the API server writes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(days: float = 0, *, hours: float = 0, now: datetime = NOW) -> str:
    return ts(now - timedelta(days=days, hours=hours))


def b64(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


def canaries(text: str = CANARY) -> list[str]:
    """The forms in which a planted value could leak: plain, base64, hex."""
    raw = text.encode()
    return [text, b64(raw), raw.hex(), base64.urlsafe_b64encode(raw).decode().rstrip("=")]


def managed_field(
    manager: str,
    time: str,
    *,
    data: bool = False,
    annotations: Iterable[str] = (),
    operation: str = "Update",
) -> Obj:
    """One managedFields entry; `data` marks it as having written `data`."""
    fields: Obj = {}
    if data:
        fields["f:data"] = {".": {}}
    keys = list(annotations)
    if keys:
        fields["f:metadata"] = {"f:annotations": {f"f:{key}": {} for key in keys}}
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "v1",
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }


def owner_reference(kind: str, name: str, *, api_version: str = "v1", controller: bool = True):
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": f"uid-{kind.lower()}-{name}",
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def metadata(
    name: str,
    namespace: str | None = None,
    *,
    created: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    owner_references: Sequence[Obj] = (),
    managed_fields: Sequence[Obj] = (),
    uid: str | None = None,
    resource_version: str = "1000",
) -> Obj:
    meta: Obj = {
        "name": name,
        "uid": uid or f"uid-{namespace or 'cluster'}-{name}",
        "resourceVersion": resource_version,
        "creationTimestamp": created if created is not None else ago(10),
    }
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    if owner_references:
        meta["ownerReferences"] = list(owner_references)
    if managed_fields:
        meta["managedFields"] = list(managed_fields)
    return meta


# ---- Secrets ---------------------------------------------------------------------------
def secret(
    name: str,
    namespace: str = "default",
    *,
    type: str = "Opaque",
    data: Mapping[str, str | bytes] | None = None,
    string_data: Mapping[str, str] | None = None,
    **meta: Any,
) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(name, namespace, **meta),
        "type": type,
    }
    if data is not None:
        body["data"] = {key: b64(value) for key, value in data.items()}
    if string_data is not None:
        body["stringData"] = dict(string_data)
    return body


def opaque_secret(name: str, namespace: str = "default", **kwargs: Any) -> Obj:
    kwargs.setdefault("data", {"password": f"pw-{namespace}-{name}-0123456789"})
    return secret(name, namespace, type="Opaque", **kwargs)


def basic_auth_secret(
    name: str, namespace: str = "default", *, username: str = "admin", password: str = "", **kw
) -> Obj:
    password = password or f"basic-{namespace}-{name}-password"
    return secret(
        name,
        namespace,
        type="kubernetes.io/basic-auth",
        data={"username": username, "password": password},
        **kw,
    )


def dockerconfig_secret(
    name: str,
    namespace: str = "default",
    *,
    registry: str = "ghcr.io",
    username: str = "bot",
    password: str = "",
    **kw: Any,
) -> Obj:
    password = password or f"registry-token-{namespace}-{name}"
    config = {"auths": {registry: {"username": username, "password": password}}}
    return secret(
        name,
        namespace,
        type="kubernetes.io/dockerconfigjson",
        data={".dockerconfigjson": json.dumps(config, sort_keys=True)},
        **kw,
    )


def token_secret(
    name: str,
    namespace: str = "default",
    *,
    service_account: str,
    token: str = "",
    last_used: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    **kw: Any,
) -> Obj:
    """A legacy `kubernetes.io/service-account-token` Secret; `last_used` is YYYY-MM-DD."""
    token = token or f"eyJhbGciOi.token.{namespace}.{name}.signature"
    all_labels = dict(labels or {})
    if last_used is not None:
        all_labels["kubernetes.io/legacy-token-last-used"] = last_used
    all_annotations = {
        "kubernetes.io/service-account.name": service_account,
        "kubernetes.io/service-account.uid": f"uid-{namespace}-{service_account}",
        **(annotations or {}),
    }
    return secret(
        name,
        namespace,
        type="kubernetes.io/service-account-token",
        data={"token": token, "ca.crt": "shared-cluster-ca-certificate", "namespace": namespace},
        labels=all_labels,
        annotations=all_annotations,
        **kw,
    )


def tls_secret(
    name: str,
    namespace: str = "default",
    *,
    cert: bytes | str | None = None,
    not_after: datetime | None = None,
    key: str = "",
    **kw: Any,
) -> Obj:
    """A `kubernetes.io/tls` Secret holding `cert` (bytes) or a fresh one ending `not_after`."""
    if cert is None:
        cert = certificate_pem(not_after or NOW + timedelta(days=365))
    return secret(
        name,
        namespace,
        type="kubernetes.io/tls",
        data={"tls.crt": cert, "tls.key": key or f"private-key-{namespace}-{name}"},
        **kw,
    )


# ---- ServiceAccounts, RBAC, Namespaces -------------------------------------------------
def service_account(
    name: str,
    namespace: str = "default",
    *,
    secrets: Sequence[str] = (),
    image_pull_secrets: Sequence[str] = (),
    **meta: Any,
) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(name, namespace, **meta),
    }
    if secrets:
        body["secrets"] = [{"name": s} for s in secrets]
    if image_pull_secrets:
        body["imagePullSecrets"] = [{"name": s} for s in image_pull_secrets]
    return body


def _subjects(subjects: Iterable[tuple[str, str] | Obj]) -> list[Obj]:
    out: list[Obj] = []
    for subject in subjects:
        if isinstance(subject, dict):
            out.append(subject)
        else:
            ns, name = subject
            out.append({"kind": "ServiceAccount", "name": name, "namespace": ns})
    return out


def cluster_role_binding(
    name: str, role: str = "cluster-admin", subjects: Iterable[tuple[str, str] | Obj] = ()
) -> Obj:
    """`subjects`: (namespace, serviceaccount) pairs or raw subject dicts."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": _subjects(subjects),
    }


def role_binding(
    name: str,
    namespace: str,
    role: str = "cluster-admin",
    subjects: Iterable[tuple[str, str] | Obj] = (),
    *,
    role_kind: str = "ClusterRole",
) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(name, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": _subjects(subjects),
    }


def namespace(
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Obj:
    all_labels = {"kubernetes.io/metadata.name": name, **(labels or {})}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": metadata(name, labels=all_labels, annotations=annotations),
    }


# ---- workloads -------------------------------------------------------------------------
def pod_spec(
    *,
    service_account: str | None = None,
    env: Sequence[str] = (),
    env_from: Sequence[str] = (),
    volumes: Sequence[str] = (),
    projected: Sequence[str] = (),
    image_pull_secrets: Sequence[str] = (),
) -> Obj:
    """A Pod spec reading Secrets by name: `env` (secretKeyRef), `env_from` (secretRef),
    `volumes` (secret volume), `projected` (projected volume source)."""
    container: Obj = {"name": "app", "image": "registry.example/app:1"}
    if env:
        container["env"] = [
            {"name": f"VAR_{i}", "valueFrom": {"secretKeyRef": {"name": s, "key": "password"}}}
            for i, s in enumerate(env)
        ]
    if env_from:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in env_from]
    spec: Obj = {"containers": [container]}
    vols: list[Obj] = [
        {"name": f"s{i}", "secret": {"secretName": s}} for i, s in enumerate(volumes)
    ]
    if projected:
        vols.append(
            {
                "name": "projected",
                "projected": {"sources": [{"secret": {"name": s}} for s in projected]},
            }
        )
    if vols:
        spec["volumes"] = vols
        container["volumeMounts"] = [
            {"name": v["name"], "mountPath": f"/m/{v['name']}"} for v in vols
        ]
    if image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in image_pull_secrets]
    if service_account:
        spec["serviceAccountName"] = service_account
    return spec


def pod(
    name: str,
    namespace: str = "default",
    *,
    owner_references: Sequence[Obj] = (),
    **spec: Any,
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata(name, namespace, owner_references=owner_references),
        "spec": pod_spec(**spec),
    }


def deployment(name: str, namespace: str = "default", **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, namespace),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec(**spec)},
        },
    }


def cronjob(name: str, namespace: str = "default", **spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(name, namespace),
        "spec": {
            "schedule": "0 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": pod_spec(**spec)}}},
        },
    }


# ---- policies --------------------------------------------------------------------------
def lifecycle_record(
    key: CredentialKey, status: str = "NonCompliant", **fields: Any
) -> LifecycleRecord:
    """A record as the engine makes them: `fields` given, every other one empty."""
    values: dict[str, Any] = {
        "key": key,
        "type": "Opaque",
        "uid": f"uid-{key.name}",
        "owner": None,
        "owner_source": None,
        "created_at": None,
        "last_rotated_at": None,
        "expires_at": None,
        "status": status,
        "policy": None,
        "mode": "Audit",
        "policies": (),
        "consumers": (),
        "findings": (),
    }
    values.update(fields)
    values["identity"] = pack_identity(values.pop("uid"), "1")  # as the facts keep it
    shared = [values.pop(name) for name in RecordTraits.__dataclass_fields__]
    return LifecycleRecord(**values, traits=traits_of(*shared))


def policy_manifest(name: str = "base", spec: Obj | None = None, *, namespace: str | None = None):
    """A ClusterCredentialPolicy manifest, or a CredentialPolicy when `namespace` is set."""
    meta: Obj = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {
        "apiVersion": API_VERSION,
        "kind": "CredentialPolicy" if namespace is not None else "ClusterCredentialPolicy",
        "metadata": meta,
        "spec": spec if spec is not None else {},
    }


def policy(name: str = "base", spec: Obj | None = None, *, namespace: str | None = None):
    """A parsed, valid policy (fails the test if the manifest is invalid)."""
    facts = policy_from_manifest(policy_manifest(name, spec, namespace=namespace))
    assert facts.error is None, facts.error
    return facts


def cluster_policy(name: str = "base", **spec: Any) -> PolicyFacts:
    return policy(name, spec)


def namespaced_policy(name: str, namespace: str, **spec: Any) -> PolicyFacts:
    return policy(name, spec, namespace=namespace)


BASELINE_SPEC: Obj = {
    "mode": "Audit",
    "limits": {
        "serviceAccountTokens": {"maxAge": "90d", "warnBefore": "14d", "action": "Warn"},
        "secrets": {"maxAge": "180d", "warnBefore": "14d", "action": "Warn"},
        "certificates": {"warnBefore": "30d"},
    },
    "identity": {},
    "ownership": {},
}


def baseline_policy(name: str = "baseline", **overrides: Any) -> PolicyFacts:
    """A policy like the built-in baseline; keyword arguments replace top-level spec keys."""
    return policy(name, {**BASELINE_SPEC, **overrides})


# ---- inventory and evaluation ----------------------------------------------------------
def add_object(inventory: Inventory, body: Obj, hash_key: bytes = HASH_KEY) -> set[CredentialKey]:
    """Upsert any supported object (a dict) into the inventory; returns the affected keys."""
    return snapshot.add_object(inventory, body, hash_key)


def build_inventory(
    objects: Iterable[Obj], policies: Iterable[PolicyFacts] = (), hash_key: bytes = HASH_KEY
) -> Inventory:
    inventory = Inventory()
    for facts in policies:
        inventory.upsert_policy(facts)
    for body in objects:
        add_object(inventory, body, hash_key)
    return inventory


def evaluate_objects(
    objects: Iterable[Obj], policies: Iterable[PolicyFacts] = (), now: datetime = NOW
) -> Evaluation:
    return evaluate(build_inventory(objects, policies), now)


def record_of(
    evaluation: Evaluation, name: str, namespace: str = "default", kind: str = "Secret"
) -> LifecycleRecord:
    key = CredentialKey(kind, namespace, name)
    found = [record for record in evaluation.records if record.key == key]
    assert found, f"no record for {key}; have {[str(r.key) for r in evaluation.records]}"
    return found[0]


def actions_for(evaluation: Evaluation, name: str, namespace: str = "default", kind="Secret"):
    key = CredentialKey(kind, namespace, name)
    return [action for action in evaluation.plan if action.target == key]


def rules_of(record: LifecycleRecord) -> set[str]:
    return {finding.rule for finding in record.findings}


def everything_printed(evaluation: Evaluation) -> str:
    """All text the engine would show or write: records, plan, annotations, summary."""
    parts = [json.dumps([r.to_json() for r in evaluation.records], default=str)]
    for action in evaluation.plan:
        parts.append(action.describe())
        parts.append(repr(action))
        if hasattr(action, "to_json"):
            parts.append(json.dumps(action.to_json(), default=str))
    parts.append(json.dumps(evaluation.summary(), default=str))
    parts.append(json.dumps(evaluation.policy_errors))
    return "\n".join(parts)


# ---- certificates ----------------------------------------------------------------------
@lru_cache(maxsize=1)
def _ec_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


@lru_cache(maxsize=256)
def certificate(
    not_after: datetime,
    *,
    not_before: datetime | None = None,
    common_name: str = "service.example",
    der: bool = False,
) -> bytes:
    """A self-signed EC certificate, PEM (default) or DER."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = _ec_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or min(not_after, NOW) - timedelta(days=365))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
    return cert.public_bytes(encoding)


def certificate_pem(not_after: datetime, **kwargs: Any) -> bytes:
    return certificate(not_after, **kwargs)
