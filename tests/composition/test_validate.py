"""Guard rails against @fake hosts: each mistake is reported, with nothing run."""

from __future__ import annotations

import pytest

from tests.fakedeploy import plan

SPLIT = {"lb": ["lb1"], "web": ["web1", "web2"], "db": ["db1"]}


def rejected(groups, secrets_file, **kw) -> str:
    with pytest.raises(Exception) as failure:
        plan(groups, secrets_file, **kw)
    error = getattr(failure.value, "exception", failure.value)
    assert type(error).__name__ == "InvalidDeploy", repr(error)
    message = str(error)
    assert "nothing was changed" in message
    return message


@pytest.fixture
def secrets_file(tmp_path):
    return tmp_path / "hosts.secrets.json"


def test_no_web_host(secrets_file):
    message = rejected({"lb": ["lb1"], "db": ["db1"]}, secrets_file)
    assert "no host in group `web`" in message


def test_no_db_host(secrets_file):
    message = rejected({"lb": ["lb1"], "web": ["web1"]}, secrets_file)
    assert "no host in group `db`" in message


def test_two_db_hosts_need_an_arbitrator(secrets_file):
    message = rejected({**SPLIT, "db": ["db1", "db2"]}, secrets_file).replace("@fake/", "")
    assert "two hosts in group `db` (db1, db2): a Galera cluster of two has no majority" \
        in message
    assert "set `db_arbitrator`" in message


@pytest.mark.parametrize("dbs, arbitrator, expected", [
    (["db1", "db2"], "db1", "db_arbitrator 'db1' is a db host"),
    (["db1", "db2"], "nowhere", "db_arbitrator 'nowhere' is not a host of the inventory"),
    (["db1", "db2", "db3"], "lb1", "only two db hosts need one (there are 3)"),
])
def test_a_wrong_arbitrator_is_refused(secrets_file, dbs, arbitrator, expected):
    message = rejected({**SPLIT, "db": dbs}, secrets_file,
                       data={"db_arbitrator": f"@fake/{arbitrator}"}).replace("@fake/", "")
    assert expected in message


def test_a_galera_cluster_that_cannot_be_restarted_safely_is_refused(secrets_file):
    """Every node stopped after a crash and one node's position unreadable: the deploy
    does not guess which node to start the cluster from."""
    def node(seqno, recovered=None):
        lines = ["active=inactive", "uuid=8d3f0c4e-0000-11ef-8000-0a0b0c0d0e0f",
                 f"seqno={seqno}", "safe_to_bootstrap=0", "has_database=1", "config=1"]
        return {"fake_responses": {"systemctl is-active mariadb.service": lines + (
            [f"recovered={recovered}"] if recovered is not None else [])}}
    message = rejected({**SPLIT, "db": ["db1", "db2", "db3"]}, secrets_file, host_data={
        "db1": node(-1, 41), "db2": node(-1, 42), "db3": node(-1)}).replace("@fake/", "")
    assert "the database cluster: the Galera cluster is down and the position of db3 " \
        "cannot be read: run `galera_recovery` there" in message


def test_several_web_hosts_without_a_balancer(secrets_file):
    message = rejected({"web": ["web1", "web2"], "db": ["db1"]}, secrets_file)
    assert "2 web hosts but no host in group `lb`" in message


def test_one_web_host_without_a_balancer_is_fine(secrets_file):
    result = plan({"web": ["web1"], "db": ["db1"]}, secrets_file)
    web1 = [name for name, _ in result["web1"]]
    assert "Web | Write the nginx backend vhost" in web1
    assert "WordPress install | Install WordPress unattended (once per database)" in web1
    assert not any(name.startswith("Balancer |") for name, _ in result["web1"] + result["db1"])


def test_duplicate_private_address(secrets_file):
    message = rejected(SPLIT, secrets_file, host_data={"web2": {"private_address": "10.0.0.11"}})
    assert "web2: private_address 10.0.0.11 is also @fake/web1's" in message


def test_private_address_not_an_ip(secrets_file):
    message = rejected(SPLIT, secrets_file, host_data={"db1": {"private_address": "db1.lan"}})
    assert "db1: private_address 'db1.lan' is not an IPv4 address" in message


def test_colocated_backend_on_the_public_port(secrets_file):
    seed = {"lb": ["hosta"], "web": ["hosta", "hostb"], "db": ["hosta"]}
    message = rejected(seed, secrets_file, data={"colocated_web_port": 80})
    assert "hosta: is both `lb` and `web`, and colocated_web_port equals lb_port (80)" in message


@pytest.mark.parametrize("key,port", [("web_port", 70000), ("lb_port", 0), ("db_port", "3306")])
def test_ports_out_of_range(secrets_file, key, port):
    message = rejected(SPLIT, secrets_file, data={key: port})
    assert f"{key} {port!r} is not a port (1-65535)" in message


@pytest.mark.parametrize("url", ["www.example.com", "ftp://example.com", "http://exa mple.com",
                                 "http://example.com:99999", "http://-bad-.com/"])
def test_invalid_site_url(secrets_file, url):
    message = rejected(SPLIT, secrets_file, data={"site_url": url})
    assert f"site_url {url!r} is not a site address" in message


def test_valid_site_urls_pass(secrets_file):
    for url, tls in (("https://www.example.com", "self-signed"), ("http://127.0.0.1:8080", "off"),
                     ("http://blog.example.org/wp", "off"), ("https://10.0.0.5:8443", "self-signed")):
        result = plan(SPLIT, secrets_file, data={"site_url": url, "tls": tls}, show_secrets=True)
        install = " ".join(c for name, commands in result["web1"] for c in commands
                           if name.startswith("WordPress install | Install WordPress"))
        assert f"update_option( 'siteurl', '{url}' );" in install, (url, install[:300])


@pytest.mark.parametrize("email", ["admin", "admin@", "admin@localhost", "a b@example.com"])
def test_invalid_admin_email(secrets_file, email):
    message = rejected(SPLIT, secrets_file, data={"admin_email": email})
    assert f"admin_email {email!r} is not an email address" in message


def test_typo_of_a_known_key(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"db_nmae": "wp", "lb_mehtod": "ip_hash",
                                                  "x_my_own_note": "fine"})
    assert "unknown setting 'db_nmae'" in message and "did you mean 'db_name'?" in message
    assert "did you mean 'lb_method'?" in message
    assert "x_my_own_note" not in message


def test_a_key_near_no_setting_is_unknown_too(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"vip": "10.0.0.100"},
                       host_data={"lb1": {"domain": "example.com"}})
    assert "unknown setting 'vip': not a setting of this deploy nor of pyinfra" in message
    assert "unknown setting 'domain' (on @fake/lb1)" in message
    assert "must start with 'x_'" in message


def test_secrets_file_readable_by_others(secrets_file):
    secrets_file.write_text("{}")
    secrets_file.chmod(0o644)
    message = rejected(SPLIT, secrets_file)
    assert f"secrets file {secrets_file} has mode 0644" in message
    assert f"chmod 600 {secrets_file}" in message


def test_unsupported_release(secrets_file):
    ubuntu = ["/etc/os-release", 'NAME="Ubuntu"', 'VERSION_ID="24.04"', "ID=ubuntu", "---"]
    bullseye = ["/etc/os-release", 'NAME="Debian GNU/Linux"', 'VERSION_ID="11"', "ID=debian",
                "---"]
    message = rejected(SPLIT, secrets_file, host_data={
        "web2": {"fake_responses": {"*-release": ubuntu, "uname -s": "Linux"}},
        "db1": {"fake_responses": {"*-release": bullseye, "uname -s": "Linux"}}})
    assert "web2: runs Ubuntu 24.04; only Debian 13 (trixie) and Debian 12" in message
    assert "db1: runs Debian 11;" in message


def test_every_problem_is_listed_once(secrets_file):
    message = rejected({"lb": ["lb1"], "web": ["web1", "web2"]}, secrets_file,
                       data={"admin_email": "nobody", "site_url": "nope"})
    assert message.count("admin_email 'nobody'") == 1
    assert message.count("site_url 'nope'") == 1
    assert "3 problems" in message


# TLS at the balancers and the shared address.

def make_certificate(tmp_path, names=("www.example.com",), days=30, other_key=False,
                     expired=False):
    """A self-signed certificate and key in files, as an operator would bring them."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(days=60 if expired else 1)
    end = now - datetime.timedelta(days=1) if expired else now + datetime.timedelta(days=days)
    sans = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n)
            for n in names]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(key, hashes.SHA256()))
    if other_key:
        key = ec.generate_private_key(ec.SECP256R1())
    cert_file, key_file = tmp_path / "site.crt", tmp_path / "site.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return {"tls": "files", "tls_certificate": str(cert_file), "tls_key": str(key_file),
            "site_url": "https://www.example.com"}


def test_unknown_tls_mode(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"tls": "on"})
    assert "tls 'on' is not one of self-signed, acme, files, off" in message


def test_site_url_scheme_must_match_tls(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"site_url": "http://www.example.com"})
    assert "site_url 'http://www.example.com' does not match tls 'self-signed'" in message
    message = rejected(SPLIT, secrets_file, data={"site_url": "https://www.example.com",
                                                  "tls": "off"})
    assert "site_url 'https://www.example.com' does not match tls 'off'" in message


def test_acme_needs_an_email_and_a_name(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"tls": "acme", "site_url": "https://10.0.0.5"})
    assert "tls = \"acme\" needs acme_email" in message
    assert "needs a DNS name in site_url, not the address 10.0.0.5" in message
    plan(SPLIT, secrets_file, data={"tls": "acme", "site_url": "https://www.example.com",
                                    "acme_email": "webmaster@example.com"})


def test_files_mode_good_certificate_passes(secrets_file, tmp_path):
    ops = plan(SPLIT, secrets_file, data=make_certificate(tmp_path))["lb1"]
    assert any("Install the site's certificate" in name for name, _ in ops)


def test_files_mode_missing_file(secrets_file, tmp_path):
    data = {**make_certificate(tmp_path), "tls_key": str(tmp_path / "nope.key")}
    message = rejected(SPLIT, secrets_file, data=data)
    assert f"tls_key {tmp_path / 'nope.key'}: cannot be read on this machine" in message


def test_files_mode_key_that_does_not_match(secrets_file, tmp_path):
    message = rejected(SPLIT, secrets_file, data=make_certificate(tmp_path, other_key=True))
    assert "does not match the certificate" in message


def test_files_mode_expired_certificate(secrets_file, tmp_path):
    message = rejected(SPLIT, secrets_file, data=make_certificate(tmp_path, expired=True))
    assert "expired on" in message


def test_files_mode_certificate_for_another_name(secrets_file, tmp_path):
    message = rejected(SPLIT, secrets_file,
                       data=make_certificate(tmp_path, names=("other.example.org",)))
    assert "does not cover www.example.com (the host of site_url)" in message
    # A wildcard covers one level.
    plan(SPLIT, secrets_file, data=make_certificate(tmp_path, names=("*.example.com",)))
    # An alias the certificate does not cover.
    message = rejected(SPLIT, secrets_file, data={
        **make_certificate(tmp_path, names=("*.example.com",)), "site_aliases": ["example.com"]})
    assert "does not cover example.com (an alias of the site)" in message


HA = {"lb": ["lb1", "lb2"], "web": ["web1", "web2"], "db": ["db1"]}


def test_shared_address_with_one_balancer(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"lb_vip": "10.0.0.100"})
    assert "lb_vip 10.0.0.100 needs two or more hosts in group `lb`" in message


def test_shared_address_outside_the_subnet(secrets_file):
    message = rejected(HA, secrets_file, data={"lb_vip": "10.0.1.100"})
    assert "lb_vip 10.0.1.100 is outside @fake/lb1's subnet 10.0.0.0/24" in message


def test_shared_address_that_is_a_hosts_own(secrets_file):
    message = rejected(HA, secrets_file, data={"lb_vip": "10.0.0.12"})
    assert "lb_vip 10.0.0.12 is @fake/web1's own address" in message


def test_shared_address_not_an_address(secrets_file):
    message = rejected(HA, secrets_file, data={"lb_vip": "vip.lan"})
    assert "lb_vip 'vip.lan' is not an IPv4 address" in message


def test_releases_and_drain_settings(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"keep_releases": 0})
    assert "keep_releases 0 is not a number of releases" in message
    message = rejected(SPLIT, secrets_file, host_data={"web1": {"drain": "yes"}})
    assert "web1: drain 'yes' is not true or false" in message
    message = rejected(SPLIT, secrets_file, host_data={"web2": {"mesh_watch": "off"}})
    assert "web2: mesh_watch 'off' is not true or false" in message
    message = rejected(SPLIT, secrets_file, data={"drain": True})
    assert "every web host has drain = true" in message


def test_numbers_in_range(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"mesh_delay": -1, "page_cache_ttl": "10s",
                                                  "lb_worker_connections": 10,
                                                  "opcache_memory_per_site": "48M"})
    assert "mesh_delay -1 is not a whole number from 1 to 60" in message
    assert "opcache_memory_per_site '48M' is not a whole number from 0 to 65536" in message
    assert "page_cache_ttl '10s' is not a whole number from 0 to 86400" in message
    assert "lb_worker_connections 10 is not a whole number from 512 to 1048576" in message


@pytest.mark.parametrize("networks,problem", [
    ("10.0.0.0/8", "admin_networks '10.0.0.0/8' is not a list"),
    (["10.0.0.300/32"], "admin_networks entry '10.0.0.300/32' is not an address or network"),
    ([], "admin_networks is empty: nobody could reach SSH"),
])
def test_admin_networks_that_are_not_networks(secrets_file, networks, problem):
    message = rejected(SPLIT, secrets_file, data={"admin_networks": networks})
    assert problem in message


def test_a_firewall_that_would_lock_the_operator_out_is_refused(secrets_file):
    # Each host sees this deploy's SSH session coming from 192.0.2.10.
    ssh = {'echo "${SSH_CONNECTION%% *}"': "192.0.2.10"}
    message = rejected(SPLIT, secrets_file, fake_responses=ssh,
                       data={"admin_networks": ["198.51.100.0/24"]})
    assert ("web1: this deploy connects from 192.0.2.10, which admin_networks leaves out: "
            "the firewall would lock you out") in message.replace("@fake/", "")
    # Allowed by admin_networks or firewall_trusted, or no firewall at all: fine.
    for data in ({"admin_networks": ["192.0.2.0/24"]},
                 {"admin_networks": ["198.51.100.0/24"], "firewall_trusted": ["192.0.2.10"]},
                 {"admin_networks": ["198.51.100.0/24"], "firewall": False}):
        plan(SPLIT, secrets_file, fake_responses=ssh, data=data)


def test_numbers_rates_methods_backends_and_schedules(secrets_file):
    message = rejected(SPLIT, secrets_file, data={
        "backup_keep": "7", "login_burst": 1.5, "php_max_children": "ten",
        "lb_method": "roundrobin", "login_rate": "10/m", "lb_backends": ["10.0.0.5"],
        "backup_schedule": "daily; rm -rf /"})
    assert "- backup_keep '7' is not a whole number from 1 to 10000" in message
    assert "- login_burst 1.5 is not a whole number" in message
    assert "- php_max_children 'ten' is not a whole number" in message
    assert "- lb_method 'roundrobin' is not one of least_conn, round_robin, ip_hash" in message
    assert "- login_rate '10/m' is not a rate" in message
    assert "lb1: lb_backends entry '10.0.0.5' is not 'address:port'" in message
    assert "- backup_schedule 'daily; rm -rf /' is not a systemd calendar" in message
    assert "Traceback" not in message


def test_a_secret_set_on_one_host_only_is_refused(secrets_file):
    message = rejected(SPLIT, secrets_file,
                       host_data={"db1": {"secrets": {"db_password": "only-on-db1"}}})
    assert "secret 'db_password' is set differently across hosts" in message
    assert "db1 only" in message and "only-on-db1" not in message
    # The same value everywhere is fine.
    plan(SPLIT, secrets_file, data={"secrets": {"db_password": "everywhere-the-same"}})


def test_tls_trust_is_checked_on_web_hosts_too(secrets_file, tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    message = rejected(SPLIT, secrets_file, host_data={"web2": {"tls_trust": str(missing)}})
    assert f"tls_trust {missing}" in message


def test_a_cluster_wide_mistake_is_reported_once_without_hosts(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"admin_email": "nope"})
    assert "    - admin_email 'nope' is not an email address" in message
    assert message.count("admin_email") == 1 and "db1" not in message
    # A value only some hosts have is reported with those hosts.
    message = rejected(SPLIT, secrets_file, host_data={"web2": {"mesh_delay": -1}})
    assert "    - @fake/web2: mesh_delay -1 is not a whole number from 1 to 60" in message


def test_a_host_without_a_private_address_is_a_clear_error(secrets_file):
    public_only = {"private_address": None, "fake_responses": {
        "ip -4 -o addr": "2: eth0    inet 203.0.113.7/24 brd 203.0.113.255 scope global eth0"}}
    message = rejected(SPLIT, secrets_file, host_data={"web2": public_only})
    assert "@fake/web2: reports no private IPv4 address" in message
    assert "set `private_address`" in message and "Traceback" not in message


def test_two_balancers_need_a_way_to_fail_over(secrets_file, tmp_path):
    two = {"lb": ["lb1", "lb2"], "web": ["web1"], "db": ["db1"]}
    message = rejected(two, secrets_file)
    assert "2 balancers (@fake/lb1, @fake/lb2) and no lb_vip" in message
    assert 'lb_failover = "dns"' in message
    plan(two, secrets_file, data={"lb_failover": "dns"})  # the operator says so: fine
    message = rejected(two, secrets_file, data={"lb_failover": "dns", "lb_vip": "10.0.0.100"})
    assert "lb_failover = \"dns\" and lb_vip are both set" in message
    message = rejected(two, secrets_file, data={"lb_failover": "round-robin"})
    assert "lb_failover 'round-robin' is not \"dns\"" in message
    message = rejected(two, secrets_file, data={"lb_vip": "10.0.0.100",
                                                "lb_vip_notify": str(tmp_path / "nope.sh")})
    assert f"lb_vip_notify {tmp_path / 'nope.sh'}: no such file" in message


def test_auto_updates_is_one_of_its_words(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"auto_updates": "yes"})
    assert "auto_updates 'yes' is not one of off, translations, chosen, all" in message


# Sites.

def test_sites_entries_are_checked(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"sites": [
        {"name": "Shop", "site_url": "https://shop.example"},
        {"name": "blog", "site_url": "https://blog.example", "db_nmae": "x"},
        {"name": "news"},
    ]})
    assert "sites entry 1 (Shop): name 'Shop' is not a site name" in message
    assert "sites entry 2 (blog): unknown key 'db_nmae': did you mean 'db_name'?" in message
    assert "sites entry 3 (news): site_url is missing" in message


def test_sites_values_and_overlaps_are_checked(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"sites": [
        {"name": "shop", "site_url": "https://shop.example", "keep_releases": 0,
         "user": "Root!"},
        {"name": "blog", "site_url": "https://shop.example", "db_name": "wp_shop"},
    ]})
    assert "sites entry shop: keep_releases 0 is not a number of releases" in message
    assert "sites entry shop: user 'Root!' is not a Unix user name" in message
    assert "sites shop and blog have the same site_url's host 'shop.example'" in message
    assert "sites shop and blog have the same db_name 'wp_shop'" in message


def test_another_name_for_the_one_site_settings_site_is_refused(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"sites": [
        {"name": "blog", "site_url": "https://blog.example", "docroot": "/var/www/wordpress"}]})
    assert ("sites entry blog: docroot /var/www/wordpress is the one-site settings' site's: "
            "list that site as `main`") in message


def test_sites_with_and_without_tls_at_once_are_refused(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"sites": [
        {"name": "shop", "site_url": "https://shop.example"},
        {"name": "blog", "site_url": "http://blog.example", "tls": "off"}]}).replace("@fake/", "")
    assert 'lb1: some sites have tls = "off" and others not' in message


def test_a_sites_tls_settings_are_checked_as_its_own(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"sites": [
        {"name": "shop", "site_url": "https://shop.example"},
        {"name": "blog", "site_url": "https://blog.example", "tls": "files"}]}).replace(
        "@fake/", "")
    assert 'lb1 (site blog): tls = "files" needs tls_certificate and tls_key' in message
    assert "site shop" not in message


def test_a_second_site_takes_mesh_ports_beside_the_first(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"web_port": 22001, "sites": [
        {"name": "main"}, {"name": "shop", "site_url": "https://shop.example"}]}).replace(
        "@fake/", "")
    assert "web1: mesh_port + 1 (a site's mesh) and web_port are both port 22001" in message


def test_one_listed_site_is_deployed_with_its_own_identity(secrets_file):
    result = plan(SPLIT, secrets_file, data={"sites": [
        {"name": "shop", "site_url": "https://shop.example", "admin_email": "o@shop.example"}]},
        show_secrets=True)
    web = " ".join(c for _, commands in result["web1"] for c in commands)
    assert "/var/www/shop/releases/" in web and "/var/www/wordpress" not in web
    assert "useradd" in web and "wp-shop" in web
    db = " ".join(c for _, commands in result["db1"] for c in commands)
    assert "wp_shop" in db and "CREATE DATABASE" in db.upper()


@pytest.mark.parametrize("aliases, expected", [
    ("example.com", "site_aliases 'example.com' is not a list of distinct host names"),
    (["https://example.com"], "is not a list of distinct host names"),
    (["example.com", "example.com"], "is not a list of distinct host names"),
    (["www.example.com"], "site_aliases 'www.example.com' is the host of site_url itself"),
])
def test_bad_site_aliases_are_refused(secrets_file, aliases, expected):
    message = rejected(SPLIT, secrets_file, data={"site_url": "https://www.example.com",
                                                  "site_aliases": aliases})
    assert expected in message


def test_acme_aliases_must_be_dns_names(secrets_file):
    message = rejected(SPLIT, secrets_file, data={
        "tls": "acme", "site_url": "https://www.example.com", "acme_email": "a@example.com",
        "site_aliases": ["192.0.2.7"]}).replace("@fake/", "")
    assert "needs DNS names in site_aliases, not the address 192.0.2.7" in message


def test_two_sites_may_not_answer_the_same_name(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"sites": [
        {"name": "shop", "site_url": "https://shop.example", "aliases": ["www.shop.example"]},
        {"name": "blog", "site_url": "https://www.shop.example"}]})
    assert "sites shop and blog both answer 'www.shop.example'" in message


@pytest.mark.parametrize("data, expected", [
    ({"mesh_port": 8384}, "web1: mesh_port and the mesh's local API are both port 8384"),
    ({"lb_https_port": 80}, "lb1: lb_https_port and lb_port are both port 80"),
    ({"web_port": 22000}, "web1: mesh_port and web_port are both port 22000"),
])
def test_two_services_of_a_host_on_one_port_are_refused(secrets_file, data, expected):
    message = rejected(SPLIT, secrets_file, data=data).replace("@fake/", "")
    assert expected in message


def test_trio_ports_do_not_clash_by_default(secrets_file):
    trio = {"lb": ["h1", "h2", "h3"], "web": ["h1", "h2", "h3"], "db": ["h1", "h2", "h3"]}
    plan(trio, secrets_file, data={"lb_vip": "10.0.0.100"})


def test_a_site_named_for_a_restore_must_be_one_of_the_cluster(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"site": "shop"})
    assert "site 'shop' is not a site of this cluster (its sites: main)" in message
    plan(SPLIT, secrets_file, data={"site": "main"})


def test_a_site_left_out_of_sites_is_refused_naming_how_to_remove_it(secrets_file):
    message = rejected(SPLIT, secrets_file, data={"sites": [{"name": "main"}]},
                       fake_responses={"ls -1 /etc/nginx/sites-available": "wp-shop"}).replace(
        "@fake/", "")
    for web in ("web1", "web2"):
        assert (f"{web}: serves the site shop that `sites` no longer lists: left out, its "
                "PHP pool") in message
    assert "to remove it, with absent = true" in message
