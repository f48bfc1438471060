"""Carrying out Enforce mode: revoke, rotate, restart consumers, ask owners to refresh.

Every write carries a precondition (uid and resourceVersion) so a user's concurrent edit
is never overwritten: on 409 the credential is read again and planned again. A rotation
is a sequence of writes, each recorded on the Secret before the next starts:

1. the Secret gets `credwarden.io/rotation-pending` (what is rotated, under which id);
2. the current values of those keys go to `<name>-previous` (exempt, owned by the Secret,
   deleted after the grace period);
3. one patch writes the new values, `credwarden.io/last-rotated`, the rotation counter
   and `credwarden.io/restart-pending`, and removes rotation-pending;
4. each Deployment, StatefulSet and DaemonSet using the Secret gets
   `credwarden.io/restarted-at`/`restarted-for` on its pod template; then
   restart-pending goes.

Killed between any two writes, the operator finds the marker on the Secret after its
restart and finishes from there (the engine plans it): the old value is in the Secret or
in `-previous` at every moment, and nothing is rotated twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import string
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from credwarden.durations import parse_duration
from credwarden.enforcement import (
    DELETE_AFTER,
    PREVIOUS,
    PREVIOUS_OF,
    RECREATE_OF,
    RECREATE_UID,
    RECREATED_AT,
    REFRESH_REQUESTED,
    RESTART_PENDING,
    RESTARTED_AT,
    RESTARTED_FOR,
    ROTATION_PENDING,
    ROTATIONS,
    previous_name,
    recreate_record_name,
    restartable,
)
from credwarden.engine import EXEMPT_ANNOTATION, LAST_ROTATED_ANNOTATION, MANAGED_ANNOTATIONS
from credwarden.facts import PolicyFacts, parse_time
from credwarden.inventory import CredentialKey, Inventory
from credwarden.kube import ApiError, Conflict, KubeClient, NotFound, involved_object, path_of
from credwarden.records import (
    Action,
    DeletePrevious,
    LifecycleRecord,
    RecreateAccount,
    Refresh,
    RestartConsumers,
    Revoke,
    Rotate,
    rfc3339,
)

log = logging.getLogger("credwarden.enforcer")

ALPHABETS = {
    "alphanumeric": string.ascii_letters + string.digits,
    "ascii-printable": string.ascii_letters + string.digits + string.punctuation,
    "hex": "0123456789abcdef",
    "base64url": string.ascii_letters + string.digits + "-_",
}
BUDGET_WINDOW = timedelta(hours=1)

# (kind, policy display name, result or reason)
ActionListener = Callable[[str, str, str], None]


def generate(length: int, alphabet: str) -> str:
    """A new value from the OS's cryptographic source."""
    characters = ALPHABETS[alphabet]
    return "".join(secrets.choice(characters) for _ in range(length))


class Enforcer:
    def __init__(
        self,
        inventory: Inventory,
        client: KubeClient,
        *,
        clock: Callable[[], datetime],
        instance: str = "",
        status_seen: dict[tuple[str, str, str], dict[str, Any]] | None = None,
    ) -> None:
        self.inventory = inventory
        self.client = client
        self.clock = clock
        self.instance = instance
        self.listeners: list[ActionListener] = []
        # (policy, "revocations"|"rotations") -> when each action was taken, last hour;
        # also kept in the policy's status.recentActions, read back after a restart
        self._spent: dict[tuple[str, str], deque[datetime]] = {}
        self.status_seen = status_seen if status_seen is not None else {}
        # policy -> until when its budget is exhausted (a condition on its status)
        self.exhausted: dict[str, tuple[datetime, str]] = {}
        # counts changes to what policy status shows of enforcement (actions spent,
        # budgets exhausted): the reconciler recomputes statuses only when it moves
        self.changes = 0
        # per policy, held around every write of its status: the budget's record
        # (recentActions) and the reconciler's status writes, which run concurrently,
        # then reach the API server in the order they were computed
        self._status_locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        # credential -> the resourceVersion the last write of an action left it at: the
        # reconciler takes it (`version_left`) to annotate the credential on that version
        self._versions_left: dict[CredentialKey, str] = {}
        # credential -> when the spent budget that just held its action back reopens:
        # the reconciler takes it (`held_until`) to look again then, not every few seconds
        self._held_until: dict[CredentialKey, datetime] = {}

    # ---- the action budget ------------------------------------------------------------
    def _policy(self, display_name: str) -> PolicyFacts | None:
        return next(
            (p for p in self.inventory.policies.values() if p.display_name == display_name), None
        )

    def _spent_on(self, policy: PolicyFacts, kind: str) -> deque[datetime]:
        """This hour's actions of a kind; after a restart, as the policy's status says."""
        key = (policy.display_name, kind)
        if key not in self._spent:
            recorded = (self.status_seen.get(policy.key) or {}).get("recentActions") or {}
            times = [parse_time(t) for t in recorded.get(kind) or [] if isinstance(t, str)]
            self._spent[key] = deque(sorted(t for t in times if t is not None))
        spent = self._spent[key]
        # a clock jumping backwards must not refill the budget: drop only what is
        # older than an hour from now, and count what claims to be in the future
        now = self.clock()
        while spent and now - spent[0] > BUDGET_WINDOW:
            spent.popleft()
        return spent

    def status_lock(self, policy: tuple[str, str, str]) -> asyncio.Lock:
        """Held while a policy's status is computed and written (by its key)."""
        return self._status_locks.setdefault(policy, asyncio.Lock())

    def budgets_reopened(self, now: datetime) -> bool:
        """Forget budgets whose hour has passed; whether any did (their condition ends)."""
        reopened = [name for name, (until, _) in self.exhausted.items() if until <= now]
        for name in reopened:
            del self.exhausted[name]
        self.changes += len(reopened)
        return bool(reopened)

    def held_until(self, key: CredentialKey) -> datetime | None:
        """When the budget that held back the credential's last action reopens, once:
        None when no budget held it (taken, so nothing stays behind)."""
        return self._held_until.pop(key, None)

    def next_reopening(self) -> datetime | None:
        return min((until for until, _ in self.exhausted.values()), default=None)

    def recent_actions(self, policy: PolicyFacts) -> dict[str, list[str]]:
        """status.recentActions for a policy (empty kinds left out)."""
        recent = {
            kind: [rfc3339(t) or "" for t in self._spent_on(policy, kind)]
            for kind in ("revocations", "rotations")
        }
        return {kind: times for kind, times in recent.items() if times}

    async def _take_budget(self, policy_name: str, kind: str, target: CredentialKey) -> bool:
        """Spend one action of the policy's hourly budget for `target`; False when it may
        not act now. Only a budget really spent holds the action until it reopens (an
        Event, a condition): a budget that could not be recorded (the API refused the
        status write) or a policy gone is tried again soon, like any failed write."""
        answer = await self._within_budget(policy_name, kind)
        if answer == "spent":
            await self._budget_exhausted(policy_name, kind, target)
        return answer == "taken"

    async def _within_budget(
        self, policy_name: str, kind: str
    ) -> Literal["taken", "spent", "unavailable"]:
        """`taken`: one action recorded as spent now; `spent`: none left this hour;
        `unavailable`: the policy is gone, or the record could not be written."""
        policy = self._policy(policy_name)
        if policy is None or policy.spec is None:
            return "unavailable"
        budget = policy.spec.enforcement.budget
        limit = budget.revocationsPerHour if kind == "revocations" else budget.rotationsPerHour
        async with self.status_lock(policy.key):
            spent = self._spent_on(policy, kind)
            if len(spent) >= limit:
                return "spent"
            spent.append(self.clock())
            # recorded before acting: a crash after the action still counts it
            recent = self.recent_actions(policy)
            try:
                await self.client.merge_patch(
                    path_of(policy.kind, policy.namespace, policy.name, "status"),
                    {"status": {"recentActions": {kind: recent.get(kind, [])}}},
                )
            except ApiError as error:
                spent.pop()
                log.warning("action budget of %s not recorded, not acting: %s", policy_name, error)
                return "unavailable"
            self.status_seen.setdefault(policy.key, {})["recentActions"] = recent
        self.changes += 1
        return "taken"

    async def _budget_exhausted(self, policy_name: str, kind: str, target: CredentialKey) -> None:
        now = self.clock()
        spent = self._spent.get((policy_name, kind)) or deque([now])
        until = spent[0] + BUDGET_WINDOW
        first = policy_name not in self.exhausted or self.exhausted[policy_name][0] < now
        message = (
            f"{kind} budget of policy {policy_name} spent for this hour: {target} and any "
            f"further {kind} wait until {rfc3339(until)} or for a person"
        )
        self._notify("blocked", policy_name, "budget")
        self._held_until[target] = until
        if first:
            # the first target blocked names the condition until the window ends: naming
            # the latest one would change the policy's status with every pass
            self.exhausted[policy_name] = (until, message)
            self.changes += 1
            log.warning(message)
            await self._policy_event(policy_name, "Warning", "ActionBudgetExhausted", message)

    # ---- events -----------------------------------------------------------------------
    def _notify(self, kind: str, policy: str, result: str) -> None:
        for listener in self.listeners:
            listener(kind, policy, result)

    async def _event(
        self, involved: Mapping[str, str], type_: str, reason: str, message: str
    ) -> None:
        try:
            await self.client.post_event(
                involved, type_=type_, reason=reason, message=message, instance=self.instance
            )
        except ApiError as error:
            log.warning("event %s not posted: %s", reason, error)

    async def _credential_event(
        self, record: LifecycleRecord, type_: str, reason: str, message: str
    ) -> None:
        await self._event(involved_object(record.key, record.uid), type_, reason, message)

    async def _policy_event(self, policy_name: str, type_: str, reason: str, message: str) -> None:
        policy = self._policy(policy_name)
        if policy is None:
            return
        await self._event(
            {
                "apiVersion": "credwarden.io/v1alpha1",
                "kind": policy.kind,
                # a cluster-scoped policy's Events live in the events namespace
                "namespace": policy.namespace,
                "name": policy.name,
                "uid": policy.uid,
            },
            type_,
            reason,
            message,
        )

    async def _record(
        self, record: LifecycleRecord, policy: str, type_: str, reason: str, message: str
    ) -> None:
        """An action is told on the credential and on the policy: what, why, which, when."""
        await self._credential_event(record, type_, reason, message)
        await self._policy_event(policy, type_, reason, f"{record.key}: {message}")

    def _left_at(self, key: CredentialKey, written: Any) -> None:
        version = ((written or {}).get("metadata") or {}).get("resourceVersion")
        if isinstance(version, str):
            self._versions_left[key] = version

    def version_left(self, key: CredentialKey) -> str | None:
        """The resourceVersion the actions carried out since the last call left the
        credential at; None when they wrote nothing to it."""
        return self._versions_left.pop(key, None)

    # ---- dispatch ---------------------------------------------------------------------
    async def carry_out(self, record: LifecycleRecord, action: Action) -> bool:
        """Carry out one enforcement action; False when it must be planned again later."""
        try:
            if isinstance(action, Revoke):
                return await self._revoke(record, action)
            if isinstance(action, Rotate):
                return await self._rotate(record, action)
            if isinstance(action, RestartConsumers):
                return await self._restart(record, action)
            if isinstance(action, Refresh):
                return await self._refresh(record, action)
            if isinstance(action, DeletePrevious):
                return await self._delete_previous(action)
            if isinstance(action, RecreateAccount):
                return await self._finish_recreation(record, action)
        except Conflict:
            log.info("%s changed meanwhile; planning again", record.key)
            return False
        except ApiError as error:
            log.warning("%s on %s failed: %s", type(action).__name__, record.key, error)
            return False
        return True

    async def _revoke(self, record: LifecycleRecord, action: Revoke) -> bool:
        if not action.enforced:
            return True
        if not await self._take_budget(action.policy, "revocations", record.key):
            return False
        key = record.key
        if action.recreate_account:
            # recorded before the token goes: a crash after it still recreates the account
            await self._record_recreation(key.namespace, action.recreate_account, action.policy)
        try:
            await self.client.delete(
                path_of("Secret", key.namespace, key.name),
                uid=action.uid,
                resource_version=action.resource_version,
            )
        except NotFound:
            return True
        except Conflict:
            self._notify("revocation", action.policy, "conflict")
            raise
        except ApiError:
            self._notify("revocation", action.policy, "error")
            raise
        self._notify("revocation", action.policy, "success")
        log.info("revoked %s (%s) by policy %s", key, action.reason, action.policy)
        await self._record(
            record,
            action.policy,
            "Warning",
            "Revoked",
            f"legacy token deleted by policy {action.policy}: {action.reason}; "
            "the API server no longer accepts it",
        )
        if action.recreate_account:
            await self._recreate(key.namespace, action.recreate_account, action.policy)
        return True

    # ---- recreating a ServiceAccount (invalidates every token bound to its old uid) ---
    async def _record_recreation(self, namespace: str, account: str, policy: str) -> None:
        body = await self.client.get(path_of("ServiceAccount", namespace, account))
        metadata = body.get("metadata") or {}
        uid = metadata.get("uid") or ""
        annotations = {
            k: v
            for k, v in (metadata.get("annotations") or {}).items()
            if k not in MANAGED_ANNOTATIONS
        }
        manifest = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": account,
                "namespace": namespace,
                "labels": metadata.get("labels") or {},
                "annotations": annotations,
            },
            **{
                field: body[field]
                for field in ("imagePullSecrets", "automountServiceAccountToken")
                if field in body
            },
        }
        record = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": recreate_record_name(uid),
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "credwarden"},
                "annotations": {
                    RECREATE_OF: account,
                    RECREATE_UID: uid,
                    "credwarden.io/policy": policy,
                    EXEMPT_ANNOTATION: f"credwarden's record of recreating ServiceAccount "
                    f"{account}; holds its manifest, no credential",
                },
            },
            "data": {
                "serviceaccount.json": base64.b64encode(json.dumps(manifest).encode()).decode()
            },
        }
        try:
            await self.client.request(
                "POST", f"/api/v1/namespaces/{namespace}/secrets", body=record
            )
        except ApiError as error:
            if error.status != 409:  # 409: recorded before an interruption
                raise

    async def _recreate(self, namespace: str, account: str, policy: str) -> None:
        path = path_of("ServiceAccount", namespace, account)
        try:
            uid = ((await self.client.get(path)).get("metadata") or {}).get("uid") or ""
        except NotFound:
            return
        name = recreate_record_name(uid)
        await self._finish_recreation(
            None, RecreateAccount(CredentialKey("Secret", namespace, name), account, uid)
        )
        log.info("recreated ServiceAccount %s/%s for policy %s", namespace, account, policy)

    async def _finish_recreation(
        self, record: LifecycleRecord | None, action: RecreateAccount
    ) -> bool:
        namespace, account = action.target.namespace, action.account
        record_path = path_of("Secret", namespace, action.target.name)
        try:
            stored = await self.client.get(record_path)
        except NotFound:
            return True
        manifest = json.loads(base64.b64decode((stored.get("data") or {})["serviceaccount.json"]))
        path = path_of("ServiceAccount", namespace, account)
        try:
            current = await self.client.get(path)
            current_uid = (current.get("metadata") or {}).get("uid")
        except NotFound:
            current_uid = None
        if current_uid == action.old_uid:
            with contextlib.suppress(NotFound):
                await self.client.delete(path, uid=action.old_uid)
            current_uid = None
        if current_uid is None:
            manifest["metadata"].setdefault("annotations", {})[RECREATED_AT] = rfc3339(self.clock())
            try:
                await self.client.request(
                    "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", body=manifest
                )
            except ApiError as error:
                if error.status != 409:
                    raise
        # Pods running as the old account hold tokens bound to its uid: roll them now
        workloads = restartable(self.inventory.workloads_running_as(namespace, account))
        await self._roll(namespace, workloads, f"serviceaccount/{account}@{action.old_uid[:8]}")
        with contextlib.suppress(NotFound):
            await self.client.delete(record_path)
        restarted = ", ".join(f"{kind}/{name}" for kind, name in workloads)
        await self._event(
            involved_object(CredentialKey("ServiceAccount", namespace, account), action.old_uid),
            "Warning",
            "Recreated",
            "recreated with a new uid: every token bound to the old one is now rejected"
            + (f"; restarted {restarted}" if restarted else ""),
        )
        return True

    async def _rotate(self, record: LifecycleRecord, action: Rotate) -> bool:
        if not action.enforced:
            return True
        if not action.resume and not await self._take_budget(
            action.policy, "rotations", record.key
        ):
            return False
        key = record.key
        path = path_of("Secret", key.namespace, key.name)
        body = await self.client.get(path)
        metadata = body.get("metadata") or {}
        if metadata.get("uid") != action.uid:
            return True  # another Secret by that name now: nothing of ours to finish
        annotations = metadata.get("annotations") or {}
        version = metadata.get("resourceVersion")
        if not action.resume and version != action.resource_version:
            raise Conflict(409, "GET", path, "changed since it was evaluated")
        # 1. intent, recorded on the object
        if ROTATION_PENDING not in annotations:
            pending = {
                "id": action.rotation_id,
                "keys": list(action.keys),
                "policy": action.policy,
                "length": action.length,
                "alphabet": action.alphabet,
                "grace": action.grace,
                "started": rfc3339(self.clock()),
            }
            body = await self.client.annotate(
                path, {ROTATION_PENDING: json.dumps(pending)}, resource_version=version
            )
            version = body["metadata"]["resourceVersion"]
        # 2. the values being replaced, kept aside (still in the Secret: step 3 not done)
        data = body.get("data") or {}
        await self._keep_previous(key, action, record.uid, data)
        # 3. new values, and the record of the rotation, in one write
        new_data = {
            name: base64.b64encode(generate(action.length, action.alphabet).encode()).decode()
            for name in action.keys
        }
        now = rfc3339(self.clock())
        try:
            await self.client.merge_patch(
                path,
                {
                    "metadata": {
                        "resourceVersion": version,
                        "annotations": {
                            ROTATION_PENDING: None,
                            LAST_ROTATED_ANNOTATION: now,
                            ROTATIONS: action.rotation_id,
                            PREVIOUS: previous_name(key.name),
                            RESTART_PENDING: action.rotation_id,
                        },
                    },
                    "data": new_data,
                },
            )
        finally:
            new_data.clear()
        self._notify("rotation", action.policy, "success")
        log.info("rotated %s keys %s by policy %s", key, ",".join(action.keys), action.policy)
        await self._record(
            record,
            action.policy or "",
            "Normal",
            "Rotated",
            f"keys {', '.join(action.keys)} regenerated by policy {action.policy} "
            f"(rotation {action.rotation_id}): {action.reason}; previous values kept in "
            f"Secret {previous_name(key.name)} for {action.grace}",
        )
        # 4. consumers: now, or from restart-pending after a restart of credwarden
        workloads = restartable(self.inventory.consumers_of(key.namespace, key.name))
        return await self._restart(record, RestartConsumers(key, action.rotation_id, workloads))

    async def _keep_previous(
        self, key: CredentialKey, action: Rotate, owner_uid: str, data: Mapping[str, Any]
    ) -> None:
        name = previous_name(key.name)
        path = path_of("Secret", key.namespace, name)
        delete_after = rfc3339(self.clock() + parse_duration(action.grace))
        previous = {k: data[k] for k in action.keys if k in data}
        try:
            existing = await self.client.get(path)
        except NotFound:
            existing = None
        if existing is not None:
            kept = (existing.get("metadata") or {}).get("annotations") or {}
            if kept.get("credwarden.io/rotation-id") == action.rotation_id:
                return  # written before an interruption: these are the values replaced
        annotations = {
            PREVIOUS_OF: key.name,
            "credwarden.io/rotation-id": action.rotation_id,
            DELETE_AFTER: delete_after,
            EXEMPT_ANNOTATION: f"previous values of Secret {key.name}, kept until "
            f"{delete_after} for rollback",
        }
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": key.namespace,
                "labels": {"app.kubernetes.io/managed-by": "credwarden"},
                "annotations": annotations,
                # deleted with the Secret it belongs to
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Secret", "name": key.name, "uid": owner_uid}
                ],
            },
            "data": previous,
        }
        if existing is None:
            await self.client.request(
                "POST", f"/api/v1/namespaces/{key.namespace}/secrets", body=body
            )
        else:
            await self.client.merge_patch(
                path, {"metadata": {"annotations": annotations}, "data": previous}
            )

    async def _restart(self, record: LifecycleRecord, action: RestartConsumers) -> bool:
        key = record.key
        marker = f"{key.name}@{action.rotation_id}"
        restarted = await self._roll(key.namespace, action.workloads, marker)
        written = await self.client.annotate(
            path_of("Secret", key.namespace, key.name), {RESTART_PENDING: None}
        )
        self._left_at(key, written)
        if restarted:
            await self._credential_event(
                record,
                "Normal",
                "ConsumersRestarted",
                f"rolled {', '.join(restarted)} to pick up rotation {action.rotation_id}",
            )
        return True

    async def _roll(
        self, namespace: str, workloads: tuple[tuple[str, str], ...], marker: str
    ) -> list[str]:
        """Annotate each workload's pod template once per `marker` (which rolls it)."""
        now = rfc3339(self.clock())
        restarted = []
        for kind, name in workloads:
            path = path_of(kind, namespace, name)
            try:
                workload = await self.client.get(path)
            except NotFound:
                continue
            template = (workload.get("spec") or {}).get("template") or {}
            done = ((template.get("metadata") or {}).get("annotations") or {}).get(RESTARTED_FOR)
            if done == marker:
                continue  # restarted for this before an interruption
            patch = {"annotations": {RESTARTED_AT: now, RESTARTED_FOR: marker}}
            await self.client.merge_patch(path, {"spec": {"template": {"metadata": patch}}})
            restarted.append(f"{kind}/{name}")
        return restarted

    async def _refresh(self, record: LifecycleRecord, action: Refresh) -> bool:
        if not action.enforced:
            return True
        if not await self._take_budget(action.policy, "rotations", record.key):
            return False
        key = record.key
        now = self.clock()
        secret = self.inventory.secrets.get((key.namespace, key.name))
        api_version = next(
            (
                ref.api_version
                for ref in (secret.meta.owner_references if secret else ())
                if ref.kind == action.owner_kind and ref.name == action.owner_name
            ),
            "",
        )
        if action.owner_kind == "ExternalSecret":
            version = api_version or "external-secrets.io/v1"
            await self.client.merge_patch(
                f"/apis/{version}/namespaces/{key.namespace}/externalsecrets/{action.owner_name}",
                {"metadata": {"annotations": {"force-sync": str(int(now.timestamp()))}}},
            )
        else:
            # what `cmctl renew` does: the Issuing condition, reason ManuallyTriggered
            version = api_version or "cert-manager.io/v1"
            path = f"/apis/{version}/namespaces/{key.namespace}/certificates/{action.owner_name}"
            certificate = await self.client.get(path)
            conditions = [
                c
                for c in (certificate.get("status") or {}).get("conditions") or []
                if c.get("type") != "Issuing"
            ]
            conditions.append(
                {
                    "type": "Issuing",
                    "status": "True",
                    "reason": "ManuallyTriggered",
                    "message": f"Certificate re-issuance requested by credwarden policy "
                    f"{action.policy}",
                    "lastTransitionTime": rfc3339(now),
                }
            )
            await self.client.merge_patch(
                f"{path}/status",
                {
                    "metadata": {
                        "resourceVersion": (certificate.get("metadata") or {}).get(
                            "resourceVersion"
                        )
                    },
                    "status": {"conditions": conditions},
                },
            )
        written = await self.client.annotate(
            path_of("Secret", key.namespace, key.name), {REFRESH_REQUESTED: rfc3339(now)}
        )
        self._left_at(key, written)
        self._notify("rotation", action.policy, "requested")
        await self._record(
            record,
            action.policy,
            "Normal",
            "RefreshRequested",
            f"asked {action.owner_kind}/{action.owner_name} for a new value (policy "
            f"{action.policy}): {action.reason}",
        )
        return True

    async def _delete_previous(self, action: DeletePrevious) -> bool:
        key = action.target
        with contextlib.suppress(NotFound):  # already gone: nothing left to do
            await self.client.delete(
                path_of("Secret", key.namespace, key.name),
                uid=action.uid,
                resource_version=action.resource_version,
            )
        return True

    def conditions(self, policy_name: str) -> list[dict[str, Any]]:
        """Conditions for a policy's status: BudgetExhausted while its budget is spent."""
        exhausted = self.exhausted.get(policy_name)
        if exhausted is None or exhausted[0] < self.clock():
            return []
        return [
            {
                "type": "BudgetExhausted",
                "status": "True",
                "reason": "ActionBudgetExhausted",
                "message": exhausted[1],
            }
        ]
