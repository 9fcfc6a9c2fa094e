"""Run deploy.py against pyinfra's @fake connector and return what each host would do."""

from __future__ import annotations

import copy
import json
import os
import sys
from io import BytesIO, StringIO
from pathlib import Path

import pyinfra
from pyinfra.api import Config, FileUploadCommand, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.state import StateStage
from pyinfra.connectors.util import CommandOutput
from pyinfra.context import ctx_host, ctx_inventory, ctx_state
from pyinfra_cli.util import load_deploy_file

from pyinfra_wordpress_lb.deploys import _speed
from pyinfra_wordpress_lb.deploys._run import run
from pyinfra_wordpress_lb.operations import wordpress as wordpress_ops

ROOT = Path(__file__).resolve().parent.parent


def _faster_pyinfra() -> None:
    """pyinfra's pure helpers, made cheap for the many plans the tests make (same
    answers): where an operation is called from is read without loading source lines
    (only file names and line numbers are used), the global arguments' type hints, the
    same for every operation, are computed once, and host data is looked up without
    merging the groups' data again each time."""
    from copy import deepcopy

    import pyinfra.api.facts as facts

    _speed.install()  # where operations are called from; the global arguments' types

    # A plan never executes anything and the fake hosts' answers are fixed: a fact asked
    # again with the same arguments answers the same. Half the facts a plan asks are
    # asked again (a file's parent directory, the installed packages, the OS), and each
    # ask costs pyinfra ~0.6 ms of argument bookkeeping; the answer is a copy, as a
    # fresh ask's would be.
    import pyinfra.api.host as host_module

    ask = facts.get_fact

    def get_fact(state, host, cls, args=None, kwargs=None, ensure_hosts=None,
                 apply_failed_hosts=True):
        answers = state.__dict__.get("_fake_answers")
        if answers is None:  # not a plan of this harness
            return ask(state, host, cls, args, kwargs, ensure_hosts, apply_failed_hosts)
        key = (host.name, cls, repr(args), repr(sorted((kwargs or {}).items())))
        if key not in answers:
            answers[key] = ask(state, host, cls, args, kwargs, ensure_hosts,
                               apply_failed_hosts)
        return deepcopy(answers[key])

    facts.get_fact = host_module.get_fact = get_fact


def _fixed_layers(inventory) -> None:
    """Each host's data layers merged once, as a run does (deploys/_speed.py)."""
    _speed.fix_layers(inventory)


_faster_pyinfra()

# What a fresh Debian 13 host answers to the facts the deploy reads; anything not
# listed answers with empty output (the @fake default).
FAKE_HOST: dict = {
    "uname -s": "Linux",
    "*-release": ["/etc/os-release", 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"',
                  'NAME="Debian GNU/Linux"', 'VERSION_ID="13"', 'VERSION="13 (trixie)"',
                  "VERSION_CODENAME=trixie", "ID=debian", "---"],
    "command -v useradd": "/usr/sbin/useradd",
}


def ip_addr_json(address: str, prefix: int = 24, interface: str = "eth0") -> str:
    """What `ip -j addr show` answers on a host with this address (pyinfra's
    NetworkDevices fact reads it)."""
    return json.dumps([
        {"ifname": "lo", "operstate": "UNKNOWN", "mtu": 65536,
         "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
        {"ifname": interface, "operstate": "UP", "mtu": 1500, "address": "02:42:ac:1e:01:0a",
         "addr_info": [{"family": "inet", "local": address, "prefixlen": prefix,
                        "scope": "global"}]},
    ])


class Plan(dict):
    """{host: [(operation name, [commands]), ...]}, plus `order`: every operation's
    name in the order pyinfra will run them across all hosts (one entry per step)."""

    order: list[str]


_PLANS: dict = {}


def plan(groups: dict[str, list[str]], secrets_file: Path, **options) -> Plan:
    """What each host would run on a first run, in operation order (secret uploads
    opaque unless `show_secrets`). With `failed`, what the other hosts run once those
    hosts failed early in the run (commands as they are decided while the run goes on).
    With `unreachable`, a run limited (`--limit`) to the other hosts, those not answering.
    Hosts get private addresses 10.0.0.10, .11, ... in order of first appearance.

    A plan asked again with the same inputs (and no secrets file yet: the run makes
    one) is the first one's, its secrets file copied: the deploy is deterministic
    given its secrets, and the tests only read plans (each gets its own copy)."""
    fresh = not secrets_file.exists()
    key = json.dumps([groups, options], sort_keys=True, default=repr) if fresh else None
    if key in _PLANS:
        result, secrets = _PLANS[key]
        secrets_file.touch(mode=0o600)
        secrets_file.write_text(secrets)
        return copy.deepcopy(result)
    result = _plan(groups, secrets_file, **options)
    if key is not None and secrets_file.exists():
        _PLANS[key] = (copy.deepcopy(result), secrets_file.read_text())
    return result


def _plan(groups: dict[str, list[str]], secrets_file: Path, data: dict | None = None,
          host_data: dict[str, dict] | None = None,
          fake_responses: dict | None = None, show_secrets: bool = False,
          deploy_file: str = "deploy.py", failed: tuple[str, ...] = (),
          unreachable: tuple[str, ...] = ()) -> Plan:
    names: list[str] = []
    for hosts in groups.values():
        names += [h for h in hosts if h not in names]
    base = {"fake_delay": 0, "fake_delay_jitter": 0}
    all_hosts = []
    for index, name in enumerate(names):
        address = f"10.0.0.{10 + index}"
        own = dict((host_data or {}).get(name, {}))
        responses = {**FAKE_HOST, "ip -j addr": ip_addr_json(address), **(fake_responses or {}),
                     **own.pop("fake_responses", {})}
        all_hosts.append((f"@fake/{name}", {
            **base, "fake_responses": responses, "private_address": address,
            "secrets_file": str(secrets_file), **(data or {}), **own,
        }))
    inventory = Inventory(
        (all_hosts, {}),
        **{group: ([f"@fake/{h}" for h in hosts], {}) for group, hosts in groups.items()},
    )
    _fixed_layers(inventory)
    state = State(inventory, Config())
    state.__dict__["_fake_answers"] = {}  # (see _faster_pyinfra)
    # The admin password's digest is 100,000 PBKDF2 rounds (~30 ms) for a fresh secret
    # in nearly every plan; a plan only compares digests it made itself.
    rounds, wordpress_ops.STAMP_ROUNDS = wordpress_ops.STAMP_ROUNDS, 10
    cwd, was_cli = os.getcwd(), pyinfra.is_cli
    os.chdir(ROOT)
    # CLI mode: operations are ordered and identified by where deploy code calls them,
    # as `pyinfra inventory.py deploy.py` does (API mode pairs them up by position).
    pyinfra.is_cli = True
    try:
        with ctx_state.use(state), ctx_inventory.use(inventory):
            state.set_stage(StateStage.Connect)
            if unreachable:
                state.limit_hosts = [h for h in inventory
                                     if h.name.removeprefix("@fake/") not in unreachable]
                run(state).unreachable = {h.name: "test: down" for h in inventory
                                          if h.name.removeprefix("@fake/") in unreachable}
            connect_all(state)
            state.set_stage(StateStage.Prepare)
            load_deploy_file(state, str(ROOT / deploy_file))
            if failed:
                state.is_executing = True
                state.failed_hosts.update(h for h in inventory
                                          if h.name.removeprefix("@fake/") in failed)
            result = Plan()
            result.order = [", ".join(sorted(state.get_op_meta(h).names))
                            for h in state.get_op_order()]
            # Step by step across hosts, as a run goes (a later step may ask how an
            # earlier one went, on this host or another).
            for host in inventory:
                if host not in state.failed_hosts and state.is_host_in_limit(host):
                    result[host.name.removeprefix("@fake/")] = []
            for op_hash in state.get_op_order():
                meta = state.get_op_meta(op_hash)
                for host in inventory:
                    if (host in state.failed_hosts or not state.is_host_in_limit(host)
                            or op_hash not in state.ops[host]):
                        continue
                    op_data = state.get_op_data_for_host(host, op_hash)
                    with ctx_host.use(host):
                        generated = list(op_data.command_generator())
                    if failed:  # "ran": what later steps ask of it (did_change) is known
                        op_data.operation_meta.set_complete(True, generated, CommandOutput([]))
                    result[host.name.removeprefix("@fake/")].append(
                        (", ".join(sorted(meta.names)),
                         [_show(c, show_secrets) for c in generated]))
    finally:
        os.chdir(cwd)
        pyinfra.is_cli = was_cli
        wordpress_ops.STAMP_ROUNDS = rounds
    return result


def _show(command, secret: bool = False) -> str:
    """A command as text; an upload shows the file it writes, except a secret one
    (written to `<path>.pwlb-new` first, see operations/_content.py), which stays opaque
    unless `secret`."""
    if isinstance(command, FileUploadCommand) and isinstance(command.src, (StringIO, BytesIO)) \
            and (secret or not str(command.dest).endswith(".pwlb-new")):
        command.src.seek(0)
        content = command.src.read()
        if isinstance(content, bytes):
            content = content.decode(errors="replace")
        return f"upload {command.dest}:\n{content}"
    return str(command)
