"""PHP-FPM pools and settings, at whatever PHP version the host's Debian ships."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.context import state
from pyinfra.facts.files import File
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

from pyinfra_wordpress_lb.facts.php import FpmVersion
from pyinfra_wordpress_lb.operations._content import put_content
from pyinfra_wordpress_lb.operations._fail import fail

# Debian's unit stops PHP-FPM with SIGTERM, which kills workers in the middle of a
# response (a client then gets a truncated page no balancer can retry). SIGQUIT makes
# the workers finish what they are serving first.
GRACEFUL_STOP = """\
# Managed by pyinfra-wordpress-lb (operations/php.py). Local changes are overwritten.
[Service]
KillSignal=SIGQUIT
TimeoutStopSec=30
"""
# ...but only if the master gives them time: with PHP's default process_control_timeout
# (0) it follows its SIGQUIT with SIGTERM at once, on a stop and on every reload (USR2),
# so a reload alone cut responses short. Included from php-fpm.conf's [global] section.
GRACEFUL_GLOBAL = """\
; Managed by pyinfra-wordpress-lb (operations/php.py). Local changes are overwritten.
; On a stop or reload, workers get this long to finish the request they serve.
[global]
process_control_timeout = 25s
"""


@operation()
def fpm(pool: str, pool_config: str, ini: str | None = None, disable_default_pool: bool = True):
    """
    Ensure PHP-FPM runs a pool and ini settings of ours, at the host's PHP version
    (found from the installed ``php-fpm`` package at run time, so it works on the first
    run, right after the package is installed), and stops gracefully (SIGQUIT, and time
    for workers to finish their requests, on a stop and on a reload). Reloads PHP-FPM
    when a file changed, after checking the configuration; starts and enables the
    service if needed.

    + pool: pool name; its file is ``/etc/php/<version>/fpm/pool.d/<pool>.conf``
    + pool_config: the pool file's content
    + ini: content of ``/etc/php/<version>/fpm/conf.d/90-<pool>.ini`` (PHP-wide: one pool
      of several sets it); None: no such file is written
    + disable_default_pool: move Debian's ``www`` pool (runs as www-data) aside

    **Example:**

    .. code:: python

        php.fpm(
            name="Run the wordpress PHP-FPM pool",
            pool="wordpress",
            pool_config="[wordpress]\\nuser = wordpress\\n...",
            ini="opcache.enable = 1\\n",
        )
    """
    version = host.get_fact(FpmVersion)
    if not version:
        if state.is_executing:
            yield from fail("php-fpm is not installed: install Debian's php-fpm first")
            return
        yield f"# configure PHP-FPM pool {pool} once php-fpm is installed"
        return

    etc = f"/etc/php/{version}/fpm"
    service = f"php{version}-fpm.service"
    commands, written = [], []
    wanted = [(f"{etc}/pool.d/{pool}.conf", pool_config),
              (f"{etc}/pool.d/00-graceful-stop.conf", GRACEFUL_GLOBAL)]
    if ini is not None:
        wanted.append((f"{etc}/conf.d/90-{pool}.ini", ini))
    for path, content in wanted:
        put = list(put_content(path, content))
        commands += put
        if put:
            written.append(path)
    if written:
        # Checked before PHP-FPM reads them; a configuration it refuses is undone.
        paths = " ".join(shlex.quote(p) for p in written)
        commands = [
            f"for f in {paths}; do rm -f \"$f.pwlb-kept\" \"$f.pwlb-absent\"; "
            f"if [ -e \"$f\" ]; then cp -p \"$f\" \"$f.pwlb-kept\"; "
            f"else : > \"$f.pwlb-absent\"; fi; done",
            *commands,
            f"if out=$(php-fpm{version} --test 2>&1); then "
            f"for f in {paths}; do rm -f \"$f.pwlb-kept\" \"$f.pwlb-absent\"; done; "
            f"else for f in {paths}; do "
            f"if [ -e \"$f.pwlb-kept\" ]; then mv -f \"$f.pwlb-kept\" \"$f\"; "
            f"else rm -f \"$f\"; fi; rm -f \"$f.pwlb-absent\"; done; "
            f"echo \"PHP-FPM refuses the new pool {pool} configuration, the previous one "
            f"stays: $out\" >&2; exit 1; fi",
        ]
    dropin = f"/etc/systemd/system/{service}.d"
    graceful = list(put_content(f"{dropin}/graceful-stop.conf", GRACEFUL_STOP))
    if graceful:
        commands += [f"mkdir -p {dropin}", *graceful, "systemctl daemon-reload"]
    if disable_default_pool and pool != "www" and host.get_fact(File, path=f"{etc}/pool.d/www.conf"):
        # (tolerant: the pool of another site may have moved it earlier in the run)
        commands.append(f"[ ! -e {etc}/pool.d/www.conf ] || "
                        f"mv -f {etc}/pool.d/www.conf {etc}/pool.d/www.conf.disabled")

    running = host.get_fact(SystemdStatus, services=service).get(service)
    enabled = host.get_fact(SystemdEnabled, services=service).get(service)
    if commands:
        yield from commands
        if running:
            yield f"systemctl reload {service}"
    if not running:
        yield f"systemctl start {service}"
    if not enabled:
        yield f"systemctl enable {service}"
    if not commands and running and enabled:
        host.noop(f"PHP {version} FPM pool {pool} is configured and running")
