"""Manifest validation speed, as a ratio against jsonschema on the same documents.

Both validators check every real manifest in ../shared/reference/manifest-fixtures,
in the same process and run, so the ratio holds on a noisy shared machine. Our
validator does more (semantic checks, hints); the figure to watch is that it stays
in jsonschema's league, far below anything a user would wait for.

    .venv/bin/python bench/bench_manifest_validate.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from panoptes.spec import detect_kind, validate_document

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def load() -> tuple[list[tuple[dict, str]], dict[str, Draft7Validator]]:
    schemas = REFERENCE / "manifest-schema"
    registry = Registry().with_resources(
        (p.resolve().as_uri(), Resource.from_contents(json.loads(p.read_text()), DRAFT7))
        for p in schemas.rglob("*.json")
    )
    docs = []
    for path in sorted((REFERENCE / "manifest-fixtures").rglob("*")):
        if path.is_file():
            doc = json.loads(path.read_text())
            docs.append((doc, detect_kind(doc)))
    validators = {
        kind: Draft7Validator(
            {"$ref": (schemas / "ver_2021-01-01" / f"{kind}.schema.json").resolve().as_uri()},
            registry=registry,
        )
        for kind in {k for _, k in docs}
    }
    return docs, validators


def timed(fn, rounds: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    docs, validators = load()

    def ours() -> None:
        for doc, kind in docs:
            validate_document(doc, kind)

    def baseline() -> None:
        for doc, kind in docs:
            list(validators[kind].iter_errors(doc))

    ours(), baseline()  # warm both
    t_ours, t_base = timed(ours, args.rounds), timed(baseline, args.rounds)
    m_ours, m_base = statistics.median(t_ours), statistics.median(t_base)
    print(f"documents: {len(docs)}  rounds: {args.rounds}")
    print(f"jsonschema (baseline): median {m_base * 1e3:.2f} ms per pass")
    print(f"panoptes.spec:         median {m_ours * 1e3:.2f} ms per pass")
    print(f"ratio panoptes/jsonschema: {m_ours / m_base:.2f}x (lower is faster)")


if __name__ == "__main__":
    main()
