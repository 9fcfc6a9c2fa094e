"""SSH trust between cluster hosts: pinned host keys, private keys kept private."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import HiddenValue, operation
from pyinfra.facts.files import File

from pyinfra_wordpress_lb.facts.ssh import KnownHosts
from pyinfra_wordpress_lb.operations._content import put_content, unmasked


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
    + hosts: ``{address: ["type base64", ...]}``; ``None`` for a host that cannot be
      asked now: the keys the file has for it stay
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
    current = host.get_fact(KnownHosts, path=path)
    wanted = {address: sorted(set(current.get(address, []) if keys is None else keys))
              for address, keys in hosts.items()}
    wanted = {address: keys for address, keys in wanted.items() if keys}
    info = host.get_fact(File, path=path)

    # A missing file is written even when no host is pinned (a lone web host).
    content_ok = bool(info) and {k: sorted(v) for k, v in current.items()} == wanted
    owner_ok = bool(info) and (info["user"], info["group"], info["mode"]) == (user, group, mode)
    if content_ok and owner_ok:
        host.noop(f"{path} already pins {len(wanted)} host(s)")
        return

    lines = [f"{address} {key}" for address in sorted(wanted) for key in wanted[address]]
    quoted = shlex.quote(path)
    tmp = shlex.quote(f"{path}.pyinfra-tmp")
    if not content_ok:
        body = " ".join(shlex.quote(line) for line in lines)
        write = f"printf '%s\\n' {body}" if lines else "printf ''"
        yield f"{write} > {tmp} && mv -f {tmp} {quoted}"
    yield f"chown {user}:{group} {quoted} && chmod {mode} {quoted}"


@operation()
def private_key(path: str, key: str | HiddenValue, user: str = "root"):
    """
    Ensure an SSH private key file holds this key, owned by ``user`` with mode 600. The
    key is never shown (not in ``--diff``, not at any verbosity) and no one else can read
    the file at any moment, not even while it is written.

    + path: the key file
    + key: the OpenSSH private key, preferably a ``HiddenValue``
    + user: owner (and group)

    **Example:**

    .. code:: python

        ssh.private_key(
            name="Install the mesh key",
            path="/var/lib/wordpress/.ssh/mesh_ed25519",
            key=HiddenValue("-----BEGIN OPENSSH PRIVATE KEY-----..."),
            user="wordpress",
        )
    """
    raw = unmasked(key)
    commands = list(put_content(path, raw, user=user, group=user, mode=600, secret=True))
    if not commands:
        host.noop(f"{path} holds the key")
    yield from commands
