"""A firewall on every host (nftables, table `inet wordpress_lb` only): default deny
inbound, and per role only the flows the cluster needs.

- every host: loopback, replies to its own connections, ICMP, SSH from `admin_networks`,
  everything from `firewall_trusted` (a monitoring or bastion host);
- balancers: the public ports from anywhere; VRRP from the other balancers;
- web hosts: the backend port from the balancers; the sync mesh's port from the other
  web hosts; SSH from the database host (backups read the shared content);
- database host: the database port from the web hosts.

The rules live in /etc/wordpress-lb/firewall.nft, loaded at boot by
wordpress-lb-firewall.service and by the deploy when they change: one transaction that
replaces this table, never the whole ruleset (a container engine's or fail2ban's tables
stay). Connections already open survive a change, and validate.py refuses an
`admin_networks` that leaves out the address the deploy itself connects from.
`firewall = false` leaves every host open (and removes the table).
"""

from __future__ import annotations

import ipaddress

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from pyinfra_wordpress_lb import templates
from pyinfra_wordpress_lb.deploys._util import host_fact, renamed
from pyinfra_wordpress_lb.deploys.plan import Cluster, Node, cluster, here
from pyinfra_wordpress_lb.deploys.settings import Setting
from pyinfra_wordpress_lb.facts.nftables import Sources
from pyinfra_wordpress_lb.operations import nftables

FAMILY, TABLE = "inet", "wordpress_lb"
RULES = "/etc/wordpress-lb/firewall.nft"
UNIT = "wordpress-lb-firewall.service"
PACKAGES = ["nftables"]

SETTINGS = (
    Setting("firewall", True,
            "nftables firewall on every host (default deny inbound, per-role flows); "
            "`false` leaves hosts open"),
    Setting("admin_networks", ("0.0.0.0/0", "::/0"),
            "addresses (networks) allowed to reach SSH for administration; the deploy "
            "refuses a list that leaves out the address it connects from"),
    Setting("firewall_trusted", (),
            "addresses (networks) allowed to reach every port of every host, e.g. a "
            "monitoring or bastion host; default: none"),
)


def _saddr(networks) -> list[str]:
    """nft source matches for a list of networks: one for IPv4, one for IPv6; `[""]`
    (no match: anywhere) when the list holds a whole family's space for both."""
    parsed = [ipaddress.ip_network(str(n), strict=False) for n in networks]
    v4 = sorted({str(n) for n in parsed if n.version == 4})
    v6 = sorted({str(n) for n in parsed if n.version == 6})
    if "0.0.0.0/0" in v4 and "::/0" in v6:
        return [""]
    matches = []
    if v4:
        matches.append(f"ip saddr {{ {', '.join(v4)} }} ")
    if v6:
        matches.append(f"ip6 saddr {{ {', '.join(v6)} }} ")
    return matches


def mesh_ports(data) -> list[int]:
    """Each site's mesh port (`mesh_port` + its slot; deploys/sync.py)."""
    from pyinfra_wordpress_lb.deploys.sync import Mesh

    return sorted(int(data.mesh_port) + Mesh.of(site).slot for site in cluster().sites)


def _ports(ports: list[int]) -> str:
    return str(ports[0]) if len(ports) == 1 else "{ " + ", ".join(map(str, ports)) + " }"


def _cluster(sources, rest: str, keep: dict | None) -> str:
    """A rule admitting cluster hosts (and, with `keep`, those the host admits now)."""
    addresses = sorted(set(sources) | set((keep or {}).get(rest, [])),
                       key=ipaddress.ip_address)
    return f'ip saddr {{ {", ".join(addresses)} }} {rest} comment "cluster"'


def rules(plan: Cluster, node: Node, keep: dict | None = None) -> list[tuple[str, list[str]]]:
    """What a host admits beyond loopback, replies and ICMP: (why, [nft rules]). `keep`:
    the cluster addresses its rules admit now ({rule: [address]}), admitted still."""
    data = node.settings
    me = node.address
    lbs, webs, dbs = plan.addresses("lb"), plan.addresses("web"), plan.addresses("db")
    ssh_port = node.ssh_port
    found: list[tuple[str, list[str]]] = []
    found.append(("SSH for administration (admin_networks)",
                  [f"{m}tcp dport {ssh_port} accept" for m in _saddr(data.admin_networks)]))
    if data.firewall_trusted:
        found.append(("trusted hosts (firewall_trusted): everything",
                      [f"{m}accept" for m in _saddr(data.firewall_trusted)]))
    if "lb" in node.roles:
        ports = sorted({int(data.lb_port), int(data.lb_https_port)})
        found.append(("the site, from anywhere",
                      [f"tcp dport {{ {', '.join(map(str, ports))} }} accept"]))
        peers = [a for a in lbs if a != me]
        if plan.vip and peers:
            found.append(("VRRP from the other balancers (the shared address)",
                          [_cluster(peers, "ip protocol 112 accept", keep)]))
    if "web" in node.roles:
        if lbs:
            found.append(("the backend, from the balancers",
                          [_cluster(lbs, f"tcp dport {node.backend_port} accept", keep)]))
        peers = [a for a in webs if a != me]
        if peers:
            found.append(("the sync mesh, from the other web hosts",
                          [_cluster(peers, f"tcp dport {_ports(mesh_ports(data))} accept",
                                    keep)]))
        readers = [plan.node(plan.backup_host).address] if plan.backup_host else []
        readers = [a for a in readers if a != me]
        if readers:
            found.append(("SSH from the database host (backups)",
                          [_cluster(readers, f"tcp dport {ssh_port} accept", keep)]))
    if "db" in node.roles and webs:
        found.append(("the database, from the web hosts",
                      [_cluster(webs, f"tcp dport {int(data.db_port)} accept", keep)]))
    galera = plan.galera
    if galera and ("db" in node.roles or node.name == galera.arbitrator):
        from pyinfra_wordpress_lb.deploys.database import GALERA_PORTS

        voters = list(dbs) + ([plan.node(galera.arbitrator).address]
                              if galera.arbitrator else [])
        peers = [a for a in voters if a != me]
        ports = GALERA_PORTS if "db" in node.roles else {"tcp": (4567,), "udp": (4567,)}
        if peers:
            found.append(("Galera replication, from the other cluster members", [
                _cluster(peers, f"{proto} dport {{ {', '.join(map(str, numbers))} }} accept",
                         keep) for proto, numbers in ports.items()]))
        if "db" in node.roles and webs:
            found.append(("the database check, from the web hosts' proxies",
                          [_cluster(webs, f"tcp dport {int(data.db_check_port)} accept",
                                    keep)]))
    return found


def _rules_file(name: str, keep: dict | None):
    return files.template(name=name,
                          src=templates.path("nftables/firewall.nft.j2"), dest=RULES,
                          create_remote_dir=False, mode="600",
                          jinja_env_kwargs={"trim_blocks": True, "lstrip_blocks": True},
                          family=FAMILY, table=TABLE, host_name=host.name,
                          roles=sorted(here().roles),
                          rules=rules(cluster(), here(), keep=keep))


@deploy("Firewall")
def firewall() -> None:
    if not here().settings.firewall:
        systemd.service(name="Do not load the firewall at boot (firewall = false)",
                        service=UNIT, enabled=False)
        nftables.table_absent(name="Remove the firewall's rules (firewall = false)",
                              family=FAMILY, table=TABLE, path=RULES)
        return
    apt.packages(name="Install nftables", packages=PACKAGES, no_recommends=True)
    files.directory(name="Create /etc/wordpress-lb", path="/etc/wordpress-lb", mode="755")
    # Hosts that left the inventory stay admitted until the balancers stop sending them
    # requests (close_to_departed_hosts, later in the run): their requests in flight finish.
    _rules_file("Write the firewall rules", keep=host_fact(host, Sources, path=RULES))
    unit = files.template(name=f"Install {UNIT}",
                          src=templates.path(f"systemd/{UNIT}.j2"),
                          dest=f"/etc/systemd/system/{UNIT}", create_remote_dir=False, mode="644",
                          rules=RULES, family=FAMILY, table=TABLE)
    systemd.daemon_reload(name="Reload systemd for the firewall's unit", _if=unit.did_change)
    systemd.service(name="Load the firewall at boot", service=UNIT, running=None, enabled=True)
    nftables.table_loaded(name="Load the firewall rules when they changed",
                          family=FAMILY, table=TABLE, path=RULES)


@deploy("Firewall")
def close_to_departed_hosts() -> None:
    """Once no balancer sends requests to hosts that left the inventory: the firewall
    admits the current hosts only."""
    if not here().settings.firewall or not host_fact(host, Sources, path=RULES):
        return
    _rules_file("Admit only the current hosts through the firewall", keep=None)
    nftables.table_loaded(name="Load the firewall rules when departed hosts went",
                          family=FAMILY, table=TABLE, path=RULES)


prune_departed = renamed(close_to_departed_hosts, "prune_departed")  # the name before 0.2
