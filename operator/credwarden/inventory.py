"""The inventory: every fact the engine reads, indexed for O(1) look-ups.

The audit builds one from a snapshot; the operator keeps one up to date from its
watches. Each `upsert_*`/`remove_*` returns the credentials whose evaluation may have
changed, so the operator re-evaluates only those. Pure data: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from credwarden.facts import (
    BindingFacts,
    NamespaceFacts,
    PolicyFacts,
    SecretFacts,
    ServiceAccountFacts,
    WorkloadFacts,
)

CLUSTER_ADMIN = "cluster-admin"


@dataclass(frozen=True, slots=True, order=True)
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


class Inventory:
    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], SecretFacts] = {}
        self.service_accounts: dict[tuple[str, str], ServiceAccountFacts] = {}
        self.namespaces: dict[str, NamespaceFacts] = {}
        self.bindings: dict[tuple[str, str, str], BindingFacts] = {}
        self.workloads: dict[tuple[str, str, str], WorkloadFacts] = {}
        self.policies: dict[tuple[str, str, str], PolicyFacts] = {}
        # reverse indexes
        self._consumers: defaultdict[tuple[str, str], set[tuple[str, str, str]]] = defaultdict(set)
        self._sa_users: defaultdict[tuple[str, str], set[tuple[str, str, str]]] = defaultdict(set)
        self._tokens: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self._admin_bindings: defaultdict[tuple[str, str], set[tuple[str, str, str]]] = defaultdict(
            set
        )
        # namespace ("*": every namespace) -> cluster-admin bindings of a whole group
        # of accounts (system:serviceaccounts[:ns])
        self._admin_groups: defaultdict[str, set[tuple[str, str, str]]] = defaultdict(set)
        self._by_hash: defaultdict[str, set[tuple[str, str, str]]] = defaultdict(set)
        self._by_namespace: defaultdict[str, set[CredentialKey]] = defaultdict(set)

    # ---- look-ups -------------------------------------------------------------------
    def credentials(self) -> Iterator[CredentialKey]:
        for namespace, name in self.service_accounts:
            yield _sa_key(namespace, name)
        for namespace, name in self.secrets:
            yield _secret_key(namespace, name)

    def __len__(self) -> int:
        return len(self.secrets) + len(self.service_accounts)

    def in_namespace(self, namespace: str) -> set[CredentialKey]:
        return set(self._by_namespace.get(namespace, ()))

    def consumers_of(self, namespace: str, secret: str) -> list[WorkloadFacts]:
        keys = self._consumers.get((namespace, secret), ())
        return [self.workloads[key] for key in sorted(keys)]

    def workloads_running_as(self, namespace: str, service_account: str) -> list[WorkloadFacts]:
        keys = self._sa_users.get((namespace, service_account), ())
        return [self.workloads[key] for key in sorted(keys)]

    def tokens_of(self, namespace: str, service_account: str) -> list[SecretFacts]:
        names = set(self._tokens.get((namespace, service_account), ()))
        account = self.service_accounts.get((namespace, service_account))
        if account:
            names.update(
                name
                for name in account.secret_names
                if (found := self.secrets.get((namespace, name))) and found.is_token
            )
        return [self.secrets[(namespace, name)] for name in sorted(names)]

    def cluster_admin_bindings(self, namespace: str, service_account: str) -> list[BindingFacts]:
        keys = {
            *self._admin_bindings.get((namespace, service_account), ()),
            *self._admin_groups.get(namespace, ()),
            *self._admin_groups.get("*", ()),
        }
        return [self.bindings[key] for key in sorted(keys)]

    def _accounts_in(self, namespace: str) -> set[CredentialKey]:
        return {_sa_key(ns, name) for ns, name in self.service_accounts if namespace in ("*", ns)}

    def sharing_value(self, value_hash: str) -> list[tuple[str, str, str]]:
        """(namespace, secret, key) of every Secret value with this keyed hash."""
        return sorted(self._by_hash.get(value_hash, ()))

    # ---- updates --------------------------------------------------------------------
    def upsert_secret(self, facts: SecretFacts) -> set[CredentialKey]:
        affected = self.remove_secret(facts.meta.namespace, facts.meta.name)
        key = facts.key
        self.secrets[key] = facts
        self._by_namespace[key[0]].add(_secret_key(*key))
        for data_key, digest in facts.value_hashes.items():
            self._by_hash[digest].add((key[0], key[1], data_key))
        if facts.service_account:
            self._tokens[(key[0], facts.service_account)].add(key[1])
        return affected | self._secret_dependents(facts)

    def remove_secret(self, namespace: str, name: str) -> set[CredentialKey]:
        facts = self.secrets.pop((namespace, name), None)
        if facts is None:
            return set()
        _discard(self._by_namespace, namespace, _secret_key(namespace, name))
        for data_key, digest in facts.value_hashes.items():
            _discard(self._by_hash, digest, (namespace, name, data_key))
        if facts.service_account:
            _discard(self._tokens, (namespace, facts.service_account), name)
        return self._secret_dependents(facts)

    def _secret_dependents(self, facts: SecretFacts) -> set[CredentialKey]:
        """The Secret itself, its ServiceAccount, and Secrets sharing one of its values."""
        affected = {_secret_key(*facts.key)}
        if facts.service_account:
            affected.add(_sa_key(facts.meta.namespace, facts.service_account))
        for digest in facts.value_hashes.values():
            affected.update(_secret_key(ns, name) for ns, name, _ in self._by_hash.get(digest, ()))
        return affected

    def upsert_service_account(self, facts: ServiceAccountFacts) -> set[CredentialKey]:
        affected = self.remove_service_account(*facts.key)
        self.service_accounts[facts.key] = facts
        self._by_namespace[facts.key[0]].add(_sa_key(*facts.key))
        return affected | self._sa_dependents(*facts.key)

    def remove_service_account(self, namespace: str, name: str) -> set[CredentialKey]:
        if self.service_accounts.pop((namespace, name), None) is None:
            return set()
        _discard(self._by_namespace, namespace, _sa_key(namespace, name))
        return self._sa_dependents(namespace, name)

    def _sa_dependents(self, namespace: str, name: str) -> set[CredentialKey]:
        # token Secrets inherit their account's owner
        affected = {_sa_key(namespace, name)}
        affected.update(
            _secret_key(namespace, token) for token in self._tokens.get((namespace, name), ())
        )
        return affected

    def upsert_namespace(self, facts: NamespaceFacts) -> set[CredentialKey]:
        self.namespaces[facts.name] = facts
        return self.in_namespace(facts.name)

    def remove_namespace(self, name: str) -> set[CredentialKey]:
        self.namespaces.pop(name, None)
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

    def upsert_workload(self, facts: WorkloadFacts) -> set[CredentialKey]:
        affected = self.remove_workload(*facts.key)
        self.workloads[facts.key] = facts
        for use in facts.uses:
            self._consumers[(facts.namespace, use.secret)].add(facts.key)
            affected.add(_secret_key(facts.namespace, use.secret))
        if facts.service_account:
            self._sa_users[(facts.namespace, facts.service_account)].add(facts.key)
            affected.add(_sa_key(facts.namespace, facts.service_account))
        return affected

    def remove_workload(self, kind: str, namespace: str, name: str) -> set[CredentialKey]:
        facts = self.workloads.pop((kind, namespace, name), None)
        if facts is None:
            return set()
        affected: set[CredentialKey] = set()
        for use in facts.uses:
            _discard(self._consumers, (namespace, use.secret), facts.key)
            affected.add(_secret_key(namespace, use.secret))
        if facts.service_account:
            _discard(self._sa_users, (namespace, facts.service_account), facts.key)
            affected.add(_sa_key(namespace, facts.service_account))
        return affected

    def upsert_policy(self, facts: PolicyFacts) -> None:
        self.policies[facts.key] = facts

    def remove_policy(self, kind: str, namespace: str, name: str) -> None:
        self.policies.pop((kind, namespace, name), None)
