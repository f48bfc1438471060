"""Policy manifests: parsed specs, and one-line errors that name the field."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from conftest import policy_manifest
from credwarden.models import ClusterCredentialPolicySpec, CredentialPolicySpec
from credwarden.policies import policy_from_manifest


def error_of(spec=None, **manifest_overrides) -> str | None:
    manifest = policy_manifest("p", spec if spec is not None else {})
    manifest.update(manifest_overrides)
    return policy_from_manifest(manifest).error


# ---- valid manifests -------------------------------------------------------------------


def test_cluster_policy_with_defaults() -> None:
    facts = policy_from_manifest(policy_manifest("base", {}))
    assert facts.error is None
    assert isinstance(facts.spec, ClusterCredentialPolicySpec)
    assert facts.key == ("ClusterCredentialPolicy", "", "base")
    assert facts.spec.mode == "Audit"
    # unset: governs ServiceAccounts unless secretTypes narrows the policy
    assert facts.spec.serviceAccounts is None
    assert facts.spec.secretTypes == []
    # a kind left out of limits is not checked
    assert facts.spec.limits.secrets is None


def test_namespaced_policy() -> None:
    manifest = policy_manifest("team", {"mode": "Enforce"}, namespace="ml")
    manifest["metadata"].update(uid="u-1", generation=3)
    facts = policy_from_manifest(manifest)
    assert facts.error is None
    assert type(facts.spec) is CredentialPolicySpec
    assert (facts.kind, facts.namespace, facts.name, facts.uid, facts.generation) == (
        "CredentialPolicy",
        "ml",
        "team",
        "u-1",
        3,
    )
    assert facts.display_name == "ml/team"


def test_limit_defaults_when_a_kind_is_named() -> None:
    facts = policy_from_manifest(
        policy_manifest(
            "p", {"limits": {"serviceAccountTokens": {}, "secrets": {}, "certificates": {}}}
        )
    )
    assert facts.spec is not None
    limits = facts.spec.limits
    # warnBefore unset: the engine uses 14d (30d for certificates) or a quarter of maxAge
    assert (limits.serviceAccountTokens.maxAge, limits.serviceAccountTokens.warnBefore) == (
        "90d",
        None,
    )
    assert limits.serviceAccountTokens.action == "Warn"
    assert (limits.secrets.maxAge, limits.secrets.warnBefore) == ("180d", None)
    assert limits.certificates.warnBefore is None and limits.certificates.maxAge is None


def test_full_policy() -> None:
    spec = {
        "mode": "Enforce",
        "selector": {
            "matchLabels": {"a": "b"},
            "matchExpressions": [{"key": "x", "operator": "Exists"}],
        },
        "namespaceSelector": {"matchLabels": {"env": "prod"}},
        "secretTypes": ["Opaque"],
        "serviceAccounts": False,
        "limits": {
            "serviceAccountTokens": {
                "maxAge": "30d",
                "warnBefore": "7d",
                "unusedAfter": "14d",
                "action": "Revoke",
            },
            "secrets": {"maxAge": "2160h", "warnBefore": "2w", "action": "Rotate"},
            "certificates": {"warnBefore": "30d", "maxAge": "397d"},
        },
        "identity": {"personNamePatterns": ["u[0-9]+"], "clusterAdminAllowed": ["argocd/*"]},
        "ownership": {
            "required": True,
            "annotationKeys": ["example.com/owner"],
            "labelKeys": ["squad"],
        },
        "rotation": {
            "keys": ["password"],
            "generator": {"length": 48, "alphabet": "hex"},
            "gracePeriod": "1h",
        },
        "exemptions": {"names": ["kube-system/*"]},
    }
    assert error_of(spec) is None


def test_baseline_is_a_valid_audit_policy() -> None:
    text = resources.files("credwarden").joinpath("data/baseline.yaml").read_text()
    facts = policy_from_manifest(yaml.safe_load(text))
    assert facts.error is None
    assert facts.spec is not None and facts.spec.mode == "Audit"
    limits = facts.spec.limits
    assert limits.serviceAccountTokens and limits.serviceAccountTokens.action == "Warn"
    assert limits.secrets and limits.secrets.action == "Warn"


# ---- errors name the field -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "spec"),
    [
        (
            "spec.limits.serviceAccountTokens.maxAge",
            {"limits": {"serviceAccountTokens": {"maxAge": "3 months"}}},
        ),
        (
            "spec.limits.serviceAccountTokens.warnBefore",
            {"limits": {"serviceAccountTokens": {"warnBefore": "1y"}}},
        ),
        (
            "spec.limits.serviceAccountTokens.unusedAfter",
            {"limits": {"serviceAccountTokens": {"unusedAfter": "30"}}},
        ),
        ("spec.limits.secrets.maxAge", {"limits": {"secrets": {"maxAge": "1.5d"}}}),
        ("spec.limits.secrets.warnBefore", {"limits": {"secrets": {"warnBefore": "-1d"}}}),
        (
            "spec.limits.certificates.warnBefore",
            {"limits": {"certificates": {"warnBefore": "P30D"}}},
        ),
        ("spec.limits.certificates.maxAge", {"limits": {"certificates": {"maxAge": "1h30m"}}}),
        ("spec.rotation.gracePeriod", {"rotation": {"keys": ["k"], "gracePeriod": "24"}}),
        ("spec.limits.secrets.maxAge", {"limits": {"secrets": {"maxAge": 90}}}),
        ("spec.limits.secrets.maxAge", {"limits": {"secrets": {"maxAge": "90d\n"}}}),
    ],
)
def test_bad_duration_names_the_field(path: str, spec) -> None:
    error = error_of(spec)
    assert error is not None
    assert error.startswith(f"{path}: "), error
    assert "\n" not in error


@pytest.mark.parametrize(
    ("path", "spec"),
    [
        ("spec.colour", {"colour": "blue"}),
        ("spec.limits.secrets.maxage", {"limits": {"secrets": {"maxage": "90d"}}}),
        ("spec.limits.tokens", {"limits": {"tokens": {}}}),
        ("spec.identity.flagPersonName", {"identity": {"flagPersonName": True}}),
        ("spec.selector.matchLabel", {"selector": {"matchLabel": {}}}),
    ],
)
def test_unknown_fields_are_rejected_by_name(path: str, spec) -> None:
    assert error_of(spec) == f"{path}: unknown field"


def test_namespace_selector_is_unknown_on_a_namespaced_policy() -> None:
    manifest = policy_manifest("p", {"namespaceSelector": {}}, namespace="ml")
    assert policy_from_manifest(manifest).error == "spec.namespaceSelector: unknown field"


@pytest.mark.parametrize(
    ("path", "spec"),
    [
        ("spec.mode", {"mode": "audit"}),
        (
            "spec.limits.serviceAccountTokens.action",
            {"limits": {"serviceAccountTokens": {"action": "Rotate"}}},
        ),
        ("spec.limits.secrets.action", {"limits": {"secrets": {"action": "Revoke"}}}),
        (
            "spec.selector.matchExpressions.0.operator",
            {"selector": {"matchExpressions": [{"key": "a", "operator": "Equals"}]}},
        ),
        ("spec.rotation.keys", {"rotation": {"keys": []}}),
        (
            "spec.rotation.generator.length",
            {"rotation": {"keys": ["k"], "generator": {"length": 8}}},
        ),
        (
            "spec.rotation.generator.alphabet",
            {"rotation": {"keys": ["k"], "generator": {"alphabet": "emoji"}}},
        ),
        ("spec.serviceAccounts", {"serviceAccounts": "sometimes"}),
        ("spec.secretTypes", {"secretTypes": "Opaque"}),
    ],
)
def test_wrong_values_name_the_field(path: str, spec) -> None:
    error = error_of(spec)
    assert error is not None and error.startswith(f"{path}: "), error


@pytest.mark.parametrize("kind", ["serviceAccountTokens", "secrets"])
@pytest.mark.parametrize(
    ("warn", "max_age"), [("90d", "90d"), ("100d", "90d"), ("2160h", "90d"), ("13w", "90d")]
)
def test_warning_window_must_be_shorter_than_max_age(kind: str, warn: str, max_age: str) -> None:
    error = error_of({"limits": {kind: {"maxAge": max_age, "warnBefore": warn}}})
    assert error == (
        f"spec.limits.{kind}.warnBefore: must be shorter than spec.limits.{kind}.maxAge "
        f"({warn} >= {max_age})"
    )


def test_certificate_warning_window_is_checked_only_with_a_max_age() -> None:
    assert error_of({"limits": {"certificates": {"warnBefore": "400d"}}}) is None
    error = error_of({"limits": {"certificates": {"warnBefore": "30d", "maxAge": "30d"}}})
    assert error and error.startswith("spec.limits.certificates.warnBefore: must be shorter")


def test_warning_window_just_below_max_age_is_fine() -> None:
    assert error_of({"limits": {"secrets": {"maxAge": "90d", "warnBefore": "2159h"}}}) is None


def test_a_short_max_age_needs_no_warn_before_of_its_own() -> None:
    # "prefer short-lived tokens": a 24h limit is valid without a warnBefore
    assert error_of({"limits": {"secrets": {"maxAge": "7d"}}}) is None
    assert error_of({"limits": {"serviceAccountTokens": {"maxAge": "24h"}}}) is None
    # an explicit warnBefore that is not shorter is still rejected, naming the field
    error = error_of({"limits": {"secrets": {"maxAge": "7d", "warnBefore": "7d"}}})
    assert error is not None and error.startswith("spec.limits.secrets.warnBefore:")


def test_rotate_needs_rotation() -> None:
    error = error_of({"limits": {"secrets": {"action": "Rotate"}}})
    assert error == "spec.rotation: required when spec.limits.secrets.action is Rotate"
    assert (
        error_of({"limits": {"secrets": {"action": "Rotate"}}, "rotation": {"keys": ["password"]}})
        is None
    )


def test_invalid_person_name_pattern() -> None:
    error = error_of({"identity": {"personNamePatterns": ["ok", "(unclosed"]}})
    assert error == "spec.identity.personNamePatterns: invalid regular expression '(unclosed'"


def test_several_problems_are_counted() -> None:
    error = error_of(
        {"mode": "Sometimes", "colour": "blue", "limits": {"secrets": {"maxAge": "x"}}}
    )
    assert error is not None and error.endswith("(and 2 more problems)")
    one_more = error_of({"mode": "Sometimes", "colour": "blue"})
    assert one_more is not None and one_more.endswith("(and 1 more problem)")


# ---- the manifest around the spec ------------------------------------------------------


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (
            {"apiVersion": "credwarden.io/v1alpha1", "kind": "Policy", "metadata": {"name": "p"}},
            "kind: expected one of CredentialPolicy, ClusterCredentialPolicy",
        ),
        (
            {
                "apiVersion": "credwarden.io/v1",
                "kind": "ClusterCredentialPolicy",
                "metadata": {"name": "p"},
            },
            "apiVersion: expected credwarden.io/v1alpha1, got 'credwarden.io/v1'",
        ),
        (
            {
                "apiVersion": "credwarden.io/v1alpha1",
                "kind": "ClusterCredentialPolicy",
                "metadata": {},
            },
            "metadata.name: required",
        ),
        (
            {"apiVersion": "credwarden.io/v1alpha1", "kind": "ClusterCredentialPolicy"},
            "metadata.name: required",
        ),
        (
            {
                "apiVersion": "credwarden.io/v1alpha1",
                "kind": "CredentialPolicy",
                "metadata": {"name": "p"},
            },
            "metadata.namespace: required for a CredentialPolicy",
        ),
        (
            {
                "apiVersion": "credwarden.io/v1alpha1",
                "kind": "ClusterCredentialPolicy",
                "metadata": {"name": "p"},
                "spec": [],
            },
            "spec: expected a mapping",
        ),
    ],
)
def test_manifest_errors(manifest, expected: str) -> None:
    assert policy_from_manifest(manifest).error == expected


def test_missing_spec_means_defaults() -> None:
    manifest = policy_manifest("p")
    del manifest["spec"]
    assert policy_from_manifest(manifest).error is None
    manifest["spec"] = None
    assert policy_from_manifest(manifest).error is None


def test_cluster_policy_ignores_a_stray_namespace() -> None:
    manifest = policy_manifest("p")
    manifest["metadata"]["namespace"] = "ml"
    facts = policy_from_manifest(manifest)
    assert facts.namespace == "" and facts.display_name == "p"


@pytest.mark.parametrize(
    "manifest",
    [
        {},
        {"kind": None},
        {"kind": 5, "metadata": "x"},
        {"kind": ["ClusterCredentialPolicy"]},
        {"kind": {"a": 1}},
        {"apiVersion": ["x"], "kind": "ClusterCredentialPolicy", "metadata": {"name": "p"}},
        {
            "apiVersion": "credwarden.io/v1alpha1",
            "kind": "ClusterCredentialPolicy",
            "metadata": {"name": ["p"]},
        },
        {
            "apiVersion": "credwarden.io/v1alpha1",
            "kind": "ClusterCredentialPolicy",
            "metadata": {"name": "p"},
            "spec": {1: 2, "limits": [], "identity": {"personNamePatterns": [None]}},
        },
        {
            "apiVersion": "credwarden.io/v1alpha1",
            "kind": "ClusterCredentialPolicy",
            "metadata": {"name": "p"},
            "spec": {"identity": {"personNamePatterns": ["a{4294967296}"]}},
        },
    ],
)
def test_policy_from_manifest_never_raises(manifest) -> None:
    facts = policy_from_manifest(manifest)
    assert facts.error
    assert "\n" not in facts.error
