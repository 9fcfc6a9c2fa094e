"""WP-Cron by the system (group `web`): WordPress's scheduled work (scheduled posts,
update checks, plugins' jobs) runs every minute from `wordpress-cron.timer` on every web
host, with PHP's CLI and no HTTP request; a database lock lets one host at a time run
the events, so each runs once, and they keep running while any web host is up. Each
further site's timer (`wp-<name>-cron.timer`) fires at a second of its own (`second`),
not all at once.
`DISABLE_WP_CRON` in wp-config.php stops page loads from calling wp-cron.php.
"""

from __future__ import annotations

import hashlib

from pyinfra.api import deploy
from pyinfra.operations import files, systemd

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys._util import TIDY
from pyinfra_wordpress_lb.deploys.plan import Site, cluster
from pyinfra_wordpress_lb.facts.wordpress import PHP_CACHE

RUNNER = "/usr/local/lib/wordpress-lb/wordpress-cron.php"  # the first site's (runner)
UNIT = "wordpress-cron"  # the first site's (unit)

SETTINGS = ()


def unit(site: Site) -> str:
    """The site's WP-Cron units' name (`wordpress-cron` for the first site, `main`)."""
    return f"{site.key}-cron"


def second(site: Site) -> int:
    """The second of each minute the site's timer fires at: 0 for the first site
    (`main`, as one site always had), else one of 1-59 from its name, the same on every
    host and run. Twenty sites firing at once, on every web host, each loading WordPress,
    took both cores of a small host for a few seconds each minute."""
    if unit(site) == UNIT:
        return 0
    return 1 + int.from_bytes(hashlib.sha256(site.name.encode()).digest()[:4], "big") % 59


def runner(site: Site) -> str:
    return f"{RUNNER.rsplit('/', 1)[0]}/{site.key}-cron.php"


@deploy("WP-Cron")
def cron() -> None:
    for site in cluster().sites:
        _cron(site)


def _cron(site: Site) -> None:
    user, name, tag = site.user, unit(site), site.tag
    files.template(name="Install the WP-Cron runner" + tag, mode="644",
                   src=templates.path("wordpress/wordpress-cron.php.j2"),
                   dest=runner(site), site_host=templates.php_string(site.hostname),
                   multisite=site.multisite != "off", jinja_env_kwargs=TIDY)
    service = files.template(name=f"Install {name}.service", mode="644",
                             src=templates.path("systemd/wordpress-cron.service.j2"),
                             dest=f"/etc/systemd/system/{name}.service",
                             create_remote_dir=False, run_as=user,
                             docroot=site.docroot, runner=runner(site),
                             cache=f"{site.home}/{PHP_CACHE}")
    timer = files.template(name=f"Install {name}.timer", mode="644",
                           src=templates.path("systemd/wordpress-cron.timer.j2"),
                           dest=f"/etc/systemd/system/{name}.timer", create_remote_dir=False,
                           second=second(site))
    systemd.daemon_reload(name="Reload systemd for WP-Cron's units" + tag,
                          _if=lambda: service.did_change() or timer.did_change())
    systemd.service(name="Run WordPress's scheduled events every minute" + tag,
                    service=f"{name}.timer", running=True, enabled=True)
