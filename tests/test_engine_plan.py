"""The plan: annotations, events on transitions, Revoke and Rotate; and the inventory's
incremental updates."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from conftest import (
    CANARY,
    NOW,
    add_object,
    ago,
    baseline_policy,
    build_inventory,
    canaries,
    cluster_policy,
    cluster_role_binding,
    deployment,
    evaluate_objects,
    everything_printed,
    managed_field,
    namespace,
    opaque_secret,
    owner_reference,
    pod,
    record_of,
    rules_of,
    service_account,
    tls_secret,
    token_secret,
)
from credwarden.engine import MANAGED_ANNOTATIONS, evaluate, evaluate_credential
from credwarden.inventory import CredentialKey, Inventory
from credwarden.records import Annotate, PostEvent, Revoke, Rotate

OWNER = "credwarden.io/owner"
SOURCE = "credwarden.io/owner-source"
STATUS = "credwarden.io/status"
FINDINGS = "credwarden.io/findings"
SA = "ServiceAccount"


def plan_of(objects, policies, name, ns="default", kind="Secret", now=NOW):
    evaluation = evaluate_objects(objects, policies, now)
    key = CredentialKey(kind, ns, name)
    return [a for a in evaluation.plan if a.target == key]


def of_type(actions, cls):
    return [a for a in actions if isinstance(a, cls)]


def apply_annotations(body, actions, *, managed_fields: bool = True):
    """What the operator does with an Annotate action (a patch by field manager credwarden)."""
    body = copy.deepcopy(body)
    annotations = body["metadata"].setdefault("annotations", {})
    for action in of_type(actions, Annotate):
        annotations.update(action.set)
        for key in action.remove:
            annotations.pop(key, None)
        if managed_fields:
            body["metadata"].setdefault("managedFields", []).append(
                managed_field("credwarden", ago(0), annotations=list(action.set))
            )
    return body


def converge(objects, policies, name, ns="default", kind="Secret", *, managed_fields=True, now=NOW):
    """Evaluate and apply annotations until nothing changes; returns the settled object."""
    objects = list(objects)
    index = next(
        i
        for i, o in enumerate(objects)
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and o["metadata"].get("namespace") == ns
    )
    for _ in range(3):
        actions = plan_of(objects, policies, name, ns, kind, now)
        if not of_type(actions, Annotate):
            return objects[index], objects
        objects[index] = apply_annotations(objects[index], actions, managed_fields=managed_fields)
    raise AssertionError(f"annotations never settle: {actions}")


# ---- annotations -----------------------------------------------------------------------


def test_first_evaluation_annotates_with_the_lifecycle() -> None:
    body = opaque_secret("db", created=ago(200), labels={"team": "data"})
    actions = plan_of([body], [baseline_policy()], "db")
    [annotate] = of_type(actions, Annotate)
    assert dict(annotate.set) == {
        OWNER: "data",
        SOURCE: "label:team",
        "credwarden.io/expires-at": ago(20),
        STATUS: "NonCompliant",
        "credwarden.io/policy": "baseline",
        FINDINGS: "credential-expired",
    }
    assert annotate.remove == ()
    assert annotate.uid == body["metadata"]["uid"]


SCENARIOS = {
    "expired-secret": ([opaque_secret("x", created=ago(200), labels={"team": "t"})], "x", "Secret"),
    "compliant-secret": (
        [opaque_secret("x", created=ago(2), annotations={OWNER: "me"})],
        "x",
        "Secret",
    ),
    "expiring-tls": ([tls_secret("x", not_after=NOW + timedelta(days=3))], "x", "Secret"),
    "account": (
        [
            service_account("x", "kube-system"),
            cluster_role_binding("b", subjects=[("kube-system", "x")]),
        ],
        "x",
        SA,
    ),
    "namespace-owner": (
        [namespace("default", annotations={OWNER: "ns"}), opaque_secret("x")],
        "x",
        "Secret",
    ),
    "env-reader": (
        [opaque_secret("x", annotations={OWNER: "me"}), deployment("d", env=["x"])],
        "x",
        "Secret",
    ),
}


@pytest.mark.parametrize("managed_fields", [True, False], ids=["live", "snapshot"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_converged_object_plans_nothing(scenario: str, managed_fields: bool) -> None:
    objects, name, kind = SCENARIOS[scenario]
    ns = "kube-system" if scenario == "account" else "default"
    settled, world = converge(
        objects, [baseline_policy()], name, ns, kind, managed_fields=managed_fields
    )
    assert plan_of(world, [baseline_policy()], name, ns, kind) == []
    # and an hour later, nothing either (nothing crossed a deadline)
    assert plan_of(world, [baseline_policy()], name, ns, kind, now=NOW + timedelta(hours=1)) == []
    assert settled["metadata"]["annotations"][STATUS] in ("Compliant", "Expiring", "NonCompliant")


def test_only_changed_annotations_are_set() -> None:
    body = opaque_secret("db", created=ago(100), labels={"team": "data"})
    settled, _ = converge([body], [baseline_policy()], "db")
    # 70 days later the secret has expired: only status, findings change
    actions = plan_of([settled], [baseline_policy()], "db", now=NOW + timedelta(days=90))
    [annotate] = of_type(actions, Annotate)
    assert dict(annotate.set) == {STATUS: "NonCompliant", FINDINGS: "credential-expired"}
    assert annotate.remove == ()


def test_findings_annotation_is_removed_when_findings_go() -> None:
    body = opaque_secret(
        "db",
        created=ago(10),
        labels={"team": "data"},
        annotations={STATUS: "NonCompliant", FINDINGS: "credential-expired"},
    )
    [annotate] = of_type(plan_of([body], [baseline_policy()], "db"), Annotate)
    assert FINDINGS in annotate.remove
    assert annotate.set[STATUS] == "Compliant"


def test_a_person_owner_annotation_is_never_overwritten() -> None:
    body = opaque_secret("db", labels={"team": "data"}, annotations={OWNER: "alice"})
    [annotate] = of_type(plan_of([body], [baseline_policy()], "db"), Annotate)
    assert OWNER not in annotate.set and OWNER not in annotate.remove
    assert annotate.set[SOURCE] == "annotation"


# ---- removal when no longer governed ---------------------------------------------------


@pytest.mark.parametrize("managed_fields", [True, False], ids=["live", "snapshot"])
@pytest.mark.parametrize("how", ["policy-removed", "exempt-annotation", "exempt-by-name"])
def test_annotations_are_removed_when_ungoverned_or_exempt(how: str, managed_fields: bool) -> None:
    body = opaque_secret("db", created=ago(200), labels={"team": "data"})
    settled, _ = converge([body], [baseline_policy()], "db", managed_fields=managed_fields)
    assert settled["metadata"]["annotations"][OWNER] == "data"  # inferred, written by credwarden
    policies = [baseline_policy()]
    if how == "policy-removed":
        policies = []
    elif how == "exempt-annotation":
        settled["metadata"]["annotations"]["credwarden.io/exempt"] = "vendor managed"
    else:
        policies = [baseline_policy(exemptions={"names": ["default/db"]})]
    actions = plan_of([settled], policies, "db")
    [annotate] = of_type(actions, Annotate)
    assert annotate.set == {}
    assert set(annotate.remove) == set(MANAGED_ANNOTATIONS)
    assert of_type(actions, PostEvent) == []
    # and then nothing more
    cleaned = apply_annotations(settled, actions, managed_fields=managed_fields)
    assert plan_of([cleaned], policies, "db") == []


@pytest.mark.parametrize(
    "person_annotations",
    [
        {OWNER: "alice"},  # no source, no managedFields
        {OWNER: "alice", SOURCE: "annotation"},  # credwarden recorded the source
    ],
)
@pytest.mark.parametrize("how", ["policy-removed", "exempt-annotation"])
def test_a_person_owner_annotation_is_never_removed(person_annotations, how: str) -> None:
    annotations = {
        **person_annotations,
        STATUS: "NonCompliant",
        FINDINGS: "credential-expired",
        "credwarden.io/policy": "baseline",
        "credwarden.io/expires-at": ago(1),
    }
    policies = [baseline_policy()]
    if how == "policy-removed":
        policies = []
    else:
        annotations["credwarden.io/exempt"] = "reason"
    body = opaque_secret("db", created=ago(200), annotations=annotations)
    actions = plan_of([body], policies, "db")
    [annotate] = of_type(actions, Annotate)
    assert OWNER not in annotate.remove
    assert {STATUS, FINDINGS, "credwarden.io/policy", "credwarden.io/expires-at"} <= set(
        annotate.remove
    )
    # credwarden's own owner-source may go: without it the owner still reads as the person's
    left = {k: v for k, v in annotations.items() if k not in annotate.remove}
    left.pop("credwarden.io/exempt", None)
    governed_again = opaque_secret("db", created=ago(200), annotations=left)
    record = record_of(evaluate_objects([governed_again], [baseline_policy()]), "db")
    assert (record.owner, record.owner_source) == ("alice", "annotation")


def test_a_person_owner_annotation_per_managed_fields_is_never_removed() -> None:
    body = opaque_secret(
        "db",
        annotations={OWNER: "alice", SOURCE: "label:team", STATUS: "Compliant"},
        managed_fields=[
            managed_field("kubectl-annotate", ago(1), annotations=[OWNER]),
            managed_field("credwarden", ago(2), annotations=[SOURCE, STATUS]),
        ],
    )
    [annotate] = of_type(plan_of([body], [], "db"), Annotate)
    assert OWNER not in annotate.remove


# ---- events on transitions -------------------------------------------------------------


def test_already_annotated_object_plans_no_event() -> None:
    body = opaque_secret("db", created=ago(200), labels={"team": "data"})
    settled, _ = converge([body], [baseline_policy()], "db")
    actions = plan_of([settled], [baseline_policy()], "db")
    assert of_type(actions, PostEvent) == []


def test_a_new_finding_plans_exactly_one_warning_event() -> None:
    body = opaque_secret("db", created=ago(100), labels={"team": "data"})
    settled, world = converge([body], [baseline_policy()], "db")
    world = [settled, deployment("web", env=["db"])]
    events = of_type(plan_of(world, [baseline_policy()], "db"), PostEvent)
    assert len(events) == 1
    [event] = events
    assert (event.type, event.reason) == ("Warning", "SecretInEnv")
    assert "Deployment/web" in event.message
    assert event.uid == body["metadata"]["uid"]


def test_one_event_per_new_rule() -> None:
    body = opaque_secret("db", created=ago(300))
    events = of_type(
        plan_of([body, deployment("a", env=["db"])], [baseline_policy()], "db"), PostEvent
    )
    assert sorted(e.reason for e in events) == ["CredentialExpired", "MissingOwner", "SecretInEnv"]
    assert all(e.type == "Warning" for e in events)


def test_expiring_then_expired_plans_one_event_each() -> None:
    body = opaque_secret("db", created=ago(170), labels={"team": "data"})
    settled, _ = converge([body], [baseline_policy()], "db")
    assert settled["metadata"]["annotations"][STATUS] == "Expiring"
    events = of_type(
        plan_of([settled], [baseline_policy()], "db", now=NOW + timedelta(days=11)), PostEvent
    )
    assert [(e.type, e.reason) for e in events] == [("Warning", "CredentialExpired")]


@pytest.mark.parametrize("before", ["NonCompliant", "Expiring"])
def test_compliant_again_plans_a_normal_event(before: str) -> None:
    body = opaque_secret(
        "db",
        created=ago(1),
        labels={"team": "data"},
        annotations={
            STATUS: before,
            FINDINGS: "credential-expired" if before == "NonCompliant" else "credential-expiring",
        },
    )
    events = of_type(plan_of([body], [baseline_policy()], "db"), PostEvent)
    assert [(e.type, e.reason) for e in events] == [("Normal", "CredentialCompliant")]
    assert "baseline" in events[0].message


def test_first_evaluation_of_a_compliant_object_plans_no_event() -> None:
    body = opaque_secret("db", created=ago(1), labels={"team": "data"})
    assert of_type(plan_of([body], [baseline_policy()], "db"), PostEvent) == []


def test_no_events_for_exempt_or_ungoverned() -> None:
    old = opaque_secret("db", created=ago(900))
    assert of_type(plan_of([old], [], "db"), PostEvent) == []
    exempt = opaque_secret(
        "db", created=ago(900), annotations={"credwarden.io/exempt": "x", STATUS: "NonCompliant"}
    )
    assert of_type(plan_of([exempt], [baseline_policy()], "db"), PostEvent) == []


# ---- Revoke ----------------------------------------------------------------------------


def _token_objects(age: float, *, mounted: bool = False, **kw):
    objects = [
        service_account("ci", annotations={OWNER: "ci-team"}),
        token_secret(
            "ci-token", service_account="ci", created=ago(age), resource_version="4242", **kw
        ),
        pod("runner", service_account="ci"),
    ]
    if mounted:
        objects.append(pod("uses-token", volumes=["ci-token"]))
    return objects


def _token_policy(mode: str, action: str, name="tokens"):
    return cluster_policy(
        name, mode=mode, limits={"serviceAccountTokens": {"maxAge": "90d", "action": action}}
    )


@pytest.mark.parametrize(("mode", "enforced"), [("Enforce", True), ("Audit", False)])
def test_revoke_expired_token(mode: str, enforced: bool) -> None:
    objects = _token_objects(120)
    [revoke] = of_type(plan_of(objects, [_token_policy(mode, "Revoke")], "ci-token"), Revoke)
    assert revoke.enforced is enforced
    assert revoke.uid == objects[1]["metadata"]["uid"]
    assert revoke.resource_version == "4242"
    assert revoke.policy == "tokens"
    assert revoke.reason == f"expired {ago(30)}, 90d after creation"
    assert revoke.describe().startswith("revoke " if enforced else "would revoke (Audit) ")


def test_no_revoke_for_young_tokens_warn_action_accounts_or_other_secrets() -> None:
    assert (
        of_type(
            plan_of(_token_objects(30), [_token_policy("Enforce", "Revoke")], "ci-token"), Revoke
        )
        == []
    )
    assert (
        of_type(
            plan_of(_token_objects(120), [_token_policy("Enforce", "Warn")], "ci-token"), Revoke
        )
        == []
    )
    evaluation = evaluate_objects(_token_objects(120), [_token_policy("Enforce", "Revoke")])
    assert [a.target for a in of_type(evaluation.plan, Revoke)] == [
        CredentialKey("Secret", "default", "ci-token")
    ]
    exempt = _token_objects(120, annotations={"credwarden.io/exempt": "approved"})
    assert of_type(plan_of(exempt, [_token_policy("Enforce", "Revoke")], "ci-token"), Revoke) == []


def test_a_token_in_use_is_reported_not_revoked_unless_the_policy_says_so() -> None:
    objects = _token_objects(120, mounted=True)
    policy = _token_policy("Enforce", "Revoke")
    evaluation = evaluate_objects(objects, [policy])
    assert of_type(evaluation.plan, Revoke) == []
    record = record_of(evaluation, "ci-token")
    (blocked,) = [f for f in record.findings if f.rule == "revocation-blocked"]
    assert "still used by Pod/uses-token" in blocked.message
    assert "revokeInUse" in blocked.message
    allowed = cluster_policy(
        "tokens",
        mode="Enforce",
        limits={"serviceAccountTokens": {"maxAge": "90d", "action": "Revoke"}},
        enforcement={"revokeInUse": True},
    )
    [revoke] = of_type(plan_of(objects, [allowed], "ci-token"), Revoke)
    assert revoke.enforced


def test_a_token_in_a_protected_namespace_is_revoked_only_when_named() -> None:
    objects = [
        token_secret("ops-token", "kube-system", service_account="ops", created=ago(400)),
    ]

    def revocations(**enforcement):
        policy = cluster_policy(
            "tokens",
            mode="Enforce",
            limits={"serviceAccountTokens": {"maxAge": "90d", "action": "Revoke"}},
            enforcement=enforcement,
        )
        evaluation = evaluate_objects(objects, [policy])
        return of_type(evaluation.plan, Revoke), record_of(evaluation, "ops-token", "kube-system")

    revoked, record = revocations()
    assert revoked == []
    assert (
        "in protected namespace kube-system"
        in {f.rule: f.message for f in record.findings}["revocation-blocked"]
    )
    revoked, record = revocations(protectedTargets=["kube-system/ops-*"])
    assert [a.target.name for a in revoked] == ["ops-token"]
    assert "revocation-blocked" not in rules_of(record)


def test_revoke_follows_the_deciding_policy() -> None:
    policies = [
        _token_policy("Enforce", "Revoke", "a-enforce"),
        _token_policy("Audit", "Revoke", "b-audit"),
    ]
    [revoke] = of_type(plan_of(_token_objects(120), policies, "ci-token"), Revoke)
    assert (revoke.policy, revoke.enforced) == ("a-enforce", True)


# ---- Rotate ----------------------------------------------------------------------------


def _rotation_policy(mode: str, action: str = "Rotate", keys=("password",)):
    spec = {"mode": mode, "limits": {"secrets": {"maxAge": "90d", "action": action}}}
    if action == "Rotate":
        spec["rotation"] = {"keys": list(keys)}
    return cluster_policy("rotate", **spec)


@pytest.mark.parametrize(("mode", "enforced"), [("Enforce", True), ("Audit", False)])
def test_rotate_expired_secret(mode: str, enforced: bool) -> None:
    body = opaque_secret(
        "db",
        created=ago(100),
        annotations={OWNER: "t"},
        data={"password": CANARY},
        resource_version="77",
    )
    [rotate] = of_type(plan_of([body], [_rotation_policy(mode)], "db"), Rotate)
    assert rotate.enforced is enforced
    assert rotate.keys == ("password",)
    assert rotate.rotation_id == "1" and not rotate.resume
    assert rotate.resource_version == "77" and rotate.policy == "rotate"
    assert rotate.describe().startswith("rotate " if enforced else "would rotate (Audit) ")
    assert all(form not in rotate.describe() for form in canaries())


def test_no_rotate_before_expiry_or_with_warn_or_for_tls_and_tokens() -> None:
    young = opaque_secret("db", created=ago(10), annotations={OWNER: "t"})
    assert of_type(plan_of([young], [_rotation_policy("Enforce")], "db"), Rotate) == []
    old = opaque_secret("db", created=ago(100), annotations={OWNER: "t"})
    assert of_type(plan_of([old], [_rotation_policy("Enforce", "Warn")], "db"), Rotate) == []
    tls = tls_secret("db", not_after=NOW - timedelta(days=1), annotations={OWNER: "t"})
    policy = cluster_policy(
        "rotate",
        mode="Enforce",
        rotation={"keys": ["tls.crt"]},
        limits={"secrets": {"maxAge": "90d", "action": "Rotate"}, "certificates": {}},
    )
    assert of_type(plan_of([tls], [policy], "db"), Rotate) == []


def test_a_missing_rotation_key_blocks_the_rotation() -> None:
    body = opaque_secret("db", created=ago(100), annotations={OWNER: "t"})
    policy = _rotation_policy("Enforce", keys=("password", "api-key"))
    evaluation = evaluate_objects([body], [policy])
    assert of_type(evaluation.plan, Rotate) == []
    assert (
        "has no key api-key"
        in {f.rule: f.message for f in record_of(evaluation, "db").findings}["rotation-blocked"]
    )


@pytest.mark.parametrize("controller", ["ExternalSecret", "SealedSecret"])
def test_no_rotate_for_a_secret_another_controller_writes(controller: str) -> None:
    # the controller would overwrite the new value: the Secret is reported, not rotated
    body = opaque_secret(
        "db",
        created=ago(100),
        owner_references=[owner_reference(controller, "db")],
    )
    actions = plan_of([body], [_rotation_policy("Enforce")], "db")
    assert of_type(actions, Rotate) == []
    assert record_of(evaluate_objects([body], [_rotation_policy("Enforce")]), "db").status == (
        "NonCompliant"
    )


def test_rotated_secret_is_not_rotated_again() -> None:
    body = opaque_secret(
        "db", created=ago(100), annotations={OWNER: "t", "credwarden.io/last-rotated": ago(0)}
    )
    assert of_type(plan_of([body], [_rotation_policy("Enforce")], "db"), Rotate) == []


# ---- evaluation as a whole -------------------------------------------------------------


def test_summary_and_canaries_in_a_mixed_cluster() -> None:
    objects = [
        *_token_objects(120),
        opaque_secret("db", created=ago(100), data={"password": CANARY}),
        opaque_secret("db", "other", created=ago(1), data={"password": CANARY}),
    ]
    evaluation = evaluate_objects(
        objects, [_token_policy("Audit", "Revoke"), _rotation_policy("Audit")]
    )
    summary = evaluation.summary()
    assert summary["credentials"] == 4
    assert summary["plannedActions"]["Revoke"] == 1
    assert summary["plannedActions"]["Rotate"] == 1
    assert next(iter(summary["byStatus"])) == "NonCompliant"
    printed = everything_printed(evaluation)
    assert all(form not in printed for form in canaries())


def test_evaluate_credential_for_a_removed_credential_is_none() -> None:
    inventory = build_inventory([opaque_secret("db")], [baseline_policy()])
    assert evaluate_credential(inventory, CredentialKey("Secret", "default", "gone"), NOW) is None
    assert evaluate_credential(inventory, CredentialKey(SA, "default", "gone"), NOW) is None
    result = evaluate_credential(inventory, CredentialKey("Secret", "default", "db"), NOW)
    assert result is not None and result[0].key.name == "db"


# ---- inventory: incremental updates ----------------------------------------------------


def _world():
    return {
        "ns": namespace("ml", annotations={OWNER: "ml-team"}),
        "sa": service_account("runner", "ml"),
        "token": token_secret("runner-token", "ml", service_account="runner", created=ago(120)),
        "a": opaque_secret("creds", "ml", data={"password": CANARY}),
        "b": opaque_secret("creds", "ml-dev", data={"password": CANARY}),
        "crb": cluster_role_binding("admin", subjects=[("ml", "runner")]),
        "dep": deployment(
            "web", "ml", env=["creds"], volumes=["runner-token"], service_account="runner"
        ),
    }


def _affected(inventory: Inventory, body) -> set[CredentialKey]:
    return add_object(inventory, body)


def test_upserts_return_the_affected_credentials() -> None:
    world = _world()
    inventory = build_inventory([], [baseline_policy()])
    S = lambda ns, n: CredentialKey("Secret", ns, n)  # noqa: E731
    A = lambda ns, n: CredentialKey(SA, ns, n)  # noqa: E731
    assert _affected(inventory, world["a"]) == {S("ml", "creds")}
    assert _affected(inventory, world["b"]) == {S("ml-dev", "creds"), S("ml", "creds")}
    assert _affected(inventory, world["token"]) == {S("ml", "runner-token"), A("ml", "runner")}
    assert _affected(inventory, world["sa"]) == {A("ml", "runner"), S("ml", "runner-token")}
    assert _affected(inventory, world["ns"]) == {
        S("ml", "creds"),
        S("ml", "runner-token"),
        A("ml", "runner"),
    }
    assert _affected(inventory, world["crb"]) == {A("ml", "runner")}
    assert _affected(inventory, world["dep"]) == {
        S("ml", "creds"),
        S("ml", "runner-token"),
        A("ml", "runner"),
    }
    # removals
    assert inventory.remove_secret("ml-dev", "creds") == {S("ml-dev", "creds"), S("ml", "creds")}
    assert inventory.remove_binding("ClusterRoleBinding", "", "admin") == {A("ml", "runner")}
    assert inventory.remove_workload("Deployment", "ml", "web") == {
        S("ml", "creds"),
        S("ml", "runner-token"),
        A("ml", "runner"),
    }
    assert inventory.remove_service_account("ml", "runner") == {
        A("ml", "runner"),
        S("ml", "runner-token"),
    }
    assert inventory.remove_namespace("ml") == {S("ml", "creds"), S("ml", "runner-token")}
    assert inventory.remove_secret("ml", "nothing") == set()


def test_changing_a_value_affects_the_former_copies() -> None:
    world = _world()
    inventory = build_inventory([world["a"], world["b"]], [baseline_policy()])
    changed = opaque_secret("creds", "ml-dev", data={"password": "a-new-value-123"})
    affected = add_object(inventory, changed)
    assert CredentialKey("Secret", "ml", "creds") in affected
    record = record_of(evaluate(inventory, NOW), "creds", "ml")
    assert "duplicate-secret" not in {f.rule for f in record.findings}


def test_incremental_evaluation_equals_a_fresh_inventory() -> None:
    world = _world()
    policies = [baseline_policy()]
    inventory = build_inventory([], policies)
    cache = {}

    def refresh(keys):
        for key in keys:
            result = evaluate_credential(inventory, key, NOW)
            if result is None:
                cache.pop(key, None)
            else:
                cache[key] = result[0]

    for body in world.values():
        refresh(add_object(inventory, body))
    refresh(inventory.remove_secret("ml-dev", "creds"))
    refresh(inventory.remove_binding("ClusterRoleBinding", "", "admin"))
    refresh(
        add_object(inventory, deployment("web", "ml", volumes=["creds"], service_account="other"))
    )
    refresh(add_object(inventory, namespace("ml")))
    refresh(add_object(inventory, service_account("runner", "ml", labels={"team": "ml"})))
    final = [
        world["sa"],
        world["token"],
        world["a"],
        namespace("ml"),
        deployment("web", "ml", volumes=["creds"], service_account="other"),
        service_account("runner", "ml", labels={"team": "ml"}),
    ]
    fresh = evaluate_objects(final, policies)
    assert sorted(cache.values(), key=lambda r: r.key) == fresh.records
    assert evaluate(inventory, NOW).records == fresh.records
