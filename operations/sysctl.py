"""Kernel settings (sysctl) that a deploy needs at least, without failing where the
host may not change them (containers)."""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import operation
from pyinfra.context import state

from pyinfra_wordpress_lb.facts.sysctl import Setting
from pyinfra_wordpress_lb.operations._content import put_content
from pyinfra_wordpress_lb.operations._fail import fail


@operation()
def at_least(key: str, value: int, conf: str = "/etc/sysctl.d/60-wordpress-lb.conf"):
    """
    Ensure a numeric kernel setting is at least ``value``, now and after a reboot
    (``conf`` holds it for ``systemd-sysctl``). A higher value is left alone. Where the
    host refuses to change it now (a container's read-only ``/proc/sys``), the deploy
    says so in its output and goes on; the setting then belongs to whoever runs the host.

    + key: the setting, e.g. ``fs.inotify.max_user_watches``
    + value: the lowest acceptable value
    + conf: the file under ``/etc/sysctl.d`` that keeps it (one setting per file)

    **Example:**

    .. code:: python

        sysctl.at_least(
            name="Let the mesh watch every directory",
            key="fs.inotify.max_user_watches",
            value=524288,
        )
    """
    current = host.get_fact(Setting, key=key)
    now = current.get("value")
    if now is not None and not isinstance(now, int):
        yield from fail(f"{key} is {now!r}, not a number")
        return
    wanted = max(int(value), now or 0)
    commands = list(put_content(conf, f"# Managed by pyinfra-wordpress-lb.\n{key} = {wanted}\n"))
    if now is not None and now >= value:
        pass
    elif current.get("writable"):
        commands.append(f"sysctl -q -w {key}={wanted}")
    elif state.is_executing:  # said once, when it runs
        logger.warning(f"{host.print_prefix}the kernel refuses {key} = {value} here "
                       f"(read-only /proc/sys: a container?); it stays {now}. Set it on "
                       "the machine that runs this host.")
    if not commands:
        host.noop(f"{key} is {now}")
    yield from commands
