"""Valid example values for any model shape (enums, patterns, lengths respected)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from botocore.model import Shape

# Candidates tried in order; the first that fits the shape's pattern and lengths wins.
_STRINGS = (
    "example-1",
    "abc123",
    "a",
    "1.0",
    "10.0.0.1",
    "10.0.0.1:8080",
    "example.com",
    "ABC_def_1",
    "path/to-x_1",
    "arn:aws:iam::123456789012:role/panoptes",
    "123456789012",
    "arn:aws:panorama:us-east-1:123456789012:device/device-1",
)
MOMENT = datetime(2024, 5, 17, 12, 30, 45, tzinfo=UTC)


def example_string(shape: Shape) -> str:
    meta = shape.metadata
    if meta.get("enum"):
        return meta["enum"][-1]
    low, high = meta.get("min", 0), meta.get("max", 10_000)
    for candidate in _STRINGS:
        text = candidate
        if len(text) < low:
            text = text + "x" * (low - len(text))
        if len(text) > high:
            continue
        pattern = meta.get("pattern")
        try:
            if pattern and not re.search(pattern, text):
                continue
        except re.error:
            pass  # a Java-only pattern (\p{...}): the server skips it too

        return text
    raise AssertionError(f"no example fits {shape.name}: {meta}")


def example(shape: Shape | None, depth: int = 0) -> Any:
    if shape is None:
        return {}
    kind = shape.type_name
    if kind == "structure":
        if depth > 6:
            return {}
        return {name: example(m, depth + 1) for name, m in shape.members.items()}
    if kind == "list":
        count = max(1, shape.metadata.get("min", 1))
        return [example(shape.member, depth + 1) for _ in range(count)]
    if kind == "map":
        count = max(1, shape.metadata.get("min", 1))
        enum = shape.key.metadata.get("enum")
        keys = (
            enum[:count]
            if enum
            else [f"{example_string(shape.key)}{i or ''}" for i in range(count)]
        )
        return {k: example(shape.value, depth + 1) for k in keys}
    if kind == "string":
        return example_string(shape)
    if kind in ("integer", "long"):
        meta = shape.metadata
        return max(meta.get("min", 3), min(3, meta.get("max", 3)))
    if kind in ("float", "double"):
        return 1.5
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return MOMENT
    if kind == "blob":
        return b"\x00binary\xff"
    raise AssertionError(kind)
