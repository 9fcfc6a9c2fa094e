"""Verify (on `lb` hosts, else on web hosts): the site answers through each balancer, on
the shared address, and from each backend directly; HTTP moves to HTTPS. Certificates
are checked against what the host trusts. Changes nothing; fails the deploy with a
clear message."""

from __future__ import annotations

from urllib.parse import urlsplit

from pyinfra import host
from pyinfra.api import deploy

from pyinfra_wordpress_lb.deploys import balancer, common, ha, secrets, tls, web, wordpress
from pyinfra_wordpress_lb.deploys._util import (
    backend_port, backends, failed, group_hosts, private_address, site_url, unreachable,
)
from pyinfra_wordpress_lb.deploys.settings import defaults
from pyinfra_wordpress_lb.operations import http


@deploy("Verify", data_defaults=defaults(common.SETTINGS, web.SETTINGS, wordpress.SETTINGS,
                                          balancer.SETTINGS, tls.SETTINGS, ha.SETTINGS))
def verify() -> None:
    # From the balancers; from the web hosts when there is no balancer.
    if "lb" not in host.groups and (group_hosts("lb") or "web" not in host.groups):
        return
    site = site_url()
    name = urlsplit(site).netloc
    title = host.data.site_title
    web_hosts = {} if host.data.get("lb_backends") else {
        f"{private_address(h)}:{backend_port(h)}": h for h in group_hosts("web")}
    for backend in backends():
        if backend in web_hosts and web_hosts[backend].name in unreachable():
            continue  # out of the pool (see `upstream`): nothing to check
        http.responds(
            name=f"Backend {backend} serves the site",
            url=f"http://{backend}/", host_header=name, title=title,
            what=f"the backend {backend}",
            # A web host that failed in this run is out of the pool: nothing to check.
            _if=lambda web=web_hosts.get(backend): web is None or not failed(web),
        )
    if "lb" not in host.groups:
        return
    tls_on = tls.mode() != "off"
    here = (f"127.0.0.1:{host.data.lb_https_port}" if tls_on
            else f"127.0.0.1:{host.data.lb_port}")
    first = host == group_hosts("lb")[0]
    vip = host.data.get("lb_vip")
    summary = (
        f"The site answers: {site} (admin: {site}/wp-admin/, user {host.data.admin_user!r}; "
        f"password: `admin_password` in {secrets.secrets_path()})"
        + (f"; its certificate's CA, for clients to trust: {secrets.beside('.ca.crt')}"
           if tls.mode() == "self-signed" else "")
    )
    http.responds(
        name="The site answers through this balancer",
        url=f"{site}/", connect_to=here, title=title,
        what=f"the balancer {host.name}",
        success_message=summary if first and not vip else None,
    )
    if tls_on:
        http.responds(
            name="Plain HTTP moves to HTTPS",
            url=f"http://{urlsplit(site).hostname}/", connect_to=f"127.0.0.1:{host.data.lb_port}",
            status=301, location=f"{site}/", what=f"HTTP on the balancer {host.name}",
        )
    if vip and first:
        port = host.data.lb_https_port if tls_on else host.data.lb_port
        http.responds(
            name="The site answers on the shared address",
            url=f"{site}/", connect_to=f"{vip}:{port}", title=title,
            what=f"the shared address {vip}", success_message=summary,
            # Just started, the balancers take a moment to agree who holds it.
            wait=30,
        )
