"""Default inventory: the operator's hosts, else the local test bed (`make demo`).

Hosts are described in a TOML file, one table per host. `groups` lists its roles
(`lb`, `web`, `db`); every other key is pyinfra host data (connection settings such as
`ssh_user`, `_sudo`, and this project's keys such as `private_address`):

    [hosts.web1]
    groups = ["web"]
    ssh_hostname = "203.0.113.11"   # how to reach it; defaults to the table's name
    ssh_user = "debian"
    _sudo = true
    private_address = "10.0.0.11"   # cluster traffic; defaults to what the host reports

The file is the path in the PWLB_HOSTS environment variable when it is set (and nothing
else: a path that names no file is an error, never another inventory); else `hosts.toml`
next to this file (ignored by git), else the `split` test bed's `.testbed/split/hosts.toml`.
"""

import os
import tomllib
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _hosts_file() -> Path:
    named = os.environ.get("PWLB_HOSTS")
    if named is not None:
        if not Path(named).is_file():
            raise SystemExit(f"PWLB_HOSTS={named}: no such file (no other inventory is used "
                             "while PWLB_HOSTS is set)")
        return Path(named)
    for candidate in (
        _HERE / "hosts.toml",
        Path(os.environ.get("PWLB_TESTBED_DIR", _HERE / ".testbed")) / "split" / "hosts.toml",
    ):
        if candidate.is_file():
            return candidate
    raise SystemExit(
        "No hosts: write hosts.toml (see inventory.py), set PWLB_HOSTS=path/to/hosts.toml, "
        "or run `make demo` for a local test bed."
    )


def _groups(path: Path) -> dict[str, list]:
    try:
        with path.open("rb") as f:
            hosts = tomllib.load(f).get("hosts", {})
    except tomllib.TOMLDecodeError as exc:
        raise SystemExit(f"{path}: not valid TOML: {exc}") from None
    if not isinstance(hosts, dict) or not all(isinstance(d, dict) for d in hosts.values()):
        raise SystemExit(f"{path}: `hosts` must hold one table per host ([hosts.web1], ...)")
    groups: dict[str, list] = {"lb": [], "web": [], "db": []}
    # One secrets file per inventory, beside it (see deploys/secrets.py).
    secrets_file = str(path.with_name(path.name.split(".")[0] + ".secrets.json"))
    for name, data in hosts.items():
        data = {"secrets_file": secrets_file, **data}
        host_groups = data.pop("groups", [])
        if isinstance(host_groups, str):
            raise SystemExit(f"{path}: host {name!r}: groups = {host_groups!r} is not a list; "
                             f"write groups = [{host_groups!r}]".replace("'", '"'))
        if not host_groups:
            raise SystemExit(f"{path}: host {name!r} has no `groups` (lb, web, db)")
        for group in host_groups:
            groups.setdefault(group, []).append((name, data))
    return groups


_path = _hosts_file()
_all = _groups(_path)
lb = _all.pop("lb")
web = _all.pop("web")
db = _all.pop("db")
globals().update(_all)  # any further groups the operator names
