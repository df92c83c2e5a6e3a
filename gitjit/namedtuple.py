"""`NamedTuple` for the modules a push runs, without importing `typing`.

The pre-receive hook runs on every push, and importing `typing` costs it
about 3 ms, a tenth of everything gitjit adds to a push (docs/decisions.md,
"The hook's cost"). This `NamedTuple` is used exactly like typing's
(`class Head(NamedTuple):` with annotated fields, defaults, methods and
properties) and builds the same thing, a `collections.namedtuple` class with
the body's attributes set on it. Type checkers see typing's own.

Supported: fields in annotation order, defaults for trailing fields, a
docstring, methods, properties, class and static methods. Not supported:
`super()` in methods (as with typing's), generics.
"""

from collections import namedtuple

TYPE_CHECKING = False  # typing's own constant, without the import

if TYPE_CHECKING:  # pragma: no cover
    from typing import NamedTuple as NamedTuple  # re-exported: what type checkers see
else:
    _NOT_COPIED = {"__module__", "__qualname__", "__annotations__"}

    class _NamedTupleMeta(type):
        def __new__(mcls, name, bases, namespace):
            if not bases:  # NamedTuple itself
                return super().__new__(mcls, name, bases, namespace)
            fields = list(namespace.get("__annotations__", {}))
            defaults = [namespace[f] for f in fields if f in namespace]
            if any(f not in namespace for f in fields[len(fields) - len(defaults):]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            cls = namedtuple(name, fields, defaults=defaults, module=namespace.get("__module__"))
            cls.__qualname__ = namespace.get("__qualname__", name)
            cls.__annotations__ = dict(namespace.get("__annotations__", {}))
            for key, value in namespace.items():
                if key not in _NOT_COPIED and key not in fields:
                    setattr(cls, key, value)
            return cls

    class NamedTuple(metaclass=_NamedTupleMeta):
        """Subclass with annotated fields to make a namedtuple (see the module docstring)."""
