"""Decisions a platform engineer relies on: who acts, when warnings start, what counts."""

from __future__ import annotations

from datetime import timedelta

from conftest import (
    NOW,
    actions_for,
    ago,
    deployment,
    evaluate_objects,
    managed_field,
    namespaced_policy,
    opaque_secret,
    owner_reference,
    pod,
    policy,
    record_of,
    rules_of,
    token_secret,
)
from credwarden.records import Revoke


def test_a_namespace_audit_policy_does_not_mask_cluster_enforcement() -> None:
    # the namespace's own Audit/Warn limit (90d) decides the deadline shown, but once the
    # platform's Enforce/Revoke limit (365d) has passed too, that policy acts
    platform = policy(
        "platform",
        {
            "mode": "Enforce",
            "limits": {"serviceAccountTokens": {"maxAge": "365d", "action": "Revoke"}},
        },
    )
    team = namespaced_policy(
        "relaxed", "team", limits={"serviceAccountTokens": {"maxAge": "90d", "action": "Warn"}}
    )
    old = token_secret("old", "team", service_account="ci", created=ago(400))
    young = token_secret("young", "team", service_account="ci", created=ago(200))
    evaluation = evaluate_objects([old, young], [platform, team])

    assert record_of(evaluation, "old", "team").policy == "team/relaxed"
    (revoke,) = [a for a in actions_for(evaluation, "old", "team") if isinstance(a, Revoke)]
    assert revoke.policy == "platform" and revoke.enforced
    # past the team's 90d but not the platform's 365d: reported, not revoked
    assert rules_of(record_of(evaluation, "young", "team")) >= {"long-lived-token"}
    assert not [a for a in actions_for(evaluation, "young", "team") if isinstance(a, Revoke)]


def test_short_limits_warn_a_quarter_ahead_without_a_warn_before() -> None:
    short = policy("short", {"limits": {"secrets": {"maxAge": "8d"}}})
    # 8d limit: the warning starts 2d before expiry (a quarter), not 14d before
    calm = opaque_secret("calm", created=ago(5))
    warned = opaque_secret("warned", created=ago(7))
    evaluation = evaluate_objects([calm, warned], [short])
    assert record_of(evaluation, "calm").status == "Compliant"
    assert record_of(evaluation, "calm").next_review_at == NOW + timedelta(days=1)
    assert record_of(evaluation, "warned").status == "Expiring"


def test_a_hand_rotation_after_credwardens_counts() -> None:
    rotated_by_hand = opaque_secret(
        "db",
        created=ago(400),
        annotations={"credwarden.io/last-rotated": ago(300)},
        managed_fields=[managed_field("kubectl-edit", ago(3), data=True)],
    )
    record = record_of(
        evaluate_objects([rotated_by_hand], [policy("p", {"limits": {"secrets": {}}})]), "db"
    )
    assert record.status == "Compliant"
    assert record.last_rotated_at == NOW - timedelta(days=3)


def test_pods_of_a_deployment_are_reported_through_it_and_orphans_on_their_own() -> None:
    uses = {"env_from": ["creds"]}
    objects = [
        opaque_secret("creds"),
        deployment("web", **uses),
        # the Deployment's Pod (its ReplicaSet web-5d8f is not read): reported as `web`
        pod("web-5d8f-abcde", owner_references=[owner_reference("ReplicaSet", "web-5d8f")], **uses),
        # a Pod of a ReplicaSet no known Deployment owns (e.g. an Argo Rollout): reported itself
        pod(
            "canary-7c9d-xyz",
            owner_references=[owner_reference("ReplicaSet", "canary-7c9d")],
            **uses,
        ),
    ]
    record = record_of(
        evaluate_objects(objects, [policy("p", {"limits": {"secrets": {}}})]), "creds"
    )
    assert [(c.kind, c.name, c.via) for c in record.consumers] == [
        ("Deployment", "web", "env"),
        ("Pod", "canary-7c9d-xyz", "env"),
    ]
