"""Point unchanged AWS clients (boto3, the AWS CLI) at a running Panoptes.

Since botocore 1.43.38 no AWS SDK knows the Panorama service. Panoptes ships the
model; this module tells clients where it is and where the service runs, either for
one shell (`env_script`, evaluated like `minikube docker-env`) or for good
(`install` into ~/.aws, fenced by markers so `uninstall` removes exactly that).
"""

from __future__ import annotations

import configparser
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from panoptes.cloud.protocol.models import data_path
from panoptes.settings import PROFILE, ServiceRecord, credentials_path

Shell = Literal["bash", "zsh", "fish"]
VARIABLES = ("AWS_DATA_PATH", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE")
BEGIN = "# >>> panoptes: added by `panoptes env --install`; `panoptes env --uninstall` removes it"
END = "# <<< panoptes"
NEWLINE_NOTE = " (a final newline was added before this block)"
MODEL_MARKER = ".installed-by-panoptes"


class SetupError(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class ServiceAccess:
    """Everything a client needs: where the service is and how to sign."""

    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str


def service_access(data_dir: Path, *, check_running: bool = True) -> ServiceAccess:
    """Read service.json and credentials from the data dir; check the service answers."""
    start = f"start one: panoptes serve --data-dir {data_dir}"
    record = ServiceRecord.read(data_dir)
    if record is None:
        raise SetupError(f"no Panoptes service has run with data dir {data_dir}", start)
    creds = configparser.ConfigParser()
    creds.read(credentials_path(data_dir))
    if not creds.has_option(PROFILE, "aws_access_key_id"):
        raise SetupError(f"no credentials in {credentials_path(data_dir)}", start)
    if check_running and not _answers(record.endpoint_url):
        raise SetupError(f"the Panoptes service at {record.endpoint_url} is not running", start)
    return ServiceAccess(
        record.endpoint_url,
        record.region,
        creds.get(PROFILE, "aws_access_key_id"),
        creds.get(PROFILE, "aws_secret_access_key"),
    )


def _answers(endpoint_url: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint_url.rstrip("/") + "/healthz", timeout=3) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def profile_body(access: ServiceAccess) -> str:
    """The `panoptes` profile's settings (config-file syntax, without the header)."""
    # S3 path-style addressing: bucket names are not DNS names on a local endpoint.
    return (
        f"region = {access.region}\n"
        f"endpoint_url = {access.endpoint_url}\n"
        "s3 =\n    addressing_style = path\n"
    )


def write_client_config(data_dir: Path, access: ServiceAccess) -> Path:
    path = Path(data_dir) / "aws-config"
    path.write_text(f"[profile {PROFILE}]\n{profile_body(access)}")
    return path


def env_script(data_dir: Path, shell: Shell = "bash") -> str:
    """Lines to evaluate so this shell's AWS clients talk to Panoptes."""
    access = service_access(data_dir)
    config = write_client_config(data_dir, access)
    models = str(data_path())
    values = {
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials_path(data_dir)),
        "AWS_PROFILE": PROFILE,
    }
    if shell == "fish":
        # fish joins variables whose name ends in PATH with ':' when exporting.
        lines = [f"set -gx AWS_DATA_PATH {_q(models)} $AWS_DATA_PATH;"]
        lines += [f"set -gx {k} {_q(v)};" for k, v in values.items()]
    else:
        lines = [f'export AWS_DATA_PATH={_q(models)}"${{AWS_DATA_PATH:+:$AWS_DATA_PATH}}"']
        lines += [f"export {k}={_q(v)}" for k, v in values.items()]
    lines.append(f'# Panoptes at {access.endpoint_url}. To undo: eval "$(panoptes env --unset)"')
    return "\n".join(lines) + "\n"


def unset_script(shell: Shell = "bash") -> str:
    if shell == "fish":
        return "".join(f"set -e {v};\n" for v in VARIABLES)
    return f"unset {' '.join(VARIABLES)}\n"


def _q(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


# --- lasting setup in ~/.aws --------------------------------------------------------


def install(data_dir: Path, home: Path | None = None) -> list[str]:
    """Add the model and a `panoptes` profile to ~/.aws; returns what changed."""
    access = service_access(data_dir, check_running=False)
    aws = (home or Path.home()) / ".aws"
    aws.mkdir(mode=0o700, exist_ok=True)
    changed = []
    if _install_models(aws / "models"):
        changed.append(str(aws / "models" / "panorama"))
    config = f"[profile {PROFILE}]\n{profile_body(access)}"
    credentials = (
        f"[{PROFILE}]\naws_access_key_id = {access.access_key_id}\n"
        f"aws_secret_access_key = {access.secret_access_key}\n"
    )
    for path, block in ((aws / "config", config), (aws / "credentials", credentials)):
        if _put_block(
            path, block, header=f"[profile {PROFILE}]" if path.name == "config" else f"[{PROFILE}]"
        ):
            changed.append(str(path))
    return changed


def uninstall(home: Path | None = None) -> list[str]:
    """Remove exactly what `install` added; returns what changed."""
    aws = (home or Path.home()) / ".aws"
    changed = [str(p) for p in (aws / "config", aws / "credentials") if _drop_block(p)]
    models = aws / "models" / "panorama"
    if (models / MODEL_MARKER).exists():
        shutil.rmtree(models)
        changed.append(str(models))
    return changed


def _install_models(models: Path) -> bool:
    target = models / "panorama"
    if target.exists() and not (target / MODEL_MARKER).exists():
        return False  # the user's own copy: theirs to keep
    source = data_path() / "panorama"
    if target.exists() and _same_tree(source, target):
        return False
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    (target / MODEL_MARKER).write_text("panoptes env --uninstall removes this folder\n")
    return True


def _same_tree(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    return all((b / f).is_file() and (b / f).read_bytes() == (a / f).read_bytes() for f in files)


def _split(text: str) -> tuple[str, str | None, str]:
    """(before, block, after) around our fenced block; block None when absent."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith(BEGIN)]
    if not starts:
        return text, None, ""
    i = starts[0]
    j = next((k for k in range(i, len(lines)) if lines[k].rstrip("\n") == END), len(lines) - 1)
    return "".join(lines[:i]), "".join(lines[i : j + 1]), "".join(lines[j + 1 :])


def _put_block(path: Path, body: str, header: str) -> bool:
    original = path.read_text() if path.exists() else ""
    before, block, after = _split(original)
    if block is None and any(line.strip() == header for line in original.splitlines()):
        raise SetupError(
            f"{path} already has a {header} section that Panoptes did not write",
            "rename or remove that section, then run panoptes env --install again",
        )
    if block is None:
        note = NEWLINE_NOTE if before and not before.endswith("\n") else ""
        before = before + "\n" if note else before
    else:
        note = NEWLINE_NOTE if NEWLINE_NOTE in block.splitlines()[0] else ""
    new = before + f"{BEGIN}{note}\n{body}{END}\n" + after
    if new == original:
        return False
    if path.exists():
        backup = path.with_name(path.name + ".panoptes-backup")
        if not backup.exists():
            shutil.copy2(path, backup)
    _atomic_write(path, new)
    return True


def _drop_block(path: Path) -> bool:
    if not path.exists():
        return False
    original = path.read_text()
    before, block, after = _split(original)
    if block is None:
        return False
    if NEWLINE_NOTE in block.splitlines()[0] and before.endswith("\n"):
        before = before[:-1]
    _atomic_write(path, before + after)
    return True


def _atomic_write(path: Path, text: str) -> None:
    # Keep the file's mode (credentials files are often 0600, config 0644).
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    tmp = path.with_name(path.name + ".panoptes-tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)
