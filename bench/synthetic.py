"""Deterministic synthetic cluster snapshots for the engine benchmark.

`generate(n)` returns the Kubernetes object dicts of a cluster holding `n` credentials
(ServiceAccounts + Secrets) spread over 1,000 namespaces, with the workloads, bindings
and policies around them. Everything derives from one seed, so the same `n` and seed give
the same objects (except the bytes of the ECDSA signatures in the certificate pool,
which OpenSSL randomises; notAfter dates, subjects and keys are fixed).

Shares of credentials (by count):

    ServiceAccount ............................ 25 %  (one `default` per namespace)
    kubernetes.io/service-account-token ....... 10 %  (legacy tokens, with ca.crt)
    Opaque .................................... 35 %
    kubernetes.io/dockerconfigjson ............ 10 %
    kubernetes.io/tls ......................... 10 %  (real PEM certificates)
    kubernetes.io/basic-auth ..................  5 %
    kubernetes.io/ssh-auth ....................  2 %
    helm.sh/release.v1 ........................  3 %  (not a credential type: ungoverned)

Around them: Deployments, StatefulSets and CronJobs that read Secrets through env,
envFrom, volumes and imagePullSecrets; Pods controlled by ReplicaSets (and a few bare
ones) running as ServiceAccounts, some mounting legacy tokens; ClusterRoleBindings (a
few to cluster-admin) and RoleBindings; namespaces with team/env labels and owner
annotations; a share of values copied across namespaces; managedFields, kubectl's
last-applied annotation, Helm and Argo CD markers, ownerReferences, and annotations left
by a previous credwarden pass. Creation times are spread over the 3 years before `NOW`.
"""

from __future__ import annotations

import base64
import json
import random
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
HISTORY = timedelta(days=3 * 365)
NAMESPACES = 1000
DEFAULT_SEED = 20261122
CERT_POOL_SIZE = 24

SHARES: tuple[tuple[str, float], ...] = (
    ("ServiceAccount", 0.25),
    ("kubernetes.io/service-account-token", 0.10),
    ("Opaque", 0.35),
    ("kubernetes.io/dockerconfigjson", 0.10),
    ("kubernetes.io/tls", 0.10),
    ("kubernetes.io/basic-auth", 0.05),
    ("kubernetes.io/ssh-auth", 0.02),
    ("helm.sh/release.v1", 0.03),
)
# Share of stored values copied from a cluster-wide pool (same password in several
# namespaces), of pull secrets copied from a few registry accounts, and of TLS Secrets
# holding the same wildcard certificate.
SHARED_VALUE_SHARE = 0.08
SHARED_PULL_SECRET_SHARE = 0.5
SHARED_WILDCARD_SHARE = 0.03
# Workloads per credential.
DEPLOYMENTS_PER_CREDENTIAL = 0.12
STATEFULSETS_PER_CREDENTIAL = 0.01
CRONJOBS_PER_CREDENTIAL = 0.01
PODS_PER_CREDENTIAL = 0.15

SYSTEM_NAMESPACES = (
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "default",
    "cert-manager",
    "ingress-nginx",
    "monitoring",
    "argocd",
    "external-secrets",
    "logging",
    "istio-system",
    "vault",
)
TEAMS = (
    "payments checkout search identity platform data ml billing growth ads risk fraud "
    "catalog orders shipping inventory support mobile web infra security analytics "
    "notifications messaging media partners pricing reporting auth ledger"
).split()
APPS = (
    "api web worker gateway scheduler consumer producer indexer exporter sync cache db etl "
    "frontend backend batch stream router notifier auditor"
).split()
ENVS = ("prod", "staging", "dev", "qa", "sandbox")
ROLES = ("", "", "", "reader", "writer", "deployer", "runner", "sa", "ci")
SECRET_SUFFIXES = {
    "Opaque": ("credentials", "config", "secrets", "api-key", "db", "env", "oauth", "s3"),
    "kubernetes.io/basic-auth": ("basic-auth", "htpasswd", "admin", "smtp"),
    "kubernetes.io/ssh-auth": ("ssh", "git-deploy-key", "sftp"),
    "kubernetes.io/dockerconfigjson": ("regcred", "pull-secret", "registry", "ghcr"),
    "kubernetes.io/tls": ("tls", "cert", "ingress-tls", "mtls"),
}
OPAQUE_KEYS = (
    "password",
    "username",
    "api-key",
    "token",
    "client-secret",
    "DATABASE_URL",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "webhook-url",
    "config.json",
    "port",
)
GIVEN = ("john", "priya", "daniel", "maria", "kevin", "sarah", "alex", "emma", "luis", "nick")
FAMILY = ("smith", "patel", "wilson", "garcia", "nguyen", "jones", "brown", "kim", "ali", "lee")
CONTROL_PLANE = (
    "attachdetach-controller",
    "bootstrap-signer",
    "certificate-controller",
    "clusterrole-aggregation-controller",
    "coredns",
    "cronjob-controller",
    "daemon-set-controller",
    "deployment-controller",
    "disruption-controller",
    "endpoint-controller",
    "expand-controller",
    "generic-garbage-collector",
    "horizontal-pod-autoscaler",
    "job-controller",
    "kube-proxy",
    "metrics-server",
    "namespace-controller",
    "node-controller",
    "persistent-volume-binder",
    "pod-garbage-collector",
    "replicaset-controller",
    "root-ca-cert-publisher",
    "service-account-controller",
    "statefulset-controller",
    "token-cleaner",
    "ttl-controller",
)
MANAGERS = ("kubectl-client-side-apply", "helm", "argocd-controller", "kubectl-edit", "terraform")
REGISTRIES = ("registry.example.com", "ghcr.io", "123456789012.dkr.ecr.eu-west-1.amazonaws.com")


# ---- certificates --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PooledCert:
    cert_pem: bytes  # leaf (and for some, an intermediate after it)
    key_pem: bytes
    not_after: datetime


@lru_cache(maxsize=1)
def cert_pool(size: int = CERT_POOL_SIZE) -> tuple[PooledCert, ...]:
    """EC P-256 certificates whose notAfter ranges from 60 days ago to 2 years ahead."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_key = ec.derive_private_key(0xC0FFEE, ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "credwarden-bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - HISTORY)
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    pool = []
    for index in range(size):
        key = ec.derive_private_key(0x5EED + index, ec.SECP256R1())
        # -60d .. +730d, spread evenly so some are expired and some are expiring
        not_after = NOW + timedelta(days=-60 + (790 * index) // max(1, size - 1), hours=index)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"svc-{index}.example.com")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(1000 + index)
            .not_valid_before(not_after - timedelta(days=90 if index % 3 else 365))
            .not_valid_after(not_after)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(f"svc-{index}.example.com")]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        if index % 2:
            cert_pem += ca_pem  # a chain: leaf then issuer
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        pool.append(PooledCert(cert_pem, key_pem, not_after))
    return tuple(pool)


@lru_cache(maxsize=1)
def cluster_ca_pem() -> bytes:
    """The cluster CA every legacy token Secret carries as ca.crt (not compared)."""
    return cert_pool()[0].cert_pem


# ---- helpers -------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Snapshot:
    """The object dicts of one synthetic cluster, by kind, plus what they were made for."""

    credentials: int
    seed: int
    now: datetime
    namespaces: list[Obj] = field(default_factory=list)
    service_accounts: list[Obj] = field(default_factory=list)
    secrets: list[Obj] = field(default_factory=list)
    workloads: list[Obj] = field(default_factory=list)
    bindings: list[Obj] = field(default_factory=list)
    policies: list[Obj] = field(default_factory=list)

    def objects(self) -> list[Obj]:
        return [
            *self.policies,
            *self.namespaces,
            *self.service_accounts,
            *self.secrets,
            *self.bindings,
            *self.workloads,
        ]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for body in self.objects():
            kind = body["kind"]
            if kind == "Secret":
                kind = f"Secret {body['type']}"
            counts[kind] += 1
        return dict(sorted(counts.items()))


class _Generator:
    def __init__(self, credentials: int, seed: int) -> None:
        self.n = credentials
        self.rng = random.Random(seed)
        self.snapshot = Snapshot(credentials=credentials, seed=seed, now=NOW)
        self.uid_counter = 0
        self.rv_counter = 1000
        self.ns_names: list[str] = []
        self.ns_weights: list[float] = []
        self.ns_env: dict[str, str] = {}
        self.ns_team: dict[str, str] = {}
        self.sa_names: dict[str, set[str]] = defaultdict(set)
        self.sa_by_ns: dict[str, list[Obj]] = defaultdict(list)
        self.secret_names: dict[str, set[str]] = defaultdict(set)
        self.secrets_by_ns: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        self.tokens_by_sa: dict[tuple[str, str], list[str]] = defaultdict(list)
        pool_size = max(20, credentials // 500)
        self.shared_values = [self._token(24) for _ in range(pool_size)]
        self.shared_pull = [self._dockerconfig() for _ in range(30)]
        self.wildcard = cert_pool()[-3]

    # ---- small generators -------------------------------------------------------
    def _uid(self) -> str:
        # in the API server's form (a lowercase UUID, which credwarden keeps packed as an
        # int), unique and deterministic; 0bec marks the benchmark's
        self.uid_counter += 1
        value = self.uid_counter
        return f"{value >> 32:08x}-0bec-4{value >> 16 & 0xFFF:03x}-8000-{value & 0xFFFF:012x}"

    def _rv(self) -> str:
        self.rv_counter += self.rng.randint(1, 50)
        return str(self.rv_counter)

    def _created(self, after: datetime | None = None) -> datetime:
        start = after or NOW - HISTORY
        span = max(1, int((NOW - start).total_seconds()))
        return start + timedelta(seconds=self.rng.randrange(span))

    def _token(self, nbytes: int) -> bytes:
        return base64.urlsafe_b64encode(self.rng.randbytes(nbytes)).rstrip(b"=")

    def _jwt(self, namespace: str, account: str) -> bytes:
        header = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"bench"}').rstrip(b"=")
        claims = json.dumps(
            {
                "iss": "kubernetes/serviceaccount",
                "kubernetes.io/serviceaccount/namespace": namespace,
                "kubernetes.io/serviceaccount/service-account.name": account,
                "sub": f"system:serviceaccount:{namespace}:{account}",
            }
        ).encode()
        payload = base64.urlsafe_b64encode(claims).rstrip(b"=")
        return header + b"." + payload + b"." + self._token(256)

    def _dockerconfig(self) -> bytes:
        registry = self.rng.choice(REGISTRIES)
        user = f"robot-{self.rng.randrange(10**6):06d}"
        password = self._token(32).decode()
        auth = _b64(f"{user}:{password}".encode())
        config = {"auths": {registry: {"username": user, "password": password, "auth": auth}}}
        return json.dumps(config).encode()

    def _namespace(self) -> str:
        return self.rng.choices(self.ns_names, cum_weights=self.ns_weights)[0]

    def _unique(self, used: set[str], base: str) -> str:
        name, suffix = base, 1
        while name in used:
            suffix += 1
            name = f"{base}-{suffix}"
        used.add(name)
        return name

    def _managed_fields(
        self, created: datetime, *, data_keys: list[str] | None, annotations: list[str]
    ) -> list[Obj]:
        manager = self.rng.choice(MANAGERS)
        fields: Obj = {"f:metadata": {"f:annotations": {".": {}}}}
        for key in annotations:
            if not key.startswith("credwarden.io/"):
                fields["f:metadata"]["f:annotations"][f"f:{key}"] = {}
        if data_keys is not None:
            fields["f:data"] = {".": {}, **{f"f:{key}": {} for key in data_keys}}
            fields["f:type"] = {}
        entries = [
            {
                "manager": manager,
                "operation": "Update" if manager != "argocd-controller" else "Apply",
                "apiVersion": "v1",
                "time": _ts(self._created(created)),
                "fieldsType": "FieldsV1",
                "fieldsV1": fields,
            }
        ]
        ours = [key for key in annotations if key.startswith("credwarden.io/")]
        if ours:
            entries.append(
                {
                    "manager": "credwarden",
                    "operation": "Apply",
                    "apiVersion": "v1",
                    "time": _ts(self._created(created)),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:annotations": {f"f:{key}": {} for key in ours}}},
                }
            )
        return entries

    def _metadata(
        self,
        namespace: str,
        name: str,
        created: datetime,
        *,
        labels: dict[str, str],
        annotations: dict[str, str],
        data_keys: list[str] | None = None,
        owner: Obj | None = None,
        managed: bool | None = None,
    ) -> Obj:
        metadata: Obj = {
            "name": name,
            "namespace": namespace,
            "uid": self._uid(),
            "resourceVersion": self._rv(),
            "creationTimestamp": _ts(created),
        }
        if labels:
            metadata["labels"] = labels
        if annotations:
            metadata["annotations"] = annotations
        if owner is not None:
            metadata["ownerReferences"] = [owner]
        if managed if managed is not None else self.rng.random() < 0.35:
            metadata["managedFields"] = self._managed_fields(
                created, data_keys=data_keys, annotations=list(annotations)
            )
        return metadata

    def _common_labels_annotations(
        self, namespace: str, app: str
    ) -> tuple[dict[str, str], dict[str, str], Obj | None]:
        """Labels, annotations and a controller owner as tools leave them."""
        rng = self.rng
        labels: dict[str, str] = {"app.kubernetes.io/name": app}
        annotations: dict[str, str] = {}
        owner: Obj | None = None
        roll = rng.random()
        if roll < 0.25:
            release = f"{app}-{self.ns_env[namespace]}"
            labels["app.kubernetes.io/managed-by"] = "Helm"
            labels["helm.sh/chart"] = f"{app}-{rng.randint(0, 9)}.{rng.randint(0, 30)}.0"
            annotations["meta.helm.sh/release-name"] = release
            annotations["meta.helm.sh/release-namespace"] = namespace
        elif roll < 0.40:
            labels["argocd.argoproj.io/instance"] = f"{namespace}-{app}"
            annotations["argocd.argoproj.io/tracking-id"] = (
                f"{namespace}-{app}:/Secret:{namespace}/{app}"
            )
        elif roll < 0.50:
            kind = rng.choice(("ExternalSecret", "SealedSecret"))
            owner = {
                "apiVersion": "external-secrets.io/v1beta1"
                if kind == "ExternalSecret"
                else "bitnami.com/v1alpha1",
                "kind": kind,
                "name": app,
                "uid": self._uid(),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        if rng.random() < 0.30:
            labels["team"] = self.ns_team[namespace]
        if rng.random() < 0.05:
            annotations["credwarden.io/owner"] = f"{self.ns_team[namespace]}@example.com"
        if rng.random() < 0.01:
            annotations["credwarden.io/exempt"] = "break-glass, reviewed by security"
        if rng.random() < 0.20:
            # left by a previous credwarden pass
            annotations["credwarden.io/status"] = rng.choice(
                ("Compliant", "NonCompliant", "Expiring")
            )
            annotations["credwarden.io/policy"] = "credwarden-baseline"
            annotations["credwarden.io/owner-source"] = "namespace"
            if rng.random() < 0.5:
                annotations["credwarden.io/findings"] = "missing-owner"
        return labels, annotations, owner

    # ---- namespaces ----------------------------------------------------------------
    def namespaces(self) -> None:
        rng = self.rng
        combos = [f"{t}-{a}-{e}" for t in TEAMS for a in APPS for e in ENVS]
        names = list(SYSTEM_NAMESPACES) + rng.sample(combos, NAMESPACES - len(SYSTEM_NAMESPACES))
        weights = [1.0 / (rank + 1) ** 0.6 for rank in range(NAMESPACES)]
        rng.shuffle(weights)
        total = 0.0
        for name, weight in zip(names, weights, strict=True):
            parts = name.split("-")
            system = name in SYSTEM_NAMESPACES
            team = "platform" if system else parts[0]
            env = "prod" if system else parts[-1]
            self.ns_team[name], self.ns_env[name] = team, env
            labels = {"kubernetes.io/metadata.name": name, "team": team, "env": env}
            if rng.random() < 0.3:
                labels["cost-center"] = f"cc-{rng.randrange(100, 999)}"
            if rng.random() < 0.2:
                labels["istio-injection"] = "enabled"
            annotations: dict[str, str] = {}
            if rng.random() < 0.4:
                annotations["credwarden.io/owner"] = f"{team}@example.com"
            if rng.random() < 0.2:
                annotations["scheduler.alpha.kubernetes.io/node-selector"] = f"pool={team}"
            metadata: Obj = {
                "name": name,
                "uid": self._uid(),
                "resourceVersion": self._rv(),
                "creationTimestamp": _ts(NOW - HISTORY + timedelta(days=rng.randrange(60))),
                "labels": labels,
            }
            if annotations:
                metadata["annotations"] = annotations
            self.snapshot.namespaces.append(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": metadata,
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }
            )
            self.ns_names.append(name)
            total += weight
            self.ns_weights.append(total)

    # ---- service accounts ----------------------------------------------------------
    def _service_account(self, namespace: str, name: str) -> Obj:
        rng = self.rng
        created = self._created()
        labels, annotations, _ = self._common_labels_annotations(namespace, name)
        if rng.random() < 0.1:
            annotations["eks.amazonaws.com/role-arn"] = (
                f"arn:aws:iam::123456789012:role/{namespace}-{name}"
            )
        body: Obj = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": self._metadata(
                namespace, name, created, labels=labels, annotations=annotations
            ),
        }
        if rng.random() < 0.05:
            body["automountServiceAccountToken"] = False
        self.sa_by_ns[namespace].append(body)
        self.snapshot.service_accounts.append(body)
        return body

    def service_accounts(self, count: int) -> None:
        rng = self.rng
        for namespace in self.ns_names[: min(count, NAMESPACES)]:
            self.sa_names[namespace].add("default")
            self._service_account(namespace, "default")
        remaining = count - min(count, NAMESPACES)
        system = [name for name in CONTROL_PLANE if name not in self.sa_names["kube-system"]]
        for name in system[:remaining]:
            self.sa_names["kube-system"].add(name)
            self._service_account("kube-system", name)
        remaining -= min(remaining, len(system))
        for _ in range(remaining):
            namespace = self._namespace()
            roll = rng.random()
            if roll < 0.015:
                base = f"{rng.choice(GIVEN)}-{rng.choice(FAMILY)}"  # a person's account
            elif roll < 0.02:
                base = rng.choice(("debug", "admin", "temp", "test"))
            else:
                role = rng.choice(ROLES)
                base = rng.choice(APPS) + (f"-{role}" if role else "")
            self._service_account(namespace, self._unique(self.sa_names[namespace], base))

    # ---- secrets -------------------------------------------------------------------
    def _secret(
        self,
        namespace: str,
        name: str,
        secret_type: str,
        data: dict[str, bytes],
        *,
        created: datetime | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        owner: Obj | None = None,
        last_applied: bool = False,
    ) -> Obj:
        created = created or self._created()
        encoded = {key: _b64(value) for key, value in data.items()}
        labels = labels or {}
        annotations = annotations or {}
        if last_applied:
            applied = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "type": secret_type,
                "data": encoded,
            }
            annotations["kubectl.kubernetes.io/last-applied-configuration"] = (
                json.dumps(applied, separators=(",", ":")) + "\n"
            )
        metadata = self._metadata(
            namespace,
            name,
            created,
            labels=labels,
            annotations=annotations,
            data_keys=list(encoded),
            owner=owner,
        )
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "type": secret_type,
            "data": encoded,
        }
        self.snapshot.secrets.append(body)
        self.secrets_by_ns[namespace][secret_type].append(name)
        return body

    def _value(self, nbytes: int) -> bytes:
        if self.rng.random() < SHARED_VALUE_SHARE:
            return self.rng.choice(self.shared_values)
        return self._token(nbytes)

    def _stored_name(self, namespace: str, secret_type: str) -> tuple[str, str]:
        app = self.rng.choice(APPS)
        suffix = self.rng.choice(SECRET_SUFFIXES[secret_type])
        return app, self._unique(self.secret_names[namespace], f"{app}-{suffix}")

    def tokens(self, count: int) -> None:
        rng = self.rng
        ca = cluster_ca_pem()
        accounts = self.snapshot.service_accounts
        for _ in range(count):
            account = rng.choice(accounts)
            meta = account["metadata"]
            namespace, sa_name = meta["namespace"], meta["name"]
            name = self._unique(
                self.secret_names[namespace], f"{sa_name}-token-{self._token(4).decode()[:5]}"
            )
            labels: dict[str, str] = {}
            roll = rng.random()
            if roll < 0.45:
                last_used = (NOW - timedelta(days=rng.randrange(400))).date()
                labels["kubernetes.io/legacy-token-last-used"] = last_used.isoformat()
            elif roll < 0.50:
                invalid = (NOW - timedelta(days=rng.randrange(30))).date()
                labels["kubernetes.io/legacy-token-invalid-since"] = invalid.isoformat()
            annotations = {
                "kubernetes.io/service-account.name": sa_name,
                "kubernetes.io/service-account.uid": meta["uid"],
            }
            created_at = datetime.strptime(meta["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
            self._secret(
                namespace,
                name,
                "kubernetes.io/service-account-token",
                {
                    "ca.crt": ca,
                    "namespace": namespace.encode(),
                    "token": self._jwt(namespace, sa_name),
                },
                created=self._created(created_at.replace(tzinfo=UTC)),
                labels=labels,
                annotations=annotations,
            )
            self.tokens_by_sa[(namespace, sa_name)].append(name)
            if rng.random() < 0.7:  # listed in the account, as the token controller did
                account.setdefault("secrets", []).append({"name": name})

    def stored(self, secret_type: str, count: int) -> None:
        rng = self.rng
        for _ in range(count):
            namespace = self._namespace()
            if secret_type == "kubernetes.io/tls":
                self._tls(namespace)
                continue
            app, name = self._stored_name(namespace, secret_type)
            labels, annotations, owner = self._common_labels_annotations(namespace, app)
            data: dict[str, bytes]
            if secret_type == "Opaque":
                keys = rng.sample(OPAQUE_KEYS, rng.choice((1, 1, 2, 2, 3, 4, 6)))
                data = {}
                for key in keys:
                    if key == "port":
                        data[key] = b"5432"  # too short to compare
                    elif key == "DATABASE_URL":
                        password = self._value(18).decode()
                        data[key] = (
                            f"postgres://{app}:{password}@db.{namespace}:5432/{app}".encode()
                        )
                    elif key == "config.json":
                        data[key] = json.dumps(
                            {
                                "endpoint": f"https://{app}.example.com",
                                "secret": self._value(30).decode(),
                                "retries": 3,
                                "timeoutSeconds": 30,
                            }
                        ).encode()
                    else:
                        data[key] = self._value(rng.choice((16, 24, 32, 48)))
            elif secret_type == "kubernetes.io/basic-auth":
                data = {"username": f"{app}-svc".encode(), "password": self._value(24)}
            elif secret_type == "kubernetes.io/ssh-auth":
                body = base64.encodebytes(self._token(300))
                data = {
                    "ssh-privatekey": b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
                    + body
                    + b"-----END OPENSSH PRIVATE KEY-----\n"
                }
            else:  # dockerconfigjson
                if rng.random() < SHARED_PULL_SECRET_SHARE:
                    config = rng.choice(self.shared_pull)
                else:
                    config = self._dockerconfig()
                data = {".dockerconfigjson": config}
            self._secret(
                namespace,
                name,
                secret_type,
                data,
                labels=labels,
                annotations=annotations,
                owner=owner,
                last_applied=owner is None and rng.random() < 0.2,
            )

    def _tls(self, namespace: str) -> None:
        rng = self.rng
        app, name = self._stored_name(namespace, "kubernetes.io/tls")
        labels: dict[str, str] = {}
        annotations: dict[str, str] = {}
        owner: Obj | None = None
        if rng.random() < SHARED_WILDCARD_SHARE:
            # the same wildcard certificate copied into many namespaces
            pooled = self.wildcard
            cert, key = pooled.cert_pem, pooled.key_pem
        else:
            pooled = rng.choice(cert_pool())
            # explanatory text before the PEM block (as `openssl x509 -subject` prints it)
            # makes each Secret's value its own while the certificate is shared
            header = f"subject=CN = {name}.{namespace}.svc\n".encode()
            cert, key = header + pooled.cert_pem, header + pooled.key_pem
        if rng.random() < 0.6:
            owner = {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "name": name,
                "uid": self._uid(),
                "controller": True,
                "blockOwnerDeletion": True,
            }
            annotations = {
                "cert-manager.io/alt-names": f"{app}.{namespace}.svc",
                "cert-manager.io/certificate-name": name,
                "cert-manager.io/common-name": f"{app}.{namespace}.svc",
                "cert-manager.io/issuer-kind": "ClusterIssuer",
                "cert-manager.io/issuer-name": "internal-ca",
            }
            labels = {"controller.cert-manager.io/fao": "true"}
        data = {"tls.crt": cert, "tls.key": key}
        if rng.random() < 0.3:
            data["ca.crt"] = cert_pool()[0].cert_pem
        self._secret(
            namespace,
            name,
            "kubernetes.io/tls",
            data,
            created=min(
                pooled.not_after - timedelta(days=90), NOW - timedelta(hours=rng.randrange(1, 900))
            ),
            labels=labels,
            annotations=annotations,
            owner=owner,
        )

    def helm_releases(self, count: int) -> None:
        for _ in range(count):
            namespace = self._namespace()
            app = self.rng.choice(APPS)
            version = self.rng.randint(1, 40)
            name = self._unique(
                self.secret_names[namespace], f"sh.helm.release.v1.{app}.v{version}"
            )
            labels = {"name": app, "owner": "helm", "status": "deployed", "version": str(version)}
            release = base64.b64encode(self.rng.randbytes(1500))
            self._secret(namespace, name, "helm.sh/release.v1", {"release": release}, labels=labels)

    # ---- workloads -----------------------------------------------------------------
    def _pod_spec(self, namespace: str) -> Obj:
        rng = self.rng
        by_type = self.secrets_by_ns[namespace]
        env_secrets = by_type["Opaque"] + by_type["kubernetes.io/basic-auth"]
        env: list[Obj] = [{"name": "LOG_LEVEL", "value": "info"}]
        env_from: list[Obj] = []
        volumes: list[Obj] = []
        mounts: list[Obj] = []
        if env_secrets:
            for index in range(rng.choice((0, 1, 1, 2, 3))):
                env.append(
                    {
                        "name": f"SECRET_{index}",
                        "valueFrom": {
                            "secretKeyRef": {"name": rng.choice(env_secrets), "key": "password"}
                        },
                    }
                )
            if rng.random() < 0.25:
                env_from.append({"secretRef": {"name": rng.choice(env_secrets)}})
            if rng.random() < 0.3:
                secret = rng.choice(env_secrets)
                volumes.append({"name": "creds", "secret": {"secretName": secret}})
                mounts.append({"name": "creds", "mountPath": "/etc/creds", "readOnly": True})
        if by_type["kubernetes.io/tls"] and rng.random() < 0.4:
            secret = rng.choice(by_type["kubernetes.io/tls"])
            volumes.append({"name": "tls", "secret": {"secretName": secret, "defaultMode": 420}})
            mounts.append({"name": "tls", "mountPath": "/etc/tls", "readOnly": True})
        accounts = self.sa_by_ns[namespace]
        account = rng.choice(accounts)["metadata"]["name"] if accounts else "default"
        volumes.append(
            {
                "name": f"kube-api-access-{self._token(4).decode()[:5].lower()}",
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "namespace",
                                        "fieldRef": {
                                            "apiVersion": "v1",
                                            "fieldPath": "metadata.namespace",
                                        },
                                    }
                                ]
                            }
                        },
                    ],
                },
            }
        )
        container: Obj = {
            "name": "main",
            "image": f"registry.example.com/{namespace}/app:1.{rng.randrange(200)}",
            "env": env,
            "volumeMounts": mounts,
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        }
        if env_from:
            container["envFrom"] = env_from
        spec: Obj = {"containers": [container], "volumes": volumes}
        if rng.random() < 0.85:
            spec["serviceAccountName"] = account
        if by_type["kubernetes.io/dockerconfigjson"] and rng.random() < 0.5:
            pull = rng.choice(by_type["kubernetes.io/dockerconfigjson"])
            spec["imagePullSecrets"] = [{"name": pull}]
        if rng.random() < 0.1:
            spec["initContainers"] = [
                {
                    "name": "migrate",
                    "image": "registry.example.com/tools/migrate:3",
                    "envFrom": [{"secretRef": {"name": rng.choice(env_secrets)}}]
                    if env_secrets
                    else [],
                }
            ]
        return spec

    def _workload(self, kind: str, namespace: str, name: str, spec: Obj, owner: Obj | None) -> Obj:
        labels = {"app.kubernetes.io/name": name.split("-")[0], "team": self.ns_team[namespace]}
        metadata = self._metadata(
            namespace,
            name,
            self._created(),
            labels=labels,
            annotations={"deployment.kubernetes.io/revision": "3"} if kind == "Deployment" else {},
            owner=owner,
        )
        api = {"Pod": "v1", "CronJob": "batch/v1"}.get(kind, "apps/v1")
        body = {"apiVersion": api, "kind": kind, "metadata": metadata, "spec": spec}
        self.snapshot.workloads.append(body)
        return body

    def workloads(self) -> None:
        rng = self.rng
        used: dict[str, set[str]] = defaultdict(set)
        deployments: list[Obj] = []
        template_meta = {"labels": {"app": "x"}}
        for kind, share in (
            ("Deployment", DEPLOYMENTS_PER_CREDENTIAL),
            ("StatefulSet", STATEFULSETS_PER_CREDENTIAL),
            ("CronJob", CRONJOBS_PER_CREDENTIAL),
        ):
            for _ in range(max(1, int(self.n * share))):
                namespace = self._namespace()
                name = self._unique(used[namespace], rng.choice(APPS))
                pod = {"metadata": template_meta, "spec": self._pod_spec(namespace)}
                if kind == "CronJob":
                    spec: Obj = {
                        "schedule": "0 * * * *",
                        "jobTemplate": {"spec": {"template": pod}},
                    }
                else:
                    spec = {"replicas": rng.randint(1, 4), "template": pod}
                body = self._workload(kind, namespace, name, spec, None)
                if kind == "Deployment":
                    deployments.append(body)
        pods_used: dict[str, set[str]] = defaultdict(set)
        for _ in range(int(self.n * PODS_PER_CREDENTIAL)):
            if deployments and rng.random() < 0.9:
                parent = rng.choice(deployments)
                namespace = parent["metadata"]["namespace"]
                rs_hash = f"{zlib.crc32(parent['metadata']['uid'].encode()):08x}"[:8] + "d9"
                replicaset = f"{parent['metadata']['name']}-{rs_hash}"
                name = f"{replicaset}-{self._token(4).decode()[:5].lower()}"
                spec = dict(parent["spec"]["template"]["spec"])
                owner: Obj | None = {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": replicaset,
                    "uid": self._uid(),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            else:
                namespace = self._namespace()
                name = f"{rng.choice(APPS)}-debug"
                spec = self._pod_spec(namespace)
                owner = None
            spec.setdefault("serviceAccountName", "default")
            spec["nodeName"] = f"node-{rng.randrange(200):03d}"
            tokens = self.tokens_by_sa.get((namespace, spec["serviceAccountName"]))
            if tokens and rng.random() < 0.5:  # the old way: a legacy token mounted as a file
                spec["volumes"] = [
                    *spec["volumes"],
                    {"name": "legacy-token", "secret": {"secretName": rng.choice(tokens)}},
                ]
            name = self._unique(pods_used[namespace], name)
            self._workload("Pod", namespace, name, spec, owner)

    # ---- bindings ------------------------------------------------------------------
    def bindings(self) -> None:
        rng = self.rng
        accounts = self.snapshot.service_accounts

        def subject(account: Obj) -> Obj:
            meta = account["metadata"]
            return {"kind": "ServiceAccount", "name": meta["name"], "namespace": meta["namespace"]}

        for index in range(max(50, self.n // 200)):
            roll = rng.random()
            if roll < 0.1:
                role = "cluster-admin"
                subjects = [subject(rng.choice(accounts))]
            else:
                role = rng.choice(("view", "edit", "admin", "system:auth-delegator", "ops-read"))
                subjects = [subject(rng.choice(accounts)) for _ in range(rng.randint(1, 3))]
                if rng.random() < 0.3:
                    subjects.append(
                        {
                            "kind": "Group",
                            "name": f"{rng.choice(TEAMS)}-engineers",
                            "apiGroup": "rbac.authorization.k8s.io",
                        }
                    )
            self.snapshot.bindings.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {
                        "name": f"{role.replace(':', '-')}-{index:05d}",
                        "uid": self._uid(),
                        "resourceVersion": self._rv(),
                        "creationTimestamp": _ts(self._created()),
                    },
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": role,
                    },
                    "subjects": subjects,
                }
            )
        for index in range(self.n // 50):
            account = rng.choice(accounts)
            namespace = account["metadata"]["namespace"]
            kind = rng.choice(("Role", "ClusterRole"))
            self.snapshot.bindings.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {
                        "name": f"{account['metadata']['name']}-{index:05d}",
                        "namespace": namespace,
                        "uid": self._uid(),
                        "resourceVersion": self._rv(),
                        "creationTimestamp": _ts(self._created()),
                    },
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": kind,
                        "name": "edit" if kind == "ClusterRole" else "app-role",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": account["metadata"]["name"]}],
                }
            )

    # ---- policies ------------------------------------------------------------------
    def policies(self) -> None:
        baseline = Path(__file__).resolve().parent.parent / "operator/credwarden/data/baseline.yaml"
        self.snapshot.policies.append(yaml.safe_load(baseline.read_text(encoding="utf-8")))
        self.snapshot.policies.append(
            {
                "apiVersion": "credwarden.io/v1alpha1",
                "kind": "ClusterCredentialPolicy",
                "metadata": {"name": "prod-strict"},
                "spec": {
                    "mode": "Enforce",
                    "namespaceSelector": {"matchLabels": {"env": "prod"}},
                    "limits": {
                        "serviceAccountTokens": {"maxAge": "30d", "action": "Revoke"},
                        "secrets": {"maxAge": "90d", "warnBefore": "14d"},
                        "certificates": {"warnBefore": "21d", "maxAge": "397d"},
                    },
                    "exemptions": {"names": ["kube-system/*", "*-legacy"]},
                },
            }
        )
        for index, namespace in enumerate(self.rng.sample(self.ns_names[12:], 10)):
            spec: Obj = {
                "mode": "Audit",
                "limits": {"secrets": {"maxAge": "60d", "warnBefore": "7d"}},
                "ownership": {"required": True, "annotationKeys": ["example.com/owner"]},
            }
            if index % 2:
                spec["selector"] = {"matchExpressions": [{"key": "team", "operator": "Exists"}]}
            if index % 3 == 0:
                spec["secretTypes"] = ["Opaque", "kubernetes.io/basic-auth"]
            self.snapshot.policies.append(
                {
                    "apiVersion": "credwarden.io/v1alpha1",
                    "kind": "CredentialPolicy",
                    "metadata": {"name": f"team-policy-{index}", "namespace": namespace},
                    "spec": spec,
                }
            )

    def run(self) -> Snapshot:
        counts = {kind: int(self.n * share) for kind, share in SHARES}
        counts["Opaque"] += self.n - sum(counts.values())  # rounding
        self.namespaces()
        self.policies()
        self.service_accounts(counts["ServiceAccount"])
        self.tokens(counts["kubernetes.io/service-account-token"])
        for secret_type in (
            "Opaque",
            "kubernetes.io/dockerconfigjson",
            "kubernetes.io/tls",
            "kubernetes.io/basic-auth",
            "kubernetes.io/ssh-auth",
        ):
            self.stored(secret_type, counts[secret_type])
        self.helm_releases(counts["helm.sh/release.v1"])
        self.workloads()
        self.bindings()
        return self.snapshot


def as_received(bodies: list[Obj]) -> None:
    """Replace each object by its JSON round trip, in place.

    The operator gets every object as its own JSON document from a watch, so no string
    (label key, namespace name, ...) is shared between two objects, nor with a
    constant in the code. The generator shares them freely; this undoes that, so the
    memory the facts retain is what it would be in the operator.
    """
    for index, body in enumerate(bodies):
        bodies[index] = json.loads(json.dumps(body, separators=(",", ":")))


def generate(credentials: int, seed: int = DEFAULT_SEED, *, wire: bool = True) -> Snapshot:
    """A synthetic cluster with exactly `credentials` ServiceAccounts + Secrets.

    wire: each object as decoded from its own JSON document (see `as_received`);
    False keeps the generator's shared strings and sub-objects (faster to generate).
    """
    if credentials < NAMESPACES:
        raise ValueError(f"need at least {NAMESPACES} credentials (one per namespace)")
    snapshot = _Generator(credentials, seed).run()
    if wire:
        for bodies in (
            snapshot.policies,
            snapshot.namespaces,
            snapshot.service_accounts,
            snapshot.secrets,
            snapshot.bindings,
            snapshot.workloads,
        ):
            as_received(bodies)
    return snapshot


if __name__ == "__main__":
    import sys
    import time

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    started = time.perf_counter()
    snapshot = generate(size)
    elapsed = time.perf_counter() - started
    print(json.dumps(snapshot.counts(), indent=2))
    print(f"generated {len(snapshot.objects())} objects in {elapsed:.2f}s", file=sys.stderr)
