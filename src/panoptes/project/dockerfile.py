"""Which package files a Dockerfile puts into the image, without running Docker.

Only what the source-asset builder needs: FROM (stage boundaries), WORKDIR and
COPY/ADD of local paths. RUN steps are not executed; their usual job
(``pip install -r requirements.txt``) is covered by the wheelhouse.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import posixpath
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from panoptes.project.errors import ProjectError


@dataclass(frozen=True)
class CopyStep:
    sources: tuple[str, ...]
    dest: str  # absolute path inside the image
    line: int


@dataclass
class Plan:
    steps: list[CopyStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations; drop comments and blank lines."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment lines inside a continuation are ignored by Docker
        if not buf:
            start = no
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append((start, buf + line))
        buf = ""
    if buf:
        out.append((start, buf))
    return out


def parse(path: Path) -> Plan:
    """COPY/ADD steps of the final build stage, with absolute destinations."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(
            f"{path}: no Dockerfile in the package",
            "create one (see `panoptes app create-package --type Container`)",
        ) from None
    plan = Plan()
    workdir = "/"
    for no, line in _logical_lines(text):
        word, _, rest = line.partition(" ")
        instr, rest = word.upper(), rest.strip()
        if instr == "FROM":
            # A new stage starts from scratch; only the last stage is the image.
            if plan.steps:
                plan.notes.append(f"{path.name}:{no}: multi-stage build, using the last stage")
            plan.steps, workdir = [], "/"
        elif instr == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, rest.strip("\"'")))
        elif instr in ("COPY", "ADD"):
            step = _copy_step(path, no, instr, rest, workdir, plan)
            if step:
                plan.steps.append(step)
    return plan


def _copy_step(
    path: Path, no: int, instr: str, rest: str, workdir: str, plan: Plan
) -> CopyStep | None:
    where = f"{path.name}:{no}"
    if rest.startswith("["):
        try:
            args = json.loads(rest)
        except json.JSONDecodeError:
            raise ProjectError(
                f"{where}: {instr} JSON form does not parse", "check quotes"
            ) from None
    else:
        args = shlex.split(rest)
    flags = [a for a in args if a.startswith("--")]
    args = [a for a in args if not a.startswith("--")]
    if any(f.startswith("--from") for f in flags):
        plan.notes.append(f"{where}: {instr} --from copies from another image; skipped")
        return None
    if len(args) < 2:
        raise ProjectError(
            f"{where}: {instr} needs a source and a destination", "e.g. COPY src /panorama"
        )
    *sources, dest = args
    if any("$" in a for a in args):
        raise ProjectError(
            f"{where}: {instr} uses a variable ({' '.join(args)})",
            "write the paths literally, or build with a container engine (--engine docker)",
        )
    urls = [s for s in sources if "://" in s]
    if urls:
        plan.notes.append(f"{where}: ADD from URL {', '.join(urls)} skipped (no network)")
        sources = [s for s in sources if s not in urls]
        if not sources:
            return None
    absolute = posixpath.join(workdir, dest)
    # "." and the WORKDIR itself are folders that exist in the image.
    if dest.endswith("/") or posixpath.normpath(absolute) == workdir:
        absolute += "/"
    return CopyStep(tuple(sources), absolute, no)


def _ignore_patterns(context: Path) -> list[str]:
    f = context / ".dockerignore"
    if not f.is_file():
        return []
    lines = [ln.strip() for ln in f.read_text(encoding="utf-8").splitlines()]
    return [ln.lstrip("/") for ln in lines if ln and not ln.startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    ignored = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat[1:] if negate else pat
        pat = pat.rstrip("/")
        parts = rel.split("/")
        # A pattern matches the path or any folder above it (like Docker).
        hit = any(
            fnmatch.fnmatchcase("/".join(parts[:i]), pat) for i in range(1, len(parts) + 1)
        ) or fnmatch.fnmatchcase(rel, pat.replace("**/", "*"))
        if hit:
            ignored = not negate
    return ignored


def image_files(context: Path, plan: Plan) -> dict[str, Path]:
    """Map of path-in-image (no leading slash) to the package file that lands there."""
    patterns = _ignore_patterns(context)
    ctx = context.resolve()
    files: dict[str, Path] = {}
    dirs: set[str] = {"/"}
    for step in plan.steps:
        matches: list[str] = []
        for src in step.sources:
            found = sorted(glob.glob(src, root_dir=ctx)) if glob.has_magic(src) else [src]
            for m in found:
                full = (ctx / m).resolve()
                if full != ctx and ctx not in full.parents:
                    raise ProjectError(
                        f"Dockerfile:{step.line}: COPY source {src!r} is outside the package",
                        "Docker only sees files inside the package folder; move the file there",
                    )
                if not full.exists():
                    raise ProjectError(
                        f"Dockerfile:{step.line}: COPY source {src!r} not found in {context}",
                        "create the file or fix the COPY line",
                    )
                matches.append(m)
        many = len(matches) > 1 or any(glob.has_magic(s) for s in step.sources)
        dest = step.dest
        dest_is_dir = dest.endswith("/") or many or posixpath.normpath(dest) in dirs
        dest = posixpath.normpath(dest)
        for m in matches:
            full = (ctx / m).resolve()
            if full.is_dir():
                dirs.add(dest)
                for f in sorted(full.rglob("*")):
                    if f.is_dir():
                        continue
                    rel_ctx = f.relative_to(ctx).as_posix()
                    if _ignored(rel_ctx, patterns):
                        continue
                    files[_arc(posixpath.join(dest, f.relative_to(full).as_posix()))] = f
            else:
                rel_ctx = full.relative_to(ctx).as_posix()
                if _ignored(rel_ctx, patterns):
                    continue
                target = posixpath.join(dest, full.name) if dest_is_dir else dest
                if dest_is_dir:
                    dirs.add(dest)
                files[_arc(target)] = full
    return files


def _arc(image_path: str) -> str:
    return posixpath.normpath(image_path).lstrip("/")
