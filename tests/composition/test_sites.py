"""Several sites on one cluster, on @fake hosts: each has its own database and account,
Unix user, PHP-FPM pool, vhosts, certificate, page cache, mesh, WP-Cron and backups; the
first site's names are the one-site names, and adding a site leaves them as they were."""

from __future__ import annotations

import json
import re

import pytest

from tests.fakedeploy import plan

SPLIT = {"lb": ["lb1"], "web": ["web1", "web2"], "db": ["db1"]}
FPM = {"php-fpm 2>/dev/null": "install ok installed|php8.4-fpm"}
SITES = [{"name": "main", "site_url": "https://blog.example"},
         {"name": "shop", "site_url": "https://shop.example", "aliases": ["www.shop.example"]}]


def text(ops, name=None) -> str:
    return "\n".join(c for n, cs in ops if name is None or n == name for c in cs)


def names(ops) -> list[str]:
    return [n for n, _ in ops]


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    secrets_file = tmp_path_factory.mktemp("two") / "hosts.secrets.json"
    return plan(SPLIT, secrets_file, data={"sites": SITES}, fake_responses=FPM,
                show_secrets=True), secrets_file


@pytest.fixture(scope="module")
def one(tmp_path_factory, two):
    """The one-site plan of the first site, with the same secrets."""
    secrets_file = tmp_path_factory.mktemp("one") / "hosts.secrets.json"
    secrets_file.touch(mode=0o600)
    secrets_file.write_text(two[1].read_text())
    return plan(SPLIT, secrets_file, data={"site_url": "https://blog.example"},
                fake_responses=FPM, show_secrets=True)


def test_each_site_has_its_own_database_and_account_granted_on_it_alone(two):
    result, secrets_file = two
    db = text(result["db1"])
    assert "CREATE DATABASE IF NOT EXISTS `wordpress`" in db or "`wordpress`" in db
    assert "wp_shop" in db
    for user, database in (("wordpress", "wordpress"), ("wp_shop", "wp_shop")):
        grant = [n for n in names(result["db1"])
                 if n == f"Database | Grant {user}@10.0.0.11 all on {database} only"]
        assert grant, names(result["db1"])
    stored = json.loads(secrets_file.read_text())
    assert stored["db_password@shop"] != stored["db_password"]
    assert stored["wp_auth_key@shop"] != stored["wp_auth_key"]
    assert stored["admin_password@shop"] != stored["admin_password"]


def test_each_site_runs_php_as_its_own_user_confined_to_its_own_files(two):
    web = two[0]["web1"]
    pool = text(web, "Web | Run the wp-shop PHP-FPM pool with OPcache")
    assert "/pool.d/wp-shop.conf" in pool
    assert "user = wp-shop" in pool and "listen = /run/php/wp-shop-fpm.sock" in pool
    assert "php_admin_value[open_basedir] = /var/www/shop/:/tmp/" in pool
    assert "/var/www/wordpress" not in pool
    assert "useradd" in text(web, "Common base | Add the wp-shop system user")
    vhost = text(web, "Web | Write the nginx backend vhost (shop)")
    assert re.search(r"listen 80;\n\s+server_name shop\.example;", vhost), vhost[:800]
    assert "fastcgi_pass unix:/run/php/wp-shop-fpm.sock;" in vhost
    assert "root /var/www/shop/current;" in vhost
    assert "/run/wordpress-lb-mesh-shop/catching-up" in vhost
    first = text(web, "Web | Write the nginx backend vhost")
    assert "listen 80 default_server;" in first and "wordpress-fpm.sock" in first


def test_each_site_has_its_release_config_install_and_cron(two):
    web = two[0]["web1"]
    ops = names(web)
    for name in ("WordPress | Unpack the verified WordPress {} beside the served release (shop)",
                 "WordPress | Write wp-config.php (secrets; never shown) (shop)",
                 "WordPress install | Install WordPress unattended (once per database) (shop)",
                 "WP-Cron | Install wp-shop-cron.timer"):
        assert any(re.fullmatch(re.escape(name).replace(r"\{\}", ".+"), n) for n in ops), name
    # One download of an archive both sites use.
    assert sum(n.startswith("WordPress | Download the WordPress") for n in ops) == 1
    assert "/var/www/shop/releases" in text(web)


def test_each_further_site_runs_its_cron_at_a_second_of_its_own(two, one):
    """Twenty sites' timers firing at :00 on every web host took both cores of the bed
    for seconds each minute: the first site keeps :00 (its timer as one site had it),
    each further one a second of its own, the same on every host."""
    from types import SimpleNamespace

    from pyinfra_wordpress_lb.deploys import cron

    first = text(one["web1"], "WP-Cron | Install wordpress-cron.timer")
    assert "OnCalendar=*-*-* *:*:00\n" in first
    assert first == text(two[0]["web1"], "WP-Cron | Install wordpress-cron.timer")
    timers = [text(two[0][h], "WP-Cron | Install wp-shop-cron.timer") for h in ("web1", "web2")]
    found = re.search(r"OnCalendar=\*-\*-\* \*:\*:(\d\d)\n", timers[0])
    assert found and timers[0] == timers[1]
    assert int(found.group(1)) == cron.second(SimpleNamespace(name="shop", key="wp-shop"))
    seconds = [cron.second(SimpleNamespace(name=f"s{i}", key=f"wp-s{i}")) for i in range(2, 21)]
    assert all(1 <= s <= 59 for s in seconds) and len(set(seconds)) >= 15  # spread out


def test_the_balancer_serves_each_site_with_its_certificate_cache_and_limits(two):
    conf = text(two[0]["lb1"], "Balancer | Write the balancer vhost")
    assert "ssl_certificate /etc/wordpress-lb/tls/shop.crt;" in conf
    assert "ssl_certificate /etc/wordpress-lb/tls/site.crt;" in conf
    assert re.search(r"listen 443 ssl;\n\s+http2 on;\n\s+server_name shop\.example;", conf)
    assert "server_name www.shop.example;" in conf
    assert "return 301 https://shop.example$request_uri;" in conf
    assert "keys_zone=wordpress_lb_pages_shop:32m" in conf
    assert "zone=wordpress_lb_login_shop:10m" in conf
    assert "proxy_cache wordpress_lb_pages_shop;" in conf
    cert = text(two[0]["lb1"], "Balancer | Install the site's certificate and key (key never "
                              "shown) (shop)")
    assert "/etc/wordpress-lb/tls/shop.crt" in cert
    purge = text(two[0]["lb1"], "Balancer | Install the page cache's purge command")
    assert 'shop) dirs="/var/cache/nginx/wordpress-lb-shop" ;;' in purge


def test_each_site_has_its_own_mesh_and_backups(two):
    result = two[0]
    web = result["web1"]
    unit = text(web, "Sync mesh | Install the mesh unit (shop)")
    assert "syncthing-wordpress-shop.service" in unit and "User=wp-shop" in unit
    assert "--home=/var/lib/wp-shop/syncthing" in unit
    # Its catching-up flag in a directory of its own user's (the first site's user
    # could not remove its flag from a directory the boot gave to another site's user).
    boot = text(web, "Sync mesh | Raise the catching-up flag at every boot (shop)")
    assert "d /run/wordpress-lb-mesh-shop 0755 wp-shop wp-shop -" in boot
    assert "f /run/wordpress-lb-mesh-shop/catching-up 0644 wp-shop wp-shop -" in boot
    first = text(web, "Sync mesh | Raise the catching-up flag at every boot")
    assert "d /run/wordpress-lb-mesh 0755 wordpress wordpress -" in first
    assert "ip saddr { 10.0.0.12 } tcp dport { 22000, 22001 } accept" in text(web)
    db = names(result["db1"])
    assert "Backups | Install wordpress-backup-shop.timer" in db
    script = text(result["db1"], "Backups | Install the backup script (shop)")
    assert "dir=/var/backups/wordpress-shop" in script and "wp_shop" in script


def test_adding_a_site_leaves_the_first_sites_files_as_they_were(one, two):
    """Every operation of the one-site plan that names no other site writes the same."""
    for host in ("web1", "lb1", "db1"):
        before = dict(one[host])
        after = dict(two[0][host])
        for name, commands in before.items():
            if name in ("Balancer | Write the balancer vhost",
                        "Balancer | Install the page cache's purge command",
                        "Firewall | Write the firewall rules") or "secret" in name.lower():
                continue  # these hold every site
            if name == "Web | Run the wordpress PHP-FPM pool with OPcache":
                # The pool as it was; OPcache's size grows (test_opcache_grows_with_the_sites)
                commands = [c for c in commands if "/conf.d/" not in c]
                assert any("pool.d/wordpress.conf" in c for c in commands)
                assert [c for c in after[name] if "/conf.d/" not in c] == commands
                continue
            assert name in after, (host, name)
            if any("upload " in c for c in commands):
                assert after[name] == commands, (host, name)


def test_restore_replaces_the_named_site_alone(tmp_path, monkeypatch):
    from pyinfra_wordpress_lb.deploys import restore

    archive = tmp_path / "wp-content.tar.gz"  # @fake cannot fetch it from the db host
    archive.write_bytes(b"")
    monkeypatch.setattr(restore, "local_archive", lambda name: str(archive))
    running = ["Id=wordpress-backup-shop.timer", "SubState=waiting", "",
               "Id=syncthing-wordpress-shop.service", "SubState=running", "",
               "Id=wp-shop-cron.timer", "SubState=waiting", "",
               "Id=wordpress-backup.timer", "SubState=waiting"]
    answers = {"backup=": "backup=20261130T040000Z 5242880", "SHA256SUMS": "ok",
               "--property SubState": running}
    result = plan(SPLIT, tmp_path / "s.json", deploy_file="restore.py",
                  data={"sites": SITES, "site": "shop"}, fake_responses=answers)
    db1, web1, lb1 = dict(result["db1"]), dict(result["web1"]), dict(result["lb1"])
    load = db1["Restore | Replace the database with backup 20261130T040000Z"]
    assert "/var/backups/wordpress-shop/20261130T040000Z/database.sql.gz" in " ".join(load)
    assert "wp_shop" in " ".join(load)
    pause = "Restore | Pause backups, the mesh and WP-Cron while the site is restored"
    assert db1[pause] == ["systemctl stop wordpress-backup-shop.timer"]
    assert web1[pause] == ["systemctl stop syncthing-wordpress-shop.service wp-shop-cron.timer"]
    content = " ".join(web1["Restore | Make wp-content backup 20261130T040000Z's"])
    assert "/var/www/shop/shared/wp-content" in content and "/var/www/wordpress" not in content
    assert "/var/www/shop/current/.maintenance" in " ".join(
        web1["Restore | Show the maintenance page while the site is restored"])
    assert lb1["Restore | Empty the page cache"] == [
        "/usr/local/sbin/wordpress-lb-purge-cache shop"]


def test_a_site_listed_absent_is_served_no_more_and_removed_after_the_balancers(tmp_path):
    gone = [SITES[0], {**SITES[1], "absent": True, "purge": True}]
    result = plan(SPLIT, tmp_path / "s.json", data={"sites": gone}, fake_responses=FPM)
    conf = text(result["lb1"], "Balancer | Write the balancer vhost")
    assert "shop.example" not in conf and "wordpress_lb_pages_shop" not in conf
    web = names(result["web1"])
    assert not any("(shop)" in n for n in web if not n.startswith("Remove sites |"))
    assert "ip saddr { 10.0.0.12 } tcp dport 22000 accept" in text(result["web1"])
    for host, name in (("web1", "Remove sites | Remove the site's files (purge: shop)"),
                       ("web1", "Remove sites | Remove the site's Unix user (purge: shop)"),
                       ("db1", "Remove sites | Drop the site's database (purge: shop)"),
                       ("db1", "Remove sites | Drop the site's database accounts (purge: shop)"),
                       ("lb1", "Remove sites | Remove the site's page cache (shop)")):
        assert name in names(result[host]), (host, names(result[host]))
    order = result.order
    assert order.index("Remove sites | Remove the site's files (purge: shop)") > order.index(
        "Balancer | Write the balancer vhost")


@pytest.mark.parametrize("entry, expected", [
    ({"name": "shop", "site_url": "https://shop.example", "purge": True},
     "sites entry 2 (shop): purge = true without absent = true"),
    ({"name": "shop", "site_url": "https://shop.example", "absent": "yes"},
     "sites entry 2 (shop): absent 'yes' is not true or false"),
])
def test_removing_a_site_is_said_plainly(tmp_path, entry, expected):
    with pytest.raises(Exception) as failure:
        plan(SPLIT, tmp_path / "s.json", data={"sites": [SITES[0], entry]})
    assert expected in str(getattr(failure.value, "exception", failure.value))


def test_main_cannot_be_removed(tmp_path):
    with pytest.raises(Exception) as failure:
        plan(SPLIT, tmp_path / "s.json", data={"sites": [{"name": "main", "absent": True},
                                                          SITES[1]]})
    assert "the site `main` (the one-site settings') cannot be removed" in str(
        getattr(failure.value, "exception", failure.value))


def test_the_first_site_is_not_removed_while_first(tmp_path):
    with pytest.raises(Exception) as failure:
        plan(SPLIT, tmp_path / "s.json", data={"sites": [{**SITES[1], "absent": True},
                                                          SITES[0]]})
    assert "sites entry 1 is absent: the first site answers every name" in str(
        getattr(failure.value, "exception", failure.value))


def test_a_site_with_a_release_of_its_own_uploads_its_own_archive(tmp_path):
    archive = tmp_path / "shop.tar.gz"
    archive.write_bytes(b"not really")
    shop = {**SITES[1], "wordpress_version": "6.8.3",
            "wordpress_checksum": "sha256:" + "ab" * 32, "wordpress_archive": str(archive)}
    result = plan(SPLIT, tmp_path / "s.json", data={"sites": [SITES[0], shop]})
    web = names(result["web1"])
    assert "WordPress | Upload the WordPress 6.8.3 archive (shop)" in web
    assert sum(n.startswith("WordPress | Download the WordPress") for n in web) == 1  # main's
    unpack = text(result["web1"], "WordPress | Unpack the verified WordPress 6.8.3 beside "
                                  "the served release (shop)")
    assert "/var/www/shop" in unpack and "6.8.3-abababababab" in unpack


def test_each_further_sites_backends_are_verified_from_one_balancer_in_turn(tmp_path):
    """A page rendered per backend and site, not per balancer too: the first site's
    backends from every balancer (each one's way to them), the next from one in turn.
    (The checks are skipped by `_if` while the run goes: the rule is asked here.)"""
    from pyinfra_wordpress_lb.deploys.plan import build
    from pyinfra_wordpress_lb.deploys.verify import checks_backends
    from tests.test_plan import hosts

    layout = {"lb1": ("lb",), "lb2": ("lb",), "web1": ("web",), "web2": ("web",),
              "db1": ("db",)}
    sites = SITES + [{"name": "news", "site_url": "https://news.example"}]
    cluster = build(hosts(layout, data={"sites": sites}))
    asks = {name: [checks_backends(cluster, i, cluster.node(name)) for i in range(3)]
            for name in ("lb1", "lb2", "web1")}
    assert asks == {"lb1": [True, False, True], "lb2": [True, True, False],
                    "web1": [True, True, True]}
    result = plan({"lb": ["lb1", "lb2"], "web": ["web1", "web2"], "db": ["db1"]},
                  tmp_path / "s.json", data={"sites": sites, "lb_vip": "10.0.0.100"},
                  fake_responses=FPM)
    for lb in ("lb1", "lb2"):  # every check on every balancer, in the same order
        assert "Verify | Backend 10.0.0.13:80 serves the site (news)" in names(result[lb])


def test_opcache_grows_with_the_sites(two, one):
    """Each site has its own copy of WordPress's code: OPcache holds them all."""
    ini = "Web | Run the wordpress PHP-FPM pool with OPcache"
    assert "opcache.memory_consumption = 128" in text(one["web1"], ini)
    assert "opcache.max_accelerated_files = 20000" in text(one["web1"], ini)
    assert "opcache.memory_consumption = 176" in text(two[0]["web1"], ini)
    assert "opcache.max_accelerated_files = 24000" in text(two[0]["web1"], ini)
