"""Which policies govern a credential, and how several of them combine."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import (
    NOW,
    ago,
    build_inventory,
    cluster_policy,
    evaluate_objects,
    namespace,
    opaque_secret,
    pod,
    policy,
    policy_manifest,
    record_of,
    rules_of,
    secret,
    service_account,
    tls_secret,
    token_secret,
)
from credwarden.engine import evaluate
from credwarden.policies import policy_from_manifest

OWNED = {"credwarden.io/owner": "team"}
SA = "ServiceAccount"


def secrets_limit(max_age: str, warn: str = "1d", action: str = "Warn", **spec):
    limits = {"secrets": {"maxAge": max_age, "warnBefore": warn, "action": action}}
    if action == "Rotate":
        spec.setdefault("rotation", {"keys": ["password"]})
    return {"limits": limits, **spec}


def token_limit(max_age: str, action: str = "Warn", **spec):
    return {
        "limits": {
            "serviceAccountTokens": {"maxAge": max_age, "warnBefore": "1d", "action": action}
        },
        **spec,
    }


# ---- strictest limit wins --------------------------------------------------------------


def test_strictest_limit_wins_and_every_governing_policy_is_named() -> None:
    body = opaque_secret("db", "team", created=ago(40), annotations=OWNED)
    policies = [
        policy("lax", secrets_limit("180d")),
        policy("strict", secrets_limit("30d"), namespace="team"),
        policy("middle", secrets_limit("90d")),
        policy("elsewhere", secrets_limit("2d"), namespace="other"),
    ]
    record = record_of(evaluate_objects([body], policies), "db", "team")
    assert record.expires_at == NOW - timedelta(days=40) + timedelta(days=30)
    assert record.policy == "team/strict"
    assert set(record.policies) == {"lax", "team/strict", "middle"}
    assert rules_of(record) == {"credential-expired"}
    assert "(policy team/strict)" in record.findings[0].message
    assert record.to_json()["policies"] == list(record.policies)


def test_strictest_limit_wins_regardless_of_policy_order_or_names() -> None:
    body = opaque_secret("db", created=ago(40), annotations=OWNED)
    for strict_name, lax_name in (("a", "z"), ("z", "a")):
        policies = [
            policy(lax_name, secrets_limit("180d")),
            policy(strict_name, secrets_limit("30d")),
        ]
        for ordered in (policies, policies[::-1]):
            record = record_of(evaluate_objects([body], ordered), "db")
            assert record.policy == strict_name
            assert record.status == "NonCompliant"


def test_warning_window_is_the_widest_any_governing_policy_asks_for() -> None:
    body = opaque_secret("db", created=ago(75), annotations=OWNED)
    policies = [
        cluster_policy("deadline", **secrets_limit("90d", warn="1d")),
        cluster_policy("early-warning", **secrets_limit("180d", warn="30d")),
    ]
    record = record_of(evaluate_objects([body], policies), "db")
    assert record.policy == "deadline"
    assert record.expires_at == NOW + timedelta(days=15)
    assert rules_of(record) == {"credential-expiring"}
    assert record.status == "Expiring"


def test_token_limits_combine_the_same_way() -> None:
    objects = [
        token_secret("t", service_account="ci", created=ago(40), annotations=OWNED),
        pod("p", volumes=["t"]),
    ]
    policies = [
        cluster_policy("a", **token_limit("365d", "Revoke")),
        cluster_policy("b", **token_limit("30d")),
    ]
    record = record_of(evaluate_objects(objects, policies), "t")
    assert record.policy == "b"
    assert rules_of(record) == {"long-lived-token"}


# ---- ties ------------------------------------------------------------------------------


def _decider(objects, policies, name="t", ns="default") -> str | None:
    return record_of(evaluate_objects(objects, policies), name, ns).policy


TOKEN = [
    token_secret("t", service_account="ci", created=ago(10), annotations=OWNED),
    pod("p", volumes=["t"]),
]
STORED = [opaque_secret("t", created=ago(10), annotations=OWNED)]


def test_tie_goes_to_the_stronger_action_first() -> None:
    # Revoke beats Warn even against an Enforce, namespaced, alphabetically-first Warn
    policies = [
        policy("a-warn", {"mode": "Enforce", **token_limit("90d")}, namespace="default"),
        policy("z-revoke", token_limit("90d", "Revoke")),
    ]
    assert _decider(TOKEN, policies) == "z-revoke"
    policies = [
        policy("a-warn", {"mode": "Enforce", **secrets_limit("90d")}, namespace="default"),
        policy("z-rotate", secrets_limit("90d", action="Rotate")),
    ]
    assert _decider(STORED, policies) == "z-rotate"


def test_tie_then_goes_to_enforce_over_audit() -> None:
    policies = [
        policy("a-audit", {"mode": "Audit", **secrets_limit("90d")}, namespace="default"),
        policy("z-enforce", {"mode": "Enforce", **secrets_limit("90d")}),
    ]
    assert _decider(STORED, policies) == "z-enforce"


def test_tie_then_goes_to_the_namespaced_policy() -> None:
    policies = [
        policy("a-cluster", secrets_limit("90d")),
        policy("z-local", secrets_limit("90d"), namespace="default"),
    ]
    assert _decider(STORED, policies) == "default/z-local"


def test_tie_then_goes_to_the_name() -> None:
    policies = [policy("beta", secrets_limit("90d")), policy("alpha", secrets_limit("90d"))]
    assert _decider(STORED, policies) == "alpha"
    assert _decider(STORED, policies[::-1]) == "alpha"


def test_equal_deadlines_in_different_units_tie() -> None:
    policies = [
        policy("b-hours", secrets_limit("2160h", action="Rotate")),
        policy("a-days", secrets_limit("90d")),
    ]
    assert _decider(STORED, policies) == "b-hours"


def test_record_mode_is_the_mode_of_the_deciding_policy() -> None:
    policies = [
        policy("strict-audit", {"mode": "Audit", **secrets_limit("30d")}),
        policy("lax-enforce", {"mode": "Enforce", **secrets_limit("90d")}),
    ]
    record = record_of(evaluate_objects(STORED, policies), "t")
    assert (record.policy, record.mode) == ("strict-audit", "Audit")


# ---- scope -----------------------------------------------------------------------------


def test_namespaced_policy_governs_only_its_namespace() -> None:
    objects = [
        opaque_secret("s", "a", annotations=OWNED),
        opaque_secret("s", "b", annotations=OWNED),
    ]
    evaluation = evaluate_objects(objects, [policy("p", secrets_limit("30d"), namespace="a")])
    assert record_of(evaluation, "s", "a").policies == ("a/p",)
    assert record_of(evaluation, "s", "b").status == "Ungoverned"
    assert record_of(evaluation, "s", "b").policies == ()


def test_namespace_selector_on_labels() -> None:
    objects = [
        namespace("prod-a", labels={"env": "prod"}),
        namespace("dev-a", labels={"env": "dev"}),
        opaque_secret("s", "prod-a", annotations=OWNED),
        opaque_secret("s", "dev-a", annotations=OWNED),
        opaque_secret("s", "unknown-ns", annotations=OWNED),
    ]
    selected = cluster_policy(
        "prod", namespaceSelector={"matchLabels": {"env": "prod"}}, **secrets_limit("30d")
    )
    evaluation = evaluate_objects(objects, [selected])
    assert record_of(evaluation, "s", "prod-a").policies == ("prod",)
    assert record_of(evaluation, "s", "dev-a").policies == ()
    assert record_of(evaluation, "s", "unknown-ns").policies == ()


def test_namespace_selector_on_metadata_name_works_without_the_namespace_object() -> None:
    objects = [
        opaque_secret("s", "kube-system", annotations=OWNED),
        opaque_secret("s", "other", annotations=OWNED),
    ]
    selected = cluster_policy(
        "system",
        namespaceSelector={
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["kube-system"]}
            ]
        },
        **secrets_limit("30d"),
    )
    evaluation = evaluate_objects(objects, [selected])
    assert record_of(evaluation, "s", "kube-system").policies == ("system",)
    assert record_of(evaluation, "s", "other").policies == ()


@pytest.mark.parametrize(
    ("expression", "governed"),
    [
        ({"key": "env", "operator": "In", "values": ["prod", "stage"]}, {"prod-a"}),
        ({"key": "env", "operator": "NotIn", "values": ["prod"]}, {"dev-a", "bare"}),
        ({"key": "env", "operator": "Exists"}, {"prod-a", "dev-a"}),
        ({"key": "env", "operator": "DoesNotExist"}, {"bare"}),
    ],
)
def test_namespace_selector_match_expressions(expression, governed) -> None:
    objects = [
        namespace("prod-a", labels={"env": "prod"}),
        namespace("dev-a", labels={"env": "dev"}),
        namespace("bare"),
        *(opaque_secret("s", ns, annotations=OWNED) for ns in ("prod-a", "dev-a", "bare")),
    ]
    selected = cluster_policy("p", namespaceSelector={"matchExpressions": [expression]})
    evaluation = evaluate_objects(objects, [selected])
    assert {r.key.namespace for r in evaluation.records if r.policies} == governed


@pytest.mark.parametrize(
    ("selector", "governed"),
    [
        ({"matchLabels": {"tier": "db"}}, {"db"}),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db", "cache"]}]},
            {"db", "cache"},
        ),
        (
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
            {"cache", "plain"},
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"db", "cache"}),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"plain"}),
        (
            {
                "matchLabels": {"tier": "db"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["cache"]}],
            },
            set(),
        ),
        ({}, {"db", "cache", "plain"}),
    ],
)
def test_object_selector(selector, governed) -> None:
    objects = [
        opaque_secret("db", labels={"tier": "db"}, annotations=OWNED),
        opaque_secret("cache", labels={"tier": "cache"}, annotations=OWNED),
        opaque_secret("plain", annotations=OWNED),
    ]
    evaluation = evaluate_objects(objects, [cluster_policy("p", selector=selector)])
    assert {r.key.name for r in evaluation.records if r.policies} == governed


@pytest.mark.parametrize(
    ("operator", "governed"),
    [("In", {"empty"}), ("NotIn", {"set", "absent"})],
)
def test_selector_in_an_empty_value_needs_the_label_present(operator, governed) -> None:
    # Kubernetes: `In` matches only objects that have the key; `NotIn` also matches
    # objects without it. An absent label is not the empty value.
    objects = [
        opaque_secret("empty", labels={"tier": ""}, annotations=OWNED),
        opaque_secret("set", labels={"tier": "db"}, annotations=OWNED),
        opaque_secret("absent", annotations=OWNED),
    ]
    selector = {"matchExpressions": [{"key": "tier", "operator": operator, "values": [""]}]}
    evaluation = evaluate_objects(objects, [cluster_policy("p", selector=selector)])
    assert {r.key.name for r in evaluation.records if r.policies} == governed


def test_secret_types() -> None:
    objects = [
        opaque_secret("opaque", annotations=OWNED),
        tls_secret("tls", annotations=OWNED),
        secret("release", type="helm.sh/release.v1", data={"release": "x" * 20}, annotations=OWNED),
        service_account("app", annotations=OWNED),
    ]
    default = evaluate_objects(objects, [cluster_policy("p")])
    assert {r.key.name for r in default.records if r.policies} == {"opaque", "tls", "app"}
    tls_only = evaluate_objects(objects, [cluster_policy("p", secretTypes=["kubernetes.io/tls"])])
    governed = {r.key.name for r in tls_only.records if r.policies}
    assert {"tls"} <= governed and "opaque" not in governed and "release" not in governed
    helm = evaluate_objects(objects, [cluster_policy("p", secretTypes=["helm.sh/release.v1"])])
    assert "release" in {r.key.name for r in helm.records if r.policies}


def test_service_accounts_switch() -> None:
    objects = [service_account("app"), opaque_secret("s")]
    evaluation = evaluate_objects(objects, [cluster_policy("p", serviceAccounts=False)])
    assert record_of(evaluation, "app", kind=SA).status == "Ungoverned"
    assert record_of(evaluation, "s").policies == ("p",)


def test_invalid_policy_governs_nothing_and_is_reported() -> None:
    bad = policy_from_manifest(
        policy_manifest("broken", {"limits": {"secrets": {"maxAge": "soon"}}})
    )
    assert bad.error
    inventory = build_inventory([opaque_secret("s")], [bad, cluster_policy("good")])
    evaluation = evaluate(inventory, NOW)
    assert record_of(evaluation, "s").policies == ("good",)
    assert evaluation.policy_errors == {"ClusterCredentialPolicy broken": bad.error}


# ---- exemptions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "exempted"),
    [
        (["db"], {("a", "db"), ("b", "db")}),
        (["a/db"], {("a", "db")}),
        (["a/*"], {("a", "db"), ("a", "cache")}),
        (["*/cache", "b/d?"], {("a", "cache"), ("b", "cache"), ("b", "db")}),
        (["DB"], set()),
    ],
)
def test_exemptions_by_name_list(names, exempted) -> None:
    objects = [
        opaque_secret(n, ns, created=ago(400), annotations=OWNED)
        for ns in "ab"
        for n in ("db", "cache")
    ]
    evaluation = evaluate_objects(
        objects, [cluster_policy("p", exemptions={"names": names}, **secrets_limit("30d"))]
    )
    ungoverned = {(r.key.namespace, r.key.name) for r in evaluation.records if not r.policies}
    assert ungoverned == exempted
    for record in evaluation.records:
        assert record.status == (
            "Ungoverned" if (record.key.namespace, record.key.name) in exempted else "NonCompliant"
        )


def test_exemption_of_one_policy_leaves_the_others() -> None:
    objects = [opaque_secret("db", created=ago(40), annotations=OWNED)]
    policies = [
        cluster_policy("strict", exemptions={"names": ["db"]}, **secrets_limit("30d")),
        cluster_policy("lax", **secrets_limit("90d")),
    ]
    record = record_of(evaluate_objects(objects, policies), "db")
    assert record.policies == ("lax",)
    assert record.status == "Compliant"


def test_exempt_annotation_exempts_from_every_policy() -> None:
    objects = [
        opaque_secret(
            "db",
            created=ago(400),
            annotations={"credwarden.io/exempt": "vendor-managed, ticket SEC-12"},
        ),
        service_account(
            "john-smith", "kube-system", annotations={"credwarden.io/exempt": "break-glass"}
        ),
    ]
    policies = [
        cluster_policy("a", **secrets_limit("30d")),
        cluster_policy("b", identity={}, ownership={}),
    ]
    evaluation = evaluate_objects(objects, policies)
    for record in (
        record_of(evaluation, "db"),
        record_of(evaluation, "john-smith", "kube-system", SA),
    ):
        assert record.status == "Exempt"
        assert record.findings == ()


def _token_world(token_annotations=None, exemptions=None):
    objects = [
        service_account("ci", annotations=OWNED),
        pod("runner", service_account="ci", volumes=["ci-token"]),
        token_secret(
            "ci-token",
            service_account="ci",
            created=ago(400),
            annotations={**OWNED, **(token_annotations or {})},
        ),
    ]
    spec = token_limit("90d")
    if exemptions:
        spec["exemptions"] = {"names": exemptions}
    return evaluate_objects(objects, [cluster_policy("p", **spec)])


def test_a_token_exempted_by_name_does_not_mark_its_account() -> None:
    evaluation = _token_world(exemptions=["ci-token"])
    assert record_of(evaluation, "ci-token").status == "Ungoverned"
    assert record_of(evaluation, "ci", kind=SA).status == "Compliant"


def test_a_token_exempted_by_annotation_does_not_mark_its_account() -> None:
    # the two ways of exempting must agree: an approved legacy token does not make its
    # ServiceAccount NonCompliant (long-lived-token) either
    evaluation = _token_world(token_annotations={"credwarden.io/exempt": "approved until Q3"})
    assert record_of(evaluation, "ci-token").status == "Exempt"
    account = record_of(evaluation, "ci", kind=SA)
    assert "long-lived-token" not in rules_of(account)
    assert account.status == "Compliant"


def test_unexempted_token_marks_its_account() -> None:
    evaluation = _token_world()
    assert record_of(evaluation, "ci", kind=SA).status == "NonCompliant"


# ---- boolean rules: any policy that asks, whatever the names ---------------------------


@pytest.mark.parametrize(("listing", "plain"), [("a-list", "z-plain"), ("z-list", "a-plain")])
def test_system_accounts_list_of_one_policy_does_not_depend_on_policy_names(listing, plain) -> None:
    # one policy declares backup-* a control-plane account, the other does not; the
    # outcome must not change when the policies are renamed
    objects = [service_account("backup-tool", "kube-system", annotations=OWNED)]
    policies = [
        cluster_policy(listing, identity={"systemAccounts": ["backup-*"]}),
        cluster_policy(plain, identity={}),
    ]
    record = record_of(evaluate_objects(objects, policies), "backup-tool", "kube-system", SA)
    reference = record_of(
        evaluate_objects(
            objects,
            [
                cluster_policy("a-plain", identity={}),
                cluster_policy("z-list", identity={"systemAccounts": ["backup-*"]}),
            ],
        ),
        "backup-tool",
        "kube-system",
        SA,
    )
    assert rules_of(record) == rules_of(reference)


def test_identity_rules_apply_if_any_policy_asks() -> None:
    objects = [service_account("john-smith", "ml", annotations=OWNED)]
    policies = [
        cluster_policy("a-off", identity={"flagPersonNames": False}),
        cluster_policy("z-on", identity={}),
    ]
    record = record_of(evaluate_objects(objects, policies), "john-smith", "ml", SA)
    assert "human-identity" in rules_of(record)
    assert "z-on" in record.findings[0].message


def test_owner_required_if_any_policy_requires_it() -> None:
    policies = [
        cluster_policy("a-optional", ownership={"required": False}),
        cluster_policy("z-required", ownership={}),
    ]
    record = record_of(evaluate_objects([opaque_secret("s")], policies), "s")
    assert rules_of(record) == {"missing-owner"}
    assert "z-required" in record.findings[0].message
