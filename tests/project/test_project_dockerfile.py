"""Which package files a Dockerfile puts in the image (source assets, no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from panoptes.project import ProjectError
from panoptes.project.dockerfile import image_files, parse


def _package(tmp_path: Path, dockerfile: str, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "Dockerfile").write_text(dockerfile)
    return tmp_path


def _files(pkg: Path) -> list[str]:
    return sorted(image_files(pkg, parse(pkg / "Dockerfile")))


def test_copy_dot_dot_honours_workdir(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        "FROM public.ecr.aws/panorama/panorama-application\nWORKDIR /panorama\nCOPY . .\n"
        "RUN pip3 install -r requirements.txt\n",
        {"application.py": "", "requirements.txt": "", "lib/util.py": ""},
    )
    assert _files(pkg) == [
        "panorama/Dockerfile",
        "panorama/application.py",
        "panorama/lib/util.py",
        "panorama/requirements.txt",
    ]


def test_copy_src_folder_to_absolute_dest(tmp_path: Path) -> None:
    pkg = _package(tmp_path, "FROM base\nCOPY src /panorama\n", {"src/app.py": "", "x.txt": ""})
    assert _files(pkg) == ["panorama/app.py"]


def test_files_dest_forms_continuations_and_json_syntax(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        "FROM base\nWORKDIR /opt/app\n# comment\nCOPY a.py \\\n  b.py ./code/\n"
        'ADD ["c.py", "/etc/c-renamed.py"]\nCOPY d.py .\nCOPY --chown=1:1 e.py lib/\n'
        "ADD https://example.com/x.tgz /tmp/\nCOPY *.cfg conf/\n",
        {n: "" for n in ("a.py", "b.py", "c.py", "d.py", "e.py", "one.cfg", "two.cfg")},
    )
    assert _files(pkg) == [
        "etc/c-renamed.py",
        "opt/app/code/a.py",
        "opt/app/code/b.py",
        "opt/app/conf/one.cfg",
        "opt/app/conf/two.cfg",
        "opt/app/d.py",
        "opt/app/lib/e.py",
    ]
    assert any("URL" in n for n in parse(pkg / "Dockerfile").notes)


def test_dockerignore_and_last_stage_only(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        "FROM builder AS b\nCOPY tools /tools\nFROM base\nWORKDIR /panorama\n"
        "COPY --from=b /tools /tools\nCOPY . .\n",
        {
            ".dockerignore": "*.log\n__pycache__\n!keep.log\nDockerfile\n",
            "app.py": "",
            "debug.log": "",
            "keep.log": "",
            "__pycache__/app.pyc": "",
            "tools/t": "",
        },
    )
    assert _files(pkg) == [
        "panorama/.dockerignore",
        "panorama/app.py",
        "panorama/keep.log",
        "panorama/tools/t",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("COPY missing.py /panorama/", "'missing.py' not found"),
        ("COPY ../outside.py /panorama/", "outside the package"),
        ("COPY $SRC /panorama/", "uses a variable"),
        ("COPY onlyone", "needs a source and a destination"),
    ],
)
def test_copy_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    pkg = _package(tmp_path / "pkg", f"FROM base\n{line}\n", {})
    (tmp_path / "outside.py").write_text("")
    with pytest.raises(ProjectError, match=message):
        _files(pkg)


def test_missing_dockerfile_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="no Dockerfile"):
        parse(tmp_path / "Dockerfile")
