"""Every rule id, both ways, with messages that name objects and never a value."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from conftest import (
    CANARY,
    NOW,
    ago,
    baseline_policy,
    build_inventory,
    canaries,
    cluster_policy,
    cluster_role_binding,
    cronjob,
    deployment,
    dockerconfig_secret,
    evaluate_objects,
    everything_printed,
    namespace,
    namespaced_policy,
    opaque_secret,
    owner_reference,
    pod,
    record_of,
    role_binding,
    rules_of,
    secret,
    service_account,
    tls_secret,
    token_secret,
)
from credwarden.records import RULES

OWNED = {"credwarden.io/owner": "platform-team"}
SA = "ServiceAccount"


def owned_sa(name: str, ns: str = "default", **kw):
    return service_account(name, ns, annotations=OWNED, **kw)


def token(name: str, ns: str = "default", *, sa: str, age: float, **kw):
    kw.setdefault("annotations", OWNED)
    return token_secret(name, ns, service_account=sa, created=ago(age), **kw)


# ---- long-lived-token ------------------------------------------------------------------


def test_long_lived_token_fires_on_the_token_and_its_account() -> None:
    objects = [owned_sa("ci"), token("ci-token", sa="ci", age=120), pod("p", volumes=["ci-token"])]
    evaluation = evaluate_objects(objects, [baseline_policy()])
    tok = record_of(evaluation, "ci-token")
    assert rules_of(tok) == {"long-lived-token"}
    assert tok.status == "NonCompliant"
    [finding] = tok.findings
    assert finding.severity == "violation"
    assert "90d after creation" in finding.message and "baseline" in finding.message
    account = record_of(evaluation, "ci", kind=SA)
    assert "long-lived-token" in rules_of(account)
    message = next(f.message for f in account.findings if f.rule == "long-lived-token")
    assert "ci-token" in message and "120d old" in message
    assert account.expires_at == tok.expires_at == NOW - timedelta(days=30)


def test_young_token_is_not_long_lived_and_warns_before_its_limit() -> None:
    objects = [owned_sa("ci"), token("ci-token", sa="ci", age=80), pod("p", volumes=["ci-token"])]
    evaluation = evaluate_objects(objects, [baseline_policy()])
    tok = record_of(evaluation, "ci-token")
    assert rules_of(tok) == {"credential-expiring"}
    assert tok.status == "Expiring"
    assert "long-lived-token" not in rules_of(record_of(evaluation, "ci", kind=SA))
    fresh = evaluate_objects(
        [owned_sa("ci"), token("ci-token", sa="ci", age=10), pod("p", volumes=["ci-token"])],
        [baseline_policy()],
    )
    assert rules_of(record_of(fresh, "ci-token")) == set()
    assert record_of(fresh, "ci-token").status == "Compliant"


def test_policy_without_token_limits_checks_no_token_age() -> None:
    objects = [owned_sa("ci"), token("ci-token", sa="ci", age=1000), pod("p", volumes=["ci-token"])]
    spec = {"limits": {"secrets": {}}, "ownership": {}}
    evaluation = evaluate_objects(objects, [cluster_policy("p", **spec)])
    assert rules_of(record_of(evaluation, "ci-token")) == set()
    assert record_of(evaluation, "ci-token").expires_at is None


# ---- unused-token ----------------------------------------------------------------------


def _token_policy(**token_limits):
    return cluster_policy(
        "tokens", limits={"serviceAccountTokens": {"maxAge": "365d", **token_limits}}
    )


def test_unused_token_fires_when_last_use_is_older_than_the_limit() -> None:
    last = (NOW - timedelta(days=40)).date().isoformat()
    objects = [token("t", sa="a", age=50, last_used=last), pod("p", volumes=["t"])]
    evaluation = evaluate_objects(objects, [_token_policy(unusedAfter="30d")])
    record = record_of(evaluation, "t")
    assert rules_of(record) == {"unused-token"}
    assert record.findings[0].severity == "warning"
    assert last in record.findings[0].message and "30d" in record.findings[0].message
    assert record.status == "Compliant"  # a warning alone is not Expiring nor NonCompliant


def test_unused_token_does_not_fire_when_used_recently_or_mounted() -> None:
    recent = (NOW - timedelta(days=3)).date().isoformat()
    evaluation = evaluate_objects(
        [token("t", sa="a", age=50, last_used=recent)], [_token_policy(unusedAfter="30d")]
    )
    assert "unused-token" not in rules_of(record_of(evaluation, "t"))
    for consumer in (
        pod("p", volumes=["t"]),
        pod("p", projected=["t"]),
        deployment("d", volumes=["t"]),
        cronjob("c", volumes=["t"]),
        pod("p-abc", volumes=["t"], owner_references=[owner_reference("ReplicaSet", "rs")]),
    ):
        evaluation = evaluate_objects([token("t", sa="a", age=50), consumer], [_token_policy()])
        assert "unused-token" not in rules_of(record_of(evaluation, "t")), consumer["kind"]


def test_unused_token_fires_when_never_used_and_used_by_no_workload() -> None:
    objects = [
        token("t", sa="a", age=5),
        pod("p", volumes=["other"]),
        pod("q", "other-ns", volumes=["t"]),
    ]
    record = record_of(evaluate_objects(objects, [_token_policy()]), "t")
    assert rules_of(record) == {"unused-token"}
    assert "used by no workload" in record.findings[0].message


def test_unused_window_defaults_to_max_age() -> None:
    last = (NOW - timedelta(days=400)).date().isoformat()
    objects = [token("t", sa="a", age=10, last_used=last)]
    record = record_of(evaluate_objects(objects, [_token_policy()]), "t")
    assert "unused-token" in rules_of(record)


# ---- credential-expired / credential-expiring ------------------------------------------


@pytest.mark.parametrize(
    ("age", "rules", "status"),
    [
        (10, set(), "Compliant"),
        (165, set(), "Compliant"),
        (167, {"credential-expiring"}, "Expiring"),
        (180, {"credential-expired"}, "NonCompliant"),
        (700, {"credential-expired"}, "NonCompliant"),
    ],
)
@pytest.mark.parametrize(
    "build",
    [
        opaque_secret,
        dockerconfig_secret,
        lambda n, **kw: secret(
            n, type="kubernetes.io/basic-auth", data={"password": "p" * 12}, **kw
        ),
    ],
)
def test_stored_secret_expiry(build, age: int, rules: set[str], status: str) -> None:
    body = build("s", created=ago(age), annotations=OWNED)
    record = record_of(evaluate_objects([body], [baseline_policy()]), "s")
    assert rules_of(record) == rules
    assert record.status == status
    assert record.expires_at == NOW - timedelta(days=age) + timedelta(days=180)
    for finding in record.findings:
        assert "180d after creation" in finding.message
        assert "baseline" in finding.message


def test_stored_secret_limit_does_not_apply_to_tokens_or_tls() -> None:
    spec = {"limits": {"secrets": {"maxAge": "30d", "warnBefore": "1d"}}}
    objects = [
        token("t", sa="a", age=400),
        pod("p", volumes=["t"]),
        tls_secret("tls", created=ago(400), annotations=OWNED),
    ]
    evaluation = evaluate_objects(objects, [cluster_policy("p", **spec)])
    assert rules_of(record_of(evaluation, "t")) == set()
    assert rules_of(record_of(evaluation, "tls")) == set()


# ---- certificates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_left", "rules", "status"),
    [
        (200, set(), "Compliant"),
        (31, set(), "Compliant"),
        (29, {"certificate-expiring"}, "Expiring"),
        (0, {"certificate-expired"}, "NonCompliant"),
        (-5, {"certificate-expired"}, "NonCompliant"),
    ],
)
def test_certificate_expiry(days_left: int, rules: set[str], status: str) -> None:
    not_after = NOW + timedelta(days=days_left)
    body = tls_secret("web-tls", not_after=not_after, annotations=OWNED)
    record = record_of(evaluate_objects([body], [baseline_policy()]), "web-tls")
    assert rules_of(record) == rules
    assert record.status == status
    assert record.expires_at == not_after
    for finding in record.findings:
        assert "notAfter" in finding.message


def test_certificate_max_age_is_used_when_sooner_than_not_after() -> None:
    spec = {"limits": {"certificates": {"maxAge": "90d", "warnBefore": "7d"}}}
    body = tls_secret(
        "web-tls", not_after=NOW + timedelta(days=300), created=ago(100), annotations=OWNED
    )
    record = record_of(evaluate_objects([body], [cluster_policy("p", **spec)]), "web-tls")
    assert rules_of(record) == {"certificate-expired"}
    assert "90d after creation" in record.findings[0].message


def test_certificate_unreadable_both_ways() -> None:
    bad = secret("bad", type="kubernetes.io/tls", data={"tls.crt": CANARY, "tls.key": CANARY})
    good = tls_secret("good", not_after=NOW + timedelta(days=300), annotations=OWNED)
    bad["metadata"]["annotations"] = OWNED
    evaluation = evaluate_objects([bad, good], [baseline_policy()])
    assert rules_of(record_of(evaluation, "bad")) == {"certificate-unreadable"}
    assert record_of(evaluation, "bad").findings[0].severity == "violation"
    assert rules_of(record_of(evaluation, "good")) == set()


# ---- human-identity --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["john-smith", "daniel.wilson", "priya", "mike-admin", "sarah_lee"]
)
def test_human_identity_fires_for_person_names_no_workload_runs_as(name: str) -> None:
    record = record_of(
        evaluate_objects([owned_sa(name, "ml")], [baseline_policy()]), name, "ml", SA
    )
    assert "human-identity" in rules_of(record)
    message = next(f.message for f in record.findings if f.rule == "human-identity")
    assert "baseline" in message


@pytest.mark.parametrize(
    "name",
    ["kube-proxy", "coredns", "metrics-server", "airflow-worker", "default", "john-smith-bot"],
)
def test_human_identity_ignores_workload_names(name: str) -> None:
    record = record_of(
        evaluate_objects([owned_sa(name, "ml")], [baseline_policy()]), name, "ml", SA
    )
    assert "human-identity" not in rules_of(record)


@pytest.mark.parametrize("workload", [pod, deployment, cronjob])
def test_human_identity_does_not_fire_when_a_workload_runs_as_it(workload) -> None:
    objects = [owned_sa("john-smith", "ml"), workload("w", "ml", service_account="john-smith")]
    record = record_of(evaluate_objects(objects, [baseline_policy()]), "john-smith", "ml", SA)
    assert "human-identity" not in rules_of(record)


def test_human_identity_workload_in_another_namespace_does_not_count() -> None:
    objects = [owned_sa("john-smith", "ml"), pod("w", "other", service_account="john-smith")]
    record = record_of(evaluate_objects(objects, [baseline_policy()]), "john-smith", "ml", SA)
    assert "human-identity" in rules_of(record)


def test_human_identity_extra_patterns_and_switch() -> None:
    patterns = cluster_policy("p", identity={"personNamePatterns": ["u[0-9]{5}"]})
    evaluation = evaluate_objects([owned_sa("u12345"), owned_sa("u1234")], [patterns])
    assert "human-identity" in rules_of(record_of(evaluation, "u12345", kind=SA))
    assert "human-identity" not in rules_of(record_of(evaluation, "u1234", kind=SA))
    off = cluster_policy("p", identity={"flagPersonNames": False})
    assert (
        rules_of(
            record_of(evaluate_objects([owned_sa("john-smith")], [off]), "john-smith", kind=SA)
        )
        == set()
    )


# ---- cluster-admin-binding -------------------------------------------------------------


def test_cluster_admin_by_cluster_role_binding() -> None:
    objects = [
        owned_sa("ci", "tools"),
        pod("p", "tools", service_account="ci"),
        cluster_role_binding("ci-admin", subjects=[("tools", "ci")]),
    ]
    record = record_of(evaluate_objects(objects, [baseline_policy()]), "ci", "tools", SA)
    assert rules_of(record) == {"cluster-admin-binding"}
    message = record.findings[0].message
    assert "ClusterRoleBinding ci-admin" in message and "baseline" in message


def test_cluster_admin_by_role_binding_to_the_cluster_role() -> None:
    objects = [
        owned_sa("ci", "tools"),
        pod("p", "tools", service_account="ci"),
        role_binding("ci-admin", "tools", subjects=[{"kind": "ServiceAccount", "name": "ci"}]),
    ]
    record = record_of(evaluate_objects(objects, [baseline_policy()]), "ci", "tools", SA)
    assert rules_of(record) == {"cluster-admin-binding"}
    assert "RoleBinding tools/ci-admin" in record.findings[0].message


@pytest.mark.parametrize(
    "binding",
    [
        cluster_role_binding("view", role="view", subjects=[("tools", "ci")]),
        role_binding(
            "local", "tools", role="cluster-admin", role_kind="Role", subjects=[("tools", "ci")]
        ),
        cluster_role_binding("other-ns", subjects=[("elsewhere", "ci")]),
        cluster_role_binding(
            "other-group", subjects=[{"kind": "Group", "name": "system:serviceaccounts:other"}]
        ),
        cluster_role_binding("user", subjects=[{"kind": "User", "name": "ci"}]),
        cluster_role_binding("people", subjects=[{"kind": "Group", "name": "system:masters"}]),
    ],
)
def test_cluster_admin_does_not_fire_for_other_bindings(binding) -> None:
    objects = [owned_sa("ci", "tools"), pod("p", "tools", service_account="ci"), binding]
    record = record_of(evaluate_objects(objects, [baseline_policy()]), "ci", "tools", SA)
    assert "cluster-admin-binding" not in rules_of(record)


@pytest.mark.parametrize(
    "subject",
    [
        # every account of the namespace, every account of the cluster, and the user name
        # the API server authenticates a ServiceAccount as
        {"kind": "Group", "name": "system:serviceaccounts:tools"},
        {"kind": "Group", "name": "system:serviceaccounts"},
        {"kind": "User", "name": "system:serviceaccount:tools:ci"},
    ],
)
def test_cluster_admin_through_groups_and_user_names(subject) -> None:
    objects = [
        owned_sa("ci", "tools"),
        pod("p", "tools", service_account="ci"),
        cluster_role_binding("wide", subjects=[subject]),
    ]
    inventory_records = evaluate_objects(objects, [baseline_policy()])
    record = record_of(inventory_records, "ci", "tools", SA)
    assert rules_of(record) == {"cluster-admin-binding"}
    assert "ClusterRoleBinding wide" in record.findings[0].message


@pytest.mark.parametrize(
    "identity",
    [
        {"forbidClusterAdmin": False},
        {"clusterAdminAllowed": ["tools/c*"]},
        {"clusterAdminAllowed": ["ci"]},
    ],
)
def test_cluster_admin_allowed_or_not_forbidden(identity) -> None:
    objects = [
        owned_sa("ci", "tools"),
        pod("p", "tools", service_account="ci"),
        cluster_role_binding("ci-admin", subjects=[("tools", "ci")]),
    ]
    record = record_of(
        evaluate_objects(objects, [cluster_policy("p", identity=identity)]), "ci", "tools", SA
    )
    assert "cluster-admin-binding" not in rules_of(record)


def test_cluster_admin_removed_binding_clears_the_finding() -> None:
    objects = [owned_sa("ci", "tools"), pod("p", "tools", service_account="ci")]
    record = record_of(evaluate_objects(objects, [baseline_policy()]), "ci", "tools", SA)
    assert record.status == "Compliant"


# ---- user-identity-in-system-namespace -------------------------------------------------


def test_user_identity_in_system_namespace_fires() -> None:
    record = record_of(
        evaluate_objects([owned_sa("backup-tool", "kube-system")], [baseline_policy()]),
        "backup-tool",
        "kube-system",
        SA,
    )
    assert rules_of(record) == {"user-identity-in-system-namespace"}
    assert "kube-system" in record.findings[0].message


@pytest.mark.parametrize(
    "name", ["coredns", "kube-proxy", "attachdetach-controller", "default", "foo-controller"]
)
def test_control_plane_accounts_belong_in_system_namespaces(name: str) -> None:
    record = record_of(
        evaluate_objects([owned_sa(name, "kube-system")], [baseline_policy()]),
        name,
        "kube-system",
        SA,
    )
    assert "user-identity-in-system-namespace" not in rules_of(record)


def test_system_namespace_account_used_by_a_workload_there_is_fine() -> None:
    objects = [
        owned_sa("backup-tool", "kube-system"),
        deployment("backup", "kube-system", service_account="backup-tool"),
    ]
    record = record_of(
        evaluate_objects(objects, [baseline_policy()]), "backup-tool", "kube-system", SA
    )
    assert record.status == "Compliant"
    elsewhere = [
        owned_sa("backup-tool", "kube-system"),
        deployment("b", "default", service_account="backup-tool"),
    ]
    record = record_of(
        evaluate_objects(elsewhere, [baseline_policy()]), "backup-tool", "kube-system", SA
    )
    assert "user-identity-in-system-namespace" in rules_of(record)


def test_system_namespace_rule_respects_policy_lists() -> None:
    extra = cluster_policy("p", identity={"systemAccounts": ["backup-*"]})
    record = record_of(
        evaluate_objects([owned_sa("backup-tool", "kube-system")], [extra]),
        "backup-tool",
        "kube-system",
        SA,
    )
    assert rules_of(record) == set()
    record = record_of(
        evaluate_objects([owned_sa("backup-tool", "default")], [baseline_policy()]),
        "backup-tool",
        "default",
        SA,
    )
    assert "user-identity-in-system-namespace" not in rules_of(record)
    custom = cluster_policy("p", identity={"protectedNamespaces": ["platform"]})
    evaluation = evaluate_objects(
        [owned_sa("backup-tool", "platform"), owned_sa("backup-tool", "kube-system")], [custom]
    )
    assert "user-identity-in-system-namespace" in rules_of(
        record_of(evaluation, "backup-tool", "platform", SA)
    )
    assert "user-identity-in-system-namespace" not in rules_of(
        record_of(evaluation, "backup-tool", "kube-system", SA)
    )


# ---- missing-owner ---------------------------------------------------------------------


def test_missing_owner_fires_for_secrets_and_accounts() -> None:
    objects = [opaque_secret("s"), service_account("app"), pod("p", service_account="app")]
    evaluation = evaluate_objects(objects, [baseline_policy()])
    for record in (record_of(evaluation, "s"), record_of(evaluation, "app", kind=SA)):
        assert rules_of(record) == {"missing-owner"}
        assert record.findings[0].severity == "violation"
        assert "credwarden.io/owner" in record.findings[0].message
        assert "baseline" in record.findings[0].message


def test_missing_owner_does_not_fire_with_an_owner_or_when_not_required() -> None:
    evaluation = evaluate_objects(
        [opaque_secret("s", labels={"team": "data"})], [baseline_policy()]
    )
    assert rules_of(record_of(evaluation, "s")) == set()
    not_required = cluster_policy("p", ownership={"required": False})
    assert rules_of(record_of(evaluate_objects([opaque_secret("s")], [not_required]), "s")) == set()
    undeclared = cluster_policy("p", limits={"secrets": {}})
    assert rules_of(record_of(evaluate_objects([opaque_secret("s")], [undeclared]), "s")) == set()


# ---- duplicate-secret ------------------------------------------------------------------


def test_duplicate_secret_fires_in_every_copy_and_names_the_others() -> None:
    objects = [
        opaque_secret("airflow-creds", "a", data={"password": CANARY}, annotations=OWNED),
        opaque_secret("airflow-creds", "b", data={"password": CANARY}, annotations=OWNED),
        opaque_secret(
            "grafana-creds", "a", data={"admin": CANARY, "user": "unique-user-1"}, annotations=OWNED
        ),
        opaque_secret(
            "unrelated", "a", data={"password": "something-else-entirely"}, annotations=OWNED
        ),
    ]
    evaluation = evaluate_objects(objects, [baseline_policy()])
    first = record_of(evaluation, "airflow-creds", "a")
    assert rules_of(first) == {"duplicate-secret"}
    assert first.findings[0].severity == "warning"
    assert first.status == "Compliant"
    assert first.findings[0].message == (
        "value of key password also stored in Secret a/grafana-creds, b/airflow-creds"
    )
    grafana = record_of(evaluation, "grafana-creds", "a")
    assert "key admin" in grafana.findings[0].message
    assert rules_of(record_of(evaluation, "unrelated", "a")) == set()
    printed = everything_printed(evaluation)
    assert all(form not in printed for form in canaries())


def test_duplicate_secret_lists_three_places_then_counts() -> None:
    objects = [
        opaque_secret("ghcr", f"env-{i}", data={"token": CANARY}, annotations=OWNED)
        for i in range(6)
    ]
    record = record_of(evaluate_objects(objects, [baseline_policy()]), "ghcr", "env-0")
    assert record.findings[0].message.endswith("env-1/ghcr, env-2/ghcr, env-3/ghcr and 2 more")


def test_duplicate_secret_ignores_cluster_ca_short_values_and_ungoverned_copies() -> None:
    objects = [
        token("a-token", sa="a", age=1),
        token("b-token", sa="b", age=1),
        pod("p", volumes=["a-token", "b-token"]),
        opaque_secret("x", data={"flag": "true"}, annotations=OWNED),
        opaque_secret("y", data={"flag": "true"}, annotations=OWNED),
    ]
    evaluation = evaluate_objects(objects, [baseline_policy()])
    for name in ("a-token", "b-token", "x", "y"):
        assert "duplicate-secret" not in rules_of(record_of(evaluation, name)), name


# ---- secret-in-env ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workload", "shown"),
    [
        (deployment("web", env=["db"]), "Deployment/web"),
        (pod("web", env_from=["db"]), "Pod/web"),
        (cronjob("nightly", env=["db"]), "CronJob/nightly"),
    ],
)
def test_secret_in_env_fires_and_names_the_workload(workload, shown: str) -> None:
    body = opaque_secret("db", data={"password": CANARY}, annotations=OWNED)
    record = record_of(evaluate_objects([body, workload], [baseline_policy()]), "db")
    assert rules_of(record) == {"secret-in-env"}
    assert shown in record.findings[0].message
    assert record.findings[0].severity == "warning"
    assert any(c.via == "env" for c in record.consumers)


def test_secret_in_env_does_not_fire_for_files_or_pull_secrets() -> None:
    objects = [
        opaque_secret("db", annotations=OWNED),
        deployment("web", volumes=["db"]),
        dockerconfig_secret("ghcr", annotations=OWNED),
        pod("p", image_pull_secrets=["ghcr"]),
    ]
    evaluation = evaluate_objects(objects, [baseline_policy()])
    db = record_of(evaluation, "db")
    assert rules_of(db) == set()
    assert [(c.kind, c.name, c.via) for c in db.consumers] == [("Deployment", "web", "file")]
    ghcr = record_of(evaluation, "ghcr")
    assert rules_of(ghcr) == set()
    assert [c.via for c in ghcr.consumers] == ["imagePullSecret"]


def test_pods_of_a_deployment_are_reported_through_the_deployment() -> None:
    objects = [
        opaque_secret("db", annotations=OWNED),
        deployment("web", env=["db"]),
        pod("web-abc", env=["db"], owner_references=[owner_reference("ReplicaSet", "web-1")]),
    ]
    record = record_of(evaluate_objects(objects, [baseline_policy()]), "db")
    assert [(c.kind, c.name) for c in record.consumers] == [("Deployment", "web")]


def test_secret_in_env_lists_three_readers_then_counts() -> None:
    objects = [opaque_secret("db", annotations=OWNED)] + [
        deployment(f"w{i}", env=["db"]) for i in range(5)
    ]
    record = record_of(evaluate_objects(objects, [baseline_policy()]), "db")
    assert "Deployment/w0, Deployment/w1, Deployment/w2 and 2 more" in record.findings[0].message


# ---- across rules ----------------------------------------------------------------------


def test_ungoverned_and_exempt_credentials_get_no_findings() -> None:
    old = opaque_secret("old", created=ago(900))
    exempt = opaque_secret(
        "exempt", created=ago(900), annotations={"credwarden.io/exempt": "vendor"}
    )
    evaluation = evaluate_objects([old, exempt], [])
    assert record_of(evaluation, "old").status == "Ungoverned"
    assert record_of(evaluation, "old").findings == ()
    evaluation = evaluate_objects([old, exempt], [baseline_policy()])
    assert record_of(evaluation, "exempt").status == "Exempt"
    assert record_of(evaluation, "exempt").findings == ()
    assert record_of(evaluation, "old").status == "NonCompliant"


def test_severity_of_each_finding_matches_the_rule_table() -> None:
    evaluation = _audit_scenario()
    seen = {f.rule for r in evaluation.records for f in r.findings}
    assert seen == set(RULES), f"scenario misses {set(RULES) - seen}"
    for record in evaluation.records:
        for finding in record.findings:
            assert finding.severity == RULES[finding.rule][0]
            assert finding.reason == RULES[finding.rule][1]
            assert "\n" not in finding.message and finding.message


def _audit_scenario():
    """One cluster in which every rule fires at least once, with canaries in every value."""
    objects = [
        namespace("kube-system"),
        namespace("ml", annotations={"credwarden.io/owner": "ml-team"}),
        service_account("john-smith", "kube-system"),
        token_secret(
            "john-smith-token",
            "kube-system",
            service_account="john-smith",
            token=CANARY + "-token",
            created=ago(450),
        ),
        cluster_role_binding("john-admin", subjects=[("kube-system", "john-smith")]),
        token_secret(
            "old-token",
            "ml",
            service_account="runner",
            token=CANARY + "-t2",
            created=ago(10),
            last_used="2020-01-01",
        ),
        opaque_secret("airflow-creds", "ml", data={"password": CANARY}, created=ago(400)),
        opaque_secret("airflow-creds", "ml-dev", data={"password": CANARY}, created=ago(170)),
        tls_secret("expired-tls", "ml", not_after=NOW - timedelta(days=1), key=CANARY + "-k1"),
        tls_secret("soon-tls", "ml", not_after=NOW + timedelta(days=5), key=CANARY + "-k2"),
        secret(
            "bad-tls",
            "ml",
            type="kubernetes.io/tls",
            data={"tls.crt": CANARY, "tls.key": CANARY + "k"},
        ),
        deployment("web", "ml", env=["airflow-creds"], service_account="runner"),
        # Enforce mode with safety rails in the way: a token in use, a Helm-written Secret
        pod("job", "ml", volumes=["old-token"]),
        opaque_secret(
            "helm-creds",
            "ml",
            data={"password": CANARY + "-h"},
            created=ago(400),
            annotations={"meta.helm.sh/release-name": "airflow"},
        ),
    ]
    enforcing = namespaced_policy(
        "enforce",
        "ml",
        mode="Enforce",
        limits={
            "serviceAccountTokens": {"maxAge": "5d", "action": "Revoke"},
            "secrets": {"maxAge": "300d", "action": "Rotate"},
        },
        rotation={"keys": ["password"]},
    )
    for body in objects:
        annotations = body["metadata"].setdefault("annotations", {})
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(
            {"data": {"password": canaries()[1], "plain": CANARY}}
        )
    return evaluate_objects(objects, [baseline_policy(), enforcing])


def test_no_secret_value_appears_in_records_plan_or_annotations() -> None:
    evaluation = _audit_scenario()
    printed = everything_printed(evaluation)
    for form in canaries():
        assert form not in printed
        assert form not in printed.lower()
    for suffix in ("-token", "-t2", "-k1", "-k2", "-h"):
        assert all(form not in printed for form in canaries(CANARY + suffix))


def test_rules_skipped_for_a_kind_find_nothing_and_schedule_nothing() -> None:
    """The engine runs only `rules_for(credential)`: every other rule of the chain must find
    nothing and record no milestone for that kind of credential, at any time. Checked on
    the example scenario (every Secret type, tokens, expired and expiring credentials),
    with the example policies, before, at and long after the scenario's time."""
    from credwarden import scenario
    from credwarden.engine import _consumers, _policies_for_secret, last_rotated, secret_deadline
    from credwarden.inventory import CredentialKey
    from credwarden.rules import RULE_CHAIN, RuleContext, rules_for

    now = scenario.REFERENCE_NOW
    objects = [*scenario.build_objects(now), *scenario.example_policies()]
    inventory = build_inventory(objects)
    assert len(inventory.secrets) > 15 and len(inventory.policies) >= 2
    kinds_seen = set()
    for (namespace_name, name), secret_facts in inventory.secrets.items():
        key = CredentialKey("Secret", namespace_name, name)
        policies = _policies_for_secret(inventory, secret_facts)
        deadline = secret_deadline(secret_facts, policies, last_rotated(secret_facts))
        skipped = [rule for rule in RULE_CHAIN if rule not in rules_for(secret_facts)]
        kinds_seen.add((secret_facts.is_token, secret_facts.is_tls, deadline is not None))
        for moment in (now - timedelta(days=800), now, now + timedelta(days=3000)):
            context = RuleContext(
                key=key,
                meta=secret_facts.meta,
                secret=secret_facts,
                account=None,
                inventory=inventory,
                now=moment,
                policies=policies,
                owner=None,
                owner_required_by=None,
                consumers=_consumers(inventory, key),
                deadline=deadline,
            )
            for rule in skipped:
                assert rule(context) == [], (rule.__name__, key)
            assert context.milestones == [], key
    # tokens, TLS and stored Secrets, with deadlines, were all checked
    assert {(True, False, True), (False, True, True), (False, False, True)} <= kinds_seen
