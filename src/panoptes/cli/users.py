"""`panoptes users`: the web console's user accounts (add, list, remove, set a password)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from panoptes.settings import default_data_dir

if TYPE_CHECKING:
    from panoptes.console.users import Users

users_cli = typer.Typer(
    help="Console users: who signs in to the web console, and for which account.",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DATA_DIR = typer.Option(None, "--data-dir", help="State folder [default: ~/.local/share/panoptes].")
DATABASE = typer.Option(
    None, "--database", help="SQLAlchemy URL, as given to `panoptes serve` [default: SQLite]."
)


def _users(data_dir: Path | None, database: str | None) -> Users:
    from panoptes.cloud.db import Database
    from panoptes.cloud.server import ServerConfig
    from panoptes.console.users import Users

    data = (data_dir or default_data_dir()).expanduser().resolve()
    config = ServerConfig(data_dir=data, database=database)
    if database is None and not (data / "panoptes.db").exists():
        err.print(f"[red]error:[/red] no Panoptes data in {escape(str(data))}: run "
                  "`panoptes serve` once first, or pass --data-dir")  # fmt: skip
        raise typer.Exit(1)
    return Users(Database.open(config.database_url))


def _default_account(users: Users) -> str:
    from sqlalchemy import select

    from panoptes.cloud.db.models import Account

    with users.db.session() as s:
        accounts = s.scalars(select(Account.id).order_by(Account.created)).all()
    if len(accounts) != 1:
        err.print("[red]error:[/red] this install has several accounts: pass --account ID "
                  f"(one of {', '.join(accounts) or 'none'})")  # fmt: skip
        raise typer.Exit(1)
    return accounts[0]


def _read_password(from_stdin: bool, generate: bool) -> tuple[str, bool]:
    from panoptes.console.passwords import generate_password

    if generate:
        return generate_password(), True
    if from_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True), False


@users_cli.command("add")
def add(
    name: str = typer.Argument(..., help="User name (letters, digits, . _ @ + -)."),
    account: str = typer.Option(
        None, "--account", help="Account the user acts for [default: the only account]."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    generate: bool = typer.Option(
        False, "--generate", help="Generate a password and print it once."
    ),
    data_dir: Path = DATA_DIR,
    database: str = DATABASE,
) -> None:
    """Add a console user. The password is hashed (scrypt); it is never stored.

    Example:

        panoptes users add alice --account 123456789012
    """
    from panoptes.console.passwords import WeakPassword
    from panoptes.console.users import UserError

    users = _users(data_dir, database)
    account_id = account or _default_account(users)
    password, generated = _read_password(password_stdin, generate)
    try:
        users.add(name, account_id, password)
    except (UserError, WeakPassword) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    out.print(f"Added console user {escape(name)} (account {account_id}).")
    if generated:
        out.print(f"Password: {password}  (shown once: keep it safe)")


@users_cli.command("list")
def list_users(data_dir: Path = DATA_DIR, database: str = DATABASE) -> None:
    """List console users and their accounts."""
    for user in _users(data_dir, database).list():
        out.print(f"{escape(user.name)}\t{user.account_id}")


@users_cli.command("remove")
def remove(
    name: str = typer.Argument(..., help="The user to remove; their sessions end."),
    data_dir: Path = DATA_DIR,
    database: str = DATABASE,
) -> None:
    """Remove a console user (signed-in browsers are signed out at once)."""
    from panoptes.console.users import UserError

    try:
        _users(data_dir, database).remove(name)
    except UserError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    out.print(f"Removed console user {escape(name)}.")


@users_cli.command("set-password")
def set_password(
    name: str = typer.Argument(..., help="The user whose password changes."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    generate: bool = typer.Option(False, "--generate", help="Generate one and print it once."),
    data_dir: Path = DATA_DIR,
    database: str = DATABASE,
) -> None:
    """Give a user a new password; their sessions end."""
    from panoptes.console.passwords import WeakPassword
    from panoptes.console.users import UserError

    users = _users(data_dir, database)
    password, generated = _read_password(password_stdin, generate)
    try:
        users.set_password(name, password)
    except (UserError, WeakPassword) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    out.print(f"New password set for {escape(name)}.")
    if generated:
        out.print(f"Password: {password}  (shown once: keep it safe)")
