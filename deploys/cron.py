"""WP-Cron by the system (group `web`): WordPress's scheduled work (scheduled posts,
update checks, plugins' jobs) runs every minute from `wordpress-cron.timer` on every web
host, with PHP's CLI and no HTTP request; a database lock lets one host at a time run
the events, so each runs once, and they keep running while any web host is up.
`DISABLE_WP_CRON` in wp-config.php stops page loads from calling wp-cron.php.
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files, systemd

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys._util import TIDY
from pyinfra_wordpress_lb.deploys.plan import Site, cluster

RUNNER = "/usr/local/lib/wordpress-lb/wordpress-cron.php"  # the first site's (runner)
UNIT = "wordpress-cron"  # the first site's (unit)

SETTINGS = ()


def unit(site: Site) -> str:
    """The site's WP-Cron units' name (`wordpress-cron` for the first site, `main`)."""
    return f"{site.key}-cron"


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
                             docroot=site.docroot, runner=runner(site))
    timer = files.template(name=f"Install {name}.timer", mode="644",
                           src=templates.path("systemd/wordpress-cron.timer.j2"),
                           dest=f"/etc/systemd/system/{name}.timer", create_remote_dir=False)
    systemd.daemon_reload(name="Reload systemd for WP-Cron's units" + tag,
                          _if=lambda: service.did_change() or timer.did_change())
    systemd.service(name="Run WordPress's scheduled events every minute" + tag,
                    service=f"{name}.timer", running=True, enabled=True)
