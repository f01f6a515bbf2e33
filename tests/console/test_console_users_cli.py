"""`panoptes users`: console users managed from the shell, on the install's database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from panoptes.cli.main import app
from panoptes.cloud.server import ServerConfig, build_server
from panoptes.console.users import Users


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    server = build_server(ServerConfig(data))  # what `panoptes serve` does at first start
    server.backend.db.dispose()
    return data


def _run(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["users", *args], input=stdin)


def _users(data_dir: Path) -> Users:
    from panoptes.cloud.db import Database

    return Users(Database.open(f"sqlite:///{data_dir / 'panoptes.db'}"))


def test_add_list_and_sign_in(data_dir: Path) -> None:
    result = _run("add", "alice", "--data-dir", str(data_dir), "--password-stdin",
                  stdin="correct horse battery\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    users = _users(data_dir)
    account = users.list()[0].account_id  # the bootstrap user's: the install's one account
    assert "Added console user alice (account " + account in result.output
    assert "correct horse" not in result.output
    listed = _run("list", "--data-dir", str(data_dir)).output.split()
    assert listed == ["admin", account, "alice", account]
    assert users.authenticate("alice", "correct horse battery") is not None
    assert users.authenticate("alice", "correct horse") is None


def test_generated_password_is_printed_once_and_works(data_dir: Path) -> None:
    result = _run("add", "bob", "--data-dir", str(data_dir), "--generate")
    assert result.exit_code == 0
    password = result.output.split("Password: ")[1].split()[0]
    assert _users(data_dir).authenticate("bob", password) is not None


def test_bad_requests_get_one_clear_error(data_dir: Path) -> None:
    short = _run("add", "carol", "--data-dir", str(data_dir), "--password-stdin", stdin="short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    dup = _run("add", "admin", "--data-dir", str(data_dir), "--password-stdin",
               stdin="long enough password\n")  # fmt: skip
    assert dup.exit_code == 1 and "exists already" in dup.output
    bad = _run("add", "bob", "--account", "000000000000", "--data-dir", str(data_dir),
               "--password-stdin", stdin="long enough password\n")  # fmt: skip
    assert bad.exit_code == 1 and "no account 000000000000" in bad.output
    missing = _run("list", "--data-dir", str(data_dir.parent / "nowhere"))
    assert missing.exit_code == 1 and "run `panoptes serve` once first" in missing.output


def test_remove_and_set_password_end_sessions(data_dir: Path) -> None:
    _run("add", "dave", "--data-dir", str(data_dir), "--password-stdin", stdin="first password!\n")
    users = _users(data_dir)
    user = users.authenticate("dave", "first password!")
    token, _ = users.start_session(user)
    result = _run("set-password", "dave", "--data-dir", str(data_dir), "--password-stdin",
                  stdin="second password!\n")  # fmt: skip
    assert result.exit_code == 0
    assert users.session(token) is None
    assert users.authenticate("dave", "second password!") is not None
    token, _ = users.start_session(users.authenticate("dave", "second password!"))
    assert _run("remove", "dave", "--data-dir", str(data_dir)).exit_code == 0
    assert users.session(token) is None and users.authenticate("dave", "second password!") is None
    assert _run("remove", "dave", "--data-dir", str(data_dir)).exit_code == 1


@pytest.mark.slow
def test_serve_prints_the_first_password_once(tmp_path: Path) -> None:
    from serve_support import running_panoptes

    data = tmp_path / "d"
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    with running_panoptes(data, tmp_path, log=first) as url:
        pass
    password = (data / "console-password").read_text().split()[1]
    assert f"with password {password}" in first.read_text()
    assert f"sign in at {url}/console/" in first.read_text()
    with running_panoptes(data, tmp_path, log=second):
        pass
    assert password not in second.read_text()
    assert "console-password" in second.read_text()
