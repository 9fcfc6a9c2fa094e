"""The balancers' shared address (group `lb`, with `lb_vip` set): keepalived from Debian.

One balancer holds `lb_vip` at a time. VRRPv3 over unicast between the balancers'
private addresses, adverts every `lb_vrrp_interval` seconds: when the holder goes
silent (killed, cut off), another takes the address within 3 intervals and a fraction.
A balancer gives the address up at once when its nginx stops answering locally; when
nginx is stopped (or the host shuts down) it first holds new connections back, lets
nginx finish what it serves, then hands the address over, so a graceful stop fails no
request. No balancer preempts: one that comes back stays backup (one interruption,
not two). nginx listens on every address, so it answers on the shared one wherever it
moves.
"""

from __future__ import annotations

from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys import balancer
from pyinfra_wordpress_lb.deploys._util import TIDY, interface_of
from pyinfra_wordpress_lb.deploys.plan import cluster, here
from pyinfra_wordpress_lb.deploys.settings import Setting

CONFIG = "/etc/keepalived/keepalived.conf"
STOPPING_FILE = "/run/wordpress-lb.nginx-stopping"
HANDOVER = "/usr/local/sbin/wordpress-lb-nginx-handover"
DRAIN_SECONDS = 10  # how long a stopping nginx may take to finish what it serves

SETTINGS = (
    Setting("lb_vip", None,
            "the site's shared IPv4 address, held by one `lb` host at a time (keepalived); "
            "needs two or more balancers in one subnet; default: none (no failover)"),
    Setting("lb_vip_interface", None,
            "interface that carries the shared address; default: the one with the "
            "balancer's private address"),
    Setting("lb_vrid", 51, "VRRP virtual router id (1-255), unique on the balancers' network"),
    Setting("lb_vrrp_interval", 0.3,
            "seconds between VRRP adverts; a balancer silent for 3 of them loses the address"),
    Setting("lb_vip_notify", None,
            "a script on this machine that keepalived runs (as root) on a balancer when it "
            "takes the shared address (`master`), gives it up (`backup`) or fails (`fault`): "
            "where a provider moves a floating IP through its API; default: none"),
    Setting("lb_failover", None,
            "`\"dns\"`: two or more balancers without a shared address, each answering on "
            "its own public address behind DNS round-robin; default: two or more balancers "
            "need `lb_vip`"),
)
NOTIFY = "/usr/local/sbin/wordpress-lb-vip-notify"
PACKAGES = ["keepalived", "curl", "nftables"]  # with a shared address


def priority(name: str) -> int:
    """Distinct priorities in inventory order (150, 140, ...): elections are
    deterministic; with nopreempt they only decide who starts as holder."""
    return 150 - 10 * cluster().lb.index(name)


@deploy("Shared address")
def shared_address() -> None:
    plan, node = cluster(), here()
    s = node.settings
    vip = plan.vip
    if not vip or "lb" not in node.roles:
        return
    me = node.address
    interface, network = interface_of(host, me)
    interface = s.lb_vip_interface or interface
    peers = [n.address for n in plan.group("lb") if n.address != me]

    # nftables: the handover holds new connections back while nginx drains.
    apt.packages(name="Install keepalived", packages=PACKAGES, no_recommends=True)
    script = files.template(
        name="Install the script that hands the address over when nginx stops",
        src=templates.path("sbin/wordpress-lb-nginx-handover.j2"), dest=HANDOVER,
        create_remote_dir=False,
        mode="755", jinja_env_kwargs=TIDY, vip=vip, stopping_file=STOPPING_FILE,
        ports=sorted({int(s.lb_port), int(s.lb_https_port)}),
        drain_seconds=DRAIN_SECONDS)
    nginx_dropin = files.template(
        name="Make nginx hand the address over when it stops",
        src=templates.path("systemd/nginx.service.d/wordpress-lb-address.conf.j2"),
        dest="/etc/systemd/system/nginx.service.d/wordpress-lb-address.conf", mode="644",
        handover=HANDOVER, drain_seconds=DRAIN_SECONDS)
    keepalived_dropin = files.template(
        name="Stop keepalived after nginx",
        src=templates.path("systemd/keepalived.service.d/wordpress-lb.conf.j2"),
        dest="/etc/systemd/system/keepalived.service.d/wordpress-lb.conf", mode="644")
    systemd.daemon_reload(
        name="Reload systemd for the nginx and keepalived drop-ins",
        _if=lambda: nginx_dropin.did_change() or keepalived_dropin.did_change())
    notify = s.lb_vip_notify
    if notify:
        files.put(name="Install the script keepalived runs when the address moves",
                  src=str(Path(notify).expanduser()), dest=NOTIFY, mode="755", user="root",
                  group="root")
    else:
        files.file(name="No script runs when the address moves", path=NOTIFY, present=False)
    config = files.template(
        name="Write the keepalived configuration",
        src=templates.path("keepalived/keepalived.conf.j2"), dest=CONFIG, mode="640",
        jinja_env_kwargs=TIDY,
        router_id=host.name, interface=interface, vrid=s.lb_vrid,
        priority=priority(host.name), interval=s.lb_vrrp_interval, src_ip=me, peers=peers,
        vip=vip, prefix=network.prefixlen, http_port=s.lb_port,
        health_path=balancer.HEALTH_PATH, stopping_file=STOPPING_FILE,
        notify=NOTIFY if notify else None)
    # Debian starts keepalived only once it has a configuration: start it, then reload.
    systemd.service(name="Keep keepalived running and enabled", service="keepalived.service",
                    running=True, enabled=True)
    systemd.service(name="Reload keepalived for its new configuration",
                    service="keepalived.service", reloaded=True,
                    _if=lambda: config.did_change() or script.did_change())
