"""Verify (on `lb` hosts, else on web hosts): the site answers through the balancer and
from each backend directly. Changes nothing; fails the deploy with a clear message."""

from __future__ import annotations

from urllib.parse import urlsplit

from pyinfra import host
from pyinfra.api import deploy

from pyinfra_wordpress_lb.deploys import balancer, common, secrets, web
from pyinfra_wordpress_lb.deploys._util import backends, group_hosts
from pyinfra_wordpress_lb.deploys.settings import defaults
from pyinfra_wordpress_lb.operations import http


@deploy("Verify", data_defaults=defaults(common.SETTINGS, web.SETTINGS, balancer.SETTINGS))
def verify() -> None:
    # From the balancers; from the web hosts when there is no balancer.
    if "lb" not in host.groups and (group_hosts("lb") or "web" not in host.groups):
        return
    site = web.site_url()
    name = urlsplit(site).netloc
    title = host.data.site_title
    for backend in backends():
        http.responds(
            name=f"Backend {backend} serves the site",
            url=f"http://{backend}/", host_header=name, title=title,
            what=f"the backend {backend}",
        )
    if "lb" in host.groups:
        first = host == group_hosts("lb")[0]
        http.responds(
            name="The site answers through the balancer",
            url=f"http://127.0.0.1:{host.data.lb_port}/", host_header=name, title=title,
            what="the balancer",
            success_message=(
                f"The site answers: {site} (admin: {site}/wp-admin/, user "
                f"{host.data.admin_user!r}; password: `admin_password` in "
                f"{secrets.secrets_path()})" if first else None
            ),
        )
