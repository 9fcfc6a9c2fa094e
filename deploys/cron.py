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
from pyinfra_wordpress_lb.deploys.plan import cluster

RUNNER = "/usr/local/lib/wordpress-lb/wordpress-cron.php"
UNIT = "wordpress-cron"

SETTINGS = ()


@deploy("WP-Cron")
def cron() -> None:
    site = cluster().site
    user = site.user
    files.template(name="Install the WP-Cron runner", mode="644",
                            src=templates.path("wordpress/wordpress-cron.php.j2"),
                            dest=RUNNER, site_host=templates.php_string(site.hostname))
    service = files.template(name="Install wordpress-cron.service", mode="644",
                             src=templates.path("systemd/wordpress-cron.service.j2"),
                             dest=f"/etc/systemd/system/{UNIT}.service",
                             create_remote_dir=False, run_as=user,
                             docroot=site.docroot, runner=RUNNER)
    timer = files.template(name="Install wordpress-cron.timer", mode="644",
                           src=templates.path("systemd/wordpress-cron.timer.j2"),
                           dest=f"/etc/systemd/system/{UNIT}.timer", create_remote_dir=False)
    systemd.daemon_reload(name="Reload systemd for WP-Cron's units",
                          _if=lambda: service.did_change() or timer.did_change())
    systemd.service(name="Run WordPress's scheduled events every minute",
                    service=f"{UNIT}.timer", running=True, enabled=True)
