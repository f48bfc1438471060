"""The inventory: every fact the engine reads, indexed for O(1) look-ups.

The audit builds one from a snapshot; the operator keeps one up to date from its
watches. Each `upsert_*`/`remove_*` returns the credentials whose evaluation may have
changed, so the operator re-evaluates only those. Pure data: no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from credwarden.facts import (
    BindingFacts,
    Meta,
    NamespaceFacts,
    PolicyFacts,
    SecretFacts,
    ServiceAccountFacts,
    WorkloadFacts,
)
from credwarden.immutable import immutable
from credwarden.namespaced import NamespacedMap

CLUSTER_ADMIN = "cluster-admin"
# the facts of any object the inventory holds
ObjectFacts = (
    SecretFacts | ServiceAccountFacts | NamespaceFacts | BindingFacts | WorkloadFacts | PolicyFacts
)


@immutable(order=True)
class CredentialKey:
    """Identifies a credential: kind is `Secret` or `ServiceAccount`."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


def _discard(index: dict[Any, set[Any]], key: Any, value: Any) -> None:
    """Remove value from index[key], dropping the set once empty (no slow leak)."""
    values = index.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del index[key]


# A reverse index whose entries mostly have one member (most values are held by one
# Secret, most Secrets are read by one workload): the member itself until a second one
# arrives (the member is already stored elsewhere), then a list of them (72 bytes for
# two, against 216 for a set; scanned at C speed), and a set beyond _LIST_LIMIT members.
_Index = dict[Any, Any]
_LIST_LIMIT = 16


def _is_many(held: Any) -> bool:
    """An entry holding several members (a single member may itself be a tuple)."""
    return type(held) is list or type(held) is set


def _add_member(index: _Index, key: Any, member: Any) -> None:
    held = index.get(key)
    if held is None:
        index[key] = member
    elif type(held) is list:
        if member not in held:
            if len(held) < _LIST_LIMIT:
                held.append(member)
            else:
                index[key] = {*held, member}
    elif type(held) is set:
        held.add(member)
    elif held != member:
        index[key] = [held, member]


def _remove_member(index: _Index, key: Any, member: Any) -> None:
    held = index.get(key)
    if held is None:
        return
    if _is_many(held):
        if type(held) is set:
            held.discard(member)
        elif member in held:
            held.remove(member)
        if len(held) == 1:
            index[key] = next(iter(held))
        elif not held:
            del index[key]
    elif held == member:
        del index[key]


def _members(index: _Index, key: Any) -> Collection[Any]:
    held = index.get(key)
    if held is None:
        return ()
    return held if _is_many(held) else (held,)


def _adopt_name(meta: Meta, old: Meta) -> None:
    """Let a credential's new facts hold the very name string its older facts held.

    The credential's key, kept for as long as it is tracked (records, tallies, schedule),
    was made from the first version read, and every version decoded from JSON brings its
    own copy of the name: one more string per credential (about 64 bytes) once each has
    been written to once. The new facts are not shared with anyone yet when stored, and
    the strings are equal, so nothing can tell the difference."""
    if meta.name is not old.name and meta.name == old.name:
        object.__setattr__(meta, "name", old.name)


def _secret_key(namespace: str, name: str) -> CredentialKey:
    return CredentialKey("Secret", namespace, name)


def _sa_key(namespace: str, name: str) -> CredentialKey:
    return CredentialKey("ServiceAccount", namespace, name)


def account_of(kind: str, namespace: str, name: str) -> tuple[str, str] | None:
    """The ServiceAccount a binding subject names: a ServiceAccount subject, or the User
    `system:serviceaccount:<namespace>:<name>` that the API server authenticates it as."""
    if kind == "ServiceAccount" and name:
        return (namespace, name)
    if kind == "User" and name.startswith("system:serviceaccount:"):
        parts = name.split(":")
        if len(parts) == 4 and parts[2] and parts[3]:
            return (parts[2], parts[3])
    return None


def accounts_group(kind: str, name: str) -> str | None:
    """`*` for the Group of every ServiceAccount, the namespace for one namespace's."""
    if kind != "Group":
        return None
    if name == "system:serviceaccounts":
        return "*"
    if name.startswith("system:serviceaccounts:") and len(name) > len("system:serviceaccounts:"):
        return name[len("system:serviceaccounts:") :]
    return None


# What the engine derives from policies and namespaces alone, keyed by
# (credential kind, namespace, Secret type): the policies that cover that namespace and
# govern that kind and type, in precedence order; and, when every one of them governs
# every such credential (no selector, no exemptions), what the engine derives from that
# list (its `_PolicySet`), else None.
PolicyMemo = dict[tuple[str, str, str | None], tuple[tuple[PolicyFacts, ...], Any]]
# A Secret named by its (namespace, name) key in `secrets`
_SecretRef = tuple[str, str]


class Inventory:
    def __init__(self) -> None:
        # (namespace, name) -> facts, kept by namespace (see namespaced.py): the names of
        # a namespace's credentials come with it
        self.secrets: NamespacedMap[SecretFacts] = NamespacedMap()
        self.service_accounts: NamespacedMap[ServiceAccountFacts] = NamespacedMap()
        self.namespaces: dict[str, NamespaceFacts] = {}
        self.bindings: dict[tuple[str, str, str], BindingFacts] = {}
        self.workloads: dict[tuple[str, str, str], WorkloadFacts] = {}
        self.policies: dict[tuple[str, str, str], PolicyFacts] = {}
        # Filled by the engine, emptied whenever a policy or a namespace changes.
        self.policy_memo: PolicyMemo = {}
        # namespace -> the valid policies that cover it, in the order of `policies`
        self.policies_covering: dict[str, tuple[PolicyFacts, ...]] = {}
        # What the engine derives from a list of governing policies alone (owner keys,
        # ...), keyed by their identities: emptied with policy_memo, so an id stays the
        # id of a live policy for as long as an entry names it.
        self.policy_derived: dict[tuple[int, ...], Any] = {}
        # reverse indexes (a single member, a list or a set: see _add_member)
        # (namespace, secret) -> workload keys that read it
        self._consumers: _Index = {}
        # (namespace, account) -> workload keys that run as it
        self._sa_users: _Index = {}
        # (namespace, account) -> names of token Secrets annotated with it
        self._tokens: _Index = {}
        self._admin_bindings: defaultdict[tuple[str, str], set[tuple[str, str, str]]] = defaultdict(
            set
        )
        # namespace ("*": every namespace) -> cluster-admin bindings of a whole group
        # of accounts (system:serviceaccounts[:ns])
        self._admin_groups: defaultdict[str, set[tuple[str, str, str]]] = defaultdict(set)
        # value hash -> the Secrets holding it. While one Secret holds it (99.8 % of
        # hashes), its facts as stored in `secrets` (no object of its own); from the
        # second holder on, a set of their CredentialKeys, which an upsert merges into its
        # affected set at C speed: each new copy of a value affects all the others, and
        # a value may be copied hundreds of times. Which data keys hold the value is read
        # from the Secret's own facts.
        self._by_hash: dict[int, SecretFacts | set[CredentialKey]] = {}
        # value hash -> its holders sorted, for hashes held by more than one Secret;
        # computed on first use, dropped when a holder comes or goes
        self._sorted_holders: dict[int, tuple[_SecretRef, ...]] = {}

    # ---- look-ups -------------------------------------------------------------------
    def credentials(self) -> Iterator[CredentialKey]:
        for namespace, name in self.service_accounts:
            yield _sa_key(namespace, name)
        for namespace, name in self.secrets:
            yield _secret_key(namespace, name)

    def __len__(self) -> int:
        return len(self.secrets) + len(self.service_accounts)

    def in_namespace(self, namespace: str) -> set[CredentialKey]:
        found = {_secret_key(namespace, name) for name in self.secrets.names_in(namespace)}
        found.update(_sa_key(namespace, name) for name in self.service_accounts.names_in(namespace))
        return found

    def consumers_of(self, namespace: str, secret: str) -> list[WorkloadFacts]:
        return self._workloads_of(self._consumers.get((namespace, secret)))

    def workloads_running_as(self, namespace: str, service_account: str) -> list[WorkloadFacts]:
        return self._workloads_of(self._sa_users.get((namespace, service_account)))

    def _workloads_of(self, held: Any) -> list[WorkloadFacts]:
        """The workloads of a reverse index entry (see _add_member), sorted by key."""
        if held is None:
            return []
        if not _is_many(held):
            return [self.workloads[held]]
        return [self.workloads[key] for key in sorted(held)]

    def tokens_of(self, namespace: str, service_account: str) -> list[SecretFacts]:
        names = set(_members(self._tokens, (namespace, service_account)))
        account = self.service_accounts.get((namespace, service_account))
        if account:
            names.update(
                name
                for name in account.secret_names
                if (found := self.secrets.get((namespace, name))) and found.is_token
            )
        return [self.secrets[(namespace, name)] for name in sorted(names)]

    def cluster_admin_bindings(self, namespace: str, service_account: str) -> list[BindingFacts]:
        direct = self._admin_bindings.get((namespace, service_account))
        by_group = self._admin_groups.get(namespace)
        everyone = self._admin_groups.get("*")
        if not (direct or by_group or everyone):
            return []  # most accounts: nothing to merge or sort
        keys = {*(direct or ()), *(by_group or ()), *(everyone or ())}
        return [self.bindings[key] for key in sorted(keys)]

    def _accounts_in(self, namespace: str) -> set[CredentialKey]:
        if namespace != "*":
            return {_sa_key(namespace, name) for name in self.service_accounts.names_in(namespace)}
        return {_sa_key(ns, name) for ns, name in self.service_accounts}

    def sharing_value(self, value_hash: int) -> list[tuple[str, str, str]]:
        """(namespace, secret, key) of every Secret value with this keyed hash."""
        return sorted(
            (namespace, name, data_key)
            for namespace, name in self._holders(value_hash)
            for data_key, digest in self.secrets[(namespace, name)].value_hashes.items()
            if digest == value_hash
        )

    def secrets_holding(self, value_hash: int) -> tuple[_SecretRef, ...]:
        """(namespace, name) of every Secret holding this keyed hash, sorted, each once.

        Cached per hash until a holder comes or goes, so that every copy of a widely
        shared value does not sort all the copies again (O(k²) for k copies)."""
        held = self._by_hash.get(value_hash)
        if held is None:
            return ()
        if not isinstance(held, set):
            return (held.key,)
        found = self._sorted_holders.get(value_hash)
        if found is None:
            found = tuple(sorted((key.namespace, key.name) for key in held))
            self._sorted_holders[value_hash] = found
        return found

    def _holders(self, value_hash: int) -> Iterable[_SecretRef]:
        held = self._by_hash.get(value_hash)
        if held is None:
            return ()
        if isinstance(held, set):
            return [(key.namespace, key.name) for key in held]
        return (held.key,)

    @staticmethod
    def others_holding(holders: tuple[_SecretRef, ...], secret: _SecretRef) -> int:
        """How many of these sorted holders are not `secret` (binary search)."""
        at = bisect_left(holders, secret)
        return len(holders) - (1 if at < len(holders) and holders[at] == secret else 0)

    # ---- updates --------------------------------------------------------------------
    def load(
        self,
        objects: Iterable[ObjectFacts],
    ) -> None:
        """Add many objects at once (an initial listing, a snapshot) without working out
        what each one affects: whoever loads a whole cluster evaluates all of it next.
        The result is the same inventory as upserting them one by one, in this order."""
        for facts in objects:
            self.add(facts)

    def add(
        self,
        facts: ObjectFacts,
    ) -> None:
        """`upsert` without working out what the object affects (see `load`)."""
        if isinstance(facts, SecretFacts):
            self._store_secret(facts)
        elif isinstance(facts, ServiceAccountFacts):
            self._store_service_account(facts)
        elif isinstance(facts, WorkloadFacts):
            self._store_workload(facts)
        else:
            self.upsert(facts)

    def upsert(
        self,
        facts: ObjectFacts,
    ) -> set[CredentialKey]:
        """Add or replace any object's facts; the credentials whose evaluation may change
        (a policy change affects all of them: the caller re-evaluates everything)."""
        if isinstance(facts, SecretFacts):
            return self.upsert_secret(facts)
        if isinstance(facts, ServiceAccountFacts):
            return self.upsert_service_account(facts)
        if isinstance(facts, NamespaceFacts):
            return self.upsert_namespace(facts)
        if isinstance(facts, BindingFacts):
            return self.upsert_binding(facts)
        if isinstance(facts, WorkloadFacts):
            return self.upsert_workload(facts)
        self.upsert_policy(facts)
        return set()

    def facts_of(self, key: CredentialKey) -> SecretFacts | ServiceAccountFacts | None:
        """The facts of a credential, if it is still in the inventory."""
        where = self.secrets if key.kind == "Secret" else self.service_accounts
        return where.get((key.namespace, key.name))

    def _store_secret(self, facts: SecretFacts) -> SecretFacts | None:
        """Store (or replace) a Secret and index it; the facts it replaced, if any."""
        old = self._forget_secret(*facts.key)
        if old is not None:
            _adopt_name(facts.meta, old.meta)  # before the name becomes a key below
        namespace, name = facts.meta.namespace, facts.meta.name
        self.secrets[namespace, name] = facts
        for digest in facts.distinct_digests():
            self._hold(digest, facts)
        if facts.service_account:
            _add_member(self._tokens, (namespace, facts.service_account), name)
        return old

    def _forget_secret(self, namespace: str, name: str) -> SecretFacts | None:
        facts = self.secrets.pop((namespace, name), None)
        if facts is None:
            return None
        for digest in facts.distinct_digests():
            self._release(digest, facts)
        if facts.service_account:
            _remove_member(self._tokens, (namespace, facts.service_account), name)
        return facts

    def upsert_secret(self, facts: SecretFacts) -> set[CredentialKey]:
        old = self._store_secret(facts)
        if old is None:
            return self._secret_dependents(facts, facts.distinct_digests())
        # Secrets sharing a value see this one only as a place that holds that value:
        # their evaluation changes when this Secret gains or loses a value, not on any
        # other update (an annotation, a label, credwarden's own Annotate patch).
        changed = old.distinct_digests().symmetric_difference(facts.distinct_digests())
        affected = self._secret_dependents(facts, changed)
        if old.service_account:
            affected.add(_sa_key(old.meta.namespace, old.service_account))
        return affected

    def remove_secret(self, namespace: str, name: str) -> set[CredentialKey]:
        facts = self._forget_secret(namespace, name)
        if facts is None:
            return set()
        return self._secret_dependents(facts, facts.distinct_digests())

    def _secret_dependents(self, facts: SecretFacts, sharing: Iterable[int]) -> set[CredentialKey]:
        """The Secret itself, its ServiceAccount, and the Secrets holding these values."""
        affected = {_secret_key(*facts.key)}
        if facts.service_account:
            affected.add(_sa_key(facts.meta.namespace, facts.service_account))
        for digest in sharing:
            held = self._by_hash.get(digest)
            if isinstance(held, set):
                affected |= held
            elif held is not None:
                affected.add(_secret_key(*held.key))
        return affected

    def _hold(self, digest: int, secret: SecretFacts) -> None:
        """Index a stored Secret's value hash (by the facts held in `secrets`)."""
        held = self._by_hash.get(digest)
        if held is None:
            self._by_hash[digest] = secret
        elif isinstance(held, set):
            held.add(_secret_key(*secret.key))
        elif held is not secret and held.key != secret.key:
            self._by_hash[digest] = {_secret_key(*held.key), _secret_key(*secret.key)}
        self._sorted_holders.pop(digest, None)

    def _release(self, digest: int, secret: SecretFacts) -> None:
        held = self._by_hash.get(digest)
        if isinstance(held, set):
            held.discard(_secret_key(*secret.key))
            if len(held) == 1:
                last = held.pop()
                # the one holder left, by the facts `secrets` holds for it now
                self._by_hash[digest] = self.secrets[(last.namespace, last.name)]
        elif held is not None and (held is secret or held.key == secret.key):
            del self._by_hash[digest]
        self._sorted_holders.pop(digest, None)

    def _store_service_account(self, facts: ServiceAccountFacts) -> None:
        self.service_accounts[facts.key] = facts

    def upsert_service_account(self, facts: ServiceAccountFacts) -> set[CredentialKey]:
        old = self.service_accounts.get(facts.key)
        if old is not None:
            _adopt_name(facts.meta, old.meta)
        affected = self.remove_service_account(*facts.key)
        self._store_service_account(facts)
        return affected | self._sa_dependents(*facts.key)

    def remove_service_account(self, namespace: str, name: str) -> set[CredentialKey]:
        if self.service_accounts.pop((namespace, name), None) is None:
            return set()
        return self._sa_dependents(namespace, name)

    def _sa_dependents(self, namespace: str, name: str) -> set[CredentialKey]:
        # token Secrets inherit their account's owner
        affected = {_sa_key(namespace, name)}
        affected.update(
            _secret_key(namespace, token) for token in _members(self._tokens, (namespace, name))
        )
        return affected

    def upsert_namespace(self, facts: NamespaceFacts) -> set[CredentialKey]:
        self.namespaces[facts.name] = facts
        self._forget_policy_memos()  # a ClusterCredentialPolicy selects namespaces by label
        return self.in_namespace(facts.name)

    def remove_namespace(self, name: str) -> set[CredentialKey]:
        self.namespaces.pop(name, None)
        self._forget_policy_memos()
        return self.in_namespace(name)

    def upsert_binding(self, facts: BindingFacts) -> set[CredentialKey]:
        affected = self.remove_binding(*facts.key)
        self.bindings[facts.key] = facts
        if facts.role_kind == "ClusterRole" and facts.role_name == CLUSTER_ADMIN:
            for subject in facts.subjects:
                if account := account_of(subject.kind, subject.namespace, subject.name):
                    self._admin_bindings[account].add(facts.key)
                    affected.add(_sa_key(*account))
                elif (group := accounts_group(subject.kind, subject.name)) is not None:
                    self._admin_groups[group].add(facts.key)
                    affected |= self._accounts_in(group)
        return affected

    def remove_binding(self, kind: str, namespace: str, name: str) -> set[CredentialKey]:
        facts = self.bindings.pop((kind, namespace, name), None)
        if facts is None:
            return set()
        affected: set[CredentialKey] = set()
        for subject in facts.subjects:
            if account := account_of(subject.kind, subject.namespace, subject.name):
                _discard(self._admin_bindings, account, facts.key)
                affected.add(_sa_key(*account))
            elif (group := accounts_group(subject.kind, subject.name)) is not None:
                _discard(self._admin_groups, group, facts.key)
                affected |= self._accounts_in(group)
        return affected

    def _store_workload(self, facts: WorkloadFacts) -> None:
        """Store (or replace) a workload and index it."""
        key = facts.key  # one tuple for the dict and every index entry (`key` builds one)
        if key in self.workloads:
            self.remove_workload(*key)
        self.workloads[key] = facts
        for use in facts.uses:
            _add_member(self._consumers, (facts.namespace, use.secret), key)
        if facts.service_account:
            _add_member(self._sa_users, (facts.namespace, facts.service_account), key)

    def upsert_workload(self, facts: WorkloadFacts) -> set[CredentialKey]:
        affected = self.remove_workload(*facts.key)
        self._store_workload(facts)
        for use in facts.uses:
            affected.add(_secret_key(facts.namespace, use.secret))
        if facts.service_account:
            affected.add(_sa_key(facts.namespace, facts.service_account))
        return affected

    def remove_workload(self, kind: str, namespace: str, name: str) -> set[CredentialKey]:
        key = (kind, namespace, name)
        facts = self.workloads.pop(key, None)
        if facts is None:
            return set()
        affected: set[CredentialKey] = set()
        for use in facts.uses:
            _remove_member(self._consumers, (namespace, use.secret), key)
            affected.add(_secret_key(namespace, use.secret))
        if facts.service_account:
            _remove_member(self._sa_users, (namespace, facts.service_account), key)
            affected.add(_sa_key(namespace, facts.service_account))
        return affected

    def _forget_policy_memos(self) -> None:
        self.policy_memo.clear()
        self.policies_covering.clear()
        self.policy_derived.clear()

    def upsert_policy(self, facts: PolicyFacts) -> None:
        self.policies[facts.key] = facts
        self._forget_policy_memos()

    def remove_policy(self, kind: str, namespace: str, name: str) -> None:
        self.policies.pop((kind, namespace, name), None)
        self._forget_policy_memos()
