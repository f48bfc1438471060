"""The Helm chart in charts/credwarden: lint --strict, render, and the same objects as deploy/.

Helm runs through its own Go library, loaded from Python 3.12 (the bindings need it), in
a separate venv, `.venv-helm/` (git-ignored), which this module creates on first use:

- PyPI helm-sdkpy: `helm lint` of the chart as shipped. Its binding takes no values and
  no strict flag, so strictness is applied here the way `helm lint --strict` applies it:
  any message of severity WARNING or above fails.
- PyPI helm-python-sdk: `helm lint --strict` with values (its `strict=True` also renders
  templates with missingkey=error), and `helm template` (an offline render), which
  helm-sdkpy does not offer.

The rendered objects are then checked like deploy/'s (tests/test_deploy.py): Kubernetes
schema, exact RBAC per mode, and equality with the kustomize overlays for equal settings.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_deploy import (
    EXPECTED_PERMISSIONS,
    FORBIDDEN_VERBS,
    KUBERNETES_VERSIONS,
    NAMESPACE,
    SERVICE_ACCOUNT,
    STRUCTURAL_KINDS,
    by_key,
    check_prometheus_rule,
    check_service_monitor,
    effective_permissions,
    key,
    load_generator,
    one,
    rbac_rule_comment_problems,
    rbac_rules,
    render_overlay,
)

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "credwarden"
HELM_VENV = REPO / ".venv-helm"
HELM_REQUIREMENTS = ("helm-sdkpy==0.1.32", "helm-python-sdk==0.2.2")
RELEASE = "credwarden"  # with this release name the chart's names are deploy/'s names

# The install and first import take a while on a new machine.
pytestmark = pytest.mark.timeout(900)

Obj = dict[str, Any]

MONITORING_ON = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}
CASES: dict[str, Obj] = {
    "default": {},
    # the settings of deploy/overlays/audit and deploy/overlays/enforce
    "audit": MONITORING_ON,
    "enforce": {"mode": "enforce", **MONITORING_ON},
    "scoped": {
        "namespaces": ["team-*", "payments"],
        "perCredentialMetrics": False,
        "logFormat": "console",
        "apiClient": {"qps": 5, "burst": 10},
        "image": {"repository": "registry.example/credwarden", "digest": "sha256:" + "ab" * 32},
        "networkPolicy": {
            "metricsFrom": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon"}}}
            ],
            "apiServer": {"ports": [6443], "cidrs": ["172.18.0.0/16"]},
        },
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops"}],
    },
    "minimal": {
        "replicas": 0,
        "networkPolicy": {"enabled": False},
        "dashboard": {"enabled": False},
    },
}
# Values the schema must refuse.
BAD_VALUES: dict[str, Obj] = {
    "unknown top-level key": {"bogus": True},
    "unknown nested key": {"serviceMonitor": {"enabled": True, "port": 1}},
    "four replicas": {"replicas": 4},
    "mode in CRD spelling": {"mode": "Enforce"},
    "bad log format": {"logFormat": "text"},
    "bad digest": {"image": {"digest": "latest"}},
    "bad pull policy": {"image": {"pullPolicy": "Sometimes"}},
}

# Runs inside .venv-helm (Python 3.12): reads a request on stdin, prints JSON.
HELPER = r"""
import asyncio, json, sys
import helm_sdkpy
from helm_python import chart as hc

request = json.load(sys.stdin)
path = request["chart"]
out = {"lint": {}, "render": {}, "reject": {}}
config = helm_sdkpy.Configuration(namespace=request["namespace"])
report = asyncio.run(helm_sdkpy.Lint(config).run(path))
out["sdkpy_lint"] = {
    "charts": report.get("TotalChartsLinted"),
    "messages": [
        {"severity": m.get("Severity"), "path": m.get("Path"), "error": str(m.get("Err"))}
        for m in report.get("Messages") or []
    ],
    "errors": [str(e) for e in report.get("Errors") or []],
}
loaded = hc.Chart.load(path)
out["crds"] = [c for c in loaded.crds]
for name, values in request["cases"].items():
    out["lint"][name] = hc.lint(path, values, strict=True, namespace=request["namespace"])
    out["render"][name] = loaded.render(
        values, name=request["release"], namespace=request["namespace"], is_install=True
    )
for name, values in request["bad"].items():
    try:
        loaded.render(values, name=request["release"], namespace=request["namespace"])
        out["reject"][name] = None
    except Exception as error:
        out["reject"][name] = f"{type(error).__name__}: {error}"
json.dump(out, sys.stdout)
"""


def _python312() -> str | None:
    """A working Python 3.12, found without relying on pyenv's shims."""
    candidates = [os.environ.get("CREDWARDEN_PYTHON312", "")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted(pyenv_root.glob("versions/3.12*/bin/python3.12"))][::-1]
    candidates += [shutil.which("python3.12") or "", "/usr/bin/python3.12"]
    candidates += ["/usr/local/bin/python3.12"]
    for candidate in filter(None, candidates):
        try:
            result = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if result.stdout.strip() == "True":
            return candidate
    return None


def ensure_helm_venv() -> Path:
    """.venv-helm/bin/python with the pinned Helm bindings, created or repaired if needed."""
    python = HELM_VENV / "bin" / "python"
    stamp = HELM_VENV / ".requirements"
    wanted = "\n".join(HELM_REQUIREMENTS) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    base = _python312()
    if base is None:
        pytest.fail(
            "no Python 3.12 found (helm-sdkpy needs it): install one, e.g. "
            "`pyenv install 3.12`, or set CREDWARDEN_PYTHON312 to its path"
        )
    subprocess.run([base, "-m", "venv", "--clear", str(HELM_VENV)], check=True, timeout=300)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *HELM_REQUIREMENTS],
        check=True,
        timeout=840,
    )
    stamp.write_text(wanted)
    return python


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Obj:
    """Lint reports and renders of every case, from one run of Helm's library."""
    python = ensure_helm_venv()
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": os.devnull,  # nothing here talks to a cluster
    }
    request = {
        "chart": str(CHART),
        "namespace": NAMESPACE,
        "release": RELEASE,
        "cases": CASES,
        "bad": BAD_VALUES,
    }
    result = subprocess.run(
        [str(python), "-c", HELPER],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert result.returncode == 0, f"Helm helper failed:\n{result.stderr[-4000:]}"
    output: Obj = json.loads(result.stdout)
    return output


def rendered(helm: Obj, case: str) -> list[Obj]:
    """The objects of a case's render (fresh copies), NOTES.txt left out."""
    objects = []
    for template, text in sorted(helm["render"][case].items()):
        if template.endswith(".txt"):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return copy.deepcopy(objects)


def _without_labels(obj: Obj) -> Obj:
    obj = copy.deepcopy(obj)
    obj["metadata"].pop("labels", None)
    return obj


def _walk(node: Obj, path: str = "$") -> Iterator[tuple[str, Obj]]:
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from _walk(child, f"{path}.{name}")
    for name, child in (node.get("definitions") or {}).items():
        yield from _walk(child, f"#/definitions/{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


# --- files ----------------------------------------------------------------------------------


def test_chart_crds_are_identical_to_the_top_level_crds() -> None:
    top = {p.name: p.read_bytes() for p in sorted((REPO / "crds").glob("*.yaml"))}
    chart = {p.name: p.read_bytes() for p in sorted((CHART / "crds").iterdir())}
    assert chart == top, "charts/credwarden/crds/ is not crds/: run `python deploy/generate.py`"


def test_chart_files_are_the_generated_copies() -> None:
    stale = [name for name in load_generator().stale_files() if name.startswith("charts/")]
    assert not stale, f"stale {stale}: run `python deploy/generate.py`"


def test_values_schema_forbids_unknown_keys_everywhere() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    objects = 0
    for path, node in _walk(schema):
        if node.get("type") != "object" and "properties" not in node:
            continue
        objects += 1
        extra = node.get("additionalProperties")
        if "properties" in node:
            assert extra is False, f"{path}: additionalProperties must be false"
        else:
            # a free-form map (labels, annotations, nodeSelector): string values only
            assert extra == {"type": "string"}, f"{path}: a map must say what its values are"
    assert objects > 10


def test_values_yaml_follows_its_schema_and_documents_every_key() -> None:
    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(values)
    assert set(values) == set(schema["properties"]), "values.yaml and the schema list the same keys"
    assert values["mode"] == "audit", "Audit mode by default"
    assert values["replicas"] == 1


# --- helm lint --strict ----------------------------------------------------------------------


def test_helm_lint_strict_helm_sdkpy(helm: Obj) -> None:
    report = helm["sdkpy_lint"]
    assert report["charts"] == 1
    assert not report["errors"], report
    # --strict: a WARNING (2) or an ERROR (3) fails; INFO (1, e.g. "icon is recommended")
    # does not
    failing = [m for m in report["messages"] if m["severity"] >= 2]
    assert not failing, failing


@pytest.mark.parametrize("case", sorted(CASES))
def test_helm_lint_strict_with_values(helm: Obj, case: str) -> None:
    report = helm["lint"][case]
    assert report["total_charts_linted"] == 1
    assert not report["errors"], report["errors"]
    failing = [m for m in report["messages"] if m["severity"] >= 2]
    assert not failing, failing


@pytest.mark.parametrize("bad", sorted(BAD_VALUES))
def test_schema_rejects_bad_values(helm: Obj, bad: str) -> None:
    assert helm["reject"][bad] is not None, f"values accepted: {BAD_VALUES[bad]}"
    assert "schema" in helm["reject"][bad].lower(), helm["reject"][bad]


# --- the rendered objects --------------------------------------------------------------------


@pytest.mark.parametrize("overlay", ["audit", "enforce"])
def test_chart_renders_the_objects_of_the_kustomize_overlay(helm: Obj, overlay: str) -> None:
    """Same kinds, names, RBAC rules, containers, specs: everything but labels."""
    chart = by_key(_without_labels(o) for o in rendered(helm, overlay))
    kustomize = by_key(
        _without_labels(o)
        for o in render_overlay(overlay)
        # Helm installs the CRDs from crds/ and the namespace with --create-namespace
        if o["kind"] not in ("Namespace", "CustomResourceDefinition")
    )
    assert sorted(chart) == sorted(kustomize)
    for name, obj in kustomize.items():
        assert chart[name] == obj, f"{overlay}: the chart's {name} differs from deploy/'s"


def test_chart_crds_load_as_the_top_level_crds(helm: Obj) -> None:
    expected = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    names = sorted(Path(crd["name"]).name for crd in helm["crds"])
    assert names == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendered_object_is_valid_for_kubernetes(helm: Obj, case: str) -> None:
    import kubernetes_validate

    objects = rendered(helm, case)
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                assert obj["kind"] in STRUCTURAL_KINDS, obj["kind"]
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{case}: {key(obj)} is invalid for Kubernetes {version}: {error}")
    services = [o for o in objects if o["kind"] == "Service"]
    for obj in objects:
        if obj["kind"] == "ServiceMonitor":
            check_service_monitor(obj, services)
        if obj["kind"] == "PrometheusRule":
            check_prometheus_rule(obj)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rbac_is_exactly_what_the_mode_needs(helm: Obj, case: str) -> None:
    objects = rendered(helm, case)
    mode = {**{"mode": "audit"}, **CASES[case]}["mode"]
    granted = effective_permissions(objects, NAMESPACE, SERVICE_ACCOUNT)
    assert granted == EXPECTED_PERMISSIONS[mode]
    for role, rule in rbac_rules(objects):
        assert not FORBIDDEN_VERBS & set(rule["verbs"]), f"{role}: {rule}"
        assert not any("*" in v for f in ("apiGroups", "resources") for v in rule[f]), rule


def test_every_chart_rbac_rule_is_commented() -> None:
    problems = rbac_rule_comment_problems(CHART / "templates" / "rbac.yaml")
    assert not problems, "\n".join(problems)


def test_toggles(helm: Obj) -> None:
    kinds = {case: {o["kind"] for o in rendered(helm, case)} for case in CASES}
    assert "ServiceMonitor" not in kinds["default"], "off by default: needs Prometheus Operator"
    assert "PrometheusRule" not in kinds["default"]
    assert "ConfigMap" in kinds["default"], "the dashboard ConfigMap is on by default"
    assert {"ServiceMonitor", "PrometheusRule", "ConfigMap"} <= kinds["audit"]
    assert not {"ConfigMap", "NetworkPolicy"} & kinds["minimal"]
    dashboard = one(rendered(helm, "default"), "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_values_reach_the_operator(helm: Obj) -> None:
    objects = rendered(helm, "scoped")
    deployment = one(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/credwarden@sha256:" + "ab" * 32
    assert container["args"] == [
        "run",
        "--metrics-port=9402",
        "--health-port=8080",
        "--qps=5",
        "--burst=10",
        "--log-format=console",
        "--namespace=team-*",
        "--namespace=payments",
        "--no-per-credential-metrics",
    ]
    policy = one(objects, "NetworkPolicy")["spec"]
    assert policy["ingress"][0]["from"] == CASES["scoped"]["networkPolicy"]["metricsFrom"]
    assert policy["egress"] == [
        {
            "ports": [{"port": 6443, "protocol": "TCP"}],
            "to": [{"ipBlock": {"cidr": "172.18.0.0/16"}}],
        }
    ]
    default = one(rendered(helm, "default"), "Deployment")
    image = default["spec"]["template"]["spec"]["containers"][0]["image"]
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert image == f"ghcr.io/credwarden/credwarden:{app_version}"
    assert one(rendered(helm, "minimal"), "Deployment")["spec"]["replicas"] == 0
