"""A map keyed by (namespace, name), kept as one small dict of names per namespace.

What the operator keeps per credential is dominated, once its facts are compact, by the
tables that find them. A dict keyed by `(namespace, name)` costs a tuple per entry (56
bytes) and a 24-byte slot in one table that doubles past two thirds full: 91 bytes per
Secret at 100,000 credentials. A dict per namespace keyed by the name string itself uses
the compact 16-byte slots CPython gives str-keyed dicts, in tables that grow with their
own namespace, and needs no tuple: 27 bytes per Secret (`bench/converged_memory.py`).
Names by namespace come with it, for nothing. Look-ups cost one more dict access.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, MutableMapping, ValuesView
from typing import Any, Generic, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")
_MISSING: Any = object()
_NO_NAMES: dict[str, Any] = {}


class NamespacedMap(MutableMapping[tuple[str, str], V], Generic[V]):
    """(namespace, name) -> value. Keys are built when iterated, never stored."""

    __slots__ = ("_namespaces", "_size")

    def __init__(self) -> None:
        self._namespaces: dict[str, dict[str, V]] = {}
        self._size = 0

    def __getitem__(self, key: tuple[str, str]) -> V:
        return self._namespaces[key[0]][key[1]]

    @overload
    def get(self, key: tuple[str, str]) -> V | None: ...
    @overload
    def get(self, key: tuple[str, str], default: V | D) -> V | D: ...
    def get(self, key: tuple[str, str], default: Any = None) -> Any:
        names = self._namespaces.get(key[0])
        return default if names is None else names.get(key[1], default)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        names = self._namespaces.get(key[0])
        return names is not None and key[1] in names

    def __setitem__(self, key: tuple[str, str], value: V) -> None:
        namespace, name = key
        names = self._namespaces.get(namespace)
        if names is None:
            names = self._namespaces[namespace] = {}
        if name not in names:
            self._size += 1
        names[name] = value

    def __delitem__(self, key: tuple[str, str]) -> None:
        if self.pop(key, _MISSING) is _MISSING:
            raise KeyError(key)

    @overload
    def pop(self, key: tuple[str, str]) -> V: ...
    @overload
    def pop(self, key: tuple[str, str], default: V | D) -> V | D: ...
    def pop(self, key: tuple[str, str], default: Any = _MISSING) -> Any:
        names = self._namespaces.get(key[0])
        if names is not None and key[1] in names:
            value = names.pop(key[1])
            self._size -= 1
            if not names:
                # an emptied namespace leaves nothing behind (a deleted namespace's
                # table would otherwise stay for as long as the operator runs)
                del self._namespaces[key[0]]
            return value
        if default is _MISSING:
            raise KeyError(key)
        return default

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for namespace, names in self._namespaces.items():
            for name in names:
                yield (namespace, name)

    def names_in(self, namespace: str) -> KeysView[str]:
        """The names held in one namespace (a live view)."""
        return self._namespaces.get(namespace, _NO_NAMES).keys()

    def in_namespace(self, namespace: str) -> ValuesView[V]:
        """The values held in one namespace (a live view)."""
        return self._namespaces.get(namespace, _NO_NAMES).values()

    def namespaces(self) -> KeysView[str]:
        return self._namespaces.keys()

    # views that walk the tables directly (the mixins' would look every key up again)
    def keys(self) -> KeysView[tuple[str, str]]:
        return KeysView(self)

    def values(self) -> ValuesView[V]:
        return WalkedValues(self)

    def items(self) -> ItemsView[tuple[str, str], V]:
        return WalkedItems(self)

    def _walk_values(self) -> Iterator[V]:
        for names in self._namespaces.values():
            yield from names.values()

    def _walk_items(self) -> Iterator[tuple[tuple[str, str], V]]:
        for namespace, names in self._namespaces.items():
            for name, value in names.items():
                yield (namespace, name), value

    def clear(self) -> None:
        self._namespaces.clear()
        self._size = 0

    def copy(self) -> NamespacedMap[V]:
        """A copy of its own (`copy.copy` too): the tables are copied, not shared."""
        copied: NamespacedMap[V] = NamespacedMap()
        copied._namespaces = {
            namespace: dict(names) for namespace, names in self._namespaces.items()
        }
        copied._size = self._size
        return copied

    __copy__ = copy

    def __repr__(self) -> str:
        return f"NamespacedMap({dict(self.items())!r})"


# Views of a mapping kept in tables of its own (this one, the reconciler's records): they
# walk the tables once, through the mapping's `_walk_values` and `_walk_items`, where the
# Mapping mixin's views would look every key up again.
class WalkedValues(ValuesView[V]):
    _mapping: Any

    def __iter__(self) -> Iterator[V]:
        return self._mapping._walk_values()  # type: ignore[no-any-return]


class WalkedItems(ItemsView[K, V]):
    _mapping: Any

    def __iter__(self) -> Iterator[tuple[K, V]]:
        return self._mapping._walk_items()  # type: ignore[no-any-return]
