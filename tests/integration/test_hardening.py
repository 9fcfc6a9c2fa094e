"""Hardening, on the shared split bed (lb1, lb2, web1, web2, db1; the shared address on
HTTPS): each host's firewall admits its roles' flows and nothing else, the edge limits
logins per client address, sets safe headers and hides versions; a firewall that would
lock the operator out is refused.

The bed's hosts files set admin_networks and firewall_trusted to this machine (the bed's
gateway), so SSH between the bed's hosts is what the firewall allows between roles."""

from __future__ import annotations

import shlex

import pytest

from tests.integration import wp
from tests.runner import pyinfra


@pytest.fixture(scope="module")
def split(beds):
    bed, _, _ = beds.deployed("split", "13")
    return bed


def reaches(bed, source: str, target: str, port: int) -> bool:
    """Whether `source` opens a TCP connection to `target`'s private address:port (3 s)."""
    address = bed.host(target).address if target != "vip" else bed.vip
    code, _ = bed.exec(source, f"timeout 3 bash -c '</dev/tcp/{address}/{port}'", check=False)
    return code == 0


# (from, to, port, allowed)
FLOWS = [
    ("web1", "db1", 3306, True),     # the database, from the web hosts
    ("web2", "db1", 3306, True),
    ("lb1", "db1", 3306, False),     # ...and from no one else
    ("lb1", "web1", 80, True),       # the backend, from the balancers
    ("lb2", "web2", 80, True),
    ("db1", "web1", 80, False),      # ...and from no one else
    ("web2", "web1", 80, False),
    ("web2", "web1", 22000, True),   # the mesh, from web peers
    ("db1", "web1", 22000, False),   # ...and from no one else
    ("lb1", "web2", 22000, False),
    ("web2", "web1", 22, False),     # no SSH between web hosts (the mesh is not SSH)
    ("db1", "web2", 22, True),       # backups read the shared content over SSH
    ("lb1", "web1", 22, False),      # SSH otherwise from admin_networks only
    ("web1", "db1", 22, False),
    ("db1", "lb1", 22, False),
    ("db1", "lb1", 443, True),       # the site, from anywhere
    ("web1", "vip", 443, True),
    ("db1", "lb2", 80, True),
]


@pytest.mark.parametrize("source,target,port,allowed", FLOWS,
                         ids=[f"{s}-{t}-{p}" for s, t, p, _ in FLOWS])
def test_each_host_admits_its_roles_flows_only(split, source, target, port, allowed):
    assert reaches(split, source, target, port) is allowed


def test_the_firewall_is_a_table_of_its_own_loaded_at_boot(split):
    for host in ("lb1", "web1", "db1"):
        _, tables = split.exec(host, "nft list tables")
        assert "table inet wordpress_lb" in tables
        assert split.exec(host, "systemctl is-enabled wordpress-lb-firewall.service")[1].strip() \
            == "enabled"
    # Another table (a container engine's, fail2ban's) survives a reload of ours.
    split.exec("web1", "nft add table inet someone_else && "
                       "nft -f /etc/wordpress-lb/firewall.nft && nft list table inet someone_else")
    split.exec("web1", "nft delete table inet someone_else")


def test_a_firewall_that_would_lock_the_operator_out_is_refused(split):
    # (The bed trusts this machine with every port: not for this run.)
    run = pyinfra(split.hosts_file, "--data", 'admin_networks=["198.51.100.0/24"]',
                  "--data", "firewall_trusted=[]")
    assert run.returncode != 0
    assert f"this deploy connects from {split.gateway}, which admin_networks leaves out" \
        in run.output
    assert "nothing was changed" in run.output and run.changed == 0
    assert reaches(split, "web2", "web1", 22000)  # and the bed is as it was


def login_status(bed, host: str, password: str) -> str:
    """A browser's login from `host` through the shared address: the POST's status."""
    base = shlex.quote(bed.site_url)
    code, out = bed.exec(host, (
        "jar=$(mktemp) && "
        f"curl -sk -c $jar -b $jar -o /dev/null {base}/wp-login.php && "
        f"curl -sk -c $jar -b $jar -o /dev/null -w '%{{http_code}}' "
        f"--data-urlencode log=admin --data-urlencode pwd={shlex.quote(password)} "
        f"-d wp-submit=Log+In -d testcookie=1 {base}/wp-login.php; rm -f $jar"))
    return out.strip()


def test_a_burst_of_wrong_logins_gets_429_while_another_client_logs_in(split):
    base = shlex.quote(split.site_url)
    _, out = split.exec("web1", (
        "for i in $(seq 40); do curl -sk -o /dev/null -w '%{http_code}\\n' "
        f"-d log=admin -d pwd=wrong-$i -d wp-submit=Log+In {base}/wp-login.php; done"))
    codes = out.split()
    assert len(codes) == 40
    assert codes.count("429") >= 25, codes  # login_burst (10) pass, then 10 a minute
    assert set(codes) <= {"200", "429"}, codes
    # Another address logs in as usual meanwhile.
    assert login_status(split, "db1", wp.secrets(split)["admin_password"]) == "302"


def test_xmlrpc_is_off_by_default(split):
    answer = wp.http(split).post(split.site_url + "/xmlrpc.php", timeout=30,
                                 data="<?xml version='1.0'?><methodCall><methodName>"
                                      "system.listMethods</methodName></methodCall>")
    assert answer.status_code == 403


def test_pages_carry_safe_headers_and_no_versions(split):
    site = wp.http(split)
    for path in ("/", "/wp-login.php", "/wp-includes/css/dashicons.min.css"):
        answer = site.get(split.site_url + path, timeout=30)
        assert answer.status_code == 200, path
        headers = answer.headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "SAMEORIGIN", path  # once, not twice
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
        assert headers["Server"] == "nginx", path
        assert "X-Powered-By" not in headers, path
    # Between balancer and backend the backend still names itself (the bed passes it on
    # with lb_show_backend; by default the balancers hide it).
    _, head = split.exec("lb1", f"curl -sI -H 'Host: {split.vip}' http://{split.host('web1').address}/")
    assert "x-served-by: web1" in head.lower()
    assert "server: nginx\r" in head.lower()


def test_well_known_is_served_and_other_dotfiles_are_not(split):
    for host in ("web1", "web2"):
        split.exec(host, "install -d /var/www/wordpress/shared/.well-known && echo "
                         "'Contact: mailto:security@pwlb.test' > "
                         "/var/www/wordpress/shared/.well-known/security.txt")
    site = wp.http(split)
    try:
        answer = site.get(split.site_url + "/.well-known/security.txt", timeout=30)
        assert answer.status_code == 200 and "Contact:" in answer.text
        for path in ("/.htaccess", "/.git/config", "/wp-content/.mesh-tmp/x", "/wp-config.php"):
            assert site.get(split.site_url + path, timeout=30).status_code in (403, 404), path
    finally:
        for host in ("web1", "web2"):
            split.exec(host, "rm -rf /var/www/wordpress/shared/.well-known")


def test_security_updates_are_installed_automatically(split):
    for host in ("lb1", "web1", "db1"):
        split.exec(host, "dpkg -s unattended-upgrades >/dev/null && "
                         "grep -q 'Unattended-Upgrade \"1\"' /etc/apt/apt.conf.d/20auto-upgrades")
