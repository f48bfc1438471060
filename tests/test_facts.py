"""Facts: what credwarden keeps of each object, and lastRotatedAt."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import (
    CANARY,
    HASH_KEY,
    NOW,
    ago,
    b64,
    baseline_policy,
    canaries,
    cluster_role_binding,
    cronjob,
    deployment,
    evaluate_objects,
    managed_field,
    metadata,
    namespace,
    opaque_secret,
    owner_reference,
    pod,
    record_of,
    role_binding,
    secret,
    service_account,
    token_secret,
    ts,
)
from credwarden.engine import last_rotated
from credwarden.facts import (
    LAST_APPLIED,
    PolicyFacts,
    SecretUse,
    binding_facts,
    meta_of,
    namespace_facts,
    parse_date,
    parse_time,
    secret_facts,
    service_account_facts,
    value_hash,
    workload_facts,
)

# ---- time parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05.123456Z", datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2025-01-02T05:04:05+02:00", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (" 2025-01-02T03:04:05Z ", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_parse_time_reads_rfc3339_as_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [None, "", "yesterday", "2025-13-01T00:00:00Z", 12, [], {}])
def test_parse_time_returns_none_for_junk(value: object) -> None:
    assert parse_time(value) is None


def test_parse_time_accepts_datetimes_from_yaml() -> None:
    # PyYAML turns an unquoted timestamp into a datetime
    naive = datetime(2025, 1, 1, 0, 0)
    assert parse_time(naive) == datetime(2025, 1, 1, tzinfo=UTC)
    aware = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_time(aware) == aware


@pytest.mark.parametrize(
    "text",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"],
)
def test_parse_time_never_raises_at_the_edges_of_the_calendar(text: str) -> None:
    # a user-writable annotation (credwarden.io/last-rotated) goes through parse_time:
    # converting these to UTC leaves datetime's range; the result must be None or a
    # datetime, never an OverflowError
    result = parse_time(text)
    assert result is None or isinstance(result, datetime)


def test_parse_date() -> None:
    assert parse_date("2025-03-04") == date(2025, 3, 4)
    assert parse_date("not-a-date") is None
    assert parse_date(None) is None


# ---- metadata --------------------------------------------------------------------------


def test_meta_keeps_string_labels_and_annotations_and_drops_last_applied() -> None:
    body = {
        "metadata": {
            "name": "s",
            "namespace": "n",
            "labels": {"team": "data", "bad": 3, "none": None},
            "annotations": {
                "a": "b",
                LAST_APPLIED: json.dumps({"data": {"password": b64(CANARY)}}),
                "nested": {"x": 1},
            },
        }
    }
    meta = meta_of(body)
    assert dict(meta.labels) == {"team": "data"}
    assert dict(meta.annotations) == {"a": "b"}
    assert all(form not in repr(meta) for form in canaries())


def _as_received(body: dict[str, object]) -> dict[str, object]:
    """The body as decoded from its own JSON document: its own copy of every string."""
    return json.loads(json.dumps(body))  # type: ignore[no-any-return]


def test_objects_with_the_same_labels_share_one_read_only_copy() -> None:
    labels = {"app": "web", "team": "data"}
    first = meta_of(_as_received({"metadata": {"name": "a", "labels": labels}}))
    second = meta_of(_as_received({"metadata": {"name": "b", "labels": dict(labels)}}))
    other = meta_of(_as_received({"metadata": {"name": "c", "labels": {"app": "api"}}}))
    assert first.labels is second.labels
    assert dict(first.labels) == labels
    assert dict(other.labels) == {"app": "api"}


def test_values_of_annotations_that_repeat_are_one_copy_and_others_are_kept_as_sent() -> None:
    from credwarden.engine import MANAGED_ANNOTATIONS, STATUS_ANNOTATION
    from credwarden.facts import REPEATED_VALUE_ANNOTATIONS

    annotations = {STATUS_ANNOTATION: "NonCompliant", "example.com/note": "written by a person"}
    first = meta_of(_as_received({"metadata": {"name": "a", "annotations": annotations}}))
    second = meta_of(_as_received({"metadata": {"name": "b", "annotations": annotations}}))
    assert first.annotations[STATUS_ANNOTATION] is second.annotations[STATUS_ANNOTATION]
    assert first.annotations["example.com/note"] is not second.annotations["example.com/note"]
    assert dict(first.annotations) == annotations
    # every credwarden annotation whose values repeat is covered; expires-at is mostly unique
    assert set(MANAGED_ANNOTATIONS) - REPEATED_VALUE_ANNOTATIONS == {"credwarden.io/expires-at"}


def test_annotations_read_one_by_one_and_objects_with_the_same_keys_share_the_key_tuple() -> None:
    first = meta_of(_as_received({"metadata": {"name": "a", "annotations": {"x": "1", "y": ""}}}))
    second = meta_of(_as_received({"metadata": {"name": "b", "annotations": {"x": "2", "y": "3"}}}))
    assert first.annotation("x") == "1"
    assert first.annotation("y") == ""  # present but empty: not None
    assert first.annotation("z") is None
    assert second.annotation("x") == "2"
    assert first.annotation_keys is second.annotation_keys
    assert meta_of({"metadata": {"name": "c"}}).annotation("x") is None


@pytest.mark.parametrize(
    ("uid", "packed"),
    [
        ("0f8e4c3a-1b2d-4e5f-8a9b-0c1d2e3f4a5b", True),  # the API server's form: an int
        ("00000000-0000-0000-0000-000000000000", True),
        ("0F8E4C3A-1B2D-4E5F-8A9B-0C1D2E3F4A5B", False),  # any other form: kept as it is
        ("0f8e4c3a_1b2d_4e5f_8a9b_0c1d2e3f4a5b", False),
        ("uid-1", False),
        ("", False),
    ],
)
def test_a_uid_reads_back_exactly_as_the_api_server_sent_it(uid: str, packed: bool) -> None:
    meta = meta_of(
        {"metadata": {"name": "s", "namespace": "n", "uid": uid, "resourceVersion": "42"}}
    )
    assert meta.uid == uid
    assert meta.resource_version == "42"
    # with a decimal resourceVersion, uid and version are one int
    assert (type(meta.identity) is int) == packed


VERSIONS = ["0", "7", "123456789012", "9" * 19, "0123", "12a", "", "\u0661", "9" * 20, "9" * 5000]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_resource_version_reads_back_exactly_as_the_api_server_sent_it(version: str) -> None:
    for uid in (
        "0f8e4c3a-1b2d-4e5f-8a9b-0c1d2e3f4a5b",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "",
        "uid-1",
    ):
        meta = meta_of({"metadata": {"name": "s", "uid": uid, "resourceVersion": version}})
        assert (meta.uid, meta.resource_version) == (uid, version)
    assert meta_of({"metadata": {"name": "s"}}).resource_version == ""


def test_meta_controller_is_the_owner_reference_with_controller_true() -> None:
    body = {
        "metadata": metadata(
            "s",
            "n",
            owner_references=[
                owner_reference("ConfigMap", "other", controller=False),
                owner_reference("ExternalSecret", "db", api_version="external-secrets.io/v1"),
            ],
        )
    }
    meta = meta_of(body)
    assert meta.controller is not None
    assert (meta.controller.kind, meta.controller.name) == ("ExternalSecret", "db")
    assert len(meta.owner_references) == 2


def test_meta_without_controller() -> None:
    body = {
        "metadata": metadata(
            "s", "n", owner_references=[owner_reference("X", "y", controller=False)]
        )
    }
    assert meta_of(body).controller is None


def test_meta_reads_owner_annotation_manager_and_newest_data_write() -> None:
    body = {
        "metadata": metadata(
            "s",
            "n",
            created=ago(400),
            managed_fields=[
                managed_field("kubectl-create", ago(400), data=True),
                managed_field("credwarden", ago(5), annotations=["credwarden.io/owner"]),
                managed_field("rotator", ago(30), data=True),
                managed_field("kubectl-annotate", ago(1), annotations=["team"]),
                {"manager": "broken", "time": "not-a-time", "fieldsV1": {"f:data": {}}},
                {"manager": "sd", "time": ago(20), "fieldsV1": {"f:stringData": {}}},
            ],
        )
    }
    meta = meta_of(body)
    # the owner annotation's manager is kept; a later write to another annotation
    # (kubectl-annotate on `team`) does not change it
    assert meta.owner_annotation_manager == "credwarden"
    assert meta.data_changed_at == parse_time(ago(20))


def test_meta_deleting() -> None:
    body = {"metadata": {"name": "s", "deletionTimestamp": ago(0)}}
    assert meta_of(body).deleting is True
    assert meta_of({"metadata": {"name": "s"}}).deleting is False


def test_managed_fields_with_non_string_keys_do_not_raise() -> None:
    # YAML happily produces integer keys; facts must accept any shape without raising
    body = {
        "metadata": {
            "name": "s",
            "managedFields": [
                {"manager": "m", "fieldsV1": {"f:metadata": {"f:annotations": {1: {}, None: {}}}}}
            ],
        }
    }
    meta = meta_of(body)
    assert meta.name == "s"


# ---- Secrets ---------------------------------------------------------------------------


def test_secret_values_are_kept_only_as_keyed_hashes() -> None:
    body = opaque_secret("db", data={"password": CANARY, "user": "admin-user"})
    facts = secret_facts(body, HASH_KEY)
    assert set(facts.value_hashes) == {"password", "user"}
    assert facts.value_hashes["password"] == value_hash(HASH_KEY, CANARY.encode())
    assert all(form not in repr(facts) for form in canaries())


def test_hashes_depend_on_the_key_and_the_value() -> None:
    one = secret_facts(opaque_secret("a", data={"password": CANARY}), HASH_KEY)
    same = secret_facts(opaque_secret("b", "other", data={"password": CANARY}), HASH_KEY)
    other_key = secret_facts(opaque_secret("a", data={"password": CANARY}), b"another-key" * 3)
    other_value = secret_facts(opaque_secret("a", data={"password": CANARY + "x"}), HASH_KEY)
    assert one.value_hashes == same.value_hashes
    assert one.value_hashes != other_key.value_hashes
    assert one.value_hashes != other_value.value_hashes


def test_short_values_and_shared_by_design_keys_are_not_compared() -> None:
    body = token_secret("t", service_account="sa")
    facts = secret_facts(body, HASH_KEY)
    assert set(facts.value_hashes) == {"token"}  # ca.crt and namespace are left out
    short = secret_facts(opaque_secret("s", data={"pin": "1234567", "key": "12345678"}), HASH_KEY)
    assert set(short.value_hashes) == {"key"}


def test_string_data_counts_and_wins_over_data() -> None:
    body = secret("s", data={"password": "from-data-value"}, string_data={"password": CANARY})
    facts = secret_facts(body, HASH_KEY)
    assert facts.value_hashes["password"] == value_hash(HASH_KEY, CANARY.encode())


def test_secret_type_defaults_to_opaque() -> None:
    body = {"metadata": {"name": "s", "namespace": "n"}, "data": {"k": b64("value-123456")}}
    assert secret_facts(body, HASH_KEY).type == "Opaque"


def test_token_secret_facts() -> None:
    body = token_secret("ci-token", "ci", service_account="deployer", last_used="2026-01-02")
    body["metadata"]["labels"]["kubernetes.io/legacy-token-invalid-since"] = "2026-02-03"
    facts = secret_facts(body, HASH_KEY)
    assert facts.is_token and not facts.is_tls
    assert facts.service_account == "deployer"
    assert facts.service_account_uid == "uid-ci-deployer"
    assert facts.legacy_last_used == date(2026, 1, 2)
    assert facts.legacy_invalid_since == date(2026, 2, 3)
    assert facts.key == ("ci", "ci-token")


def test_data_values_that_are_not_base64_are_dropped_without_raising() -> None:
    body = secret("s")
    body["data"] = {"a": "!!!not-base64!!!", "b": "é-non-ascii", "c": 42, "d": None, 5: "eA=="}
    facts = secret_facts(body, HASH_KEY)
    assert facts.meta.name == "s"


# ---- other kinds -----------------------------------------------------------------------


def test_service_account_facts() -> None:
    body = service_account("app", "n", secrets=["app-token"], image_pull_secrets=["ghcr"])
    body["automountServiceAccountToken"] = False
    facts = service_account_facts(body)
    assert facts.secret_names == ("app-token",)
    assert facts.image_pull_secrets == ("ghcr",)
    assert facts.automount is False
    assert service_account_facts({"metadata": {"name": "x"}, "secrets": "junk"}).secret_names == ()


def test_role_binding_subjects_default_to_the_binding_namespace() -> None:
    body = role_binding("rb", "team", subjects=[{"kind": "ServiceAccount", "name": "app"}])
    facts = binding_facts(body)
    assert facts.kind == "RoleBinding"
    assert (facts.role_kind, facts.role_name) == ("ClusterRole", "cluster-admin")
    assert facts.subjects[0].namespace == "team"


def test_cluster_role_binding_facts() -> None:
    body = cluster_role_binding("crb", subjects=[("kube-system", "john-smith")])
    facts = binding_facts(body)
    assert facts.key == ("ClusterRoleBinding", "", "crb")
    assert facts.subjects[0].namespace == "kube-system"


def test_namespace_facts() -> None:
    facts = namespace_facts(namespace("ml", labels={"env": "prod"}, annotations={"a": "b"}))
    assert facts.name == "ml"
    assert facts.labels["env"] == "prod"
    assert facts.labels["kubernetes.io/metadata.name"] == "ml"


def test_pod_secret_uses_every_way() -> None:
    body = pod(
        "p",
        "n",
        service_account="app",
        env=["env-secret"],
        env_from=["envfrom-secret"],
        volumes=["volume-secret"],
        projected=["projected-secret"],
        image_pull_secrets=["pull-secret"],
    )
    body["spec"]["initContainers"] = [
        {"name": "init", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "init-s"}}}]}
    ]
    facts = workload_facts(body)
    assert set(facts.uses) == {
        SecretUse("env-secret", "env"),
        SecretUse("envfrom-secret", "env"),
        SecretUse("volume-secret", "file"),
        SecretUse("projected-secret", "file"),
        SecretUse("pull-secret", "imagePullSecret"),
        SecretUse("init-s", "env"),
    }
    assert facts.service_account == "app"
    assert facts.controlled is False


def test_pod_without_account_runs_as_default_and_deprecated_field_is_read() -> None:
    assert workload_facts(pod("p")).service_account == "default"
    body = pod("p")
    body["spec"]["serviceAccount"] = "legacy-field"
    assert workload_facts(body).service_account == "legacy-field"


def test_deployment_and_cronjob_pod_specs() -> None:
    dep = workload_facts(deployment("web", "n", env=["db"], service_account="web"))
    assert dep.uses == (SecretUse("db", "env"),)
    assert dep.service_account == "web"
    cron = workload_facts(cronjob("backup", "n", volumes=["s3"], service_account="backup"))
    assert cron.uses == (SecretUse("s3", "file"),)
    assert cron.service_account == "backup"


def test_pods_controlled_by_workloads_are_marked_controlled() -> None:
    controlled = pod("web-abc", owner_references=[owner_reference("ReplicaSet", "web-1")])
    assert workload_facts(controlled).controlled is True
    custom = pod("spark-driver", owner_references=[owner_reference("SparkApplication", "job")])
    assert workload_facts(custom).controlled is False


def test_policy_display_name() -> None:
    assert PolicyFacts("CredentialPolicy", "team", "p").display_name == "team/p"
    assert PolicyFacts("ClusterCredentialPolicy", "", "p").display_name == "p"


# ---- junk shapes -----------------------------------------------------------------------

JUNK_BODIES: list[dict[str, object]] = [
    {},
    {"metadata": None},
    {"metadata": "x"},
    {"metadata": {"name": 5, "namespace": ["x"], "labels": "x", "annotations": [1, 2]}},
    {"metadata": {"ownerReferences": "x", "managedFields": {"a": 1}}},
    {"metadata": {"ownerReferences": [None, 1, {"kind": 3}], "managedFields": [None, "x", 3]}},
    {"metadata": {"creationTimestamp": 12345, "deletionTimestamp": {"x": 1}}},
    {"metadata": {"managedFields": [{"fieldsV1": {"f:metadata": {"f:annotations": ["x"]}}}]}},
    {"metadata": {"managedFields": [{"fieldsV1": {"f:metadata": "x"}, "time": 5}]}},
    {"kind": 7, "type": ["x"], "data": "x", "stringData": [1]},
    {"type": "kubernetes.io/tls", "data": {"tls.crt": 5}},
    {"type": "kubernetes.io/tls", "data": {"tls.crt": "bm90IGEgY2VydA=="}},
    {"data": {"k": "====", "j": "a", "l": "YQ"}},
    {"kind": "Pod", "spec": {"containers": "x", "volumes": [None, {"secret": "x"}]}},
    {"kind": "Pod", "spec": {"containers": [{"env": [None, {"valueFrom": 1}], "envFrom": "x"}]}},
    {"kind": "Pod", "spec": {"volumes": [{"projected": {"sources": "x"}}]}},
    {"kind": "CronJob", "spec": {"jobTemplate": []}},
    {"kind": "Deployment", "spec": {"template": {"spec": None}}},
    {"roleRef": "x", "subjects": "x"},
    {"roleRef": {"kind": 1}, "subjects": [None, 3, {"kind": None}]},
    {"secrets": [None, 1, {"name": 3}], "imagePullSecrets": "x"},
    {"automountServiceAccountToken": "yes"},
]


@pytest.mark.parametrize("body", JUNK_BODIES)
def test_facts_functions_never_raise_on_junk(body: dict[str, object]) -> None:
    secret_facts(body, HASH_KEY)
    service_account_facts(body)
    binding_facts(body)
    namespace_facts(body)
    workload_facts(body)
    meta_of(body)


# ---- lastRotatedAt ---------------------------------------------------------------------


def test_last_rotated_prefers_the_credwarden_annotation() -> None:
    body = opaque_secret(
        "s",
        created=ago(400),
        annotations={"credwarden.io/last-rotated": ago(3)},
        managed_fields=[managed_field("rotator", ago(30), data=True)],
    )
    assert last_rotated(secret_facts(body, HASH_KEY)) == parse_time(ago(3))


def test_last_rotated_falls_back_to_the_newest_data_write() -> None:
    body = opaque_secret(
        "s",
        created=ago(400),
        managed_fields=[
            managed_field("kubectl-create", ago(400), data=True),
            managed_field("rotator", ago(30), data=True),
            managed_field("labeller", ago(2), annotations=["note"]),
        ],
    )
    assert last_rotated(secret_facts(body, HASH_KEY)) == parse_time(ago(30))


def test_last_rotated_falls_back_to_creation_and_ignores_a_malformed_annotation() -> None:
    body = opaque_secret(
        "s", created=ago(400), annotations={"credwarden.io/last-rotated": "last tuesday"}
    )
    assert last_rotated(secret_facts(body, HASH_KEY)) == parse_time(ago(400))


def test_last_rotated_is_none_without_any_date() -> None:
    body = opaque_secret("s")
    del body["metadata"]["creationTimestamp"]
    assert last_rotated(secret_facts(body, HASH_KEY)) is None


def test_a_data_write_resets_the_age_clock_that_creation_alone_would_not() -> None:
    old_unrotated = opaque_secret("old", created=ago(400), annotations={"credwarden.io/owner": "t"})
    old_rotated = opaque_secret(
        "rotated",
        created=ago(400),
        annotations={"credwarden.io/owner": "t"},
        managed_fields=[
            managed_field("kubectl-create", ago(400), data=True),
            managed_field("rotate-script", ago(10), data=True),
        ],
    )
    evaluation = evaluate_objects([old_unrotated, old_rotated], [baseline_policy()])
    unrotated = record_of(evaluation, "old")
    rotated = record_of(evaluation, "rotated")
    assert unrotated.status == "NonCompliant"
    assert rotated.status == "Compliant"
    assert rotated.to_json()["lastRotatedAt"] == ago(10)
    assert rotated.to_json()["createdAt"] == ago(400)
    assert rotated.expires_at == NOW - timedelta(days=10) + timedelta(days=180)
    assert "after last rotation" in str(
        record_of(
            evaluate_objects([old_rotated], [baseline_policy()], NOW + timedelta(days=200)),
            "rotated",
        ).findings
    )


def test_last_rotated_annotation_resets_the_clock_in_the_record() -> None:
    body = opaque_secret(
        "s",
        created=ago(400),
        annotations={"credwarden.io/last-rotated": ago(1), "credwarden.io/owner": "t"},
    )
    record = record_of(evaluate_objects([body], [baseline_policy()]), "s")
    assert record.status == "Compliant"
    assert record.last_rotated_at == parse_time(ago(1))


def test_service_account_records_have_no_last_rotated() -> None:
    record = record_of(
        evaluate_objects([service_account("app")], [baseline_policy()]),
        "app",
        kind="ServiceAccount",
    )
    assert record.last_rotated_at is None
    assert record.to_json()["lastRotatedAt"] is None


def test_time_with_offset_is_reported_in_utc() -> None:
    local = datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    body = opaque_secret("s", created=local.isoformat())
    record = record_of(evaluate_objects([body], [baseline_policy()]), "s")
    assert record.to_json()["createdAt"] == ts(local) == "2026-05-01T12:00:00Z"


@pytest.mark.parametrize(
    "value",
    ["2026-11-22T12:00:00Z", "0999-01-01T00:00:00Z", "2026-11-22 12:00:00Z", "soon", ""],
)
def test_the_expires_at_annotation_reads_back_exactly_as_written(value: str) -> None:
    # credwarden keeps its own expires-at instants packed as seconds; any other text as is
    from credwarden.engine import EXPIRES_ANNOTATION

    meta = meta_of({"metadata": {"name": "s", "annotations": {EXPIRES_ANNOTATION: value}}})
    assert meta.annotation(EXPIRES_ANNOTATION) == value
    assert meta.annotations == {EXPIRES_ANNOTATION: value}


@given(
    st.one_of(
        st.text(max_size=24),
        st.datetimes(timezones=st.just(UTC)).map(
            lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        ),
    )
)
def test_any_expires_at_annotation_reads_back_exactly(value: str) -> None:
    from credwarden.engine import EXPIRES_ANNOTATION

    meta = meta_of({"metadata": {"name": "s", "annotations": {EXPIRES_ANNOTATION: value}}})
    assert meta.annotation(EXPIRES_ANNOTATION) == value
