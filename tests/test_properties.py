"""Property tests (hypothesis) of the facts and the engine.

Profiles are derandomized so CI is reproducible; example counts are kept modest.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import (
    CANARY,
    HASH_KEY,
    NOW,
    add_object,
    b64,
    build_inventory,
    canaries,
    certificate,
    everything_printed,
    policy_manifest,
    ts,
)
from credwarden.engine import evaluate, evaluate_credential
from credwarden.facts import (
    binding_facts,
    meta_of,
    namespace_facts,
    secret_facts,
    service_account_facts,
    workload_facts,
)
from credwarden.inventory import CredentialKey, Inventory
from credwarden.policies import policy_from_manifest
from credwarden.records import STATUS_ORDER

PROFILE = dict(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

NAMESPACES = ["default", "kube-system", "ml"]
NAMES = ["db", "john-smith", "kube-proxy", "ci", "backup-tool"]
SECRET_TYPES = [
    "Opaque",
    "kubernetes.io/service-account-token",
    "kubernetes.io/tls",
    "kubernetes.io/dockerconfigjson",
    "kubernetes.io/basic-auth",
    "helm.sh/release.v1",
]
VALUES = [CANARY, CANARY + "-2", "shared-value-0001", "short"]
CERTS = [
    certificate(NOW + timedelta(days=400)),
    certificate(NOW + timedelta(days=10)),
    certificate(NOW - timedelta(days=10)),
    certificate(NOW + timedelta(days=100), der=True),
]
DURATIONS = [
    ("90d", "14d"),
    ("30d", "7d"),
    ("720h", "24h"),
    ("2w", "3d"),
    ("1d", "1h"),
    ("400d", "30d"),
]

# ---- strategies: objects as the Kubernetes schema allows them ---------------------------


def rarely(draw, n: int) -> bool:
    """True about once in n + 1 draws; False in the simplest example (shrinks away)."""
    return draw(st.integers(0, n)) == n


times = st.datetimes(
    min_value=datetime(2019, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
)
time_text = times.map(ts)
maybe_time = st.one_of(time_text, st.none())
names = st.sampled_from(NAMES)
namespaces = st.sampled_from(NAMESPACES)
label_values = st.sampled_from(["data", "ml-team", "prod", "x"])


@st.composite
def managed_fields(draw):
    entries = []
    for _ in range(draw(st.integers(0, 3))):
        fields = {}
        if draw(st.booleans()):
            fields["f:data"] = {}
        keys = draw(
            st.lists(
                st.sampled_from(["credwarden.io/owner", "credwarden.io/status", "note"]), max_size=2
            )
        )
        if keys:
            fields["f:metadata"] = {"f:annotations": {f"f:{k}": {} for k in keys}}
        entries.append(
            {
                "manager": draw(
                    st.sampled_from(["credwarden", "kubectl-client-side-apply", "helm"])
                ),
                "operation": "Update",
                "time": draw(time_text),
                "fieldsType": "FieldsV1",
                "fieldsV1": fields,
            }
        )
    return entries


@st.composite
def object_meta(draw, kind, namespace=None, name=None):
    name = name or draw(names)
    meta = {
        "name": name,
        "uid": f"uid-{kind}-{name}",
        "resourceVersion": str(draw(st.integers(1, 99))),
    }
    if namespace is not None:
        meta["namespace"] = namespace
    created = draw(maybe_time)
    if created is not None:
        meta["creationTimestamp"] = created
    labels = draw(
        st.dictionaries(
            st.sampled_from(["team", "owner", "tier", "env", "argocd.argoproj.io/instance"]),
            label_values,
            max_size=3,
        )
    )
    if draw(st.booleans()) and kind == "Secret":
        labels["kubernetes.io/legacy-token-last-used"] = draw(times).date().isoformat()
    if labels:
        meta["labels"] = labels
    annotations = {}
    if rarely(draw, 9):
        annotations["credwarden.io/exempt"] = draw(st.sampled_from(["approved", ""]))
    for key, strategy in (
        ("credwarden.io/owner", st.sampled_from(["alice", "platform", ""])),
        ("credwarden.io/owner-source", st.sampled_from(["annotation", "label:team", "namespace"])),
        ("credwarden.io/last-rotated", st.one_of(time_text, st.just("garbage"))),
        ("credwarden.io/status", st.sampled_from(["Compliant", "Expiring", "NonCompliant"])),
        (
            "credwarden.io/findings",
            st.sampled_from(["", "missing-owner", "credential-expired,missing-owner"]),
        ),
        ("meta.helm.sh/release-name", st.just("rel")),
        ("argocd.argoproj.io/tracking-id", st.just("app:/Secret:ns/x")),
    ):
        if rarely(draw, 4):
            annotations[key] = draw(strategy)
    if annotations:
        meta["annotations"] = annotations
    if rarely(draw, 3):
        meta["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": draw(st.sampled_from(["ExternalSecret", "ReplicaSet", "Job"])),
                "name": "parent",
                "uid": "p",
                "controller": draw(st.booleans()),
            }
        ]
    mf = draw(managed_fields())
    if mf:
        meta["managedFields"] = mf
    return meta


@st.composite
def secrets(draw, namespace=None, name=None):
    namespace = namespace or draw(namespaces)
    secret_type = draw(st.sampled_from(SECRET_TYPES))
    meta = draw(object_meta("Secret", namespace, name))
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": meta}
    if not rarely(draw, 5):
        body["type"] = secret_type
    data = {
        key: b64(draw(st.sampled_from(VALUES)))
        for key in draw(st.lists(st.sampled_from(["password", "token", "ca.crt"]), max_size=2))
    }
    if secret_type == "kubernetes.io/tls" and not rarely(draw, 4):
        data["tls.crt"] = b64(draw(st.sampled_from([*CERTS, CANARY.encode()])))
    if secret_type == "kubernetes.io/service-account-token":
        meta.setdefault("annotations", {})["kubernetes.io/service-account.name"] = draw(names)
    if data:
        body["data"] = data
    if rarely(draw, 5):
        body["stringData"] = {"extra": draw(st.sampled_from(VALUES))}
    return body


@st.composite
def service_accounts(draw, namespace=None, name=None):
    namespace = namespace or draw(namespaces)
    body = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": draw(object_meta("ServiceAccount", namespace, name)),
    }
    if draw(st.booleans()):
        body["secrets"] = [{"name": n} for n in draw(st.lists(names, max_size=2))]
    if rarely(draw, 3):
        body["automountServiceAccountToken"] = draw(st.booleans())
    return body


@st.composite
def namespace_objects(draw, name=None):
    name = name or draw(namespaces)
    meta = draw(object_meta("Namespace", None, name))
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


@st.composite
def bindings(draw, name=None):
    cluster = draw(st.booleans())
    ns = None if cluster else draw(namespaces)
    subjects = [
        {
            "kind": draw(st.sampled_from(["ServiceAccount", "ServiceAccount", "User", "Group"])),
            "name": draw(names),
            **({"namespace": draw(namespaces)} if cluster or draw(st.booleans()) else {}),
        }
        for _ in range(draw(st.integers(1, 2)))
    ]
    metadata = {"name": name or draw(st.sampled_from(["admin", "view", "edit"]))}
    if ns:
        metadata["namespace"] = ns
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding" if cluster else "RoleBinding",
        "metadata": metadata,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": draw(st.sampled_from(["ClusterRole", "Role"])),
            "name": draw(st.sampled_from(["cluster-admin", "view"])),
        },
        "subjects": subjects,
    }


@st.composite
def pod_specs(draw):
    container = {"name": "c", "image": "i"}
    env = draw(st.lists(names, max_size=2))
    if env:
        container["env"] = [
            {"name": f"V{i}", "valueFrom": {"secretKeyRef": {"name": n, "key": "k"}}}
            for i, n in enumerate(env)
        ]
    env_from = draw(st.lists(names, max_size=1))
    if env_from:
        container["envFrom"] = [{"secretRef": {"name": n}} for n in env_from]
    spec = {"containers": [container]}
    volumes = draw(st.lists(names, max_size=2))
    if volumes:
        spec["volumes"] = [
            {"name": f"v{i}", "secret": {"secretName": n}} for i, n in enumerate(volumes)
        ]
    if draw(st.booleans()):
        spec["serviceAccountName"] = draw(names)
    if rarely(draw, 3):
        spec["imagePullSecrets"] = [{"name": draw(names)}]
    return spec


@st.composite
def workloads(draw, kind=None, namespace=None, name=None):
    kind = kind or draw(
        st.sampled_from(["Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"])
    )
    meta = draw(
        object_meta(
            kind, namespace or draw(namespaces), name or draw(st.sampled_from(["w1", "w2"]))
        )
    )
    spec = draw(pod_specs())
    if kind == "Pod":
        body_spec = spec
    elif kind == "CronJob":
        body_spec = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}}
    else:
        body_spec = {"template": {"spec": spec}}
    return {"kind": kind, "metadata": meta, "spec": body_spec}


@st.composite
def policy_specs(draw, broad=False):
    spec = {"mode": draw(st.sampled_from(["Audit", "Enforce"]))}
    limits = {}
    narrow = 0 if broad else 3  # 1 in (narrow + 1) chance of each narrowing field
    if not rarely(draw, 2):
        max_age, warn = draw(st.sampled_from(DURATIONS))
        limits["serviceAccountTokens"] = {
            "maxAge": max_age,
            "warnBefore": warn,
            "action": draw(st.sampled_from(["Warn", "Revoke"])),
        }
        if draw(st.booleans()):
            limits["serviceAccountTokens"]["unusedAfter"] = draw(st.sampled_from(["7d", "30d"]))
    if not rarely(draw, 2):
        max_age, warn = draw(st.sampled_from(DURATIONS))
        action = draw(st.sampled_from(["Warn", "Rotate"]))
        limits["secrets"] = {"maxAge": max_age, "warnBefore": warn, "action": action}
        if action == "Rotate":
            spec["rotation"] = {"keys": ["password"]}
    if not rarely(draw, 2):
        limits["certificates"] = {"warnBefore": draw(st.sampled_from(["30d", "1d"]))}
    spec["limits"] = limits
    if broad or draw(st.booleans()):
        spec["identity"] = {
            "systemAccounts": draw(st.lists(st.sampled_from(["backup-*", "ci"]), max_size=1))
        }
    if broad or draw(st.booleans()):
        spec["ownership"] = {"required": not rarely(draw, 3)}
    if narrow and rarely(draw, narrow):
        spec["selector"] = {
            "matchExpressions": [
                {"key": "tier", "operator": draw(st.sampled_from(["Exists", "DoesNotExist"]))}
            ]
        }
    if narrow and rarely(draw, narrow):
        spec["secretTypes"] = draw(st.lists(st.sampled_from(SECRET_TYPES), min_size=1, max_size=2))
    if rarely(draw, 5):
        spec["exemptions"] = {"names": [draw(st.sampled_from(["db", "ml/*", "kube-system/ci"]))]}
    if narrow and rarely(draw, narrow):
        spec["serviceAccounts"] = False
    return spec


@st.composite
def policies(draw):
    found = []
    count = 0 if rarely(draw, 5) else draw(st.integers(1, 3))
    for i in range(count):
        # the first policy is usually a broad cluster policy, as in a real cluster
        namespaced = draw(st.booleans()) if i else rarely(draw, 4)
        spec = draw(policy_specs(broad=i == 0))
        if not namespaced and i and rarely(draw, 2):
            spec["namespaceSelector"] = {"matchLabels": {"env": "prod"}}
        manifest = policy_manifest(
            f"p{i}", spec, namespace=draw(namespaces) if namespaced else None
        )
        found.append(policy_from_manifest(manifest))
    return found


def _key(body):
    meta = body.get("metadata", {})
    return (body.get("kind"), meta.get("namespace", ""), meta.get("name"))


@st.composite
def worlds(draw, max_objects=14):
    """A set of objects with distinct keys, as a cluster holds them."""
    objects = {}
    for _ in range(draw(st.integers(1, max_objects))):
        body = draw(
            st.one_of(
                secrets(),
                secrets(),
                service_accounts(),
                namespace_objects(),
                bindings(),
                workloads(),
            )
        )
        objects[_key(body)] = body
    return list(objects.values())


def _records(evaluation):
    return {record.key: record for record in evaluation.records}


# ---- (a) without rotation, no way back to Compliant -----------------------------------


@settings(max_examples=30, **PROFILE)
@given(
    objects=worlds(),
    policy_list=policies(),
    steps=st.lists(st.integers(0, 400), min_size=2, max_size=6),
)
def test_status_never_improves_as_time_passes_without_rotation(objects, policy_list, steps) -> None:
    inventory = build_inventory(objects, policy_list)
    moments = [
        NOW - timedelta(days=200) + timedelta(days=sum(steps[: i + 1])) for i in range(len(steps))
    ]
    previous = {}
    for now in moments:
        for key, record in _records(evaluate(inventory, now)).items():
            rank = STATUS_ORDER[record.status]
            if key in previous:
                before = previous[key]
                assert not (before == "NonCompliant" and record.status == "Compliant"), (key, now)
                if before in ("NonCompliant", "Expiring", "Compliant"):
                    assert rank <= STATUS_ORDER[before], (key, before, record.status, now)
            previous[key] = record.status


@settings(max_examples=30, **PROFILE)
@given(objects=worlds(), policy_list=policies(), now=times, fraction=st.floats(0.0, 0.999))
def test_nothing_changes_before_next_review(objects, policy_list, now, fraction) -> None:
    # The operator sleeps until next_review_at: status and findings must not change
    # before then by the passing of time alone.
    inventory = build_inventory(objects, policy_list)
    for record in evaluate(inventory, now).records:
        horizon = record.next_review_at or now + timedelta(days=3650)
        assert horizon > now
        later = now + (horizon - now) * fraction
        result = evaluate_credential(inventory, record.key, later)
        assert result is not None
        again = result[0]
        assert (again.status, again.rule_ids, again.expires_at) == (
            record.status,
            record.rule_ids,
            record.expires_at,
        ), (record.key, now, later, horizon)


# ---- (b) the engine never raises -------------------------------------------------------


@settings(max_examples=60, **PROFILE)
@given(objects=worlds(), policy_list=policies(), now=times)
def test_engine_never_raises_on_kubernetes_shaped_objects(objects, policy_list, now) -> None:
    inventory = build_inventory(objects, policy_list)
    evaluation = evaluate(inventory, now)
    assert len(evaluation.records) == len(inventory)
    for record in evaluation.records:
        violations = [f for f in record.findings if f.severity == "violation"]
        assert (record.status == "NonCompliant") == bool(violations)
        if record.status in ("Exempt", "Ungoverned"):
            assert record.findings == ()
    printed = everything_printed(evaluation)
    assert all(form not in printed for form in canaries())


EDGE_CASES = {
    # a user can write credwarden.io/last-rotated; rotated + maxAge leaves the calendar
    "last-rotated-9999": dict(annotations={"credwarden.io/last-rotated": "9999-12-31T00:00:00Z"}),
    # parse_time converts to UTC and steps below year 1
    "last-rotated-0001+01": dict(
        annotations={"credwarden.io/last-rotated": "0001-01-01T00:00:00+01:00"}
    ),
    # the token last-used label is a user-writable label: last_used + window overflows
    "legacy-last-used-9999": dict(
        type="kubernetes.io/service-account-token",
        labels={"kubernetes.io/legacy-token-last-used": "9999-12-31"},
    ),
    # a snapshot may hold any RFC 3339 creationTimestamp
    "created-9999": dict(
        type="kubernetes.io/service-account-token", created="9999-12-31T00:00:00Z"
    ),
    # a valid policy: 999999w matches ^[0-9]{1,6}(s|m|h|d|w)$, ~19,000 years
    "maxAge-999999w": dict(max_age="999999w"),
    # a valid policy: certificates.warnBefore 999999d reaches before year 1 from notAfter
    "cert-warnBefore-999999d": dict(type="kubernetes.io/tls", cert_warn="999999d"),
}


@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_engine_never_raises_on_calendar_edge_values(case: str) -> None:
    options = dict(EDGE_CASES[case])
    meta = {
        "name": "s",
        "namespace": "default",
        "creationTimestamp": options.get("created", "2025-01-01T00:00:00Z"),
        "annotations": {
            "kubernetes.io/service-account.name": "sa",
            **options.get("annotations", {}),
        },
        "labels": options.get("labels", {}),
    }
    body = {
        "kind": "Secret",
        "type": options.get("type", "Opaque"),
        "metadata": meta,
        "data": {"password": b64("value-12345678"), "tls.crt": b64(CERTS[0])},
    }
    max_age = options.get("max_age", "90d")
    spec = {
        "limits": {
            "serviceAccountTokens": {"maxAge": max_age, "warnBefore": "1d"},
            "secrets": {"maxAge": max_age, "warnBefore": "1d"},
            "certificates": {"warnBefore": options.get("cert_warn", "30d")},
        }
    }
    policy = policy_from_manifest(policy_manifest("edge", spec))
    assert policy.error is None
    evaluation = evaluate(build_inventory([body], [policy]), NOW)
    assert len(evaluation.records) == 1


far_times = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5)), timezone(timedelta(hours=-3))]),
)


@settings(max_examples=30, report_multiple_bugs=False, **PROFILE)
@example(
    created="2025-01-01T00:00:00Z",
    rotated="9999-12-31T23:59:59Z",
    last_used="2025-01-01",
    max_age="90d",
    secret_type="Opaque",
)
@given(
    created=st.one_of(st.just("9999-12-31T00:00:00Z"), far_times.map(lambda t: t.isoformat())),
    rotated=st.one_of(
        st.just("9999-12-31T23:59:59Z"),
        st.just("0001-01-01T00:00:00+01:00"),
        far_times.map(lambda t: t.isoformat()),
    ),
    last_used=st.one_of(st.just("9999-12-31"), st.dates().map(lambda d: d.isoformat())),
    max_age=st.sampled_from(["90d", "999999d", "999999w", "999999h"]),
    secret_type=st.sampled_from(
        ["Opaque", "kubernetes.io/service-account-token", "kubernetes.io/tls"]
    ),
)
def test_engine_never_raises_at_the_edges_of_the_calendar(
    created, rotated, last_used, max_age, secret_type
) -> None:
    # Every value here is allowed by the schema: RFC 3339 date-times (creationTimestamp,
    # the user-writable credwarden.io/last-rotated annotation), a YYYY-MM-DD label, and
    # durations that match the policy pattern ^[0-9]{1,6}(s|m|h|d|w)$.
    body = {
        "kind": "Secret",
        "type": secret_type,
        "metadata": {
            "name": "s",
            "namespace": "default",
            "creationTimestamp": created,
            "annotations": {
                "credwarden.io/last-rotated": rotated,
                "kubernetes.io/service-account.name": "sa",
            },
            "labels": {"kubernetes.io/legacy-token-last-used": last_used},
        },
        "data": {"password": b64("value-12345678"), "tls.crt": b64(CERTS[0])},
    }
    spec = {
        "limits": {
            "serviceAccountTokens": {"maxAge": max_age},
            "secrets": {"maxAge": max_age},
            "certificates": {"warnBefore": max_age},
        },
        "identity": {},
        "ownership": {},
    }
    policy = policy_from_manifest(policy_manifest("edge", spec))
    assert policy.error is None
    inventory = build_inventory([body], [policy])
    evaluation = evaluate(inventory, NOW)
    assert len(evaluation.records) == 1


junk_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(
        ["2025-01-01T00:00:00Z", "kubernetes.io/tls", "!!", "", "f:data", "f:metadata"]
    ),
)
junk = st.recursive(
    junk_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.one_of(
                st.text(max_size=8),
                st.integers(),
                st.sampled_from(["f:data", "f:metadata", "f:annotations", "name"]),
            ),
            children,
            max_size=3,
        ),
    ),
    max_leaves=12,
)
K8S_KEYS = [
    "kind",
    "type",
    "data",
    "stringData",
    "spec",
    "roleRef",
    "subjects",
    "secrets",
    "imagePullSecrets",
    "automountServiceAccountToken",
]
META_KEYS = [
    "name",
    "namespace",
    "uid",
    "labels",
    "annotations",
    "ownerReferences",
    "managedFields",
    "creationTimestamp",
    "deletionTimestamp",
    "resourceVersion",
]
junk_meta = st.one_of(junk, st.fixed_dictionaries({}, optional={k: junk for k in META_KEYS}))
annotation_fields = st.dictionaries(
    # YAML keys need not be strings
    st.one_of(
        st.sampled_from(["f:credwarden.io/owner", "f:x"]), st.text(max_size=6), st.integers()
    ),
    junk,
    max_size=3,
)
managed_entry = st.fixed_dictionaries(
    {
        "fieldsV1": st.fixed_dictionaries(
            {
                "f:metadata": st.fixed_dictionaries(
                    {"f:annotations": st.one_of(annotation_fields, junk)}
                )
            },
            optional={"f:data": junk, "f:stringData": junk},
        )
    },
    optional={"manager": st.one_of(junk, st.just("credwarden")), "time": junk},
)
junk_managed = st.lists(st.one_of(managed_entry, junk), min_size=1, max_size=3)
K8S_JUNK = {key: junk for key in K8S_KEYS} | {
    "kind": st.sampled_from(["Pod", "Deployment", "CronJob", "Secret", "RoleBinding", 7]),
    "type": st.sampled_from(["kubernetes.io/tls", "Opaque", 3]),
}
junk_bodies = st.one_of(
    st.fixed_dictionaries({}, optional={**K8S_JUNK, "metadata": junk_meta}),
    st.fixed_dictionaries(
        {
            "metadata": st.fixed_dictionaries(
                {"managedFields": junk_managed},
                optional={k: junk for k in META_KEYS if k != "managedFields"},
            )
        },
        optional=K8S_JUNK,
    ),
)


@settings(max_examples=150, report_multiple_bugs=False, **PROFILE)
# YAML allows integer keys; managedFields must not assume strings
@example(
    body={
        "metadata": {"managedFields": [{"fieldsV1": {"f:metadata": {"f:annotations": {0: None}}}}]}
    }
)
@given(body=junk_bodies)
def test_facts_functions_never_raise_on_junk(body) -> None:
    meta_of(body)
    secret_facts(body, HASH_KEY)
    service_account_facts(body)
    binding_facts(body)
    namespace_facts(body)
    workload_facts(body)


str_junk = st.recursive(
    junk_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
str_junk_bodies = st.fixed_dictionaries(
    {},
    optional={
        **{key: str_junk for key in K8S_KEYS},
        "metadata": st.fixed_dictionaries(
            {"name": names, "namespace": namespaces}, optional={k: str_junk for k in META_KEYS[2:]}
        ),
        "type": st.sampled_from(SECRET_TYPES),
    },
)


@settings(max_examples=50, **PROFILE)
@given(bodies=st.lists(str_junk_bodies, max_size=6), policy_list=policies())
def test_engine_never_raises_on_junk_facts(bodies, policy_list) -> None:
    inventory = Inventory()
    for policy in policy_list:
        inventory.upsert_policy(policy)
    for body in bodies:
        inventory.upsert_secret(secret_facts(body, HASH_KEY))
        inventory.upsert_service_account(service_account_facts(body))
        inventory.upsert_binding(binding_facts(body))
        inventory.upsert_namespace(namespace_facts(body))
        inventory.upsert_workload(workload_facts({**body, "kind": "Pod"}))
    evaluate(inventory, NOW)


# ---- (c) deterministic and independent of insertion order -----------------------------


@settings(max_examples=30, **PROFILE)
@given(objects=worlds(), policy_list=policies(), seed=st.integers(0, 2**32 - 1))
def test_evaluation_is_deterministic_and_order_independent(objects, policy_list, seed) -> None:
    first = evaluate(build_inventory(objects, policy_list), NOW)
    again = evaluate(build_inventory(objects, policy_list), NOW)
    shuffled_objects = list(objects)
    shuffled_policies = list(policy_list)
    rng = random.Random(seed)
    rng.shuffle(shuffled_objects)
    rng.shuffle(shuffled_policies)
    shuffled = evaluate(build_inventory(shuffled_objects, shuffled_policies), NOW)
    assert first.records == again.records == shuffled.records
    assert first.plan == again.plan == shuffled.plan
    assert [a.describe() for a in first.plan] == [a.describe() for a in shuffled.plan]
    assert first.summary() == shuffled.summary()


# ---- incremental updates equal a fresh inventory ---------------------------------------


@st.composite
def operations(draw):
    pool = draw(worlds(max_objects=10))
    ops = []
    for _ in range(draw(st.integers(1, 25))):
        if rarely(draw, 3):
            ops.append(("remove", draw(st.sampled_from(pool))))
        else:
            base = draw(st.sampled_from(pool))
            kind, ns, name = _key(base)
            # a new version of the same object (same key, other content)
            if kind == "Secret":
                body = draw(secrets(ns, name))
            elif kind == "ServiceAccount":
                body = draw(service_accounts(ns, name))
            elif kind == "Namespace":
                body = draw(namespace_objects(name))
            elif kind in ("RoleBinding", "ClusterRoleBinding"):
                body = base if draw(st.booleans()) else {**base, "subjects": []}
            else:
                body = draw(workloads(kind, ns, name))
            ops.append(("upsert", body))
    return ops


def _remove(inventory: Inventory, body) -> set[CredentialKey]:
    kind, ns, name = _key(body)
    if kind == "Secret":
        return inventory.remove_secret(ns, name)
    if kind == "ServiceAccount":
        return inventory.remove_service_account(ns, name)
    if kind == "Namespace":
        return inventory.remove_namespace(name)
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        return inventory.remove_binding(kind, ns, name)
    return inventory.remove_workload(kind, ns, name)


@settings(max_examples=40, **PROFILE)
@given(ops=operations(), policy_list=policies())
def test_incremental_updates_equal_a_fresh_inventory(ops, policy_list) -> None:
    inventory = build_inventory([], policy_list)
    cache = {}
    final = {}
    for op, body in ops:
        if op == "upsert":
            affected = add_object(inventory, body)
            final[_key(body)] = body
        else:
            affected = _remove(inventory, body)
            final.pop(_key(body), None)
        for key in affected:
            result = evaluate_credential(inventory, key, NOW)
            if result is None:
                cache.pop(key, None)
            else:
                cache[key] = result[0]
    fresh = evaluate(build_inventory(final.values(), policy_list), NOW)
    assert evaluate(inventory, NOW).records == fresh.records
    # re-evaluating only what each update said it affected gives the same records
    assert sorted(cache.values(), key=lambda r: r.key) == fresh.records
