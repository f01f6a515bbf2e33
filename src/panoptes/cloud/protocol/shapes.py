"""Walking model shapes: wire values -> Python params (with validation) and back.

Every protocol parser ends up here, so the rules a user can observe (which field is
wrong, what the model allows) are written once. Problems are collected, not raised
one at a time, so one ValidationException names every bad field, as AWS does.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import cache
from typing import Any

from botocore.model import Shape, StructureShape

from panoptes.cloud.errors import ValidationError

#: Cap on problems listed in one error: enough to fix a request, not a novel.
_MAX_PROBLEMS = 10


@dataclass
class Problems:
    """Validation problems found while walking one request."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        shown = self.items[:_MAX_PROBLEMS]
        count = len(self.items)
        noun = "error" if count == 1 else "errors"
        details = "; ".join(f"{message} (at '{path}')" for path, message in shown)
        raise ValidationError(
            f"{count} validation {noun} detected: {details}",
            fields=[{"Name": path, "Message": message} for path, message in shown],
            reason="FIELD_VALIDATION_FAILED",
        )


def cannot_parse(message: str) -> ValidationError:
    return ValidationError(message, reason="CANNOT_PARSE")


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        # A Java-only construct: skip the check rather than refuse every request.
        return None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_constraints(shape: Shape, value: Any, path: str, problems: Problems) -> None:
    """min/max/enum/pattern from the model, as AWS enforces them."""
    meta = shape.metadata
    kind = shape.type_name
    if kind == "string":
        if "\x00" in value:  # no database Panoptes runs on stores one (PostgreSQL refuses)
            problems.add(path, "Value contains a NUL character (\\x00): remove it")
            return
        enum = meta.get("enum")
        if enum and value not in enum:
            problems.add(path, f"Value {_describe(value)} must be one of: {', '.join(enum)}")
            return
        if "min" in meta and len(value) < meta["min"]:
            problems.add(path, f"Length must be at least {meta['min']} (got {len(value)})")
        if "max" in meta and len(value) > meta["max"]:
            problems.add(path, f"Length must be at most {meta['max']} (got {len(value)})")
        pattern = meta.get("pattern")
        if pattern and (compiled := _compiled(pattern)) and not compiled.search(value):
            problems.add(path, f"Value {_describe(value)} must match the pattern {pattern}")
    elif kind in ("list", "map", "blob"):
        if "min" in meta and len(value) < meta["min"]:
            problems.add(path, f"Must have at least {meta['min']} item(s) (got {len(value)})")
        if "max" in meta and len(value) > meta["max"]:
            problems.add(path, f"Must have at most {meta['max']} item(s) (got {len(value)})")
    elif kind in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            problems.add(path, f"Value {value} must be at least {meta['min']}")
        if "max" in meta and value > meta["max"]:
            problems.add(path, f"Value {value} must be at most {meta['max']}")


_INT_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def parse_timestamp(text: str) -> datetime:
    """ISO 8601, RFC 822 or epoch seconds, the three forms AWS accepts in the wire."""
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(text) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def from_json(shape: Shape, value: Any, path: str, problems: Problems) -> Any:
    """A JSON-decoded value -> Python per ``shape``; None when it is unusable."""
    kind = shape.type_name
    if value is None:
        return None
    if kind == "structure":
        if not isinstance(value, dict):
            problems.add(path, "Must be a JSON object")
            return None
        return structure_from_json(shape, value, path, problems)
    if kind == "list":
        if not isinstance(value, list):
            problems.add(path, "Must be a JSON array")
            return None
        check_constraints(shape, value, path, problems)
        items = [from_json(shape.member, v, f"{path}.{i}", problems) for i, v in enumerate(value)]
        return [v for v in items if v is not None]
    if kind == "map":
        if not isinstance(value, dict):
            problems.add(path, "Must be a JSON object")
            return None
        check_constraints(shape, value, path, problems)
        out = {}
        for k, v in value.items():
            key = from_json(shape.key, k, f"{path}.{k}", problems)
            val = from_json(shape.value, v, f"{path}.{k}", problems)
            if key is not None and val is not None:
                out[key] = val
        return out
    return scalar_from_json(shape, value, path, problems)


def structure_from_json(
    shape: StructureShape, value: dict, path: str, problems: Problems, *, top: bool = False
) -> dict[str, Any]:
    """Members by wire name; unknown keys are ignored, as AWS does.

    ``top``: the operation's input; members bound to the URI, headers or query are
    left to the caller, who also checks required members once all are known.
    """
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        if top and "location" in member.serialization:
            continue
        wire = member.serialization.get("name", name)
        if wire in value:
            sub = f"{path}.{name}" if path else name
            parsed = from_json(member, value[wire], sub, problems)
            if parsed is not None:
                out[name] = parsed
    if not top:
        check_required(shape, out, path, problems)
    return out


def check_required(shape: StructureShape, params: dict, path: str, problems: Problems) -> None:
    for name in shape.required_members:
        if params.get(name) is None:
            sub = f"{path}.{name}" if path else name
            problems.add(sub, f"Missing required field {name}: it must be given")


def scalar_from_json(shape: Shape, value: Any, path: str, problems: Problems) -> Any:
    kind = shape.type_name
    if kind == "string":
        if not isinstance(value, str):
            problems.add(path, f"Must be a string (got {type(value).__name__})")
            return None
        result: Any = value
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.add(path, "Must be true or false")
            return None
        return value
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.add(path, f"Must be a whole number (got {_describe(value)})")
            return None
        low, high = _INT_RANGE[kind]
        if not low <= value <= high:
            problems.add(path, f"Value {value} is out of range for a {kind}")
            return None
        result = value
    elif kind in ("float", "double"):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            problems.add(path, f"Must be a number (got {_describe(value)})")
            return None
        result = float(value)
    elif kind == "timestamp":
        try:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(value)
            return parse_timestamp(str(value))
        except ValueError:
            problems.add(path, "Must be a timestamp (epoch seconds or ISO 8601)")
            return None
    elif kind == "blob":
        if not isinstance(value, str):
            problems.add(path, "Must be a base64 string")
            return None
        try:
            result = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            problems.add(path, "Must be valid base64")
            return None
    else:
        problems.add(path, f"Unsupported type {kind}")
        return None
    check_constraints(shape, result, path, problems)
    return result


def from_text(shape: Shape, text: str, path: str, problems: Problems) -> Any:
    """A value from a URI label, query string or header (always text on the wire)."""
    kind = shape.type_name
    if kind == "string":
        check_constraints(shape, text, path, problems)
        return text
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            problems.add(path, f"Must be true or false (got {_describe(text)})")
            return None
        return text.lower() == "true"
    if kind in ("integer", "long"):
        try:
            number = int(text)
        except ValueError:
            problems.add(path, f"Must be a whole number (got {_describe(text)})")
            return None
        return scalar_from_json(shape, number, path, problems)
    if kind in ("float", "double"):
        try:
            return scalar_from_json(shape, float(text), path, problems)
        except ValueError:
            problems.add(path, f"Must be a number (got {_describe(text)})")
            return None
    if kind == "timestamp":
        try:
            return parse_timestamp(text)
        except ValueError:
            problems.add(path, "Must be a timestamp (ISO 8601)")
            return None
    if kind == "blob":
        return scalar_from_json(shape, text, path, problems)
    problems.add(path, f"Unsupported type {kind} here")
    return None


# ---- Python -> wire ---------------------------------------------------------------


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return parse_timestamp(str(value))


def timestamp_to_wire(value: Any, fmt: str) -> Any:
    moment = _as_datetime(value)
    if fmt == "unixTimestamp":
        epoch = moment.timestamp()
        return int(epoch) if epoch.is_integer() else round(epoch, 3)
    if fmt == "rfc822":
        return format_datetime(moment.astimezone(UTC), usegmt=True)
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def to_json(shape: Shape, value: Any, default_ts: str = "unixTimestamp") -> Any:
    """Python -> JSON-ready value per ``shape`` (body members only for structures)."""
    return _encoder(shape, default_ts)(value)


#: Encoders built once per (shape, default timestamp format): a response walks the
#: same shapes on every request; the walk's decisions (which members, wire names,
#: formats) are made once. Keyed by identity: botocore hands out the same Shape
#: objects for a loaded model, and the entry keeps its shape alive.
_ENCODERS: dict[tuple[int, str], tuple[Shape, Callable[[Any], Any]]] = {}


def _identity(value: Any) -> Any:
    return value


def _encoder(shape: Shape, default_ts: str) -> Callable[[Any], Any]:
    key = (id(shape), default_ts)
    hit = _ENCODERS.get(key)
    if hit is not None and hit[0] is shape:
        return hit[1]
    encode = _build_encoder(shape, default_ts)
    _ENCODERS[key] = (shape, encode)
    return encode


def _build_encoder(shape: Shape, default_ts: str) -> Callable[[Any], Any]:
    kind = shape.type_name
    if kind == "structure":
        fields: list[tuple[str, str, Callable[[Any], Any]]] | None = None

        def structure(value: Any) -> dict[str, Any]:
            nonlocal fields
            if fields is None:  # resolved on first use: shapes may be recursive
                fields = [
                    (name, member.serialization.get("name", name), _encoder(member, default_ts))
                    for name, member in shape.members.items()
                    if "location" not in member.serialization
                ]
            out = {}
            for name, wire, encode in fields:
                item = value.get(name)
                if item is not None:
                    out[wire] = encode(item)
            return out

        return structure
    if kind == "list":
        member = shape.member

        def sequence(value: Any) -> list[Any]:
            encode = _encoder(member, default_ts)
            if encode is _identity:
                return list(value)
            return [encode(v) for v in value]

        return sequence
    if kind == "map":
        target = shape.value

        def mapping(value: Any) -> dict[str, Any]:
            encode = _encoder(target, default_ts)
            return {str(k): encode(v) for k, v in value.items()}

        return mapping
    if kind == "timestamp":
        fmt = shape.serialization.get("timestampFormat", default_ts)
        return lambda value: timestamp_to_wire(value, fmt)
    if kind == "blob":

        def blob(value: Any) -> str:
            raw = value.encode() if isinstance(value, str) else bytes(value)
            return base64.b64encode(raw).decode("ascii")

        return blob
    if kind in ("integer", "long"):
        return int
    if kind in ("float", "double"):
        return float
    if kind == "boolean":
        return bool
    return _identity


def to_text(shape: Shape, value: Any, default_ts: str = "iso8601") -> str:
    """A scalar for a header or query string."""
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return str(timestamp_to_wire(value, shape.serialization.get("timestampFormat", default_ts)))
    if kind == "blob":
        return to_json(shape, value)
    return str(value)
