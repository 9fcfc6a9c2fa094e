"""Stands for the web servers you already run: a user, a directory, an nginx vhost."""

from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@deploy("Static site")
def site() -> None:
    user, home, docroot = host.data.wordpress_user, host.data.wordpress_home, host.data.docroot
    apt.update(name="Refresh the apt cache (once a day)", cache_time=86400)
    apt.packages(name="Install nginx", packages=["nginx"], no_recommends=True)
    server.user(name=f"Add the {user} user", user=user, home=home, shell="/bin/sh",
                system=True, create_home=True)
    # nginx (www-data) must be able to pass through the home to the site directory.
    files.directory(name="Let nginx reach the site", path=home, user=user, group=user,
                    mode="755")
    files.directory(name="Create the site directory", path=docroot, user=user, group=user,
                    mode="755")
    vhost = files.template(name="Write the site's vhost", src=str(TEMPLATES / "site.conf.j2"),
                           dest="/etc/nginx/conf.d/site.conf", mode="644", docroot=docroot)
    default = files.link(name="Disable nginx's default site",
                         path="/etc/nginx/sites-enabled/default", present=False)
    systemd.service(name="Reload nginx for the vhost", service="nginx.service",
                    running=True, reloaded=True,
                    _if=lambda: vhost.did_change() or default.did_change())
