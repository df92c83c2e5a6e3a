"""gitjit.namedtuple.NamedTuple builds what typing.NamedTuple builds, for the features gitjit uses."""

from __future__ import annotations

import typing

import pytest

from gitjit import namedtuple as tuples


def make(base):
    class Point(base):
        """A point."""

        x: int
        y: int = 0
        label: str | None = None

        @property
        def norm1(self) -> int:
            return abs(self.x) + abs(self.y)

        def moved(self, dx: int) -> Point:
            return self._replace(x=self.x + dx)

        @classmethod
        def origin(cls) -> Point:
            return cls(0)

        @staticmethod
        def kind() -> str:
            return "point"

    return Point


LIGHT, TYPED = make(tuples.NamedTuple), make(typing.NamedTuple)


@pytest.mark.parametrize("cls", [LIGHT, TYPED])
def test_behaves_like_typings_namedtuple(cls):
    p = cls(3, -4)
    assert p == (3, -4, None) and isinstance(p, tuple)
    assert cls._fields == ("x", "y", "label")
    assert cls._field_defaults == {"y": 0, "label": None}
    assert repr(p) == "Point(x=3, y=-4, label=None)"
    assert p.norm1 == 7 and p.moved(1) == cls(4, -4) and cls.origin() == cls(0, 0)
    assert cls.kind() == "point" and cls.__doc__ == "A point."
    assert list(cls.__annotations__) == ["x", "y", "label"]
    assert cls.__qualname__.endswith("Point") and cls.__module__ == __name__
    x, y, label = p
    assert (x, y, label) == (3, -4, None)
    with pytest.raises(AttributeError):
        p.x = 1  # immutable
    with pytest.raises(AttributeError):
        p.extra = 1  # no __dict__: as small as a tuple
    assert hash(p) == hash((3, -4, None))


def test_the_same_as_typing_field_for_field():
    assert LIGHT._fields == TYPED._fields and LIGHT._field_defaults == TYPED._field_defaults
    assert LIGHT(1, 2)._asdict() == TYPED(1, 2)._asdict()


def test_a_field_without_default_after_one_with_is_refused():
    with pytest.raises(TypeError):
        class Bad(tuples.NamedTuple):
            a: int = 1
            b: int
