"""The whole deploy.py composed against pyinfra's @fake connector: no hosts needed.

Catches ordering and data mistakes in seconds: which operations each host of each
topology gets, in which order, and which commands a first run would send.
"""

from __future__ import annotations

import json
import re

import pytest

from pyinfra_wordpress_lb.deploys import sync
from tests.fakedeploy import FAKE_HOST, plan

TOPOLOGIES = {
    "split": {"lb": ["lb1"], "web": ["web1", "web2"], "db": ["db1"]},
    "seed": {"lb": ["hosta"], "web": ["hosta", "hostb"], "db": ["hosta"]},
}
COMMON = [
    "Common base | Refresh the apt cache when older than apt_cache_time",
    "Common base | Install the base packages",
    "Common base | Install Debian's security updates every day",
    "Common base | Add the wordpress system group",
    "Common base | Add the wordpress system user",
]
INSTALL = "WordPress install | Install WordPress unattended (once per database)"


def names(ops):
    return [name for name, _ in ops]


def commands(ops, name):
    return " ".join(c for n, cs in ops if n == name for c in cs)


@pytest.fixture
def secrets_file(tmp_path):
    return tmp_path / "hosts.secrets.json"


@pytest.fixture(scope="module")
def split_plan(tmp_path_factory):
    """The default split plan, made once for the tests that only read it."""
    return plan(TOPOLOGIES["split"], tmp_path_factory.mktemp("split") / "hosts.secrets.json")


# A balancer's first steps, before anything changes on any host (deploys/balancer.py).
BACKUPS_FIRST = ["Balancer | Give the backends never-rested backups before they change",
                 "Balancer | Reload nginx: the backends' backups"]


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_every_host_gets_the_common_base_first(topology, secrets_file):
    result = plan(TOPOLOGIES[topology], secrets_file)
    for host, ops in result.items():
        first = BACKUPS_FIRST if host in TOPOLOGIES[topology]["lb"] else []
        assert names(ops)[:len(first) + len(COMMON)] == first + COMMON, host
    # One step for every balancer, before any host's first step of its own.
    assert result.order[:len(BACKUPS_FIRST)] == BACKUPS_FIRST


def test_the_first_apt_run_brings_the_base_the_updater_and_the_firewall(split_plan):
    for host, ops in split_plan.items():
        installed = commands(ops, "Common base | Install the base packages")
        for package in ("ca-certificates", "curl", "rsync", "unattended-upgrades", "nftables"):
            assert package in installed, (host, package)


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_tiers_go_to_their_groups_only(topology, secrets_file):
    groups = TOPOLOGIES[topology]
    result = plan(groups, secrets_file)
    for host, ops in result.items():
        tiers = {name.split(" | ")[0] for name in names(ops)}
        assert ("Database" in tiers) == (host in groups["db"]), host
        assert ("Web" in tiers) == (host in groups["web"]), host
        assert ("WordPress" in tiers) == (host in groups["web"]), host
        # The unattended install runs once, from the first web host, after its web tier.
        if host == sorted(groups["web"])[0]:
            assert INSTALL in names(ops)
            assert all(not n.startswith(("Web |", "WordPress |"))
                       for n in names(ops)[names(ops).index(INSTALL):])
        else:
            assert INSTALL not in names(ops)


def test_one_database_account_per_web_host_address(split_plan):
    ops = split_plan["db1"]
    # web1 and web2 are 10.0.0.11 and .12 (lb1 is .10, db1 .13).
    accounts = [n for n in names(ops) if n.startswith("Database | Add database account")]
    assert accounts == [
        "Database | Add database account wordpress@10.0.0.11",
        "Database | Add database account wordpress@10.0.0.12",
    ]
    grants = commands(ops, "Database | Grant wordpress@10.0.0.11 all on wordpress only")
    assert "GRANT ALL PRIVILEGES ON `wordpress`.* TO " in grants and "10.0.0.11" in grants
    bind = [n for n in names(ops) if "Bind MariaDB" in n]
    assert bind == ["Database | Bind MariaDB to the private address"]


def test_secrets_are_generated_once_and_never_in_commands(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file)
    stored = json.loads(secrets_file.read_text())
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
    assert {"db_password", "admin_password", "wp_auth_key", "wp_nonce_salt"} <= set(stored)
    everything = json.dumps(result)
    for name, value in stored.items():
        assert value not in everything, f"secret {name} appears in an operation"
    # A second plan reads the same file: stable values.
    plan(TOPOLOGIES["split"], secrets_file)
    assert json.loads(secrets_file.read_text()) == stored


def test_release_is_unpacked_beside_then_switched_then_served(split_plan):
    ops = split_plan["web2"]
    order = names(ops)
    expected = [
        "WordPress | Download the WordPress 7.1.0 archive",
        "WordPress | Unpack the verified WordPress 7.1.0 beside the served release",
        "WordPress | Write wp-config.php (secrets; never shown)",
        "WordPress | Serve WordPress 7.1.0 (one atomic switch)",
        "WordPress | Reload PHP-FPM gracefully for the new release",
        "Web | Install nginx and PHP-FPM",
        "Web | Run the wordpress PHP-FPM pool with OPcache",
        "Web | Write the nginx backend vhost",
        "Web | Reload nginx when what it reads changed",
    ]
    positions = [order.index(name) for name in expected]
    assert positions == sorted(positions)
    download = commands(ops, "WordPress | Download the WordPress 7.1.0 archive")
    assert "https://wordpress.org/wordpress-7.1.0.tar.gz" in download
    release = commands(ops, "WordPress | Unpack the verified WordPress 7.1.0 beside the served release")
    assert "sha1sum --check" in release and "e0ca593bc062f7a8c5a956ca44aff7375b0841e0" in release
    assert "/var/www/wordpress/releases/7.1.0-e0ca593bc062.tmp" in release
    switch = commands(ops, "WordPress | Serve WordPress 7.1.0 (one atomic switch)")
    assert "mv -T /var/www/wordpress/current.new /var/www/wordpress/current" in switch
    vhost = upload(ops, "Web | Write the nginx backend vhost")
    assert "root /var/www/wordpress/current;" in vhost
    assert "fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;" in vhost
    assert "root /var/www/wordpress/shared;" in vhost  # wp-content, from the shared tree


def test_local_archive_is_uploaded_instead(secrets_file, tmp_path):
    archive = tmp_path / "wordpress.tar.gz"
    archive.write_bytes(b"not really")
    ops = plan(TOPOLOGIES["split"], secrets_file,
               data={"wordpress_archive": str(archive), "wordpress_version": "6.8.12"})["web1"]
    assert "WordPress | Upload the WordPress 6.8.12 archive" in names(ops)
    assert not any("Download" in n for n in names(ops))


def test_data_overrides_reach_the_operations(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file,
                  data={"wordpress_user": "wpsite", "base_packages": ["htop"]})
    ops = result["db1"]
    assert "htop" in commands(ops, "Common base | Install the base packages")
    assert "wpsite" in commands(ops, "Common base | Add the wpsite system user")
    assert "--chown=wpsite:wpsite" in commands(
        result["web1"], "WordPress | Unpack the verified WordPress 7.1.0 beside the served release")


def test_first_run_commands_of_the_common_base(split_plan):
    ops = split_plan["web1"]
    assert "apt-get update" in commands(ops, COMMON[0])
    install = commands(ops, COMMON[1])
    for package in ("ca-certificates", "curl", "python3", "rsync"):
        assert package in install
    assert "--no-install-recommends" in install
    user = commands(ops, COMMON[-1])
    assert "useradd" in user and " -r " in user and "-d /var/lib/wordpress" in user


def device(secrets_file, name: str) -> str:
    """The syncthing device ID of a host of a plan (derived from the cluster's secret)."""
    secret = json.loads(secrets_file.read_text())["mesh_secret"]
    return sync.device_id(sync._identity(secret, name)[1])


def test_sync_mesh_on_web_hosts_with_their_peers(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file, show_secrets=True)
    for host in ("lb1", "db1"):
        assert not any(n.startswith("Sync mesh") for n in names(result[host])), host
    ops = result["web1"]
    # The install comes after the mesh, so WordPress's first files reach every peer.
    assert names(ops).index("Sync mesh | Keep the mesh running and enabled") < names(ops).index(INSTALL)
    hidden = plan(TOPOLOGIES["split"], secrets_file)["web1"]
    key = commands(hidden, "Sync mesh | Install this host's mesh identity")
    assert "install -m 600 -o wordpress -g wordpress /dev/null /var/lib/wordpress/syncthing/key.pem" in key
    assert "PRIVATE KEY" not in key
    config = commands(hidden, "Sync mesh | Write the mesh configuration")
    assert "install -m 640 -o root -g wordpress" in config and "apikey" not in config
    configs = {web: commands(result[web], "Sync mesh | Write the mesh configuration")
               for web in ("web1", "web2")}
    ids = {web: device(secrets_file, f"@fake/{web}") for web in ("web1", "web2")}
    for web, config in configs.items():
        for other in ("web1", "web2"):
            assert f'<device id="{ids[other]}" name="@fake/{other}"' in config
        assert "<maxConflicts>0</maxConflicts>" in config
        assert "<globalAnnounceEnabled>false</globalAnnounceEnabled>" in config
        assert "<relaysEnabled>false</relaysEnabled>" in config
        assert "<address>127.0.0.1:8384</address>" in config
    assert "<listenAddress>tcp://10.0.0.11:22000</listenAddress>" in configs["web1"]
    assert "<address>tcp://10.0.0.12:22000</address>" in configs["web1"]
    # Each host its own API key.
    keys = {web: re.search(r"<apikey>(\w+)</apikey>", c).group(1) for web, c in configs.items()}
    assert keys["web1"] != keys["web2"] and len(keys["web1"]) == 32
    # Each change is scanned at once (syncthing's watcher, 1 s, is the fallback), by a
    # watcher that lives and dies with the mesh.
    assert 'fsWatcherDelayS="1"' in configs["web1"]
    watch = upload(ops, "Sync mesh | Install the unit that sends each change at once")
    assert "ExecStart=/usr/local/sbin/wordpress-lb-mesh watch" in watch
    assert "User=wordpress" in watch and "PartOf=syncthing-wordpress.service" in watch
    assert "WantedBy=syncthing-wordpress.service" in watch
    tool = upload(ops, "Sync mesh | Install the mesh's status, catch-up and watch tool")
    assert 'ROOT = "/var/www/wordpress/shared/wp-content"' in tool
    assert 'EXCLUDES = ["/cache", "/upgrade", "/upgrade-temp-backup", "*.swp", "*~"]' in tool
    assert "Sync mesh | Keep the watcher running and enabled" in names(ops)


def test_a_lone_web_host_runs_no_mesh(secrets_file):
    ops = plan({"lb": ["a"], "web": ["a"], "db": ["a"]}, secrets_file)["a"]
    assert "Sync mesh | Stop the mesh: there is no other web host" in names(ops)
    assert "Sync mesh | Keep the mesh running and enabled" not in names(ops)
    assert "Sync mesh | Stop the watcher: there is no other web host" in names(ops)


def test_the_mesh_watcher_can_be_turned_off(secrets_file):
    ops = plan(TOPOLOGIES["split"], secrets_file, data={"mesh_watch": False})["web1"]
    assert "Sync mesh | Stop the watcher (mesh_watch is off)" in names(ops)
    assert "Sync mesh | Keep the watcher running and enabled" not in names(ops)
    assert "Sync mesh | Keep the mesh running and enabled" in names(ops)


def upload(ops, name):
    text = commands(ops, name)
    assert "upload " in text, (name, text[:200])
    return text


def test_balancer_upstream_has_every_backend(split_plan):
    ops = split_plan["lb1"]
    conf = upload(ops, "Balancer | Write the balancer vhost")
    assert "least_conn;" in conf
    assert "server 10.0.0.11:80 max_fails=1 fail_timeout=10s;" in conf
    assert "server 10.0.0.12:80 max_fails=1 fail_timeout=10s;" in conf
    # Tried when every backend rests at once: the site is back as soon as one answers.
    assert "server 10.0.0.11:80 max_fails=0 backup;" in conf
    assert "server 10.0.0.12:80 max_fails=0 backup;" in conf
    assert "keepalive 16;" in conf and "proxy_http_version 1.1;" in conf
    assert 'proxy_set_header Connection "";' in conf
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert "proxy_next_upstream error timeout http_502 http_503 http_504;" in conf
    assert "non_idempotent" not in conf
    assert "client_max_body_size 64M;" in conf
    assert "Verify | The site answers through this balancer" in names(ops)


def test_colocated_backend_moves_off_the_public_port(secrets_file):
    result = plan(TOPOLOGIES["seed"], secrets_file)
    lb_conf = upload(result["hosta"], "Balancer | Write the balancer vhost")
    assert "listen 80 default_server;" in lb_conf
    assert "server 10.0.0.10:90 " in lb_conf and "server 10.0.0.11:80 " in lb_conf
    assert "listen 90 default_server;" in upload(result["hosta"], "Web | Write the nginx backend vhost")
    assert "listen 80 default_server;" in upload(result["hostb"], "Web | Write the nginx backend vhost")
    # The co-located host trusts forwarded headers from itself, the balancer.
    assert "set_real_ip_from 10.0.0.10;" in upload(result["hostb"], "Web | Write the nginx backend vhost")


def test_balancer_settings_baseline_and_methods(secrets_file):
    ops = plan(TOPOLOGIES["split"], secrets_file,
               data={"lb_method": "round_robin", "lb_keepalive": 0, "lb_next_upstream": ""})["lb1"]
    conf = upload(ops, "Balancer | Write the balancer vhost")
    assert "least_conn" not in conf and "ip_hash" not in conf
    assert "keepalive 16" not in conf and "proxy_http_version" not in conf
    assert "proxy_next_upstream off;" in conf
    with pytest.raises(Exception) as failure:
        plan(TOPOLOGIES["split"], secrets_file, data={"lb_method": "random"})
    assert "lb_method 'random'" in repr(getattr(failure.value, "exception", failure.value))


def test_backends_name_themselves_unless_turned_off(secrets_file):
    conf = upload(plan(TOPOLOGIES["split"], secrets_file)["web1"], "Web | Write the nginx backend vhost")
    assert conf.count("add_header X-Served-By $hostname always;") == 3
    conf = upload(plan(TOPOLOGIES["split"], secrets_file, data={"served_by_header": ""})["web1"],
                  "Web | Write the nginx backend vhost")
    assert "X-Served-By" not in conf


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_barriers_make_every_host_wait(topology, secrets_file):
    """pyinfra runs hosts' operation lists side by side; the barriers are shared steps."""
    result = plan(TOPOLOGIES[topology], secrets_file)
    order = result.order
    barriers = ["Wait until every host has its tiers", "Wait until every balancer serves",
                "Wait until the site is deployed"]
    tiers, serving, deployed = (order.index(b) for b in barriers)
    for host, ops in result.items():
        # Each barrier is one step for all hosts, and every host passes through it.
        for barrier in barriers:
            assert barrier in names(ops), host
    for step in order[:tiers]:
        assert step in BACKUPS_FIRST or step.split(" | ")[0] in ("Common base", "Firewall", "Packages", "Database",
                                        "Backups", "WordPress", "Web", "Sync mesh", "WP-Cron",
                                        "Trust"), step
    # Every host installs its roles' packages in one shared step, before any tier's own.
    install = "Packages | Install what this host's roles need (every host at once)"
    assert order.count(install) == 1
    assert all(install in names(ops) for ops in result.values())
    first_tier = min(i for i, step in enumerate(order) if step not in BACKUPS_FIRST
                     and step.split(" | ")[0] not in ("Common base", "Firewall", "Packages"))
    assert order.index(install) < first_tier
    for step in order[tiers + 1:serving]:
        assert step.split(" | ")[0] in ("WordPress install", "Sync mesh", "Balancer",
                                        "Shared address"), step
    for step in order[serving + 1:deployed]:
        assert step.split(" | ")[0] in ("ACME certificate", "Balancer", "Database",
                                        "Sync mesh", "Firewall"), step
    assert all(step.startswith("Verify |") for step in order[deployed + 1:])
    for barrier in barriers:
        assert order.count(barrier) == 1


def test_addresses_reported_by_the_hosts_are_each_their_own(secrets_file):
    """Without `private_address` data, each host's own report is used (asked once)."""
    def reports(address):
        return {"private_address": None, "fake_responses": {
            **FAKE_HOST,
            "ip -4 -o addr": f"2: eth0    inet {address}/24 brd 10.9.0.255 scope global eth0"}}

    hosts = {"lb1": "10.9.0.5", "web1": "10.9.0.6", "web2": "10.9.0.7", "db1": "10.9.0.8"}
    result = plan(TOPOLOGIES["split"], secrets_file,
                  host_data={name: reports(address) for name, address in hosts.items()})
    rules = commands(result["web1"], "Firewall | Write the firewall rules")
    assert 'ip saddr { 10.9.0.7 } tcp dport 22000 accept comment "cluster"' in rules
    rules = commands(result["web2"], "Firewall | Write the firewall rules")
    assert 'ip saddr { 10.9.0.6 } tcp dport 22000 accept comment "cluster"' in rules
    lb = upload(result["lb1"], "Balancer | Write the balancer vhost")
    assert "server 10.9.0.6:80 " in lb and "server 10.9.0.7:80 " in lb


def test_lb_backends_puts_the_balancer_in_front_of_given_servers(secrets_file):
    given = ["192.0.2.21:8080", "192.0.2.22:8080"]
    ops = plan(TOPOLOGIES["split"], secrets_file, host_data={"lb1": {"lb_backends": given}})["lb1"]
    vhost = commands(ops, "Balancer | Write the balancer vhost")
    for backend in given:
        assert f"server {backend} " in vhost
    assert "10.0.0.11" not in vhost and "10.0.0.12" not in vhost


# TLS at the balancers and the shared address.

HA = {"lb": ["lb1", "lb2"], "web": ["web1", "web2"], "db": ["db1"]}


def test_self_signed_by_default_with_the_ca_beside_the_hosts_file(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file, data={"site_url": "https://www.example.com"})
    conf = upload(result["lb1"], "Balancer | Write the balancer vhost")
    assert "listen 443 ssl default_server;" in conf and "http2 on;" in conf
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf and "ssl_session_tickets off;" in conf
    assert "return 301 https://www.example.com$request_uri;" in conf
    assert "proxy_set_header X-Forwarded-Proto https;" in conf
    assert "Strict-Transport-Security" not in conf  # off until asked for
    ca = secrets_file.with_name("hosts.ca.crt")
    assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    chain = commands(result["lb1"], "Balancer | Install the site's certificate and key (key never shown)")
    assert "PRIVATE KEY" not in chain
    stored = json.loads(secrets_file.read_text())
    assert stored["ca_tls_cert"] == ca.read_text()
    # The cluster's hosts that talk HTTPS trust the CA; the database host does not need to.
    for host in ("lb1", "web1", "web2"):
        assert "update-ca-certificates" in commands(result[host], "Trust | Trust the site certificate's CA")
    assert not any(n.startswith("Trust |") for n in names(result["db1"]))
    # WordPress calls its own URL through the balancer, over the private network.
    assert "wordpress-lb.php" in commands(
        result["web1"], "WordPress | Install the must-use plugin for WordPress behind the balancers")


def test_self_signed_certificate_is_stable_and_covers_the_site(secrets_file):
    from cryptography import x509

    plan(TOPOLOGIES["split"], secrets_file, data={"site_url": "https://www.example.com"})
    first = json.loads(secrets_file.read_text())
    plan(TOPOLOGIES["split"], secrets_file, data={"site_url": "https://www.example.com"})
    assert json.loads(secrets_file.read_text()) == first  # re-runs change nothing
    cert = x509.load_pem_x509_certificate(first["site_tls_cert"].encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["www.example.com"]
    ca = x509.load_pem_x509_certificate(first["ca_tls_cert"].encode())
    cert.verify_directly_issued_by(ca)
    # Another name: a new certificate from the same CA.
    plan(TOPOLOGIES["split"], secrets_file, data={"site_url": "https://blog.example.com"})
    again = json.loads(secrets_file.read_text())
    assert again["ca_tls_cert"] == first["ca_tls_cert"]
    assert again["site_tls_cert"] != first["site_tls_cert"]


def test_hsts_when_asked(secrets_file):
    conf = upload(plan(TOPOLOGIES["split"], secrets_file, data={"hsts_max_age": 31536000})["lb1"],
                  "Balancer | Write the balancer vhost")
    assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in conf


def test_hsts_by_default_only_with_a_publicly_trusted_certificate(secrets_file, split_plan):
    # self-signed (the default): browsers must not remember a certificate they do not trust
    assert "Strict-Transport-Security" not in upload(split_plan["lb1"],
                                                     "Balancer | Write the balancer vhost")
    acme = {"tls": "acme", "site_url": "https://www.example.com",
            "acme_email": "webmaster@example.com"}
    conf = upload(plan(TOPOLOGIES["split"], secrets_file, data=acme)["lb1"],
                  "Balancer | Write the balancer vhost")
    assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in conf
    off = upload(plan(TOPOLOGIES["split"], secrets_file, data={**acme, "hsts_max_age": 0})["lb1"],
                 "Balancer | Write the balancer vhost")
    assert "Strict-Transport-Security" not in off


def test_the_sites_other_names_redirect_to_its_own(secrets_file):
    data = {"site_url": "https://www.example.com", "site_aliases": ["example.com", "example.org"]}
    result = plan(TOPOLOGIES["split"], secrets_file, data=data)
    conf = upload(result["lb1"], "Balancer | Write the balancer vhost")
    alias = conf[conf.index("server_name example.com example.org;") - 200:]
    assert "listen 443 ssl;" in alias and "ssl_certificate /etc/wordpress-lb/tls/site.crt;" in alias
    assert "return 301 https://www.example.com$request_uri;" in alias
    assert "proxy_pass" not in alias  # the alias never reaches WordPress
    # The certificate covers them (self-signed: and the shared address).
    from cryptography import x509
    cert = x509.load_pem_x509_certificate(
        json.loads(secrets_file.read_text())["site_tls_cert"].encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["www.example.com", "example.com",
                                                        "example.org"]
    # Plain HTTP: the same redirect on the public port.
    off = upload(plan(TOPOLOGIES["split"], secrets_file, data={
        **data, "tls": "off", "site_url": "http://www.example.com"})["lb1"],
        "Balancer | Write the balancer vhost")
    alias = off[off.index("server_name example.com example.org;") - 60:]
    assert "listen 80;" in alias and "return 301 http://www.example.com$request_uri;" in alias


def test_tls_off_is_plain_http(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file,
                  data={"tls": "off", "site_url": "http://www.example.com"})
    conf = upload(result["lb1"], "Balancer | Write the balancer vhost")
    assert "443" not in conf and "return 301" not in conf
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in conf
    assert not any("certificate" in n for n in names(result["lb1"]))
    assert "Trust | Trust no private CA" in names(result["web1"])


def test_debian_12_balancer_uses_the_old_http2_syntax(secrets_file):
    bookworm = [line.replace("13", "12").replace("trixie", "bookworm")
                for line in FAKE_HOST["*-release"]]
    conf = upload(plan(TOPOLOGIES["split"], secrets_file,
                       fake_responses={"*-release": bookworm})["lb1"],
                  "Balancer | Write the balancer vhost")
    assert "listen 443 ssl http2 default_server;" in conf and "http2 on;" not in conf


def test_acme_mode_issues_after_every_balancer_serves(secrets_file):
    data = {"tls": "acme", "site_url": "https://www.example.com",
            "acme_email": "webmaster@example.com", "lb_vip": "10.0.0.100"}
    result = plan(HA, secrets_file, data=data)
    lb1 = names(result["lb1"])
    issue = "ACME certificate | Get the site's certificate from https://acme-v02.api.letsencrypt.org/directory"
    assert lb1.index("Balancer | Put a placeholder certificate in place until ACME delivers") \
        < lb1.index("Wait until every balancer serves") < lb1.index(issue)
    certbot = commands(result["lb1"], issue)
    assert "certbot certonly --non-interactive" in certbot and "--webroot" in certbot
    assert "-d www.example.com" in certbot
    assert "--deploy-hook /usr/local/sbin/wordpress-lb-nginx-reload" in certbot
    conf = upload(result["lb1"], "Balancer | Write the balancer vhost")
    # A token this balancer does not hold is asked from the other one.
    assert "server 10.0.0.11:80 max_fails=0;" in conf and "try_files $uri @acme_peers;" in conf
    assert "location ^~ /.well-known/acme-challenge/" in conf
    assert "server 10.0.0.10:80 max_fails=0;" in upload(result["lb2"], "Balancer | Write the balancer vhost")
    assert "server = https://acme-v02.api.letsencrypt.org/directory" in upload(
        result["lb1"], "Balancer | Write certbot's settings (server, contact)")
    # No balancer's private data leaves it: nothing certbot makes passes the controller.
    assert not any("letsencrypt/live" in c and "upload" in c for _, cs in result["lb1"] for c in cs)


def test_two_balancers_share_an_address(secrets_file):
    result = plan(HA, secrets_file, data={"lb_vip": "10.0.0.100"})
    lb1 = upload(result["lb1"], "Shared address | Write the keepalived configuration")
    lb2 = upload(result["lb2"], "Shared address | Write the keepalived configuration")
    for conf in (lb1, lb2):
        assert "state BACKUP" in conf and "nopreempt" in conf and "version 3" in conf
        assert "10.0.0.100/24 dev eth0" in conf and "check_unicast_src" in conf
        assert "advert_int 0.3" in conf and "virtual_router_id 51" in conf
    assert "priority 150" in lb1 and "unicast_src_ip 10.0.0.10" in lb1
    assert "priority 140" in lb2 and "unicast_src_ip 10.0.0.11" in lb2
    assert "unicast_peer {\n        10.0.0.11\n    }" in lb1
    dropin = upload(result["lb1"], "Shared address | Make nginx hand the address over when it stops")
    assert "ExecStop=\nExecStop=-/usr/local/sbin/wordpress-lb-nginx-handover stop" in dropin
    # The site's default URL is the shared address; the certificate covers it.
    assert "return 301 https://10.0.0.100$request_uri;" in upload(
        result["lb1"], "Balancer | Write the balancer vhost")
    # No shared address (DNS round-robin over the balancers, said so), no keepalived.
    single = plan(HA, secrets_file, data={"lb_failover": "dns"})
    assert not any(n.startswith("Shared address |") for n in names(single["lb1"]))


# Releases, and web hosts joining, draining, leaving.

SERVING = {"ls -1t releases": ["current=6.8.12-acf9b39c5f55",
                               "release=6.8.12-acf9b39c5f55 6.8.12 sha256:acf9"]}
OLD_LAYOUT = {"ls -1t releases": ["current=", "legacy=yes"]}


def test_a_drained_web_host_gets_no_new_requests(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file, host_data={"web1": {"drain": True}})
    conf = upload(result["lb1"], "Balancer | Write the balancer vhost")
    assert "server 10.0.0.11:80 max_fails=1 fail_timeout=10s down;" in conf
    assert "server 10.0.0.12:80 max_fails=1 fail_timeout=10s;" in conf
    assert "# drained: no new requests (those it serves finish)." in conf


def test_a_new_web_host_is_seeded_verified_then_admitted(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file,
                  host_data={"web1": {"fake_responses": SERVING}})
    lb1 = names(result["lb1"])
    first = upload(result["lb1"], "Balancer | Write the balancer vhost")
    assert "server 10.0.0.12:80 max_fails=1 fail_timeout=10s down;" in first
    assert "# new, not verified yet" in first
    check = "Balancer | New web host @fake/web2 serves the site"
    admitted = "Balancer | Write the balancer vhost with the new web hosts in the pool"
    assert lb1.index("Wait until every balancer serves") < lb1.index(check) < lb1.index(admitted)
    assert "server 10.0.0.12:80 max_fails=1 fail_timeout=10s;" in upload(result["lb1"], admitted)
    # web2 holds what its peers hold (every upload) before the barrier, so before any
    # balancer checks it.
    web2 = names(result["web2"])
    caught_up = "Sync mesh | Wait until this host holds what its peers hold"
    assert web2.index(caught_up) < web2.index("Wait until every host has its tiers")
    assert "systemctl start wordpress-lb-mesh-catch-up.service" in commands(result["web2"], caught_up)
    # On a first deploy of the whole cluster nobody is held back.
    fresh = upload(plan(TOPOLOGIES["split"], secrets_file)["lb1"], "Balancer | Write the balancer vhost")
    assert " down;" not in fresh


def test_an_old_single_docroot_moves_to_releases(secrets_file):
    ops = plan(TOPOLOGIES["split"], secrets_file,
               host_data={"web1": {"fake_responses": OLD_LAYOUT}})["web1"]
    order = names(ops)
    steps = [
        "WordPress | Stop the mesh while the docroot moves to releases",
        "WordPress | Copy the old docroot's wp-content to the shared tree",
        "WordPress | Unpack the verified WordPress 7.1.0 beside the served release",
        "WordPress | Serve WordPress 7.1.0 (one atomic switch)",
        "Web | Reload nginx when what it reads changed",
        "Web | Retire the old single docroot",
        "Sync mesh | Restart the mesh for its new configuration",
    ]
    assert [order.index(step) for step in steps] == sorted(order.index(step) for step in steps)


def test_a_departed_web_host_loses_access_after_the_balancers_moved_on(secrets_file):
    departed = {"grep -E '<device id=": [
        '<device id="X" name="@fake/web2" compression="never">', "<address>tcp://10.0.0.12:22000</address>",
        '<device id="Y" name="gone" compression="never">', "<address>tcp://10.0.0.99:22000</address>"]}
    result = plan(TOPOLOGIES["split"], secrets_file, show_secrets=True,
                  host_data={"web1": {"fake_responses": departed}})
    web1 = names(result["web1"])
    gone = device(secrets_file, "gone")
    early = commands(result["web1"], "Sync mesh | Write the mesh configuration")
    assert f'<device id="{gone}" name="gone"' in early  # still shared while it may serve
    assert "<address>tcp://10.0.0.99:22000</address>" in early
    prune = "Sync mesh | Share the mesh with the current web hosts only"
    assert web1.index("Wait until every balancer serves") < web1.index(prune)
    final = commands(result["web1"], prune)
    assert "10.0.0.99" not in final and gone not in final and "10.0.0.12:22000" in final
    db1 = names(result["db1"])
    drop = "Database | Drop database accounts of web hosts no longer in the inventory"
    assert db1.index("Wait until every balancer serves") < db1.index(drop)


# Speed: the page cache, read-your-upload, limits sized to the host.

def test_the_page_cache_skips_what_must_never_be_cached(secrets_file):
    conf = upload(plan(TOPOLOGIES["split"], secrets_file)["lb1"], "Balancer | Write the balancer vhost")
    assert "proxy_cache_path /var/cache/nginx/wordpress-lb " in conf
    assert "proxy_cache_valid 200 301 302 10s;" in conf
    for needle in ("wordpress_logged_in_", "wp-postpass_", "comment_author_",
                   "woocommerce_items_in_cart", "woocommerce_cart_hash", "wp_woocommerce_session_",
                   "wp-admin/", "wp-json/", '"~*\\.php$" 1;', "utm_", "fbclid",
                   "gclid", "$http_authorization", "proxy_cache_lock on;",
                   "proxy_cache_background_update on;", "add_header X-Cache $pwlb_cache_status always;",
                   "proxy_cache_bypass $pwlb_skip_cache;", "proxy_no_cache $pwlb_skip_cache;"):
        assert needle in conf, needle
    assert "proxy_cache_use_stale error timeout updating invalid_header http_500 http_502 http_503 http_504;" in conf
    # One cached copy for every client: plain from the backends, compressed at the edge.
    assert 'proxy_set_header Accept-Encoding "";' in conf and "gzip_vary on;" in conf
    off = upload(plan(TOPOLOGIES["split"], secrets_file, data={"page_cache_ttl": 0})["lb1"],
                 "Balancer | Write the balancer vhost")
    assert "proxy_cache" not in off and "X-Cache" not in off


def test_an_upload_missing_on_one_backend_is_asked_of_the_others(secrets_file):
    conf = upload(plan({"lb": ["lb1"], "web": ["web1", "web2", "web3"], "db": ["db1"]},
                       secrets_file)["lb1"], "Balancer | Write the balancer vhost")
    uploads = conf[conf.index("location ^~ /wp-content/uploads/"):]
    uploads = uploads[:uploads.index("\n    }\n")]
    assert "proxy_next_upstream error timeout http_404 http_502 http_503 http_504;" in uploads
    assert "proxy_next_upstream_tries 3;" in uploads  # each backend at most once


def test_limits_sized_for_the_balancer_and_the_host(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file,
                  fake_responses={"vmstat -s": ["  4030000 K total memory"], "getconf": "2",
                                  "php-fpm 2>/dev/null": "install ok installed|php8.4-fpm"})
    assert "worker_rlimit_nofile 8192;" in commands(result["lb1"], "Balancer | Let nginx's workers open enough files")
    assert "worker_connections 4096;" in commands(result["lb1"], "Balancer | Let each nginx worker hold enough connections")
    pool = commands(result["web1"], "Web | Run the wordpress PHP-FPM pool with OPcache")
    assert "pm.max_children = 16" in pool  # (3935 MB - 512) / 64 = 53, at most 8 per CPU
    vhost = upload(result["web1"], "Web | Write the nginx backend vhost")
    assert "open_file_cache max=10000 inactive=60s;" in vhost and "open_file_cache_errors off;" in vhost
    assert "Sync mesh | Let the mesh watch every directory" in names(result["web1"])


# WP-Cron by the system, backups.

def test_wp_cron_runs_from_a_timer_on_every_web_host(split_plan):
    result = split_plan
    for web in ("web1", "web2"):
        timer = upload(result[web], "WP-Cron | Install wordpress-cron.timer")
        assert "OnCalendar=*-*-* *:*:00" in timer
        service = upload(result[web], "WP-Cron | Install wordpress-cron.service")
        assert "User=wordpress" in service and "WorkingDirectory=/var/www/wordpress/current" in service
        # Compiled once, kept in the site user's own home (private to it).
        cache = "/var/lib/wordpress/.cache/wordpress-lb-php"
        assert f"ExecStartPre=/bin/mkdir -p -m 700 {cache}\n" in service
        assert (f"ExecStart=/usr/bin/php -d opcache.enable_cli=1 -d opcache.file_cache={cache} "
                "-d opcache.file_cache_only=1 /usr/local/lib/wordpress-lb/wordpress-cron.php") in service
        runner = upload(result[web], "WP-Cron | Install the WP-Cron runner")
        assert "GET_LOCK" in runner and "require ABSPATH . 'wp-cron.php';" in runner
        assert "WP-Cron | Run WordPress's scheduled events every minute" in names(result[web])
    assert not any(n.startswith("WP-Cron |") for n in names(result["db1"]))


def test_backups_on_the_db_host_read_wp_content_from_the_web_hosts(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file,
                  data={"backup_keep": 3, "backup_target": "vault@192.0.2.9:/srv/backups"})
    script = upload(result["db1"], "Backups | Install the backup script")
    assert "mariadb-dump --single-transaction" in script
    assert "for web in 10.0.0.11 10.0.0.12; do" in script
    assert "head -n -3" in script and "vault@192.0.2.9:/srv/backups" in script
    assert "OnCalendar=daily" in upload(result["db1"], "Backups | Install wordpress-backup.timer")
    assert secrets_file.with_name("hosts.backup.pub").read_text().startswith("ssh-ed25519 ")
    # Each web host lets the db host's backup key read the shared tree, nothing else.
    keys = upload(result["web1"], "Sync mesh | Let the backups read the shared tree, from the database host only")
    assert 'from="10.0.0.13",command="/usr/bin/rrsync -ro /var/www/wordpress/shared/wp-content",restrict ssh-ed25519 ' in keys
    assert "rrsync -wo" not in keys and keys.count("ssh-ed25519") == 1


def test_web_hosts_reach_the_database_on_the_db_hosts_port(secrets_file):
    # db_port set on the db host only: the web hosts' wp-config must use it, not the default.
    result = plan(TOPOLOGIES["split"], secrets_file, host_data={"db1": {"db_port": 3307}},
                  show_secrets=True)
    for web in ("web1", "web2"):
        config = upload(result[web], "WordPress | Write wp-config.php (secrets; never shown)")
        assert "define( 'DB_HOST', '10.0.0.13:3307' );" in config, config[:2000]


def test_each_host_admits_only_what_its_roles_need(secrets_file):
    groups = {"lb": ["lb1", "lb2"], "web": ["web1", "web2"], "db": ["db1"]}
    result = plan(groups, secrets_file, data={"lb_vip": "10.0.0.100",
                                              "admin_networks": ["192.0.2.0/24", "2001:db8::/32"]})
    rules = {h: upload(result[h], "Firewall | Write the firewall rules") for h in result}
    for h, text in rules.items():
        assert "policy drop;" in text and "ct state established,related accept" in text
        assert "ip saddr { 192.0.2.0/24 } tcp dport 22 accept" in text, h
        assert "ip6 saddr { 2001:db8::/32 } tcp dport 22 accept" in text, h
        assert "flush ruleset" not in text and "delete table inet wordpress_lb" in text
    # lb1 .10, lb2 .11, web1 .12, web2 .13, db1 .14
    assert "tcp dport { 80, 443 } accept" in rules["lb1"]
    assert "ip saddr { 10.0.0.11 } ip protocol 112 accept" in rules["lb1"]
    assert "ip saddr { 10.0.0.10, 10.0.0.11 } tcp dport 80 accept" in rules["web1"]
    assert "ip saddr { 10.0.0.14 } tcp dport 22 accept" in rules["web1"]
    assert "ip saddr { 10.0.0.13 } tcp dport 22000 accept" in rules["web1"]
    assert "ip saddr { 10.0.0.12, 10.0.0.13 } tcp dport 3306 accept" in rules["db1"]
    for h in ("web1", "db1"):
        assert "443" not in rules[h] and "112" not in rules[h]
    assert "3306" not in rules["lb1"] + rules["web1"]
    assert "Firewall | Load the firewall rules when they changed" in names(result["db1"])


def test_without_the_firewall_its_table_goes(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file, data={"firewall": False})
    for ops in result.values():
        firewall = [n for n in names(ops) if n.startswith("Firewall |")]
        assert firewall == ["Firewall | Do not load the firewall at boot (firewall = false)",
                            "Firewall | Remove the firewall's rules (firewall = false)"]


def test_the_edge_limits_logins_sets_safe_headers_and_hides_the_backend(secrets_file):
    conf = upload(plan(TOPOLOGIES["split"], secrets_file)["lb1"], "Balancer | Write the balancer vhost")
    assert "limit_req_zone $pwlb_limit_key zone=wordpress_lb_login:10m rate=10r/m;" in conf
    login = conf[conf.index("location = /wp-login.php {"):]
    assert "limit_req zone=wordpress_lb_login burst=10 nodelay;" in login[:login.index("\n    }")]
    xmlrpc = conf[conf.index("location = /xmlrpc.php {"):]
    assert "return 403;" in xmlrpc[:xmlrpc.index("\n    }")]
    assert "wordpress_lb_xmlrpc" not in conf
    for header in ("X-Content-Type-Options nosniff", "X-Frame-Options SAMEORIGIN",
                   "Referrer-Policy strict-origin-when-cross-origin"):
        assert f"add_header {header} always;" in conf
    assert "server_tokens off;" in conf and "proxy_hide_header X-Powered-By;" in conf
    assert "proxy_hide_header X-Served-By;" in conf  # by default, not to the internet
    shown = plan(TOPOLOGIES["split"], secrets_file,
                 data={"lb_show_backend": True, "xmlrpc": True,
                       "firewall_trusted": ["192.0.2.7"]})["lb1"]
    conf = upload(shown, "Balancer | Write the balancer vhost")
    assert "proxy_hide_header X-Served-By;" not in conf
    assert "limit_req zone=wordpress_lb_xmlrpc burst=10 nodelay;" in conf
    assert "    192.0.2.7 0;" in conf  # trusted hosts are not limited


def test_without_unattended_upgrades_the_daily_run_goes(secrets_file):
    ops = plan(TOPOLOGIES["split"], secrets_file, data={"unattended_upgrades": False})["web1"]
    assert "unattended-upgrades" not in commands(ops, "Common base | Install the base packages")
    assert "Common base | Leave updates to the operator (unattended_upgrades = false)" in names(ops)


def test_status_changes_nothing_and_reports_from_one_host(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file, deploy_file="status.py")
    ops = {host: names(found) for host, found in result.items()}
    assert ops["db1"] == ["Status | Report the cluster's health"]
    assert all(found == [] for host, found in ops.items() if host != "db1"), ops
    assert all(commands == [] for found in result.values() for _, commands in found)


def test_status_table_says_what_needs_attention_and_how_to_fix_it():
    from pyinfra_wordpress_lb.operations.status import table, verdict_code

    rows = [
        {"host": "web2", "role": "web", "verdict": "attention", "checks": {"php-fpm": "down"},
         "problems": ["php-fpm is not running: `systemctl start 'php*-fpm'`"]},
        {"host": "lb1", "role": "lb", "verdict": "ok",
         "checks": {"backends": {"10.0.0.11:80": "up"}}, "problems": []},
    ]
    text = table(rows)
    assert "web2  web   ATTENTION    php-fpm: down" in text
    assert "! php-fpm is not running" in text and "backends: 10.0.0.11:80 up" in text
    assert text.endswith("NEEDS ATTENTION: 1 of 2 rows (web2) (exit 1)")
    assert verdict_code(rows) == 1
    rows[0]["verdict"] = "unreachable"
    assert verdict_code(rows) == 2 and "UNREACHABLE: web2 (exit 2)" in table(rows)
    rows[0]["verdict"] = "ok"
    assert verdict_code(rows) == 0 and table(rows).endswith("ALL WELL: 2 rows (exit 0)")


def test_a_departed_host_stays_admitted_until_the_balancers_let_it_go(secrets_file):
    # web1's rules admit 10.0.0.99, a web host no longer in the inventory.
    before = {"grep -h 'comment \"cluster\"' /etc/wordpress-lb/firewall.nft":
              'ip saddr { 10.0.0.12, 10.0.0.99 } tcp dport 22 accept comment "cluster"'}
    result = plan(TOPOLOGIES["split"], secrets_file, host_data={"web1": {"fake_responses": before}})
    ops = result["web1"]
    first = upload(ops, "Firewall | Write the firewall rules")
    assert 'ip saddr { 10.0.0.12, 10.0.0.13, 10.0.0.99 } tcp dport 22 accept comment "cluster"' in first
    final = upload(ops, "Firewall | Admit only the current hosts through the firewall")
    assert 'ip saddr { 10.0.0.13 } tcp dport 22 accept comment "cluster"' in final
    assert "10.0.0.99" not in final
    assert result.order.index("Firewall | Admit only the current hosts through the firewall") > \
        result.order.index("Balancer | Write the balancer vhost")


def test_backups_reach_a_web_host_on_its_ssh_port(secrets_file):
    result = plan(TOPOLOGIES["split"], secrets_file, host_data={"web2": {"ssh_port": 2222}})
    script = commands(result["db1"], "Backups | Install the backup script")
    assert '10.0.0.12) ssh_options="-p 2222 -o HostKeyAlias=10.0.0.12" ;;' in script
    rules = commands(result["web2"], "Firewall | Write the firewall rules")
    assert 'ip saddr { 10.0.0.13 } tcp dport 2222 accept comment "cluster"' in rules
    assert 'ip saddr { 10.0.0.11 } tcp dport 22000 accept comment "cluster"' in rules


def test_a_floating_ip_hook_runs_when_the_shared_address_moves(secrets_file, tmp_path):
    hook = tmp_path / "move-floating-ip.sh"
    hook.write_text("#!/bin/sh\necho \"$1\" >> /var/log/floating-ip.log\n")
    two = {"lb": ["lb1", "lb2"], "web": ["web1"], "db": ["db1"]}
    result = plan(two, secrets_file, data={"lb_vip": "10.0.0.100", "lb_vip_notify": str(hook)})
    conf = upload(result["lb2"], "Shared address | Write the keepalived configuration")
    for state in ("master", "backup", "fault"):
        assert f'notify_{state} "/usr/local/sbin/wordpress-lb-vip-notify {state}" root' in conf
    script = commands(result["lb2"],
                      "Shared address | Install the script keepalived runs when the address moves")
    assert f"FileUploadCommand({hook}, /usr/local/sbin/wordpress-lb-vip-notify)" in script
    # Without the setting: no hook in the configuration, and none left on the host.
    plain = plan(two, secrets_file, data={"lb_vip": "10.0.0.100"})
    assert "notify_master" not in upload(plain["lb2"],
                                         "Shared address | Write the keepalived configuration")


def test_the_pools_php_log_is_rotated(secrets_file):
    ops = plan(TOPOLOGIES["split"], secrets_file,
               fake_responses={"php-fpm 2>/dev/null": "install ok installed|php8.4-fpm"})["web1"]
    rotate = upload(ops, "Web | Rotate the pool's PHP error log")
    assert "/var/log/php-fpm-wordpress.log {" in rotate and "create 0640 wordpress adm" in rotate
    pool = commands(ops, "Web | Run the wordpress PHP-FPM pool with OPcache")
    assert "php_admin_value[error_log] = /var/log/php-fpm-wordpress.log" in pool
    assert "logrotate" in commands(ops, "Web | Install nginx and PHP-FPM")


@pytest.mark.parametrize("mode", ["off", "translations", "chosen", "all"])
def test_auto_updates_decide_what_wordpress_updates_itself(secrets_file, mode):
    ops = plan(TOPOLOGIES["split"], secrets_file, data={"auto_updates": mode},
               show_secrets=True)["web1"]
    config = commands(ops, "WordPress | Write wp-config.php (secrets; never shown)")
    assert ("define( 'AUTOMATIC_UPDATER_DISABLED', true );" in config) == (mode == "off")
    if mode != "off":
        assert "define( 'WP_AUTO_UPDATE_CORE', false );" in config
        assert f"define( 'PWLB_AUTO_UPDATES', '{mode}' );" in config


GALERA = {"lb": ["lb1"], "web": ["web1", "web2"], "db": ["db1", "db2", "db3"]}


def test_three_db_hosts_start_one_cluster_then_join_it(secrets_file):
    """Fresh hosts: db1 starts the cluster, db2 and db3 join it in a later step; the
    site's schema and accounts are applied on db1 only (they replicate)."""
    result = plan(GALERA, secrets_file)
    start = "Database | Start the Galera cluster on this node (the most advanced)"
    join = "Database | Join the Galera cluster (catching up from a member)"
    assert start in names(result["db1"]) and join not in names(result["db1"])
    for host in ("db2", "db3"):
        assert join in names(result[host]) and start not in names(result[host])
        assert not any("database account" in n or n.startswith("Database | Create the")
                       for n in names(result[host])), host
    assert result.order.index(start) < result.order.index(join)
    assert "Database | Add database account wordpress@10.0.0.11" in names(result["db1"])
    config = upload(result["db2"], "Database | Make MariaDB a node of the Galera cluster")
    assert "wsrep_cluster_address = gcomm://10.0.0.13,10.0.0.14,10.0.0.15" in config
    assert "wsrep_node_address = 10.0.0.14" in config
    assert "wsrep_sst_method = mariabackup" in config
    # Backups come from the last node (the least likely writer), and only from it.
    assert any(n.startswith("Backups |") for n in names(result["db3"]))
    assert not any(n.startswith("Backups |") for h in ("db1", "db2")
                   for n in names(result[h]))


def test_web_hosts_write_through_their_proxy_to_the_first_synced_node(secrets_file):
    result = plan(GALERA, secrets_file, show_secrets=True)
    proxy = upload(result["web1"], "Database proxy | Send the database connections to the "
                                   "first synced node")
    assert "bind 127.0.0.1:3307" in proxy
    assert "server db1 10.0.0.13:3306 check\n" in proxy.replace("@fake/", "")
    assert "server db2 10.0.0.14:3306 check backup" in proxy.replace("@fake/", "")
    assert "default-server port 9200" in proxy
    wp_config = upload(result["web1"], "WordPress | Write wp-config.php (secrets; never shown)")
    assert "define( 'DB_HOST', '127.0.0.1:3307' );" in wp_config


def test_galera_flows_only_between_the_cluster_members(secrets_file):
    result = plan(GALERA, secrets_file)
    rules = upload(result["db1"], "Firewall | Write the firewall rules")
    assert "ip saddr { 10.0.0.14, 10.0.0.15 } tcp dport { 4567, 4568, 4444 } accept" in rules
    assert "ip saddr { 10.0.0.14, 10.0.0.15 } udp dport { 4567 } accept" in rules
    assert "ip saddr { 10.0.0.11, 10.0.0.12 } tcp dport 9200 accept" in rules
    for host in ("lb1", "web1"):
        assert "4567" not in upload(result[host], "Firewall | Write the firewall rules")


def test_two_db_hosts_and_an_arbitrator_vote_together(secrets_file):
    result = plan({**GALERA, "db": ["db1", "db2"]}, secrets_file,
                  data={"db_arbitrator": "@fake/lb1"})
    garbd = upload(result["lb1"], "Database arbitrator | Point the arbitrator at the "
                                  "database hosts")
    assert 'GALERA_NODES="10.0.0.13:4567,10.0.0.14:4567"' in garbd
    assert 'GALERA_GROUP="wordpress-lb"' in garbd
    # Where garb-systemd reads it, with a working directory its user may write.
    steps = dict(result["lb1"])
    assert any("/etc/default/garb " in c or c.endswith("/etc/default/garb")
               for c in steps["Database arbitrator | Point the arbitrator at the database "
                              "hosts"]), steps
    dropin = upload(result["lb1"], "Database arbitrator | Give the arbitrator a working "
                                   "directory")
    assert "StateDirectory=wordpress-lb-garbd" in dropin
    assert 'WORK_DIR="/var/lib/wordpress-lb-garbd"' in garbd
    assert not any(n.startswith("Database arbitrator") for h in ("web1", "db1", "db2")
                   for n in names(result[h]))
    rules = upload(result["db1"], "Firewall | Write the firewall rules")
    assert "ip saddr { 10.0.0.10, 10.0.0.14 } tcp dport { 4567, 4568, 4444 } accept" in rules
    lb_rules = upload(result["lb1"], "Firewall | Write the firewall rules")
    assert "ip saddr { 10.0.0.13, 10.0.0.14 } tcp dport { 4567 } accept" in lb_rules
