"""The inventory's Secret indexes against a brute-force model: whatever sequence of
upserts, bulk adds and removes of Secrets sharing values (the same value under two keys,
a Secret gaining or dropping a shared value, the same facts object stored twice), every
look-up reads exactly what a scan of `inventory.secrets` says, and the value index keeps
its shape (a lone holder is the facts `secrets` holds now; a set has two members or more)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import HASH_KEY, opaque_secret
from credwarden.facts import SecretFacts, secret_facts
from credwarden.inventory import CredentialKey, Inventory

NAMESPACES = ["a", "b", "c"]
NAMES = ["secret-x", "secret-y", "secret-z"]
VALUES = [f"shared-value-{i}-0123456789abcdef" for i in range(3)]
DATA_KEYS = ["k1", "k2"]
ACCOUNTS = [None, "ci", "deploy"]

DATA = st.dictionaries(st.sampled_from(DATA_KEYS), st.sampled_from(VALUES), max_size=2)
OPERATION = st.one_of(
    st.tuples(
        st.just("upsert"),
        st.sampled_from(NAMESPACES),
        st.sampled_from(NAMES),
        DATA,
        st.sampled_from(ACCOUNTS),
    ),
    st.tuples(
        st.just("add"),
        st.sampled_from(NAMESPACES),
        st.sampled_from(NAMES),
        DATA,
        st.sampled_from(ACCOUNTS),
    ),
    st.tuples(st.just("remove"), st.sampled_from(NAMESPACES), st.sampled_from(NAMES)),
    st.tuples(st.just("again"), st.sampled_from(NAMESPACES), st.sampled_from(NAMES)),
)


def _facts(namespace: str, name: str, data: dict[str, str], account: str | None) -> SecretFacts:
    fresh_name = "".join(list(name))  # a new string each time, as JSON decoding gives
    assert fresh_name is not name
    annotations = {"kubernetes.io/service-account.name": account} if account else None
    body = opaque_secret(fresh_name, namespace, data=data, annotations=annotations)
    return secret_facts(body, HASH_KEY)


def _holders(model: dict[tuple[str, str], SecretFacts], digest: int) -> list[tuple[str, str]]:
    return sorted(key for key, facts in model.items() if digest in facts.distinct_digests())


def _check(inventory: Inventory, model: dict[tuple[str, str], SecretFacts]) -> None:
    assert len(inventory.secrets) == len(model)
    assert dict(inventory.secrets.items()) == model
    assert set(inventory.secrets.namespaces()) == {ns for ns, _ in model}
    digests = {d for facts in model.values() for d in facts.distinct_digests()}
    assert set(inventory._by_hash) == digests
    for digest in digests:
        holders = _holders(model, digest)
        assert list(inventory.secrets_holding(digest)) == holders
        assert sorted(inventory._holders(digest)) == holders
        assert inventory.sharing_value(digest) == sorted(
            (ns, name, key)
            for (ns, name), facts in model.items()
            for key, d in facts.value_hashes.items()
            if d == digest
        )
        held = inventory._by_hash[digest]
        if isinstance(held, set):
            assert len(held) >= 2
        else:  # the lone holder: the very facts `secrets` holds for it now
            assert held is model[held.meta.namespace, held.meta.name]
    for namespace in [*NAMESPACES, "absent"]:
        assert inventory.in_namespace(namespace) == {
            CredentialKey("Secret", ns, name) for ns, name in model if ns == namespace
        }
        # one name string: the table's key is the facts' own name
        for name_key in inventory.secrets.names_in(namespace):
            assert name_key is inventory.secrets[namespace, name_key].meta.name
    for namespace in NAMESPACES:
        for account in ACCOUNTS[1:]:
            assert [f.meta.name for f in inventory.tokens_of(namespace, account)] == sorted(
                name
                for (ns, name), facts in model.items()
                if ns == namespace and facts.service_account == account
            )


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(OPERATION, max_size=40))
def test_the_value_index_reads_as_a_scan_of_the_secrets(operations) -> None:
    inventory = Inventory()
    model: dict[tuple[str, str], SecretFacts] = {}
    for operation in operations:
        kind, namespace, name = operation[:3]
        key = (namespace, name)
        before = model.get(key)
        if kind in ("upsert", "add"):
            facts = _facts(namespace, name, *operation[3:])
        elif kind == "again":  # the very same facts object stored again
            if before is None:
                continue
            facts = before
        else:
            facts = None
        if facts is None:
            affected = inventory.remove_secret(namespace, name)
            model.pop(key, None)
            if before is None:
                assert affected == set()
            else:
                expected = {CredentialKey("Secret", namespace, name)}
                if before.service_account:
                    expected.add(CredentialKey("ServiceAccount", namespace, before.service_account))
                for digest in before.distinct_digests():
                    expected |= {CredentialKey("Secret", *k) for k in _holders(model, digest)}
                assert affected == expected
        elif kind == "add":
            inventory.add(facts)
            model[key] = facts
        else:
            affected = inventory.upsert_secret(facts)
            model[key] = facts
            expected = {CredentialKey("Secret", namespace, name)}
            for f in (facts, before):
                if f is not None and f.service_account:
                    expected.add(CredentialKey("ServiceAccount", namespace, f.service_account))
            changed = (
                facts.distinct_digests()
                if before is None
                else before.distinct_digests() ^ facts.distinct_digests()
            )
            for digest in changed:
                expected |= {CredentialKey("Secret", *k) for k in _holders(model, digest)}
            assert affected == expected
        _check(inventory, model)
    # and emptied, nothing is left behind
    for namespace, name in list(model):
        inventory.remove_secret(namespace, name)
    assert len(inventory.secrets) == 0 and not inventory._by_hash
    assert (
        not inventory.secrets._namespaces
        and not inventory._sorted_holders
        and not inventory._tokens
    )
