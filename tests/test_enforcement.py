"""Enforce mode against the emulated API: revoke, rotate, delegate, and the safety rails."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import kmock
import pytest

from credwarden.emulator import wait_until
from credwarden.sandbox import Sandbox, emulated_cluster, operator_on

pytestmark = pytest.mark.timeout(120)

CW = "credwarden.io/"
SECRETS = "v1/secrets"
DEPLOYMENTS = "apps/v1/deployments"
WRITES = ("PATCH", "POST", "PUT", "DELETE")
OLD = "the-old-password-value-0001"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


NOW = datetime.now(UTC).replace(microsecond=0)


def secret(name: str, namespace: str = "team", **fields: Any) -> dict[str, Any]:
    metadata = {"name": name, "namespace": namespace, **fields.pop("metadata", {})}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": fields.pop("type", "Opaque"),
        "metadata": metadata,
        "data": {k: b64(v) for k, v in fields.pop("data", {"password": OLD}).items()},
    }


def token(
    name: str,
    namespace: str = "team",
    *,
    age_days: float = 400,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return secret(
        name,
        namespace,
        type="kubernetes.io/service-account-token",
        data={"token": f"token-of-{name}-0123456789"},
        metadata={
            "creationTimestamp": ts(NOW - timedelta(days=age_days)),
            "annotations": {"kubernetes.io/service-account.name": "ci", **(annotations or {})},
        },
    )


def deployment(name: str, secret_name: str, namespace: str = "team") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "app", "envFrom": [{"secretRef": {"name": secret_name}}]}
                    ]
                },
            }
        },
    }


def policy(name: str, spec: Mapping[str, Any], mode: str = "Enforce") -> dict[str, Any]:
    return {
        "apiVersion": "credwarden.io/v1alpha1",
        "kind": "ClusterCredentialPolicy",
        "metadata": {"name": name},
        "spec": {"mode": mode, **spec},
    }


REVOKE = {"limits": {"serviceAccountTokens": {"maxAge": "90d", "action": "Revoke"}}}
ROTATE = {
    "limits": {"secrets": {"maxAge": "30d", "action": "Rotate"}},
    "rotation": {"keys": ["password"], "gracePeriod": "1h"},
}
OLD_SECRET = {"creationTimestamp": ts(NOW - timedelta(days=100))}


def stored(sandbox: Sandbox, resource: str, namespace: str | None, name: str) -> Any:
    try:
        found = sandbox.emulator.objects[resource, namespace, name]
    except KeyError:  # never created
        return None
    return None if found is None or found.deleted else found.raw


def events(sandbox: Sandbox) -> list[dict[str, Any]]:
    emulator = sandbox.emulator
    return [
        found.raw
        for key in list(emulator.objects)
        if key[0].plural == "events" and (found := emulator.objects[key]) and not found.deleted
    ]


def reasons(sandbox: Sandbox, name: str) -> list[str]:
    return sorted(e["reason"] for e in events(sandbox) if e["involvedObject"]["name"] == name)


def writes(sandbox: Sandbox) -> list[Any]:
    return [
        r
        for r in sandbox.emulator
        if r.method.value in WRITES and r.headers.get("User-Agent", "").startswith("credwarden")
    ]


async def converged(sandbox: Sandbox, timeout: float = 20) -> None:
    assert sandbox.state is not None
    await asyncio.wait_for(sandbox.state.reconciler.converged.wait(), timeout)


# ---- revoke -------------------------------------------------------------------------------
async def test_an_expired_token_is_revoked_with_preconditions_and_recorded() -> None:
    objects = [token("old-token"), token("young-token", age_days=10), policy("tokens", REVOKE)]
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox):
        await converged(sandbox)
        assert stored(sandbox, SECRETS, "team", "old-token") is None
        assert stored(sandbox, SECRETS, "team", "young-token") is not None
        (delete,) = [r for r in writes(sandbox) if r.method.value == "DELETE"]
        assert delete.data["preconditions"]["uid"]
        assert delete.data["preconditions"]["resourceVersion"]
        assert "Revoked" in reasons(sandbox, "old-token")
        assert "Revoked" in reasons(sandbox, "tokens")  # also on the policy


async def test_revocation_happens_at_the_deadline() -> None:
    short = policy(
        "short", {"limits": {"serviceAccountTokens": {"maxAge": "5s", "action": "Revoke"}}}
    )
    async with emulated_cluster([short]) as sandbox, operator_on(sandbox):
        await converged(sandbox)
        response = await sandbox.emulator.post(
            "/api/v1/namespaces/team/secrets", json=token("soon", age_days=0)
        )
        created = (await response.json())["metadata"]["creationTimestamp"]
        deadline = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() + 5
        await wait_until(lambda: stored(sandbox, SECRETS, "team", "soon") is None, 15)
        assert time.time() - deadline <= 1.0


async def test_protected_exempt_and_in_use_tokens_are_not_revoked() -> None:
    objects = [
        token("system-token", "kube-system"),
        token("exempt-token", annotations={CW + "exempt": "break-glass"}),
        token("mounted-token"),
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "runner", "namespace": "team"},
            "spec": {"volumes": [{"name": "t", "secret": {"secretName": "mounted-token"}}]},
        },
        policy("tokens", REVOKE),
    ]
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox):
        await converged(sandbox)
        assert [r for r in writes(sandbox) if r.method.value == "DELETE"] == []
        system = stored(sandbox, SECRETS, "kube-system", "system-token")
        assert "revocation-blocked" in system["metadata"]["annotations"][CW + "findings"]
        assert "RevocationBlocked" in reasons(sandbox, "mounted-token")
        assert CW + "status" not in stored(sandbox, SECRETS, "team", "exempt-token")[
            "metadata"
        ].get("annotations", {})


async def test_the_action_budget_stops_a_mass_revocation() -> None:
    budget = {**REVOKE, "enforcement": {"budget": {"revocationsPerHour": 2}}}
    objects = [token(f"t{i}") for i in range(5)] + [policy("tokens", budget)]
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox) as state:
        await wait_until(
            lambda: len([r for r in writes(sandbox) if r.method.value == "DELETE"]) == 2, 20
        )
        await asyncio.sleep(1)
        left = [i for i in range(5) if stored(sandbox, SECRETS, "team", f"t{i}") is not None]
        assert len(left) == 3
        assert reasons(sandbox, "tokens").count("ActionBudgetExhausted") == 1
        await wait_until(
            lambda: any(
                c["type"] == "BudgetExhausted"
                for c in stored(
                    sandbox, "credwarden.io/v1alpha1/clustercredentialpolicies", None, "tokens"
                )
                .get("status", {})
                .get("conditions", [])
            ),
            10,
        )
        # a clock jumping a year ahead does not refill the budget beyond its hourly rate
        state.reconciler.clock = lambda: datetime.now(UTC) + timedelta(days=365)
        state.reconciler.enforcer.clock = state.reconciler.clock
        state.reconciler.mark(state.inventory.credentials())
        await asyncio.sleep(2)
        deleted = len([r for r in writes(sandbox) if r.method.value == "DELETE"])
        assert deleted == 4  # two more in the new "hour", not all three


async def test_the_budget_condition_ends_when_its_hour_has_passed() -> None:
    budget = {**REVOKE, "enforcement": {"budget": {"revocationsPerHour": 1}}}
    objects = [token("t0"), token("t1"), policy("tokens", budget)]

    def exhausted() -> bool:
        status = stored(
            sandbox, "credwarden.io/v1alpha1/clustercredentialpolicies", None, "tokens"
        ).get("status", {})
        return any(c["type"] == "BudgetExhausted" for c in status.get("conditions", []))

    async with emulated_cluster(objects) as sandbox, operator_on(sandbox) as state:
        await wait_until(exhausted, 10)
        # an hour later, with nothing else happening, the condition goes by itself
        later = datetime.now(UTC) + timedelta(hours=1, minutes=1)
        state.reconciler.clock = state.reconciler.enforcer.clock = lambda: later
        state.reconciler._wake.set()
        await wait_until(lambda: not exhausted(), 10)


async def test_an_action_held_by_a_spent_budget_waits_for_its_hour_then_goes_ahead() -> None:
    budget = {**REVOKE, "enforcement": {"budget": {"revocationsPerHour": 1}}}
    objects = [token("t0"), token("t1"), token("t2"), policy("tokens", budget)]

    def deleted() -> int:
        return len([r for r in writes(sandbox) if r.method.value == "DELETE"])

    async with emulated_cluster(objects) as sandbox, operator_on(sandbox) as state:
        reconciler = state.reconciler
        await wait_until(lambda: reconciler.enforcer.exhausted and deleted() == 1, 10)
        await converged(sandbox)  # the policy's status written, and its echo evaluated
        blocked: list[str] = []
        reconciler.enforcer.listeners.append(
            lambda kind, policy, _: blocked.append(policy) if kind == "blocked" else None
        )
        # a minute later, with nothing else happening: not tried (and blocked) again
        started = datetime.now(UTC)
        reconciler.clock = reconciler.enforcer.clock = lambda: started + timedelta(minutes=1)
        reconciler._wake.set()
        await asyncio.sleep(1)
        assert blocked == [] and deleted() == 1
        # a person raises the budget to 2 an hour: one more goes at once, the last waits
        await sandbox.emulator.patch(
            "/apis/credwarden.io/v1alpha1/clustercredentialpolicies/tokens",
            json={"spec": {"enforcement": {"budget": {"revocationsPerHour": 2}}}},
        )
        await wait_until(lambda: deleted() == 2 and blocked == ["tokens"], 10)
        # once the hour has passed, the last one goes by itself: no event needed
        later = started + timedelta(hours=1, minutes=1)
        reconciler.clock = reconciler.enforcer.clock = lambda: later
        reconciler._wake.set()
        await wait_until(lambda: deleted() == 3, 10)
        assert blocked == ["tokens"]


async def test_a_budget_that_could_not_be_recorded_is_tried_again_soon() -> None:
    # the budget is not spent: the API refused its record (a brief outage). Not a spent
    # budget: no ActionBudgetExhausted, no hour's wait, the revocation follows shortly
    budget = {**REVOKE, "enforcement": {"budget": {"revocationsPerHour": 5}}}
    objects = [token("t0"), policy("tokens", budget, mode="Audit")]
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox):
        await converged(sandbox)  # annotated in Audit mode: nothing will re-evaluate it

        def recording_budget(request: kmock.Request) -> bool:
            return request.method.value == "PATCH" and "recentActions" in str(request.data)

        # refused more times than the client retries a request
        error = kmock.KubernetesError(status=500, reason="InternalError", message="etcd timeout")
        sandbox.emulator.fail(recording_budget, *[error] * 4)
        await sandbox.emulator.patch(
            "/apis/credwarden.io/v1alpha1/clustercredentialpolicies/tokens",
            json={"spec": {"mode": "Enforce"}},
        )
        await wait_until(
            lambda: len([r for r in writes(sandbox) if r.method.value == "DELETE"]) == 1, 20
        )
        assert "ActionBudgetExhausted" not in reasons(sandbox, "tokens")


# ---- rotate -------------------------------------------------------------------------------
def _rotation_cluster(**extra: Any) -> list[dict[str, Any]]:
    return [
        secret("db", data={"password": OLD, "username": "app"}, metadata=OLD_SECRET),
        deployment("web", "db"),
        policy("rotate", ROTATE),
    ]


def _values(sandbox: Sandbox, name: str) -> list[str | None]:
    """Every version of a Secret's password, oldest first (None: deleted or no key)."""
    found = sandbox.emulator.objects[SECRETS, "team", name]
    versions = []
    for version in found.history:
        data = (version or {}).get("data") or {}
        versions.append(unb64(data["password"]) if "password" in data else None)
    return versions


async def test_rotation_end_to_end() -> None:
    async with emulated_cluster(_rotation_cluster()) as sandbox, operator_on(sandbox):
        await converged(sandbox)
        db = stored(sandbox, SECRETS, "team", "db")
        new = unb64(db["data"]["password"])
        assert new != OLD and len(new) == 32 and new.isalnum()
        assert unb64(db["data"]["username"]) == "app"  # keys not rotated are kept
        annotations = db["metadata"]["annotations"]
        assert annotations[CW + "rotations"] == "1"
        assert annotations[CW + "last-rotated"]
        assert annotations[CW + "status"] == "Compliant"
        assert CW + "rotation-pending" not in annotations
        assert CW + "restart-pending" not in annotations
        previous = stored(sandbox, SECRETS, "team", "db-previous")
        assert unb64(previous["data"]["password"]) == OLD
        assert CW + "exempt" in previous["metadata"]["annotations"]
        assert previous["metadata"]["ownerReferences"][0]["uid"] == db["metadata"]["uid"]
        template = stored(sandbox, DEPLOYMENTS, "team", "web")["spec"]["template"]
        assert template["metadata"]["annotations"][CW + "restarted-for"] == "db@1"
        assert {"Rotated", "ConsumersRestarted", "CredentialCompliant"} <= set(
            reasons(sandbox, "db")
        )
        assert "Rotated" in reasons(sandbox, "rotate")
        # the new value never reaches an event or an annotation
        printed = json.dumps(events(sandbox)) + json.dumps(annotations)
        assert new not in printed and b64(new) not in printed and OLD not in printed
        assert set(_values(sandbox, "db")) == {OLD, new}


async def test_previous_values_are_deleted_after_the_grace_period() -> None:
    short_grace = {**ROTATE, "rotation": {"keys": ["password"], "gracePeriod": "2s"}}
    objects = [
        secret("db", metadata=OLD_SECRET),
        policy("rotate", short_grace),
    ]
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox):
        await wait_until(lambda: stored(sandbox, SECRETS, "team", "db-previous") is not None, 15)
        await wait_until(lambda: stored(sandbox, SECRETS, "team", "db-previous") is None, 15)
        assert stored(sandbox, SECRETS, "team", "db") is not None


@pytest.mark.parametrize(
    ("owner", "where"),
    [
        ("ExternalSecret", "external-secrets.io/v1/externalsecrets"),
        ("Certificate", "cert-manager.io/v1/certificates"),
    ],
)
async def test_a_secret_owned_by_another_controller_is_refreshed_at_its_source(
    owner: str, where: str
) -> None:
    owned = secret(
        "db",
        metadata={
            **OLD_SECRET,
            "ownerReferences": [
                {
                    "apiVersion": where.rsplit("/", 1)[0],
                    "kind": owner,
                    "name": "db",
                    "uid": "o-1",
                    "controller": True,
                }
            ],
        },
    )
    source = {
        "apiVersion": where.rsplit("/", 1)[0],
        "kind": owner,
        "metadata": {"name": "db", "namespace": "team"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    async with (
        emulated_cluster([owned, source, policy("rotate", ROTATE)]) as sandbox,
        operator_on(sandbox),
    ):
        await wait_until(lambda: "RefreshRequested" in reasons(sandbox, "db"), 15)
        await converged(sandbox)
        assert unb64(stored(sandbox, SECRETS, "team", "db")["data"]["password"]) == OLD
        body = stored(sandbox, where, "team", "db")
        if owner == "ExternalSecret":
            assert body["metadata"]["annotations"]["force-sync"]
        else:
            conditions = {c["type"]: c for c in body["status"]["conditions"]}
            assert conditions["Issuing"]["reason"] == "ManuallyTriggered"
            assert conditions["Ready"]["status"] == "True"  # the rest of status kept
        # asked once, not on every evaluation
        assert reasons(sandbox, "db").count("RefreshRequested") == 1


async def test_a_helm_managed_secret_is_reported_not_rotated() -> None:
    helm = secret(
        "db",
        metadata={**OLD_SECRET, "annotations": {"meta.helm.sh/release-name": "app"}},
    )
    async with emulated_cluster([helm, policy("rotate", ROTATE)]) as sandbox, operator_on(sandbox):
        await converged(sandbox)
        body = stored(sandbox, SECRETS, "team", "db")
        assert unb64(body["data"]["password"]) == OLD
        assert "rotation-blocked" in body["metadata"]["annotations"][CW + "findings"]


async def test_a_concurrent_edit_is_never_overwritten() -> None:
    async with emulated_cluster(_rotation_cluster()) as sandbox:
        edited = asyncio.Event()

        def first_rotation_write(request: kmock.Request) -> bool:
            return (
                request.method.value == "PATCH"
                and request.resource.plural == "secrets"
                and "rotation-pending" in str(request.data)
                and not edited.is_set()
            )

        # a user changes the Secret right before credwarden's first write: 409, re-plan
        conflict = kmock.KubernetesError(status=409, reason="Conflict", message="modified")
        sandbox.emulator.fail(first_rotation_write, conflict)
        await sandbox.emulator.patch(
            "/api/v1/namespaces/team/secrets/db",
            json={"metadata": {"labels": {"edited-by": "a-person"}}},
        )
        edited.set()
        async with operator_on(sandbox):
            await converged(sandbox)
            db = stored(sandbox, SECRETS, "team", "db")
            assert db["metadata"]["labels"]["edited-by"] == "a-person"
            assert db["metadata"]["annotations"][CW + "rotations"] == "1"


# ---- crash safety -------------------------------------------------------------------------
def _step(n: int) -> Callable[[kmock.Request], bool]:
    """The n-th write of a rotation (0-based), recognised by what it writes."""

    def match(request: kmock.Request) -> bool:
        if request.method.value not in WRITES or request.resource is None:
            return False
        text = json.dumps(request.data) if request.data is not None else ""
        plural = request.resource.plural
        steps = [
            plural == "secrets"
            and request.method.value == "PATCH"
            and 'rotation-pending": "{' in text,
            plural == "secrets" and request.method.value == "POST" and "db-previous" in text,
            plural == "secrets" and request.method.value == "PATCH" and '"data"' in text,
            plural == "deployments",
            plural == "secrets" and 'restart-pending": null' in text,
        ]
        return steps[n]

    return match


@pytest.mark.parametrize("killed_before", [0, 1, 2, 3, 4])
async def test_a_rotation_interrupted_at_any_write_completes_after_a_restart(
    killed_before: int,
) -> None:
    async with emulated_cluster(_rotation_cluster()) as sandbox:
        # the operator "dies" at this write: it fails and the operator is stopped
        died = kmock.KubernetesError(status=403, reason="Forbidden", message="operator killed")
        sandbox.emulator.fail(_step(killed_before), died)
        async with operator_on(sandbox):
            await wait_until(
                lambda: any(
                    _step(killed_before)(r) for r in sandbox.emulator if r.method.value in WRITES
                ),
                15,
            )
        # restarted with a new process's memory (new hash key, empty inventory)
        async with operator_on(sandbox):
            await converged(sandbox)
            await asyncio.sleep(0.5)
            await converged(sandbox)
        db = stored(sandbox, SECRETS, "team", "db")
        new = unb64(db["data"]["password"])
        values = _values(sandbox, "db")
        # no value lost: every version holds the old or the one new value, in that order
        assert values[0] == OLD and values[-1] == new != OLD
        assert set(values) == {OLD, new}
        assert values.index(new) == len(values) - values[::-1].index(OLD)  # one switch
        assert db["metadata"]["annotations"][CW + "rotations"] == "1"
        assert CW + "rotation-pending" not in db["metadata"]["annotations"]
        assert CW + "restart-pending" not in db["metadata"]["annotations"]
        assert unb64(stored(sandbox, SECRETS, "team", "db-previous")["data"]["password"]) == OLD
        # consumers restarted once for this rotation
        template = stored(sandbox, DEPLOYMENTS, "team", "web")["spec"]["template"]
        assert template["metadata"]["annotations"][CW + "restarted-for"] == "db@1"
        restarts = [
            r
            for r in writes(sandbox)
            if r.resource.plural == "deployments" and r.method.value == "PATCH"
        ]
        assert len(restarts) <= 2  # the failed attempt, if that was the one killed, and one


# ---- audit mode ---------------------------------------------------------------------------
async def test_audit_mode_writes_nothing_but_annotations_events_and_status() -> None:
    objects = [
        token("old-token"),
        *_rotation_cluster(),
    ]
    for body in objects:
        if body["kind"] == "ClusterCredentialPolicy":
            body["spec"]["mode"] = "Audit"
    objects.append(policy("tokens", REVOKE, mode="Audit"))
    async with emulated_cluster(objects) as sandbox, operator_on(sandbox):
        await converged(sandbox)
        kinds: dict[str, int] = {}
        for request in writes(sandbox):
            method, plural = request.method.value, request.resource.plural
            kinds[f"{method} {plural}"] = kinds.get(f"{method} {plural}", 0) + 1
            if method == "PATCH" and plural in ("secrets", "serviceaccounts"):
                # only metadata.annotations, only credwarden's
                assert set(request.data) == {"metadata"}
                assert set(request.data["metadata"]) <= {"annotations", "resourceVersion"}
                assert all(k.startswith(CW) for k in request.data["metadata"]["annotations"])
            if method == "PATCH" and "policies" in plural:
                assert request.subresource == "status"
        assert set(kinds) <= {
            "PATCH secrets",
            "PATCH serviceaccounts",
            "POST events",
            "PATCH clustercredentialpolicies",
            "PATCH credentialpolicies",
        }
        assert unb64(stored(sandbox, SECRETS, "team", "db")["data"]["password"]) == OLD
        assert stored(sandbox, SECRETS, "team", "old-token") is not None


# ---- recreating a ServiceAccount ------------------------------------------------------------
def _account_cluster() -> list[dict[str, Any]]:
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "ci",
            "namespace": "team",
            "labels": {"team": "ci"},
            "annotations": {"example.com/purpose": "deploys"},
        },
        "imagePullSecrets": [{"name": "registry"}],
        "automountServiceAccountToken": False,
    }
    runner = deployment("runner", "other")
    runner["spec"]["template"]["spec"]["serviceAccountName"] = "ci"
    recreate = {**REVOKE, "enforcement": {"recreateServiceAccounts": True}}
    return [account, token("ci-token"), runner, policy("tokens", recreate)]


def _check_recreated(sandbox: Sandbox, old_uid: str) -> None:
    account = stored(sandbox, "v1/serviceaccounts", "team", "ci")
    assert account["metadata"]["uid"] != old_uid
    assert account["metadata"]["labels"] == {"team": "ci"}
    assert account["metadata"]["annotations"]["example.com/purpose"] == "deploys"
    assert account["imagePullSecrets"] == [{"name": "registry"}]
    assert account["automountServiceAccountToken"] is False
    assert stored(sandbox, SECRETS, "team", "ci-token") is None
    assert stored(sandbox, SECRETS, "team", f"credwarden-recreate-{old_uid}") is None
    template = stored(sandbox, DEPLOYMENTS, "team", "runner")["spec"]["template"]
    assert template["metadata"]["annotations"][CW + "restarted-for"].startswith(
        "serviceaccount/ci@"
    )
    assert "Recreated" in reasons(sandbox, "ci")


async def test_revoking_a_token_can_recreate_its_account() -> None:
    async with emulated_cluster(_account_cluster()) as sandbox:
        old_uid = stored(sandbox, "v1/serviceaccounts", "team", "ci")["metadata"]["uid"]
        async with operator_on(sandbox):
            await wait_until(lambda: "Recreated" in reasons(sandbox, "ci"), 15)
            await converged(sandbox)
        _check_recreated(sandbox, old_uid)


async def test_an_interrupted_recreation_is_finished_after_a_restart() -> None:
    async with emulated_cluster(_account_cluster()) as sandbox:
        old_uid = stored(sandbox, "v1/serviceaccounts", "team", "ci")["metadata"]["uid"]

        def deleting_the_account(request: kmock.Request) -> bool:
            return request.method.value == "DELETE" and request.resource.plural == (
                "serviceaccounts"
            )

        died = kmock.KubernetesError(status=403, reason="Forbidden", message="operator killed")
        sandbox.emulator.fail(deleting_the_account, died)
        async with operator_on(sandbox):
            await wait_until(lambda: any(deleting_the_account(r) for r in sandbox.emulator), 15)
        # the record survives the crash: the new process finishes from it
        assert stored(sandbox, SECRETS, "team", f"credwarden-recreate-{old_uid}") is not None
        async with operator_on(sandbox):
            await wait_until(lambda: "Recreated" in reasons(sandbox, "ci"), 15)
            await converged(sandbox)
        _check_recreated(sandbox, old_uid)


async def test_the_action_budget_outlives_a_restart() -> None:
    budget = {**REVOKE, "enforcement": {"budget": {"revocationsPerHour": 2}}}
    objects = [token(f"t{i}") for i in range(5)] + [policy("tokens", budget)]
    async with emulated_cluster(objects) as sandbox:
        deletes = lambda: [r for r in writes(sandbox) if r.method.value == "DELETE"]  # noqa: E731
        async with operator_on(sandbox):
            await wait_until(lambda: len(deletes()) == 2, 20)
            await converged(sandbox)
        status = stored(
            sandbox, "credwarden.io/v1alpha1/clustercredentialpolicies", None, "tokens"
        )["status"]
        assert len(status["recentActions"]["revocations"]) == 2
        # a crash-looping operator must not get a fresh budget on every start
        async with operator_on(sandbox):
            await converged(sandbox)
            await asyncio.sleep(1)
        assert len(deletes()) == 2
        assert "ActionBudgetExhausted" in reasons(sandbox, "tokens")
