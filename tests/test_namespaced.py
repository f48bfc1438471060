"""NamespacedMap, the inventory's and the records' table: whatever is done to it, it reads
exactly as a dict keyed by (namespace, name) would, and an emptied namespace is gone."""

from __future__ import annotations

import copy
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credwarden.namespaced import NamespacedMap

NAMESPACES = st.sampled_from(["a", "b", "kube-system"])
NAMES = st.sampled_from(["x", "y", "db-password", ""])
OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["set", "pop", "del"]), NAMESPACES, NAMES, st.integers(0, 9)),
    max_size=60,
)


@given(OPERATIONS)
def test_reads_as_a_dict_keyed_by_namespace_and_name(operations) -> None:
    subject: NamespacedMap[int] = NamespacedMap()
    model: dict[tuple[str, str], int] = {}
    for operation, namespace, name, value in operations:
        key = (namespace, name)
        if operation == "set":
            subject[key] = value
            model[key] = value
        elif operation == "pop":
            assert subject.pop(key, None) == model.pop(key, None)
        else:
            if key in model:
                del subject[key]
                del model[key]
            else:
                with pytest.raises(KeyError):
                    del subject[key]
        assert len(subject) == len(model)
    assert dict(subject.items()) == model
    assert sorted(subject) == sorted(model)
    assert sorted(subject.values()) == sorted(model.values())
    assert subject == model
    for namespace in ("a", "b", "kube-system", "absent"):
        names = sorted(name for ns, name in model if ns == namespace)
        assert sorted(subject.names_in(namespace)) == names
        assert sorted(subject.in_namespace(namespace)) == sorted(
            v for (ns, _), v in model.items() if ns == namespace
        )
    # an emptied namespace leaves no table behind
    assert set(subject.namespaces()) == {ns for ns, _ in model}
    for key in model:
        assert key in subject and subject[key] == model[key] and subject.get(key) == model[key]
    assert subject.get(("absent", "x"), "none") == "none"
    # a copy is a table of its own
    copied = copy.copy(subject)
    copied[("a", "copied-only")] = 1
    assert ("a", "copied-only") not in subject and len(subject) == len(model)
    assert len(copied) == len(model) + 1
    with pytest.raises(KeyError):
        subject[("absent", "x")]


def test_odd_keys_are_simply_absent() -> None:
    subject: NamespacedMap[int] = NamespacedMap()
    subject[("a", "x")] = 1
    for odd in ("a", ("a",), ("a", "x", "y"), None, ["a", "x"]):
        assert odd not in subject


def test_costs_less_per_entry_than_a_dict_of_key_tuples() -> None:
    # what it is for: 1,000 names in each of 50 namespaces, the tables and key tuples
    # a plain dict would need, against the per-namespace tables
    keys = [(f"namespace-{n}", f"secret-{i}") for n in range(50) for i in range(1_000)]
    plain = dict.fromkeys(keys, 0)
    nested: NamespacedMap[int] = NamespacedMap()
    for key in keys:
        nested[key] = 0
    plain_bytes = sys.getsizeof(plain) + sum(sys.getsizeof(key) for key in keys)
    nested_bytes = sys.getsizeof(nested._namespaces) + sum(
        sys.getsizeof(names) for names in nested._namespaces.values()
    )
    assert nested_bytes < plain_bytes / 2
