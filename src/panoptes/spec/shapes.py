"""A tiny structural checker: shapes that mirror JSON Schema draft-07 keywords.

The manifest shapes themselves live in `structure.py`; this module only knows how to
walk a JSON value against a shape and report every mismatch with its path and a
hint. Semantics follow JSON Schema where users could notice a difference:
``integer`` accepts 3.0, booleans are never numbers, patterns use ``re.search``,
``oneOf`` over a discriminating field reports against the branch the user meant.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from panoptes.spec.problems import PathPart, Report

Path = tuple[PathPart, ...]


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Default hints, for shapes whose schema gives no better one.
QUOTE = "put the value in double quotes"
PAT = "use only the characters the pattern allows"
INT = "write a whole number without quotes"
NUM = "write a number without quotes"
ONE_OF = "use one of those values"
ARRAY = "use a JSON array: [...]"
OBJECT = "use a JSON object: {...}"


class Shape:
    """Base class: ``check`` appends problems to ``report`` and returns nothing."""

    def check(self, value: Any, path: Path, report: Report) -> None:  # pragma: no cover
        raise NotImplementedError


@dataclass
class Str(Shape):
    min_len: int | None = None
    max_len: int | None = None
    pattern: str | None = None
    hint: str = ""

    def check(self, value: Any, path: Path, report: Report) -> None:
        if not isinstance(value, str):
            report.error(path, f"must be a string, not {json_type(value)}", self.hint or QUOTE)
            return
        if self.min_len is not None and len(value) < self.min_len:
            msg = "must not be empty" if self.min_len == 1 else f"needs {self.min_len}+ chars"
            report.error(path, msg, self.hint or "give a value")
        if self.max_len is not None and len(value) > self.max_len:
            report.error(
                path,
                f"is {len(value)} characters long; the limit is {self.max_len}",
                self.hint or f"shorten it to at most {self.max_len} characters",
            )
        if self.pattern is not None and not re.search(self.pattern, value):
            report.error(
                path, f"{value!r} does not match the pattern {self.pattern}", self.hint or PAT
            )


@dataclass
class Int(Shape):
    minimum: int | None = None
    maximum: int | None = None
    hint: str = ""

    def check(self, value: Any, path: Path, report: Report) -> None:
        if not is_integer(value):
            report.error(
                path, f"must be an integer, not {json_type(value)} {value!r}", self.hint or INT
            )
            return
        _check_range(value, self.minimum, self.maximum, path, report, self.hint)


@dataclass
class Num(Shape):
    hint: str = ""

    def check(self, value: Any, path: Path, report: Report) -> None:
        if not is_number(value):
            report.error(
                path, f"must be a number, not {json_type(value)} {value!r}", self.hint or NUM
            )


@dataclass
class Bool(Shape):
    hint: str = ""

    def check(self, value: Any, path: Path, report: Report) -> None:
        if not isinstance(value, bool):
            report.error(
                path,
                f"must be true or false, not {json_type(value)} {value!r}",
                self.hint or "write true or false without quotes",
            )


@dataclass
class Enum(Shape):
    values: Sequence[Any]
    hint: str = ""

    def check(self, value: Any, path: Path, report: Report) -> None:
        # JSON equality: True is not 1 (Python would say it is).
        for v in self.values:
            if v == value and isinstance(v, bool) == isinstance(value, bool):
                return
        choices = ", ".join(repr(v) for v in self.values)
        close = _close_match(value, self.values)
        report.error(path, f"{value!r} is not one of {choices}", self.hint or close or ONE_OF)


def _close_match(value: Any, choices: Sequence[Any]) -> str:
    if not isinstance(value, str):
        return ""
    words = [c for c in choices if isinstance(c, str)]
    found = difflib.get_close_matches(value, words, n=1, cutoff=0.6)
    if not found:
        lowered = {w.lower(): w for w in words}
        if value.lower() in lowered:
            found = [lowered[value.lower()]]
    return f"did you mean {found[0]!r}?" if found else ""


def _check_range(
    value: float, lo: float | None, hi: float | None, path: Path, report: Report, hint: str
) -> None:
    if lo is not None and value < lo:
        report.error(path, f"{value!r} is below the minimum {lo}", hint or f"use {lo} or more")
    if hi is not None and value > hi:
        report.error(path, f"{value!r} is above the maximum {hi}", hint or f"use {hi} or less")


@dataclass
class Arr(Shape):
    items: Shape
    min_items: int | None = None
    max_items: int | None = None
    hint: str = ""

    def check(self, value: Any, path: Path, report: Report) -> None:
        if not isinstance(value, list):
            report.error(path, f"must be an array, not {json_type(value)}", self.hint or ARRAY)
            return
        if self.min_items is not None and len(value) < self.min_items:
            report.error(
                path,
                f"needs at least {self.min_items} item(s), has {len(value)}",
                self.hint or f"add at least {self.min_items}",
            )
        if self.max_items is not None and len(value) > self.max_items:
            report.error(
                path,
                f"has {len(value)} items; the limit is {self.max_items}",
                self.hint or f"keep at most {self.max_items}",
            )
        for i, item in enumerate(value):
            self.items.check(item, (*path, i), report)


@dataclass
class Field:
    shape: Shape
    required: bool = False


@dataclass
class Obj(Shape):
    """A JSON object. ``closed`` mirrors ``additionalProperties: false``."""

    fields: Mapping[str, Field]
    closed: bool = True
    # Extra rules over the whole object (e.g. JSON Schema's dependencies/anyOf).
    rules: Sequence[Callable[[dict, Path, Report], None]] = field(default_factory=tuple)
    what: str = "object"

    def check(self, value: Any, path: Path, report: Report) -> None:
        if not isinstance(value, dict):
            report.error(
                path, f"must be a JSON object ({self.what}), not {json_type(value)}", OBJECT
            )
            return
        for name, spec in self.fields.items():
            if spec.required and name not in value:
                report.error(
                    (*path, name), f"is required in {self.what} but missing", f'add "{name}"'
                )
        for key, item in value.items():
            spec = self.fields.get(key)
            if spec is not None:
                spec.shape.check(item, (*path, key), report)
            elif self.closed:
                close = _close_match(key, list(self.fields))
                allowed = ", ".join(self.fields)
                report.error(
                    (*path, key),
                    f"is not a field of {self.what} (allowed: {allowed})",
                    close or "remove it",
                )
        for rule in self.rules:
            rule(value, path, report)


@dataclass
class OneOf(Shape):
    """``oneOf`` whose branches are told apart by one field (``type``, ``interface``...).

    ``pick`` maps the discriminating value to a branch; ``default`` takes the rest
    (``None`` means the value must be one of ``pick``'s keys).
    """

    key: str
    pick: Mapping[str, Shape]
    default: Shape | None = None
    what: str = "item"

    def check(self, value: Any, path: Path, report: Report) -> None:
        if not isinstance(value, dict):
            report.error(
                path, f"must be a JSON object ({self.what}), not {json_type(value)}", OBJECT
            )
            return
        tag = value.get(self.key)
        branch = self.pick.get(tag) if isinstance(tag, str) else None
        if branch is None and self.default is not None:
            branch = self.default
        if branch is None:
            choices = ", ".join(repr(k) for k in self.pick)
            if self.key not in value:
                report.error(
                    (*path, self.key),
                    f"is required in {self.what} but missing",
                    f'set "{self.key}" to one of {choices}',
                )
            else:
                Enum(list(self.pick)).check(tag, (*path, self.key), report)
            return
        branch.check(value, path, report)
