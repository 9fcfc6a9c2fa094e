"""The secrets store: generated on the controller on first use, never printed.

One JSON file per inventory (by default next to the hosts file: `hosts.toml` ->
`hosts.secrets.json`, ignored by git), created with mode 0600. A value is taken from,
in order: the environment (`PWLB_SECRET_<NAME>`), host data (`secrets = {name: value}`),
the file; a missing value is generated and added to the file. The file is refused if
group or others may read it.

Values are handed out wrapped in pyinfra's `HiddenValue`, which pyinfra prints as
`*MASKED*`; call `.unmask()` only where the value goes into a command or file.
"""

from __future__ import annotations

import json
import os
import secrets as random
import stat
import string
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pyinfra.api import HiddenValue

DEFAULT_FILE = "wordpress-lb.secrets.json"

WP_SALT_NAMES = [
    f"wp_{kind}_{part}"
    for part in ("key", "salt")
    for kind in ("auth", "secure_auth", "logged_in", "nonce")
]

# Characters safe inside a single-quoted PHP string and a shell/SQL literal.
_SALT_ALPHABET = string.ascii_letters + string.digits + "!#$%&()*+,-./:;<=>?@[]^_{|}~"
_PASSWORD_ALPHABET = string.ascii_letters + string.digits


def _generate(name: str) -> str:
    name = name.split("@", 1)[0]  # a site's own secret: made as the one-site one is
    if name.endswith("_tls_key"):
        key = ec.generate_private_key(ec.SECP256R1())
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    if name.endswith("_ssh_key"):
        key = ed25519.Ed25519PrivateKey.generate()
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ).decode()
    if name.startswith("wp_"):
        return "".join(random.choice(_SALT_ALPHABET) for _ in range(64))
    return "".join(random.choice(_PASSWORD_ALPHABET) for _ in range(32))


class SecretsError(RuntimeError):
    pass


def secrets_path(target=None) -> Path:
    """The store: the plan's (one for the cluster), or, for validate's check before
    there is a plan, a host's (`target`)."""
    if target is None:
        from pyinfra_wordpress_lb.deploys.plan import cluster

        return cluster().secrets_file
    return store_of(target.data.get("secrets_file"))


def store_of(setting) -> Path:
    """The store's path for a `secrets_file` setting (the environment's
    PWLB_SECRETS_FILE wins)."""
    path = os.environ.get("PWLB_SECRETS_FILE") or setting or DEFAULT_FILE
    return Path(path).expanduser().resolve()


def check_file(path: Path) -> None:
    """Refuse a secrets file that group or others may read."""
    if not path.exists():
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretsError(
            f"secrets file {path} has mode {mode:04o}: group or others can read it; "
            f"refusing to use it. Fix: chmod 600 {path} (and consider rotating its secrets)"
        )


def _load(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    check_file(path)
    seen = path.stat()
    version = (seen.st_ino, seen.st_mtime_ns, seen.st_size)
    known = _READ.get(path)
    if known and known[0] == version:  # read once per version (a run asks ~850 times)
        return dict(known[1])
    try:
        data = json.loads(path.read_text() or "{}")
    except json.JSONDecodeError as exc:
        raise SecretsError(f"secrets file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SecretsError(f"secrets file {path} must hold a JSON object")
    found = {str(k): str(v) for k, v in data.items()}
    _READ[path] = (version, found)
    return dict(found)


_READ: dict[Path, tuple] = {}  # path -> (inode, mtime, size when read, its contents)


def _save(path: Path, data: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def dry_run() -> bool:
    """`pyinfra --dry`: nothing is written, on the hosts nor here. pyinfra tells a deploy
    no such thing, so its command line is read."""
    import pyinfra

    return bool(pyinfra.is_cli) and "--dry" in sys.argv[1:]


# A dry run's generated values: the same for every host of the run, never saved.
_UNSAVED: dict[Path, dict[str, str]] = {}


def stored(name: str) -> str:
    """The raw value of one secret from the file, generating and saving it if missing."""
    return kept(name, lambda current: current or _generate(name))


def kept(name: str, make) -> str:
    """A value kept in the store that the controller derives (a certificate): `make`
    gets the stored value (or None) and returns what should be stored; a new value
    is saved, so every later run (and every host) gets the same."""
    path = secrets_path()
    data = {**_load(path), **_UNSAVED.get(path, {})}
    value = make(data.get(name))
    if data.get(name) != value:
        data[name] = value
        if dry_run():
            _UNSAVED.setdefault(path, {})[name] = value
        else:
            _save(path, data)
    return value


def beside(suffix: str, target=None) -> Path:
    """A file next to the secrets store, named after it: `hosts.secrets.json` ->
    `hosts<suffix>` (the self-signed CA's certificate, for clients to trust)."""
    path = secrets_path(target)
    stem = path.name.removesuffix(".json").removesuffix(".secrets")
    return path.with_name(stem + suffix)


def write_beside(suffix: str, text: str, mode: int = 0o644) -> Path:
    """Write a public file next to the secrets store (a CA's certificate, a public key)
    when its content changed; not in a dry run."""
    path = beside(suffix)
    if not dry_run() and (not path.exists() or path.read_text() != text):
        path.write_text(text)
        path.chmod(mode)
    return path


def env_name(name: str) -> str:
    """The environment variable that overrides a secret: `PWLB_SECRET_<NAME>`; a site's
    own secret `<name>@<site>` is `PWLB_SECRET_<NAME>__<SITE>` (`-` as `_`)."""
    return "PWLB_SECRET_" + name.upper().replace("@", "__").replace("-", "_")


def raw(name: str) -> str:
    """The effective value of one secret (environment > host data > file)."""
    from pyinfra_wordpress_lb.deploys.plan import cluster

    env = os.environ.get(env_name(name))
    if env:
        return env
    overrides = cluster().secret_overrides
    if overrides.get(name):
        return str(overrides[name])
    return stored(name)


def secret(name: str) -> HiddenValue:
    """One secret, masked for pyinfra's output."""
    return HiddenValue(raw(name))


def public_key(name: str, comment: str) -> str:
    """The OpenSSH public key of a private-key secret (ending in `_ssh_key`)."""
    key = serialization.load_ssh_private_key(raw(name).encode(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH,
    ).decode()
    return f"{public} {comment}"
