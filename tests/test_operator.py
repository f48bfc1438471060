"""The real operator (kopf, in-process) against the emulated Kubernetes API."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import kmock
import pytest
import yaml

from conftest import policy_manifest
from credwarden import scenario
from credwarden.crdgen import crd_manifests
from credwarden.demo import with_mode
from credwarden.emulator import ClusterEmulator, wait_until
from credwarden.engine import evaluate
from credwarden.kube import KubeClient
from credwarden.records import RULES
from credwarden.sandbox import Sandbox, emulated_cluster, operator_on
from credwarden.snapshot import inventory_from_objects

pytestmark = pytest.mark.timeout(90)

CW = "credwarden.io/"
SECRETS = "v1/secrets"
SAS = "v1/serviceaccounts"
CCP = "credwarden.io/v1alpha1/clustercredentialpolicies"
WRITES = ("PATCH", "POST", "PUT", "DELETE")


# ---- helpers ---------------------------------------------------------------------------
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def stored(emulator: ClusterEmulator, resource: str, namespace: str | None, name: str) -> Any:
    found = emulator.objects[resource, namespace, name]
    return None if found is None or found.deleted else found.raw


def ours(body: Mapping[str, Any]) -> dict[str, str]:
    annotations = body.get("metadata", {}).get("annotations") or {}
    return {k: v for k, v in annotations.items() if k.startswith(CW)}


def events(emulator: ClusterEmulator) -> list[dict[str, Any]]:
    return [
        found.raw
        for key in list(emulator.objects)
        if key[0].plural == "events"
        and (found := emulator.objects[key]) is not None
        and not found.deleted
    ]


def event_pairs(emulator: ClusterEmulator) -> list[tuple[str, str, str, str]]:
    return sorted(
        (
            e["involvedObject"]["kind"],
            e["involvedObject"]["namespace"],
            e["involvedObject"]["name"],
            e["reason"],
        )
        for e in events(emulator)
    )


def credwarden_writes(emulator: ClusterEmulator) -> list[Any]:
    return [
        request
        for request in emulator
        if request.method.value in WRITES
        and request.headers.get("User-Agent", "").startswith("credwarden")
    ]


def secret(name: str, namespace: str, data: Mapping[str, str], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


async def converged(sandbox: Sandbox, timeout: float = 15.0) -> None:
    assert sandbox.state is not None
    await asyncio.wait_for(sandbox.state.reconciler.converged.wait(), timeout)


@contextlib.asynccontextmanager
async def cluster_with_operator(
    objects: Iterable[Mapping[str, Any]],
) -> AsyncIterator[Sandbox]:
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox):
        await converged(sandbox)
        yield sandbox


def example_objects(at: datetime) -> list[dict[str, Any]]:
    """The example cluster with every policy in Audit (enforcement: test_enforcement.py)."""
    return [*scenario.build_objects(at), *with_mode(scenario.example_policies(), "Audit")]


# ---- the example cluster: annotations and events match the engine -----------------------
async def test_annotations_and_events_match_the_engine_on_the_example_cluster() -> None:
    at = now()
    objects = example_objects(at)
    expected = evaluate(inventory_from_objects(objects, b"k" * 32), at)
    async with cluster_with_operator(objects) as sandbox:
        emulator = sandbox.emulator
        wanted_events: set[tuple[str, str, str, str]] = set()
        for record in expected.records:
            resource = SECRETS if record.key.kind == "Secret" else SAS
            body = stored(emulator, resource, record.key.namespace, record.key.name)
            annotations = ours(body)
            if record.status in ("Exempt", "Ungoverned"):
                assert CW + "status" not in annotations, record.key
                continue
            assert annotations[CW + "status"] == record.status, record.key
            assert annotations.get(CW + "findings", "") == ",".join(record.rule_ids), record.key
            assert annotations[CW + "policy"] == record.policy
            if record.owner:
                assert annotations[CW + "owner"] == record.owner
                assert annotations[CW + "owner-source"] == record.owner_source
            if record.expires_at:
                assert annotations[CW + "expires-at"] == record.expires_at.strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                )
            wanted_events |= {
                (record.key.kind, record.key.namespace, record.key.name, f.reason)
                for f in record.findings
            }
        pairs = event_pairs(emulator)
        assert set(pairs) == wanted_events
        assert len(pairs) == len(set(pairs)), "one event per finding, not more"
        # the scenario exercises most rules; each shows up as its documented reason
        reasons = {reason for *_, reason in pairs}
        assert reasons >= {
            "LongLivedToken",
            "HumanIdentity",
            "ClusterAdminBinding",
            "UserIdentityInSystemNamespace",
            "MissingOwner",
            "CredentialExpired",
            "CertificateExpiring",
            "DuplicateSecret",
            "SecretInEnv",
            "UnusedToken",
        }
        assert reasons <= {reason for _, reason in RULES.values()}


async def test_events_tell_the_lifecycle_like_kubectl_describe_shows_it() -> None:
    async with cluster_with_operator(example_objects(now())) as sandbox:
        mine = [
            e
            for e in events(sandbox.emulator)
            if e["involvedObject"]["name"] == "john-smith"
            and e["involvedObject"]["kind"] == "ServiceAccount"
        ]
        assert {e["type"] for e in mine} == {"Warning"}
        by_reason = {e["reason"]: e for e in mine}
        assert (
            "bound to cluster-admin by ClusterRoleBinding"
            in by_reason["ClusterAdminBinding"]["message"]
        )
        for event in mine:
            assert event["involvedObject"]["uid"]
            assert event["involvedObject"]["namespace"] == "kube-system"
            assert event["source"]["component"] == "credwarden"
            assert event["metadata"]["namespace"] == "kube-system"


# ---- policy status -----------------------------------------------------------------------
def _jsonpath(body: Mapping[str, Any], path: str) -> Any:
    """The subset of JSONPath the printer columns use: .a.b and .a[?(@.type=="X")].b"""
    current: Any = body
    for part in re.findall(r'[^.\[]+(?:\[\?\(@\.type=="[^"]*"\)\])?', path):
        field, _, condition = part.partition("[")
        current = current.get(field) if isinstance(current, Mapping) else None
        if condition:
            wanted = condition.split('"')[1]
            current = next((c for c in current or [] if c.get("type") == wanted), {})
    return current


async def test_policy_status_and_printer_columns() -> None:
    at = now()
    objects = example_objects(at)
    expected = evaluate(inventory_from_objects(objects, b"k" * 32), at)
    async with cluster_with_operator(objects) as sandbox:
        body = stored(sandbox.emulator, CCP, None, "platform-baseline")
        status = body["status"]
        governed = [r for r in expected.records if "platform-baseline" in r.policies]
        assert status["matched"] == len(governed)
        assert status["compliant"] == sum(r.status == "Compliant" for r in governed)
        assert status["expiring"] == sum(r.status == "Expiring" for r in governed)
        assert status["violating"] == sum(r.status == "NonCompliant" for r in governed)
        assert status["observedGeneration"] == body["metadata"]["generation"]
        assert status["lastEvaluated"]
        assert 0 < len(status["worstOffenders"]) <= 10
        assert status["worstOffenders"][0]["status"] == "NonCompliant"
        (ready,) = status["conditions"]
        assert (ready["type"], ready["status"]) == ("Ready", "True")
        (crd,) = [c for c in crd_manifests() if c["spec"]["names"]["kind"] == body["kind"]]
        columns = {
            c["name"]: _jsonpath(body, c["jsonPath"])
            for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
        }
        assert columns["Mode"] == "Audit"
        assert columns["Matched"] == status["matched"]
        assert columns["Violations"] == status["violating"]
        assert columns["Compliant"] == status["compliant"]
        assert columns["Ready"] == "True"


async def test_an_invalid_policy_gets_a_condition_and_the_valid_one_still_governs() -> None:
    objects = [
        secret("app", "team", {"password": "a-long-enough-value"}),
        policy_manifest("valid", {"limits": {"secrets": {"maxAge": "1d"}}}),
        # the API server accepts an invalid regular expression; the operator must not
        policy_manifest("broken", {"identity": {"personNamePatterns": ["(unclosed"]}}),
    ]
    async with cluster_with_operator(objects) as sandbox:
        broken = stored(sandbox.emulator, CCP, None, "broken")["status"]
        (ready,) = broken["conditions"]
        assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
        assert ready["message"].startswith("spec.identity.personNamePatterns:")
        app = ours(stored(sandbox.emulator, SECRETS, "team", "app"))
        assert app[CW + "policy"] == "valid"
        valid = stored(sandbox.emulator, CCP, None, "valid")["status"]
        assert valid["matched"] == 1


# ---- deadlines while running ------------------------------------------------------------
async def test_a_deadline_passing_while_running_is_acted_on_within_a_second() -> None:
    policy = policy_manifest("short", {"limits": {"secrets": {"maxAge": "6s", "warnBefore": "3s"}}})
    async with cluster_with_operator([policy]) as sandbox:
        emulator = sandbox.emulator
        response = await emulator.post(
            "/api/v1/namespaces/team/secrets",
            json=secret("soon", "team", {"token": "value-that-expires"}),
        )
        created = datetime.fromisoformat(
            (await response.json())["metadata"]["creationTimestamp"].replace("Z", "+00:00")
        )

        def status() -> str | None:
            body = stored(emulator, SECRETS, "team", "soon")
            return ours(body).get(CW + "status") if body else None

        await wait_until(lambda: status() == "Compliant", 5)
        for expected, offset in (("Expiring", 3), ("NonCompliant", 6)):
            await wait_until(lambda expected=expected: status() == expected, 10)
            lateness = time.time() - (created.timestamp() + offset)
            assert -0.05 <= lateness <= 1.0, f"{expected} {lateness:.2f}s after its deadline"
        reasons = [r for kind, ns, name, r in event_pairs(emulator) if name == "soon"]
        assert reasons == ["CredentialExpired", "CredentialExpiring"]


# ---- writes -------------------------------------------------------------------------------
async def test_no_writes_once_converged_even_when_objects_are_touched() -> None:
    async with cluster_with_operator(example_objects(now())) as sandbox:
        emulator = sandbox.emulator
        before = len(credwarden_writes(emulator))
        assert before > 0
        # a user edits a label of a governed Secret: re-evaluated, nothing to change
        await emulator.patch(
            "/api/v1/namespaces/airflow/secrets/airflow-creds",
            json={"metadata": {"labels": {"touched": "yes"}}},
        )
        await asyncio.sleep(1.5)
        await converged(sandbox)
        assert len(credwarden_writes(emulator)) == before


async def test_kopf_stores_nothing_on_native_objects() -> None:
    async with cluster_with_operator(example_objects(now())) as sandbox:
        emulator = sandbox.emulator
        for key in list(emulator.objects):
            found = emulator.objects[key]
            if found is None or found.deleted or key[0].group == "credwarden.io":
                continue
            metadata = found.raw.get("metadata", {})
            assert not metadata.get("finalizers"), key
            assert not [k for k in metadata.get("annotations") or {} if "kopf" in k], key
        kopf_writes = [
            r
            for r in emulator
            if r.method.value in WRITES and r.headers.get("User-Agent", "").startswith("kopf")
        ]
        assert kopf_writes == []


async def test_an_api_error_on_a_write_is_retried() -> None:
    objects = [
        secret("app", "team", {"password": "a-long-enough-value"}),
        policy_manifest("p", {"limits": {"secrets": {}}}),
    ]
    async with emulated_cluster(objects) as sandbox:
        failures = [kmock.KubernetesError(status=500), kmock.KubernetesError(status=503)]
        sandbox.emulator.fail(
            lambda r: r.method.value == "PATCH" and r.resource.plural == "secrets", *failures
        )
        throttled = kmock.Response(status=429, headers={"Retry-After": "1"}, payload={})
        sandbox.emulator.fail(
            lambda r: r.method.value == "POST" and r.resource.plural == "events", throttled
        )
        async with operator_on(sandbox):
            await converged(sandbox)
            assert ours(stored(sandbox.emulator, SECRETS, "team", "app"))[CW + "status"]
            assert event_pairs(sandbox.emulator) == []  # compliant: no event to post
            patches = [r for r in credwarden_writes(sandbox.emulator) if r.method.value == "PATCH"]
            assert len([p for p in patches if p.resource.plural == "secrets"]) == 3


# ---- changes while tracked ----------------------------------------------------------------
async def test_deleting_the_policy_removes_credwardens_annotations() -> None:
    objects = [
        secret(
            "app",
            "team",
            {"password": "a-long-enough-value"},
            annotations={"credwarden.io/owner": "team-a"},  # set by a person: kept
        ),
        secret("orphan", "team", {"password": "another-long-value"}),
        policy_manifest("p", {"limits": {"secrets": {}}, "ownership": {}}),
    ]
    async with cluster_with_operator(objects) as sandbox:
        emulator = sandbox.emulator
        assert ours(stored(emulator, SECRETS, "team", "orphan"))[CW + "status"] == "NonCompliant"
        await emulator.delete("/apis/credwarden.io/v1alpha1/clustercredentialpolicies/p")
        await wait_until(lambda: not ours(stored(emulator, SECRETS, "team", "orphan")), 10)
        await converged(sandbox)
        assert ours(stored(emulator, SECRETS, "team", "app")) == {CW + "owner": "team-a"}


async def test_an_object_deleted_while_tracked_leaves_the_counts() -> None:
    objects = [
        secret("a", "team", {"password": "first-long-value"}),
        secret("b", "team", {"password": "second-long-value"}),
        policy_manifest("p", {"limits": {"secrets": {}}}),
    ]
    async with cluster_with_operator(objects) as sandbox:
        emulator = sandbox.emulator
        assert stored(emulator, CCP, None, "p")["status"]["matched"] == 2
        await emulator.delete("/api/v1/namespaces/team/secrets/a")
        await wait_until(lambda: stored(emulator, CCP, None, "p")["status"]["matched"] == 1, 10)
        assert sandbox.state is not None
        assert [str(k) for k in sandbox.state.reconciler.records] == ["Secret/team/b"]


async def test_watch_dropped_or_expired_resumes_without_duplicate_events() -> None:
    objects = [policy_manifest("p", {"limits": {"secrets": {"maxAge": "1d"}}})]
    async with cluster_with_operator(objects) as sandbox:
        emulator = sandbox.emulator
        old = secret(
            "old", "team", {"k": "an-old-long-value"}, creationTimestamp="2020-01-01T00:00:00Z"
        )
        emulator.objects[SECRETS, "team", "old"] = old  # seen only through a (re)list
        await emulator.drop_watches(SECRETS, gone=True)  # 410 Gone: kopf lists again
        await wait_until(lambda: ours(stored(emulator, SECRETS, "team", "old")), 10)
        first = event_pairs(emulator)
        assert first == [("Secret", "team", "old", "CredentialExpired")]

        await emulator.drop_watches(SECRETS)  # a plain disconnect: kopf watches again
        await emulator.post(
            "/api/v1/namespaces/team/secrets", json=secret("new", "team", {"k": "a-new-long-value"})
        )
        await wait_until(lambda: ours(stored(emulator, SECRETS, "team", "new")), 10)
        await emulator.drop_watches(SECRETS, gone=True)
        await asyncio.sleep(1)
        await converged(sandbox)
        assert event_pairs(emulator) == first  # nothing announced twice


async def test_a_restarted_operator_posts_nothing_twice_and_writes_nothing() -> None:
    async with emulated_cluster(example_objects(now())) as sandbox:
        async with operator_on(sandbox):
            await converged(sandbox)
        writes = len(credwarden_writes(sandbox.emulator))
        announced = event_pairs(sandbox.emulator)
        async with operator_on(sandbox):
            await converged(sandbox)
            await asyncio.sleep(0.5)
            await converged(sandbox)
        assert event_pairs(sandbox.emulator) == announced
        assert len(credwarden_writes(sandbox.emulator)) == writes


async def test_a_compliant_credential_going_back_to_compliance_gets_a_normal_event() -> None:
    objects = [
        secret("db", "team", {"password": "a-long-enough-value"}),
        policy_manifest("p", {"limits": {"secrets": {}}, "ownership": {}}),
    ]
    async with cluster_with_operator(objects) as sandbox:
        emulator = sandbox.emulator
        assert ours(stored(emulator, SECRETS, "team", "db"))[CW + "status"] == "NonCompliant"
        await emulator.patch(
            "/api/v1/namespaces/team/secrets/db",
            json={"metadata": {"annotations": {"credwarden.io/owner": "team-db"}}},
        )
        await wait_until(
            lambda: ours(stored(emulator, SECRETS, "team", "db")).get(CW + "status") == "Compliant",
            10,
        )
        await converged(sandbox)
        normal = [e for e in events(emulator) if e["type"] == "Normal"]
        assert [(e["involvedObject"]["name"], e["reason"]) for e in normal] == [
            ("db", "CredentialCompliant")
        ]


def test_crds_in_the_emulator_match_the_generated_ones() -> None:
    # the emulator's resource declarations must agree with crds/ on names and scope
    from credwarden.emulator import RESOURCES

    for crd in crd_manifests():
        names = crd["spec"]["names"]
        resource = f"credwarden.io/v1alpha1/{names['plural']}"
        kind, namespaced, subresources = RESOURCES[resource]
        assert kind == names["kind"]
        assert namespaced == (crd["spec"]["scope"] == "Namespaced")
        assert "status" in subresources
    assert yaml.safe_dump(crd_manifests())  # renders


async def test_a_401_on_a_write_logs_in_again_and_retries() -> None:
    objects = [
        secret("app", "team", {"password": "a-long-enough-value"}),
        policy_manifest("p", {"limits": {"secrets": {}}}),
    ]
    async with emulated_cluster(objects) as sandbox:
        sandbox.emulator.fail(
            lambda r: r.method.value == "PATCH" and r.resource.plural == "secrets",
            kmock.KubernetesError(status=401, reason="Unauthorized", message="token expired"),
        )
        async with operator_on(sandbox) as state:
            await converged(sandbox)
            assert state.client.relogin is not None
            assert ours(stored(sandbox.emulator, SECRETS, "team", "app"))[CW + "status"]
            patches = [r for r in credwarden_writes(sandbox.emulator) if r.method.value == "PATCH"]
            assert len([p for p in patches if p.resource.plural == "secrets"]) == 2


async def test_a_namespace_scoped_operator_governs_only_matching_namespaces() -> None:
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        for ns in ("team-a", "team-b", "other")
    ]
    objects += [
        secret("app", ns, {"password": f"value-of-{ns}-app"})
        for ns in ("team-a", "team-b", "other")
    ]
    objects.append(policy_manifest("p", {"limits": {"secrets": {}}}))
    async with (
        emulated_cluster(objects) as sandbox,
        operator_on(sandbox, namespaces=["team-*,!team-b"]),
    ):
        emulator = sandbox.emulator
        await wait_until(lambda: ours(stored(emulator, SECRETS, "team-a", "app")), 15)
        await converged(sandbox)
        assert not ours(stored(emulator, SECRETS, "team-b", "app"))
        assert not ours(stored(emulator, SECRETS, "other", "app"))
        lists = [
            r
            for r in emulator
            if r.method.value == "GET" and r.resource and r.resource.plural == "secrets"
        ]
        assert {r.namespace for r in lists} == {"team-a"}


async def test_a_write_that_times_out_is_retried() -> None:
    objects = [
        secret("app", "team", {"password": "a-long-enough-value"}),
        policy_manifest("p", {"limits": {"secrets": {}}}),
    ]

    async def hang(_: Any) -> Any:
        await asyncio.sleep(3)  # longer than the client's timeout: the client gives up
        raise kmock.KubernetesError(status=504, reason="Timeout", message="too late")

    async with emulated_cluster(objects) as sandbox:
        sandbox.emulator.fail(
            lambda r: r.method.value == "PATCH" and r.resource.plural == "secrets", hang
        )
        client = KubeClient(qps=0, backoffs=(0.05, 0.1), timeout=0.5)
        async with operator_on(sandbox, client=client):
            await converged(sandbox)
            assert ours(stored(sandbox.emulator, SECRETS, "team", "app"))[CW + "status"]
            patches = [r for r in credwarden_writes(sandbox.emulator) if r.method.value == "PATCH"]
            assert len([p for p in patches if p.resource.plural == "secrets"]) == 2
