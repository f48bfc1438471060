"""The example scenario: an MLOps cluster as the field brief found it, generated for a `now`.

`build_objects(now)` returns the objects `kubectl get serviceaccounts,secrets,rolebindings,
clusterrolebindings,namespaces,pods,deployments,statefulsets,daemonsets,jobs,cronjobs -A
-o yaml` would print on that cluster at `now`; `build_list(now)` wraps them in the `v1 List`
that command writes. Every timestamp is an offset from `now`, so the story (a token 612 days
old, a certificate 9 days from expiry) holds whatever day the scenario is generated for.
`examples/mlops-cluster.yaml` is the rendering at `REFERENCE_NOW` and
`examples/policies.yaml` is `EXAMPLE_POLICIES_YAML` (tests/test_scenario.py checks both):

    python -m credwarden.scenario --output examples/mlops-cluster.yaml \\
        --policies-output examples/policies.yaml
    python -m credwarden.scenario --now now          # the same cluster, as of today

The output is deterministic for a given `now`: uids are uuid5 of the object's identity,
certificates are Ed25519 (deterministic signatures) with keys derived from fixed bytes and
fixed serial numbers. Every secret value is fake, derived from public strings, and says so
where its format allows (`...EXAMPLE`).

The story, namespace by namespace:
- kube-system (owned by platform-team): the control plane's accounts (coredns, kube-proxy,
  metrics-server, ...) that Pods run as, and two personal accounts, `john-smith` (612 days,
  its legacy token used 2 days ago) and `daniel-wilson` (418 days, token unused for 381),
  each bound to cluster-admin by a ClusterRoleBinding.
- airflow, monitoring, default (no owner anywhere): `airflow-creds` and `grafana-creds`,
  Opaque, years old, applied by hand and copied between these namespaces; beside them the
  Helm-installed Airflow (its accounts owned, its fernet key Helm's, its release record).
- ml-platform-system (platform-team): MLflow, its database credentials synced from Vault
  by an ExternalSecret 12 days ago, its TLS certificate 9 days from expiry (cert-manager's
  renewal is stuck), and MinIO's root credentials, exempted with a reason.
- financial-ml, financial-ml-dev (team-financial-ml): the consolidated `ml-platform` Secret
  and the `ghcr` pull secret, delivered as a package 506 days ago and never rotated, the
  registry token the same in both; `financial-model-server` reads `ml-platform` through
  envFrom; a CI deployer holds a legacy token and cluster-admin through a RoleBinding; a
  healthy cert-manager certificate beside it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from credwarden.facts import parse_time

Object = dict[str, Any]

REFERENCE_NOW = datetime(2026, 11, 22, 0, 0, 0, tzinfo=UTC)
KUBECTL_COMMAND = (
    "kubectl get serviceaccounts,secrets,rolebindings,clusterrolebindings,namespaces,pods,"
    "deployments,statefulsets,daemonsets,jobs,cronjobs -A -o yaml"
)
# uuid5 namespace of every uid in the scenario
_UID_NAMESPACE = uuid.UUID("6b1d4c0e-8f1a-5c1e-9a53-6372656477a1")
# the alphabet Kubernetes draws generated name suffixes from
_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B64 = _ALNUM + "+/"
_B64URL = _ALNUM + "-_"

OWNER_ANNOTATION = "credwarden.io/owner"
EXEMPT_ANNOTATION = "credwarden.io/exempt"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
PART_OF = "app.kubernetes.io/part-of"


# ---- deterministic building blocks -----------------------------------------------------


def uid(kind: str, namespace: str, name: str) -> str:
    """The scenario's uid of an object: uuid5 of its kind, namespace and name."""
    return str(uuid.uuid5(_UID_NAMESPACE, f"{kind}/{namespace}/{name}"))


def _stream(seed: str, size: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"credwarden-example:{seed}:{counter}".encode()).digest()
        counter += 1
    return out[:size]


def fake(seed: str, length: int, alphabet: str = _ALNUM) -> str:
    """A deterministic random-looking string (not a credential anywhere)."""
    return "".join(alphabet[byte % len(alphabet)] for byte in _stream(seed, length))


def _suffix(seed: str, length: int = 5) -> str:
    return fake(seed, length, _K8S_ALPHABET)


def _b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


def _b64url(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def kubectl_order(value: Any) -> Any:
    """Keys sorted at every level, as kubectl prints objects."""
    if isinstance(value, dict):
        return {key: kubectl_order(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [kubectl_order(item) for item in value]
    return value


# ---- certificates ----------------------------------------------------------------------


def _private_key(label: str) -> Ed25519PrivateKey:
    """An Ed25519 key derived from fixed public bytes: an example key, never a real one."""
    seed = hashlib.sha256(f"credwarden-example-key:{label}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


@dataclass(frozen=True)
class _Issued:
    certificate: x509.Certificate
    key: Ed25519PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _certificate(
    *,
    label: str,
    subject: x509.Name,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    issuer: _Issued | None = None,
    dns_names: Sequence[str] = (),
) -> _Issued:
    """A certificate signed by `issuer` (self-signed CA when None); deterministic."""
    key = _private_key(label)
    signer = issuer.key if issuer else key
    issuer_name = issuer.certificate.subject if issuer else subject
    is_ca = issuer is None
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
    )
    if not is_ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in dns_names]),
            critical=False,
        )
    return _Issued(builder.sign(signer, None), key)


# ---- the cluster -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Container:
    name: str
    image: str
    env_from: Sequence[str] = ()  # Secrets read whole through envFrom
    env: Sequence[tuple[str, str, str]] = ()  # (variable, Secret, key)
    mounts: Sequence[tuple[str, str]] = ()  # (volume, mountPath)
    args: Sequence[str] = ()


class _Cluster:
    """Accumulates the objects of one snapshot, every time relative to `now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.objects: list[Object] = []
        self._resource_version = 48_211

    # time
    def at(self, days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
        """`days`/`hours`/`minutes` before now (negative: after)."""
        return self.now - timedelta(days=days, hours=hours, minutes=minutes)

    def ago(self, days: float = 0, hours: float = 0, minutes: float = 0) -> str:
        return _rfc3339(self.at(days, hours, minutes))

    def day_ago(self, days: int) -> str:
        """The `YYYY-MM-DD` date `days` before now (legacy-token label values)."""
        return (self.now - timedelta(days=days)).date().isoformat()

    # metadata
    def metadata(
        self,
        kind: str,
        name: str,
        namespace: str | None,
        created: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        owner: tuple[str, str, str] | None = None,  # (apiVersion, kind, name)
        generate_name: str | None = None,
        generation: int | None = None,
    ) -> Object:
        self._resource_version += 17
        meta: Object = {
            "creationTimestamp": created,
            "name": name,
            "resourceVersion": str(self._resource_version),
            "uid": uid(kind, namespace or "", name),
        }
        if namespace:
            meta["namespace"] = namespace
        if labels:
            meta["labels"] = dict(labels)
        if annotations:
            meta["annotations"] = dict(annotations)
        if generate_name:
            meta["generateName"] = generate_name
        if generation is not None:
            meta["generation"] = generation
        if owner:
            api_version, owner_kind, owner_name = owner
            meta["ownerReferences"] = [
                {
                    "apiVersion": api_version,
                    "blockOwnerDeletion": True,
                    "controller": True,
                    "kind": owner_kind,
                    "name": owner_name,
                    "uid": uid(owner_kind, namespace or "", owner_name),
                }
            ]
        return meta

    def add(self, obj: Object) -> Object:
        self.objects.append(obj)
        return obj

    # kinds
    def namespace(
        self,
        name: str,
        days: float,
        *,
        owner: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.add(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": self.metadata(
                    "Namespace",
                    name,
                    None,
                    self.ago(days),
                    labels={"kubernetes.io/metadata.name": name, **(labels or {})},
                    annotations={OWNER_ANNOTATION: owner} if owner else None,
                ),
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
        )

    def service_account(
        self,
        namespace: str,
        name: str,
        created: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        self.add(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": self.metadata(
                    "ServiceAccount",
                    name,
                    namespace,
                    created,
                    labels=labels,
                    annotations=annotations,
                ),
            }
        )

    def secret(
        self,
        namespace: str,
        name: str,
        secret_type: str,
        data: Mapping[str, bytes | str],
        created: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        owner: tuple[str, str, str] | None = None,
        applied: bool = False,
    ) -> None:
        """A Secret; `applied`: created by `kubectl apply`, which keeps a full copy of the
        manifest, values included, in the last-applied-configuration annotation."""
        encoded = {key: _b64(value) for key, value in data.items()}
        notes = dict(annotations or {})
        if applied:
            applied_meta: Object = {
                "annotations": dict(notes),
                "name": name,
                "namespace": namespace,
            }
            if labels:
                applied_meta["labels"] = dict(labels)
            manifest = {
                "apiVersion": "v1",
                "data": encoded,
                "kind": "Secret",
                "metadata": applied_meta,
                "type": secret_type,
            }
            notes[LAST_APPLIED] = _compact_json(manifest) + "\n"
        self.add(
            {
                "apiVersion": "v1",
                "data": encoded,
                "kind": "Secret",
                "metadata": self.metadata(
                    "Secret",
                    name,
                    namespace,
                    created,
                    labels=labels,
                    annotations=notes or None,
                    owner=owner,
                ),
                "type": secret_type,
            }
        )

    def legacy_token(
        self,
        namespace: str,
        account: str,
        days: float,
        *,
        last_used_days: int | None,
        ca: _Issued,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """A legacy token Secret, created by hand (`kubectl apply`) for `account`."""
        name = f"{account}-token"
        account_uid = uid("ServiceAccount", namespace, account)
        header = {"alg": "RS256", "kid": fake(f"kid/{name}", 43, _B64URL)}
        claims = {
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": name,
            "kubernetes.io/serviceaccount/service-account.name": account,
            "kubernetes.io/serviceaccount/service-account.uid": account_uid,
            "sub": f"system:serviceaccount:{namespace}:{account}",
        }
        signature = "EXAMPLE-" + fake(f"signature/{namespace}/{name}", 334, _B64URL)
        token = f"{_b64url(_compact_json(header))}.{_b64url(_compact_json(claims))}.{signature}"
        token_labels = dict(labels or {})
        if last_used_days is not None:
            token_labels["kubernetes.io/legacy-token-last-used"] = self.day_ago(last_used_days)
        self.secret(
            namespace,
            name,
            "kubernetes.io/service-account-token",
            {"ca.crt": ca.cert_pem, "namespace": namespace, "token": token},
            self.ago(days),
            labels=token_labels,
            annotations={
                "kubernetes.io/service-account.name": account,
                "kubernetes.io/service-account.uid": account_uid,
            },
        )

    def binding(
        self,
        kind: str,
        name: str,
        namespace: str | None,
        role: tuple[str, str],
        subjects: Iterable[tuple[str, str, str | None]],  # (kind, name, namespace)
        created: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        subject_list: list[Object] = []
        for subject_kind, subject_name, subject_namespace in subjects:
            subject: Object = {"kind": subject_kind, "name": subject_name}
            if subject_kind in ("User", "Group"):
                subject["apiGroup"] = "rbac.authorization.k8s.io"
            if subject_namespace:
                subject["namespace"] = subject_namespace
            subject_list.append(subject)
        self.add(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": kind,
                "metadata": self.metadata(
                    kind, name, namespace, created, labels=labels, annotations=annotations
                ),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": role[0],
                    "name": role[1],
                },
                "subjects": subject_list,
            }
        )

    # workloads
    def pod_spec(
        self,
        account: str,
        containers: Sequence[_Container],
        *,
        secret_volumes: Mapping[str, str] | None = None,  # volume -> Secret
        config_volumes: Mapping[str, str] | None = None,  # volume -> ConfigMap
        pull_secrets: Sequence[str] = (),
        restart_policy: str = "Always",
        extra: Mapping[str, Any] | None = None,
    ) -> Object:
        rendered: list[Object] = []
        for container in containers:
            body: Object = {
                "image": container.image,
                "imagePullPolicy": "IfNotPresent",
                "name": container.name,
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }
            if container.args:
                body["args"] = list(container.args)
            if container.env_from:
                body["envFrom"] = [{"secretRef": {"name": s}} for s in container.env_from]
            if container.env:
                body["env"] = [
                    {"name": var, "valueFrom": {"secretKeyRef": {"key": key, "name": secret}}}
                    for var, secret, key in container.env
                ]
            if container.mounts:
                body["volumeMounts"] = [
                    {"mountPath": path, "name": volume, "readOnly": True}
                    for volume, path in container.mounts
                ]
            rendered.append(body)
        volumes: list[Object] = [
            {"name": volume, "secret": {"defaultMode": 0o400, "secretName": secret}}
            for volume, secret in (secret_volumes or {}).items()
        ]
        volumes += [
            {"configMap": {"defaultMode": 0o644, "name": config_map}, "name": volume}
            for volume, config_map in (config_volumes or {}).items()
        ]
        spec: Object = {
            "containers": rendered,
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": restart_policy,
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": account,
            "serviceAccountName": account,
            "terminationGracePeriodSeconds": 30,
        }
        if volumes:
            spec["volumes"] = volumes
        if pull_secrets:
            spec["imagePullSecrets"] = [{"name": name} for name in pull_secrets]
        spec.update(extra or {})
        return spec

    def _template(self, labels: Mapping[str, str], spec: Object) -> Object:
        return {"metadata": {"labels": dict(labels)}, "spec": spec}

    def deployment(
        self,
        namespace: str,
        name: str,
        days: float,
        spec: Object,
        *,
        replicas: int = 1,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        pods: int = 0,
    ) -> None:
        selector = {"app.kubernetes.io/name": name}
        template_hash = _suffix(f"rs/{namespace}/{name}", 10)
        self.add(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": self.metadata(
                    "Deployment",
                    name,
                    namespace,
                    self.ago(days),
                    labels={**selector, **(labels or {})},
                    annotations={"deployment.kubernetes.io/revision": "1", **(annotations or {})},
                    generation=1,
                ),
                "spec": {
                    "progressDeadlineSeconds": 600,
                    "replicas": replicas,
                    "revisionHistoryLimit": 10,
                    "selector": {"matchLabels": selector},
                    "strategy": {
                        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                        "type": "RollingUpdate",
                    },
                    "template": self._template(selector, spec),
                },
                "status": {
                    "availableReplicas": replicas,
                    "conditions": [
                        {
                            "lastTransitionTime": self.ago(days),
                            "lastUpdateTime": self.ago(days),
                            "message": "Deployment has minimum availability.",
                            "reason": "MinimumReplicasAvailable",
                            "status": "True",
                            "type": "Available",
                        },
                        {
                            "lastTransitionTime": self.ago(days),
                            "lastUpdateTime": self.ago(days, minutes=-2),
                            "message": f'ReplicaSet "{name}-{template_hash}" has successfully '
                            "progressed.",
                            "reason": "NewReplicaSetAvailable",
                            "status": "True",
                            "type": "Progressing",
                        },
                    ],
                    "observedGeneration": 1,
                    "readyReplicas": replicas,
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                },
            }
        )
        replica_set = f"{name}-{template_hash}"
        for index in range(pods):
            self.pod(
                namespace,
                f"{replica_set}-{_suffix(f'pod/{namespace}/{replica_set}/{index}')}",
                spec,
                {**selector, "pod-template-hash": template_hash},
                owner=("apps/v1", "ReplicaSet", replica_set),
                generate_name=f"{replica_set}-",
                days=min(days, 9),
            )

    def stateful_set(
        self, namespace: str, name: str, days: float, spec: Object, *, replicas: int = 1
    ) -> None:
        selector = {"app.kubernetes.io/name": name}
        revision = f"{name}-{_suffix(f'sts/{namespace}/{name}', 10)}"
        self.add(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": self.metadata(
                    "StatefulSet",
                    name,
                    namespace,
                    self.ago(days),
                    labels=selector,
                    generation=1,
                ),
                "spec": {
                    "persistentVolumeClaimRetentionPolicy": {
                        "whenDeleted": "Retain",
                        "whenScaled": "Retain",
                    },
                    "podManagementPolicy": "OrderedReady",
                    "replicas": replicas,
                    "revisionHistoryLimit": 10,
                    "selector": {"matchLabels": selector},
                    "serviceName": name,
                    "template": self._template(selector, spec),
                    "updateStrategy": {
                        "rollingUpdate": {"partition": 0},
                        "type": "RollingUpdate",
                    },
                },
                "status": {
                    "availableReplicas": replicas,
                    "collisionCount": 0,
                    "currentReplicas": replicas,
                    "currentRevision": revision,
                    "observedGeneration": 1,
                    "readyReplicas": replicas,
                    "replicas": replicas,
                    "updateRevision": revision,
                    "updatedReplicas": replicas,
                },
            }
        )
        for index in range(replicas):
            self.pod(
                namespace,
                f"{name}-{index}",
                spec,
                {**selector, "controller-revision-hash": revision},
                owner=("apps/v1", "StatefulSet", name),
                generate_name=f"{name}-",
                days=min(days, 9),
            )

    def daemon_set(self, namespace: str, name: str, days: float, spec: Object) -> None:
        selector = {"k8s-app": name}
        self.add(
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": self.metadata(
                    "DaemonSet",
                    name,
                    namespace,
                    self.ago(days),
                    labels=selector,
                    annotations={"deprecated.daemonset.template.generation": "1"},
                    generation=1,
                ),
                "spec": {
                    "revisionHistoryLimit": 10,
                    "selector": {"matchLabels": selector},
                    "template": self._template(selector, spec),
                    "updateStrategy": {
                        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
                        "type": "RollingUpdate",
                    },
                },
                "status": {
                    "currentNumberScheduled": 3,
                    "desiredNumberScheduled": 3,
                    "numberAvailable": 3,
                    "numberMisscheduled": 0,
                    "numberReady": 3,
                    "observedGeneration": 1,
                    "updatedNumberScheduled": 3,
                },
            }
        )
        self.pod(
            namespace,
            f"{name}-{_suffix(f'pod/{namespace}/{name}')}",
            spec,
            selector,
            owner=("apps/v1", "DaemonSet", name),
            generate_name=f"{name}-",
            days=min(days, 9),
        )

    def cron_job(self, namespace: str, name: str, days: float, schedule: str, spec: Object) -> None:
        """A CronJob that runs daily at 02:00, and the Job of its last run."""
        labels = {"app.kubernetes.io/name": name}
        took = timedelta(minutes=47)
        # the last run that has finished by now
        last_run = self.now.replace(hour=2, minute=0, second=0, microsecond=0)
        if last_run + took > self.now:
            last_run -= timedelta(days=1)
        job_template = {"metadata": {"labels": labels}, "spec": {"template": {"spec": spec}}}
        self.add(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": self.metadata(
                    "CronJob", name, namespace, self.ago(days), labels=labels, generation=1
                ),
                "spec": {
                    "concurrencyPolicy": "Forbid",
                    "failedJobsHistoryLimit": 1,
                    "jobTemplate": job_template,
                    "schedule": schedule,
                    "successfulJobsHistoryLimit": 3,
                    "suspend": False,
                },
                "status": {
                    "lastScheduleTime": _rfc3339(last_run),
                    "lastSuccessfulTime": _rfc3339(last_run + took),
                },
            }
        )
        job = f"{name}-{int(last_run.timestamp()) // 60}"
        job_uid = uid("Job", namespace, job)
        job_labels = {**labels, "batch.kubernetes.io/job-name": job, "job-name": job}
        self.add(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": self.metadata(
                    "Job",
                    job,
                    namespace,
                    _rfc3339(last_run),
                    labels=job_labels,
                    annotations={"batch.kubernetes.io/job-tracking": ""},
                    owner=("batch/v1", "CronJob", name),
                    generation=1,
                ),
                "spec": {
                    "backoffLimit": 6,
                    "completionMode": "NonIndexed",
                    "completions": 1,
                    "manualSelector": False,
                    "parallelism": 1,
                    "podReplacementPolicy": "TerminatingOrFailed",
                    "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": job_uid}},
                    "suspend": False,
                    "template": {
                        "metadata": {
                            "labels": {**job_labels, "controller-uid": job_uid},
                        },
                        "spec": spec,
                    },
                },
                "status": {
                    "completionTime": _rfc3339(last_run + took),
                    "conditions": [
                        {
                            "lastProbeTime": _rfc3339(last_run + took),
                            "lastTransitionTime": _rfc3339(last_run + took),
                            "message": "Reached expected number of succeeded pods",
                            "reason": "CompletionsReached",
                            "status": "True",
                            "type": "Complete",
                        }
                    ],
                    "ready": 0,
                    "startTime": _rfc3339(last_run),
                    "succeeded": 1,
                    "terminating": 0,
                },
            }
        )

    def pod(
        self,
        namespace: str,
        name: str,
        spec: Object,
        labels: Mapping[str, str],
        *,
        owner: tuple[str, str, str],
        generate_name: str,
        days: float,
    ) -> None:
        """A running Pod: the template's spec as the API server completes it."""
        access = f"kube-api-access-{_suffix(f'access/{namespace}/{name}')}"
        node = f"worker-{1 + int(_stream(f'node/{namespace}/{name}', 1)[0]) % 3}"
        containers = [
            {
                **container,
                "volumeMounts": [
                    *container.get("volumeMounts", []),
                    {
                        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        "name": access,
                        "readOnly": True,
                    },
                ],
            }
            for container in spec["containers"]
        ]
        volumes = [
            *spec.get("volumes", []),
            {
                "name": access,
                "projected": {
                    "defaultMode": 0o644,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                "name": "kube-root-ca.crt",
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "fieldRef": {
                                            "apiVersion": "v1",
                                            "fieldPath": "metadata.namespace",
                                        },
                                        "path": "namespace",
                                    }
                                ]
                            }
                        },
                    ],
                },
            },
        ]
        octets = _stream(f"ip/{namespace}/{name}", 2)
        self.add(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": self.metadata(
                    "Pod",
                    name,
                    namespace,
                    self.ago(days),
                    labels=labels,
                    owner=owner,
                    generate_name=generate_name,
                ),
                "spec": {
                    **spec,
                    "containers": containers,
                    "enableServiceLinks": True,
                    "nodeName": node,
                    "preemptionPolicy": "PreemptLowerPriority",
                    "priority": 0,
                    "volumes": volumes,
                },
                "status": {
                    "hostIP": f"10.0.0.{11 + int(node[-1])}",
                    "phase": "Running",
                    "podIP": f"10.244.{octets[0] % 3}.{2 + octets[1] % 250}",
                    "qosClass": "BestEffort",
                    "startTime": self.ago(days),
                },
            }
        )


# ---- the story ---------------------------------------------------------------------------


def _kube_system(cluster: _Cluster, cluster_ca: _Issued) -> None:
    ns, created = "kube-system", cluster.ago(1100)
    for account in (
        "default",
        "coredns",
        "kube-proxy",
        "metrics-server",
        "replicaset-controller",
        "namespace-controller",
        "token-cleaner",
    ):
        cluster.service_account(ns, account, created)
    # people, with cluster-admin and hand-made legacy tokens
    for person, days, last_used in (("john-smith", 612, 2), ("daniel-wilson", 418, 381)):
        # the account, then a token Secret for it minutes later
        cluster.service_account(ns, person, cluster.ago(days, minutes=12))
        cluster.legacy_token(ns, person, days, last_used_days=last_used, ca=cluster_ca)
        cluster.binding(
            "ClusterRoleBinding",
            f"{person}-cluster-admin",
            None,
            ("ClusterRole", "cluster-admin"),
            [("ServiceAccount", person, ns)],
            cluster.ago(days, minutes=-3),
        )
    bootstrap = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    autoupdate = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    cluster.binding(
        "ClusterRoleBinding",
        "cluster-admin",
        None,
        ("ClusterRole", "cluster-admin"),
        [("Group", "system:masters", None)],
        created,
        labels=bootstrap,
        annotations=autoupdate,
    )
    cluster.binding(
        "ClusterRoleBinding",
        "system:coredns",
        None,
        ("ClusterRole", "system:coredns"),
        [("ServiceAccount", "coredns", ns)],
        created,
    )
    cluster.binding(
        "ClusterRoleBinding",
        "kubeadm:node-proxier",
        None,
        ("ClusterRole", "system:node-proxier"),
        [("ServiceAccount", "kube-proxy", ns)],
        created,
    )
    metrics_labels = {"k8s-app": "metrics-server"}
    cluster.binding(
        "ClusterRoleBinding",
        "system:metrics-server",
        None,
        ("ClusterRole", "system:metrics-server"),
        [("ServiceAccount", "metrics-server", ns)],
        cluster.ago(1090),
        labels=metrics_labels,
    )
    cluster.binding(
        "ClusterRoleBinding",
        "metrics-server:system:auth-delegator",
        None,
        ("ClusterRole", "system:auth-delegator"),
        [("ServiceAccount", "metrics-server", ns)],
        cluster.ago(1090),
        labels=metrics_labels,
    )
    cluster.binding(
        "RoleBinding",
        "metrics-server-auth-reader",
        ns,
        ("Role", "extension-apiserver-authentication-reader"),
        [("ServiceAccount", "metrics-server", ns)],
        cluster.ago(1090),
        labels=metrics_labels,
    )
    cluster.deployment(
        ns,
        "coredns",
        1100,
        cluster.pod_spec(
            "coredns",
            [
                _Container(
                    "coredns",
                    "registry.k8s.io/coredns/coredns:v1.12.1",
                    mounts=[("config-volume", "/etc/coredns")],
                    args=["-conf", "/etc/coredns/Corefile"],
                )
            ],
            config_volumes={"config-volume": "coredns"},
            extra={"priorityClassName": "system-cluster-critical"},
        ),
        replicas=2,
        labels={"k8s-app": "kube-dns"},
        pods=1,
    )
    cluster.daemon_set(
        ns,
        "kube-proxy",
        1100,
        cluster.pod_spec(
            "kube-proxy",
            [
                _Container(
                    "kube-proxy",
                    "registry.k8s.io/kube-proxy:v1.34.2",
                    mounts=[("kube-proxy", "/var/lib/kube-proxy")],
                )
            ],
            config_volumes={"kube-proxy": "kube-proxy"},
            extra={"hostNetwork": True, "priorityClassName": "system-node-critical"},
        ),
    )
    cluster.deployment(
        ns,
        "metrics-server",
        1090,
        cluster.pod_spec(
            "metrics-server",
            [
                _Container(
                    "metrics-server",
                    "registry.k8s.io/metrics-server/metrics-server:v0.8.0",
                    args=["--secure-port=10250", "--kubelet-preferred-address-types=InternalIP"],
                )
            ],
            extra={"priorityClassName": "system-cluster-critical"},
        ),
        labels={"k8s-app": "metrics-server"},
        pods=1,
    )


def _airflow_creds() -> dict[str, str]:
    password = "EXAMPLE-" + fake("airflow/password", 20)
    return {
        "password": password,
        "sql_alchemy_conn": "postgresql+psycopg2://af_metadata_rw:"
        f"{password}@airflow-postgresql.airflow.svc.cluster.local:5432/airflow",
        "username": "af_metadata_rw",
    }


def _grafana_creds() -> dict[str, str]:
    return {"admin-password": "EXAMPLE-" + fake("grafana/password", 20), "admin-user": "gf_root"}


def _airflow(cluster: _Cluster) -> None:
    ns = "airflow"
    cluster.service_account(ns, "default", cluster.ago(1050))
    helm = {"app.kubernetes.io/managed-by": "Helm", "chart": "airflow-1.15.0", "release": "airflow"}
    helm_annotations = {
        "meta.helm.sh/release-name": "airflow",
        "meta.helm.sh/release-namespace": ns,
    }
    # the chart was reinstalled 45 days ago: its accounts and fernet key date from then
    cluster.service_account(
        ns,
        "airflow-scheduler",
        cluster.ago(45),
        labels={**helm, "component": "scheduler"},
        annotations={**helm_annotations, OWNER_ANNOTATION: "data-platform"},
    )
    cluster.service_account(
        ns,
        "airflow-worker",
        cluster.ago(45),
        labels={**helm, "component": "worker", "team": "data-platform"},
        annotations=helm_annotations,
    )
    cluster.secret(
        ns,
        "airflow-creds",
        "Opaque",
        _airflow_creds(),
        cluster.ago(1045, hours=5),
        applied=True,
    )
    fernet = "EXAMPLE0fernet0key0not0real0" + fake("airflow/fernet", 15, _B64URL) + "="
    cluster.secret(
        ns,
        "airflow-fernet-key",
        "Opaque",
        {"fernet-key": fernet},
        cluster.ago(45),
        labels={**helm, "component": "fernet-key"},
        annotations={**helm_annotations, "helm.sh/hook-weight": "0"},
    )
    release = {
        "chart": {"metadata": {"appVersion": "2.10.5", "name": "airflow", "version": "1.15.0"}},
        "info": {
            "description": "Upgrade complete",
            "first_deployed": cluster.ago(45),
            "last_deployed": cluster.ago(12),
            "status": "deployed",
        },
        "name": "airflow",
        "namespace": ns,
        "version": 3,
    }
    # Helm's own layer: the release JSON, base64 (uncompressed, which Helm also reads)
    cluster.secret(
        ns,
        "sh.helm.release.v1.airflow.v3",
        "helm.sh/release.v1",
        {"release": _b64(_compact_json(release))},
        cluster.ago(12),
        labels={
            "modifiedAt": str(int(cluster.at(12).timestamp())),
            "name": "airflow",
            "owner": "helm",
            "status": "deployed",
            "version": "3",
        },
    )
    image = "apache/airflow:2.10.5"
    env = [
        ("AIRFLOW__CORE__FERNET_KEY", "airflow-fernet-key", "fernet-key"),
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-creds", "sql_alchemy_conn"),
    ]
    cluster.deployment(
        ns,
        "airflow-scheduler",
        45,
        cluster.pod_spec(
            "airflow-scheduler",
            [
                _Container(
                    "scheduler", image, env=env, args=["bash", "-c", "exec airflow scheduler"]
                )
            ],
        ),
        labels=helm,
        annotations=helm_annotations,
    )
    cluster.stateful_set(
        ns,
        "airflow-worker",
        45,
        cluster.pod_spec(
            "airflow-worker",
            [
                _Container(
                    "worker",
                    image,
                    env=env[:1],
                    mounts=[("airflow-creds", "/opt/airflow/secrets/db")],
                    args=["bash", "-c", "exec airflow celery worker"],
                )
            ],
            secret_volumes={"airflow-creds": "airflow-creds"},
        ),
    )
    cluster.binding(
        "RoleBinding",
        "airflow-pod-launcher-rolebinding",
        ns,
        ("Role", "airflow-pod-launcher-role"),
        [("ServiceAccount", "airflow-scheduler", ns), ("ServiceAccount", "airflow-worker", ns)],
        cluster.ago(45),
        labels=helm,
        annotations=helm_annotations,
    )


def _monitoring(cluster: _Cluster) -> None:
    ns = "monitoring"
    cluster.service_account(ns, "default", cluster.ago(1000))
    helm = {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/name": "grafana"}
    helm_annotations = {
        "meta.helm.sh/release-name": "grafana",
        "meta.helm.sh/release-namespace": ns,
    }
    cluster.service_account(
        ns, "grafana", cluster.ago(990), labels=helm, annotations=helm_annotations
    )
    cluster.secret(
        ns, "grafana-creds", "Opaque", _grafana_creds(), cluster.ago(930, hours=2), applied=True
    )
    # copied here for an Airflow metrics exporter that was removed long ago
    cluster.secret(
        ns, "airflow-creds", "Opaque", _airflow_creds(), cluster.ago(700, hours=7), applied=True
    )
    cluster.deployment(
        ns,
        "grafana",
        990,
        cluster.pod_spec(
            "grafana",
            [
                _Container(
                    "grafana",
                    "docker.io/grafana/grafana:12.2.0",
                    env=[
                        ("GF_SECURITY_ADMIN_USER", "grafana-creds", "admin-user"),
                        ("GF_SECURITY_ADMIN_PASSWORD", "grafana-creds", "admin-password"),
                    ],
                )
            ],
        ),
        labels=helm,
        annotations=helm_annotations,
    )


def _default(cluster: _Cluster) -> None:
    ns = "default"
    cluster.service_account(ns, "default", cluster.ago(1100))
    # copied for a debugging session 540 days ago, never cleaned up
    cluster.secret(
        ns, "airflow-creds", "Opaque", _airflow_creds(), cluster.ago(540, hours=3), applied=True
    )
    cluster.secret(
        ns, "grafana-creds", "Opaque", _grafana_creds(), cluster.ago(540, hours=3), applied=True
    )


def _ml_platform_system(cluster: _Cluster, platform_ca: _Issued) -> None:
    ns = "ml-platform-system"
    cluster.service_account(ns, "default", cluster.ago(620))
    cluster.service_account(
        ns, "mlflow", cluster.ago(615), labels={"app.kubernetes.io/name": "mlflow"}
    )
    # synced from Vault by an ExternalSecret, created 12 days ago in the move off hand-made Secrets
    cluster.secret(
        ns,
        "mlflow-db",
        "Opaque",
        {
            "password": "EXAMPLE-" + fake("mlflow-db/password", 24),
            "username": "v-k8s-mlflow-rw-" + fake("mlflow-db/user", 12).lower(),
        },
        cluster.ago(12),
        labels={
            "reconcile.external-secrets.io/created-by": fake(
                "eso/mlflow-db", 32, "0123456789abcdef"
            )
        },
        annotations={
            "reconcile.external-secrets.io/data-hash": fake("eso/hash", 32, "0123456789abcdef")
        },
        owner=("external-secrets.io/v1", "ExternalSecret", "mlflow-db"),
    )
    # cert-manager's renewal of this 90-day certificate is stuck: 9 days left
    dns = ["mlflow.ml-platform.example.com", "mlflow.ml-platform-system.svc"]
    expiring = _certificate(
        label="mlflow-tls",
        subject=_name(dns[0]),
        serial=0x4D4C464C4F5754_4C53_0001,
        not_before=cluster.at(81),
        not_after=cluster.at(-9),
        issuer=platform_ca,
        dns_names=dns,
    )
    cluster.secret(
        ns,
        "mlflow-tls",
        "kubernetes.io/tls",
        {
            "ca.crt": platform_ca.cert_pem,
            "tls.crt": expiring.cert_pem + platform_ca.cert_pem,
            "tls.key": expiring.key_pem,
        },
        cluster.ago(600),
        labels={"controller.cert-manager.io/fao": "true"},
        annotations=_cert_manager_annotations("mlflow-tls", dns),
        owner=("cert-manager.io/v1", "Certificate", "mlflow-tls"),
    )
    cluster.secret(
        ns,
        "minio-root",
        "Opaque",
        {"rootPassword": "EXAMPLE-" + fake("minio/root", 32), "rootUser": "minio-root-admin"},
        cluster.ago(610),
        annotations={
            EXEMPT_ANNOTATION: "break-glass root of the on-prem MinIO; sealed in the offline "
            "vault and rotated with the storage vendor's tool each quarter (SEC-2291)"
        },
    )
    cluster.deployment(
        ns,
        "mlflow",
        615,
        cluster.pod_spec(
            "mlflow",
            [
                _Container(
                    "mlflow",
                    "ghcr.io/mlflow/mlflow:v3.5.1",
                    mounts=[("db", "/run/secrets/mlflow-db"), ("tls", "/run/secrets/tls")],
                    args=["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"],
                )
            ],
            secret_volumes={"db": "mlflow-db", "tls": "mlflow-tls"},
        ),
        pods=1,
    )


def _cert_manager_annotations(certificate: str, dns: Sequence[str]) -> dict[str, str]:
    return {
        "cert-manager.io/alt-names": ",".join(dns),
        "cert-manager.io/certificate-name": certificate,
        "cert-manager.io/common-name": dns[0],
        "cert-manager.io/ip-sans": "",
        "cert-manager.io/issuer-group": "cert-manager.io",
        "cert-manager.io/issuer-kind": "ClusterIssuer",
        "cert-manager.io/issuer-name": "ml-platform-ca",
        "cert-manager.io/uri-sans": "",
    }


REGISTRY_TOKEN = "EXAMPLE_ghcr_" + fake("ghcr/token", 36)


def _ml_platform_values(env: str) -> dict[str, str]:
    """The consolidated Secret of the field notes; the registry token is the same in every
    environment, the rest is per environment."""
    return {
        "AWS_ACCESS_KEY_ID": "AKIA" + fake(f"{env}/aws-id", 9, _UPPER) + "EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": fake(f"{env}/aws-secret", 30, _B64) + "EXAMPLEKEY",
        "MLFLOW_S3_ENDPOINT_URL": "http://minio.ml-platform-system.svc.cluster.local:9000",
        "MLFLOW_TRACKING_PASSWORD": "EXAMPLE-" + fake(f"{env}/mlflow-password", 24),
        "MLFLOW_TRACKING_URI": "http://mlflow.ml-platform-system.svc.cluster.local:5000",
        "MLFLOW_TRACKING_USERNAME": f"fin-ml-{env}-tracking",
        "REGISTRY_TOKEN": REGISTRY_TOKEN,
    }


def _dockerconfig() -> str:
    user = "fin-ml-ci-bot"
    auth = {"auth": _b64(f"{user}:{REGISTRY_TOKEN}"), "password": REGISTRY_TOKEN, "username": user}
    return _compact_json({"auths": {"ghcr.io": auth}})


def _financial_ml(
    cluster: _Cluster, ns: str, env: str, cluster_ca: _Issued, platform_ca: _Issued
) -> None:
    production = env == "prod"
    cluster.service_account(ns, "default", cluster.ago(510))
    package = {
        "app.kubernetes.io/managed-by": "package-ml-secrets",
        "app.kubernetes.io/name": "ml-platform",
        PART_OF: "ml-platform",
    }
    # delivered as a package (financial-ml-ml-secrets-<date>.tar.gz), applied with kubectl
    cluster.secret(
        ns,
        "ml-platform",
        "Opaque",
        _ml_platform_values(env),
        cluster.ago(506, hours=4),
        labels=package,
        applied=True,
    )
    cluster.secret(
        ns,
        "ghcr",
        "kubernetes.io/dockerconfigjson",
        {".dockerconfigjson": _dockerconfig()},
        cluster.ago(506, hours=4),
        labels={"app.kubernetes.io/managed-by": "package-ml-secrets"},
        applied=True,
    )
    cluster.service_account(
        ns,
        "model-server",
        cluster.ago(500),
        annotations={OWNER_ANNOTATION: "team-financial-ml"},
    )
    cluster.binding(
        "RoleBinding",
        "model-server-view",
        ns,
        ("ClusterRole", "view"),
        [("ServiceAccount", "model-server", ns)],
        cluster.ago(500),
    )
    server = _Container(
        "model-server",
        "ghcr.io/company/financial-model:v2.1.0",
        env_from=["ml-platform"],
        mounts=[("tls", "/run/secrets/tls")] if production else (),
    )
    cluster.deployment(
        ns,
        "financial-model-server",
        30 if production else 6,
        cluster.pod_spec(
            "model-server",
            [server],
            pull_secrets=["ghcr"],
            secret_volumes={"tls": "model-server-tls"} if production else None,
        ),
        replicas=3 if production else 1,
        labels={"mlops.io/model-name": "financial-model"},
        pods=1 if production else 0,
    )
    if not production:
        return
    cluster.service_account(
        ns, "trainer", cluster.ago(480), annotations={OWNER_ANNOTATION: "team-financial-ml"}
    )
    cluster.cron_job(
        ns,
        "nightly-retrain",
        480,
        "0 2 * * *",
        cluster.pod_spec(
            "trainer",
            [
                _Container(
                    "train",
                    "ghcr.io/company/financial-model-train:v2.1.0",
                    env_from=["ml-platform"],
                    args=["python", "-m", "train", "--register"],
                )
            ],
            pull_secrets=["ghcr"],
            restart_policy="OnFailure",
        ),
    )
    # the CI pipeline deploys with a hand-made legacy token, cluster-admin in the namespace
    cluster.service_account(ns, "ml-deployer", cluster.ago(480, minutes=9), labels=package)
    cluster.legacy_token(ns, "ml-deployer", 480, last_used_days=1, ca=cluster_ca, labels=package)
    cluster.binding(
        "RoleBinding",
        "ml-deployer-admin",
        ns,
        ("ClusterRole", "cluster-admin"),
        [("ServiceAccount", "ml-deployer", ns)],
        cluster.ago(480, minutes=-2),
    )
    dns = ["financial-model.ml.example.com", "financial-model-server.financial-ml.svc"]
    healthy = _certificate(
        label="model-server-tls",
        subject=_name(dns[0]),
        serial=0x46494E4D4C_0002,
        not_before=cluster.at(20),
        not_after=cluster.at(-70),
        issuer=platform_ca,
        dns_names=dns,
    )
    # cert-manager's default: no ownerReference on the Secret
    cluster.secret(
        ns,
        "model-server-tls",
        "kubernetes.io/tls",
        {
            "ca.crt": platform_ca.cert_pem,
            "tls.crt": healthy.cert_pem + platform_ca.cert_pem,
            "tls.key": healthy.key_pem,
        },
        cluster.ago(480),
        labels={"controller.cert-manager.io/fao": "true"},
        annotations=_cert_manager_annotations("model-server-tls", dns),
    )


def normalize_now(now: datetime) -> datetime:
    """`now` in UTC, whole seconds (certificates and timestamps have no finer grain);
    a naive `now` is taken as UTC."""
    aware = now if now.tzinfo else now.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(microsecond=0)


def build_objects(now: datetime) -> list[Object]:
    """The scenario's objects at `now`, as `kubectl get ... -o yaml` prints them."""
    cluster = _Cluster(normalize_now(now))
    cluster_ca = _certificate(
        label="cluster-ca",
        subject=_name("kubernetes"),
        serial=0x6B756265_0001,
        not_before=cluster.at(1100, hours=1),
        not_after=cluster.at(1100 - 3650, hours=1),
    )
    platform_ca = _certificate(
        label="ml-platform-ca",
        subject=_name("ml-platform internal CA", organization="Example ML Platform"),
        serial=0x4D4C5043_0001,
        not_before=cluster.at(620),
        not_after=cluster.at(620 - 1826),
    )
    cluster.namespace("kube-system", 1100, owner="platform-team")
    cluster.namespace("default", 1100)
    cluster.namespace("airflow", 1050)
    cluster.namespace("monitoring", 1000)
    cluster.namespace("ml-platform-system", 620, owner="platform-team")
    cluster.namespace(
        "financial-ml", 510, owner="team-financial-ml", labels={"environment": "production"}
    )
    cluster.namespace(
        "financial-ml-dev", 510, owner="team-financial-ml", labels={"environment": "dev"}
    )
    _kube_system(cluster, cluster_ca)
    _default(cluster)
    _airflow(cluster)
    _monitoring(cluster)
    _ml_platform_system(cluster, platform_ca)
    _financial_ml(cluster, "financial-ml", "prod", cluster_ca, platform_ca)
    _financial_ml(cluster, "financial-ml-dev", "dev", cluster_ca, platform_ca)
    order = {
        kind: index
        for index, kind in enumerate(
            (
                "ServiceAccount",
                "Secret",
                "RoleBinding",
                "ClusterRoleBinding",
                "Namespace",
                "Pod",
                "Deployment",
                "StatefulSet",
                "DaemonSet",
                "Job",
                "CronJob",
            )
        )
    }
    # kubectl prints each resource type in turn, each sorted by namespace and name
    cluster.objects.sort(
        key=lambda obj: (
            order[obj["kind"]],
            obj["metadata"].get("namespace", ""),
            obj["metadata"]["name"],
        )
    )
    return [kubectl_order(obj) for obj in cluster.objects]


# The policies for the scenario; examples/policies.yaml holds this text exactly (a test says
# so). It lives here, not only in examples/, so that an installed credwarden has it for `demo`.
EXAMPLE_POLICIES_YAML = """\
# credwarden example policies for the MLOps cluster in examples/mlops-cluster.yaml.
# Written by `python -m credwarden.scenario --output examples/mlops-cluster.yaml
# --policies-output examples/policies.yaml` from EXAMPLE_POLICIES_YAML in
# credwarden/scenario.py: edit them there.
#
# 1. platform-baseline: the platform team's rules for every namespace, in Audit mode:
#    report, annotate, post events, show what Enforce would do; revoke or rotate nothing.
apiVersion: credwarden.io/v1alpha1
kind: ClusterCredentialPolicy
metadata:
  name: platform-baseline
spec:
  mode: Audit
  limits:
    serviceAccountTokens:
      maxAge: 90d
      warnBefore: 14d
      unusedAfter: 90d
      action: Revoke          # shown as "would revoke (Audit)" until the mode is Enforce
    secrets:
      maxAge: 180d
      warnBefore: 14d
      action: Warn
    certificates:
      warnBefore: 30d
  identity:
    flagPersonNames: true
    forbidClusterAdmin: true
    protectedNamespaces: [kube-system, kube-public, kube-node-lease]
  ownership:
    required: true
    labelKeys: [owner, team]
  enforcement:
    # kube-system is protected: nothing there is revoked unless named. The audit named
    # the personal accounts' tokens; once this policy is switched to Enforce they go.
    protectedTargets:
      - kube-system/john-smith-token
      - kube-system/daniel-wilson-token
---
# 2. registry-credentials: image pull secrets live 90 days at most, everywhere.
apiVersion: credwarden.io/v1alpha1
kind: ClusterCredentialPolicy
metadata:
  name: registry-credentials
spec:
  mode: Audit
  secretTypes: [kubernetes.io/dockerconfigjson]
  serviceAccounts: false
  limits:
    secrets:
      maxAge: 90d
      warnBefore: 14d
      action: Warn
---
# 3. ml-platform-rotation: the financial-ml team enforces its own rules on what the
#    platform package delivered (label app.kubernetes.io/part-of: ml-platform): the
#    consolidated ml-platform Secret is rotated every 90 days (the MLflow password, which
#    credwarden can generate; the S3 keys and the registry token are issued elsewhere), and
#    legacy ServiceAccount tokens older than 30 days are revoked.
apiVersion: credwarden.io/v1alpha1
kind: CredentialPolicy
metadata:
  name: ml-platform-rotation
  namespace: financial-ml
spec:
  mode: Enforce
  selector:
    matchLabels:
      app.kubernetes.io/part-of: ml-platform
  limits:
    serviceAccountTokens:
      maxAge: 30d
      warnBefore: 7d
      action: Revoke
    secrets:
      maxAge: 90d
      warnBefore: 14d
      action: Rotate
  rotation:
    keys: [MLFLOW_TRACKING_PASSWORD]
    generator:
      length: 32
      alphabet: alphanumeric
    gracePeriod: 24h
"""


def example_policies() -> list[Object]:
    """The example policy manifests (EXAMPLE_POLICIES_YAML), parsed."""
    return [doc for doc in yaml.safe_load_all(EXAMPLE_POLICIES_YAML) if isinstance(doc, dict)]


def build_list(now: datetime) -> Object:
    """The objects as the `v1 List` that `kubectl get ... -A -o yaml` writes."""
    return {
        "apiVersion": "v1",
        "items": build_objects(now),
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }


def render(now: datetime) -> str:
    """The scenario as YAML, with a header saying how and for which `now` it was made."""
    stamp = _rfc3339(normalize_now(now))
    header = (
        "# credwarden example scenario: an MLOps cluster as the field brief describes it.\n"
        f"# Generated by `python -m credwarden.scenario --now {stamp}`; do not edit by hand.\n"
        f"# Every timestamp is relative to now = {stamp}: audit it with `--now {stamp}`.\n"
        f"# Shape: `{KUBECTL_COMMAND}`.\n"
        "# All secret values are fake; keys and certificates derive from fixed public bytes.\n"
    )
    return header + yaml.safe_dump(build_list(now), sort_keys=False, default_flow_style=False)


def _parse_now(text: str) -> datetime:
    if text == "now":
        return datetime.now(UTC).replace(microsecond=0)
    parsed = parse_time(text)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}")
    return parsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m credwarden.scenario",
        description="Write the example MLOps cluster snapshot (a kubectl v1 List) as YAML.",
    )
    parser.add_argument(
        "--now",
        type=_parse_now,
        default=REFERENCE_NOW,
        help="RFC 3339 instant the snapshot is taken at, or `now` "
        f"(default: {_rfc3339(REFERENCE_NOW)}, the committed rendering)",
    )
    parser.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    parser.add_argument(
        "--policies-output",
        type=Path,
        metavar="FILE",
        help="also write the example policies (examples/policies.yaml) to FILE",
    )
    args = parser.parse_args(argv)
    text = render(args.now)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    if args.policies_output is not None:
        args.policies_output.write_text(EXAMPLE_POLICIES_YAML, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
