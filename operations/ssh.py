"""SSH trust between cluster hosts: pinned host keys."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import File

from facts.ssh import KnownHosts


@operation()
def known_hosts(
    path: str,
    hosts: dict[str, list[str]],
    user: str = "root",
    group: str | None = None,
    mode: int = 644,
):
    """
    Pin host keys: ensure a ``known_hosts`` file holds exactly these hosts' keys and
    nothing else (a host that left the cluster loses its entry). Unlike
    ``ssh.keyscan`` nothing is learnt over the network: keys come from facts of the
    other hosts, so a man in the middle cannot slip in its own.

    + path: the ``known_hosts`` file
    + hosts: ``{address: ["type base64", ...]}``
    + user, group, mode: owner and permissions of the file

    **Example:**

    .. code:: python

        ssh.known_hosts(
            name="Pin the web peers' host keys",
            path="/var/lib/wordpress/.ssh/known_hosts",
            hosts={"10.0.0.6": ["ssh-ed25519 AAAAC3Nza..."]},
            user="wordpress",
        )
    """
    group = group or user
    wanted = {address: sorted(set(keys)) for address, keys in hosts.items() if keys}
    current = host.get_fact(KnownHosts, path=path)
    info = host.get_fact(File, path=path)

    content_ok = {k: sorted(v) for k, v in current.items()} == wanted
    owner_ok = bool(info) and (info["user"], info["group"], info["mode"]) == (user, group, mode)
    if content_ok and owner_ok:
        host.noop(f"{path} already pins {len(wanted)} host(s)")
        return

    lines = [f"{address} {key}" for address in sorted(wanted) for key in wanted[address]]
    quoted = shlex.quote(path)
    tmp = shlex.quote(f"{path}.pyinfra-tmp")
    if not content_ok:
        body = " ".join(shlex.quote(line) for line in lines)
        write = f"printf '%s\\n' {body}" if lines else "true"
        yield f"{write} > {tmp} && mv -f {tmp} {quoted}"
    yield f"chown {user}:{group} {quoted} && chmod {mode} {quoted}"
