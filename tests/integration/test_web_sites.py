"""Two sites on the split bed: a second site added under load on the first (no GET of it
fails), a third added and removed under load on both; the second served by its own name
and certificate, its PHP, files, database account and mesh its own; upgraded alone;
removed, then purged. Run right after the shared split bed's deploy (marker
`after_deploy`); the bed is left as it was (its own deploy then changes nothing)."""

from __future__ import annotations

import hashlib
import json
import shlex
import tarfile
import time

import pytest
import urllib3

from tests import testbed
from tests.integration import wp
from tests.integration.load import Background, resolving
from tests.runner import pyinfra

pytestmark = pytest.mark.after_deploy

SHOP = "shop.pwlb.test"
SHOP_TITLE = "The shop on pyinfra"
NEWS, NEWS_TITLE = "news.pwlb.test", "The news on pyinfra"


@pytest.fixture(scope="module")
def two_sites(beds):
    """The split bed with a second site `shop` added, under GETs of the first."""
    bed, _, _ = beds.deployed("split", "13")
    sites = [{"name": "main", "site_url": bed.site_url},
             {"name": "shop", "site_url": f"https://{SHOP}", "site_title": SHOP_TITLE}]
    args = ("--data", "sites=" + json.dumps(sites))
    urls = [bed.site_url + "/", bed.site_url + "/?past-the-cache=1"]
    with Background(urls, verify=wp.verify(bed), fresh=True) as load:
        added = beds.run(bed, *args)
    again = beds.run(bed, *args)
    return bed, added, again, load.result


def shop_get(bed, path: str = "/", name: str = SHOP) -> urllib3.BaseHTTPResponse:
    """GET the shop (or the site of that name) through the shared address by its own
    name (SNI and Host), its certificate checked against the bed's CA for that name."""
    pool = urllib3.HTTPSConnectionPool(bed.vip, 443, server_hostname=name,
                                       assert_hostname=name, ca_certs=str(bed.ca_file),
                                       cert_reqs="CERT_REQUIRED", retries=False, timeout=30)
    return pool.request("GET", path, headers={"Host": name}, redirect=False)


def test_a_second_site_is_added_without_failing_a_get_of_the_first(two_sites):
    bed, added, again, load = two_sites
    assert added.returncode == 0, added.output[-6000:]
    assert added.changed > 0
    print(f"adding a site: {load.sent} GETs of the first, {load.failed} failed")
    assert load.sent > 50 and load.failed == 0, load.errors
    assert again.returncode == 0 and again.changed == 0, again.output[-6000:]


def test_a_third_site_comes_and_goes_without_failing_a_get_of_the_other_two(two_sites, beds):
    """Two sites serving: a third is added under GETs of both (cached and uncached
    pages), then removed and purged under GETs of both; each next run changes nothing."""
    bed = two_sites[0]
    three = [{"name": "main", "site_url": bed.site_url},
             {"name": "shop", "site_url": f"https://{SHOP}", "site_title": SHOP_TITLE},
             {"name": "news", "site_url": f"https://{NEWS}", "site_title": NEWS_TITLE}]
    args = ("--data", "sites=" + json.dumps(three))
    urls = [bed.site_url + "/", bed.site_url + "/?past-the-cache=1",
            f"https://{SHOP}/", f"https://{SHOP}/?past-the-cache=1"]
    with resolving(SHOP, bed.vip):
        with Background(urls, verify=wp.verify(bed), fresh=True) as load:
            added = beds.run(bed, *args)
        assert added.returncode == 0, added.output[-6000:]
        print(f"adding a third site: {load.result.sent} GETs of the two, "
              f"{load.result.failed} failed")
        assert load.result.sent > 50 and load.result.failed == 0, load.result.errors
        again = beds.run(bed, *args)
        assert again.returncode == 0 and again.changed == 0, again.changed_ops
        news = shop_get(bed, name=NEWS)
        assert news.status == 200 and wp.title(news.data.decode()) == NEWS_TITLE
        three[2].update(absent=True, purge=True)
        args = ("--data", "sites=" + json.dumps(three))
        with Background(urls, verify=wp.verify(bed), fresh=True) as load:
            removed = beds.run(bed, *args)
        assert removed.returncode == 0, removed.output[-6000:]
        print(f"removing it: {load.result.sent} GETs of the two, {load.result.failed} failed")
        assert load.result.sent > 20 and load.result.failed == 0, load.result.errors
    again = beds.run(bed, *args)
    assert again.returncode == 0 and again.changed == 0, again.changed_ops
    bed.exec("web1", "test ! -e /var/www/news && ! id wp-news")


def test_each_site_answers_by_its_own_name_with_its_own_certificate(two_sites):
    bed = two_sites[0]
    shop = shop_get(bed)
    assert shop.status == 200, shop.data[:500]
    assert wp.title(shop.data.decode()) == SHOP_TITLE
    main = wp.get(bed.site_url, "/", bed=bed)
    assert main.status_code == 200 and wp.title(main.text) != SHOP_TITLE
    # Each site's page cache is its own: a cached page of one never answers the other.
    assert wp.title(shop_get(bed).data.decode()) == SHOP_TITLE
    assert wp.title(wp.get(bed.site_url, "/", bed=bed).text) != SHOP_TITLE


def test_a_sites_php_cannot_read_another_sites_files(two_sites):
    bed = two_sites[0]
    probe = "/var/www/shop/current/pwlb-isolation.php"
    bed.exec("web1", "printf '%s' " + shlex.quote(
        "<?php echo json_encode(array("
        "@file_get_contents('/var/www/shop/wp-config.php') !== false, "
        "@file_get_contents('/var/www/wordpress/wp-config.php') !== false, "
        "@scandir('/var/www/wordpress/shared/wp-content/uploads') !== false, "
        "get_current_user(), posix_geteuid()));") + f" > {probe} && chown wp-shop: {probe}")
    try:
        web1 = next(h for h in bed.group("web") if h.name == "web1")
        response = wp.get(f"http://{web1.address}", "/pwlb-isolation.php",
                          headers={"Host": SHOP})
        own, other, other_uploads, _, _ = response.json()
        assert (own, other, other_uploads) == (True, False, False), response.text
    finally:
        bed.exec("web1", f"rm -f {probe}")
    # Below PHP's own limits too: the shop's Unix user cannot read the other's config.
    code, _ = bed.exec("web1", "runuser -u wp-shop -- cat /var/www/wordpress/wp-config.php",
                       check=False)
    assert code != 0


def test_a_sites_database_account_cannot_read_another_sites_database(two_sites):
    bed = two_sites[0]
    password = wp.secrets(bed)["db_password@shop"]
    db1 = next(h for h in bed.group("db") if h.name == "db1")
    script = "/root/pwlb-db-isolation.php"
    php = ("<?php mysqli_report(MYSQLI_REPORT_OFF); "
           f"$db = new mysqli({json.dumps(db1.address)}, 'wp_shop', "
           f"file_get_contents('/root/pwlb-db-isolation.pw'), 'wp_shop'); "
           "$own = $db->query('SELECT COUNT(*) FROM wp_shop.wp_options'); "
           "$other = $db->query('SELECT COUNT(*) FROM wordpress.wp_options'); "
           "echo json_encode(array($own !== false, $other !== false, $db->error));")
    bed.exec("web1", f"umask 077; printf '%s' {shlex.quote(password)} > /root/pwlb-db-isolation.pw"
                     f" && printf '%s' {shlex.quote(php)} > {script}")
    try:
        _, out = bed.exec("web1", f"php {script}")
    finally:
        bed.exec("web1", f"rm -f {script} /root/pwlb-db-isolation.pw")
    own, other, error = json.loads(out)
    assert own and not other, out
    assert "denied" in error, error


def test_a_web_host_back_from_a_reboot_serves_every_site(two_sites, beds):
    """At boot each site's catch-up removes its own catching-up flag, in a directory of
    its own user's: with the flags in one shared directory, the boot gave it to one
    site's user, the other's catch-up failed and its backend answered 503 for good."""
    bed = two_sites[0]
    web2 = bed.host("web2").address
    bed.container("web2").restart()
    bed.wait_booted("web2")
    answers: dict = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answers = {name: bed.exec("lb1", f"curl -s -o /dev/null -m 5 -w '%{{http_code}}' "
                                         f"-H 'Host: {host}' http://{web2}/",
                                  check=False)[1].strip()
                   for name, host in (("main", wp.site_host(bed)), ("shop", SHOP))}
        if set(answers.values()) == {"200"}:
            break
        time.sleep(2)
    assert answers == {"main": "200", "shop": "200"}, answers
    bed.exec("web2", "systemctl is-active wordpress-lb-mesh-catch-up.service "
                     "wordpress-lb-mesh-catch-up-shop.service")
    sites = [{"name": "main", "site_url": bed.site_url},
             {"name": "shop", "site_url": f"https://{SHOP}", "site_title": SHOP_TITLE}]
    again = beds.run(bed, "--data", "sites=" + json.dumps(sites))
    assert again.returncode == 0 and again.changed == 0, again.changed_ops


def test_a_sites_mesh_carries_its_uploads_to_the_other_web_host(two_sites):
    bed = two_sites[0]
    for unit in ("syncthing-wordpress-shop.service", "wp-shop-cron.timer"):
        _, state = bed.exec("web2", f"systemctl is-active {unit}", check=False)
        assert state.strip() == "active", unit
    _, state = bed.exec("db1", "systemctl is-active wordpress-backup-shop.timer", check=False)
    assert state.strip() == "active"
    path = "/var/www/shop/shared/wp-content/uploads/pwlb-mesh-shop.txt"
    bed.exec("web1", f"runuser -u wp-shop -- sh -c 'echo shop > {path}'")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        code, owner = bed.exec("web2", f"stat -c %U {path}", check=False)
        if code == 0:
            break
        time.sleep(0.5)
    assert code == 0 and owner.strip() == "wp-shop", owner
    # The other site's tree has no such file: each mesh carries its own site's.
    code, _ = bed.exec("web2", "test -e /var/www/wordpress/shared/wp-content/uploads/"
                               "pwlb-mesh-shop.txt", check=False)
    assert code != 0
    bed.exec("web1", f"rm -f {path}")
    _, out = bed.exec("lb1", "/usr/local/sbin/wordpress-lb-purge-cache shop")
    assert "page cache of shop emptied" in out


def test_status_shows_a_row_per_site(two_sites, beds):
    bed = two_sites[0]
    # (the shop's backup only: the split bed's status tests count the first site's)
    bed.exec("db1", "systemctl start wordpress-backup-shop.service")
    bed.exec("web1", "systemctl start wordpress-cron.service wp-shop-cron.service")
    sites = [{"name": "main", "site_url": bed.site_url},
             {"name": "shop", "site_url": f"https://{SHOP}", "site_title": SHOP_TITLE}]
    run = pyinfra(bed.hosts_file, "--data", "sites=" + json.dumps(sites), "--data",
                  "status_format=json", deploy="status.py", timeout=300)
    start = run.output.index('{\n  "verdict"')
    document, _ = json.JSONDecoder().raw_decode(run.output[start:])
    assert document["verdict"] == 0 == run.returncode, run.output[-3000:]
    found = {(r["host"], r["role"]): r for r in document["rows"]}
    main, shop = (found[(f"(site {name})", "cluster")]["checks"] for name in ("main", "shop"))
    assert shop["site"] == f"https://{SHOP}" and shop["answer"].startswith("HTTP 200 in ")
    assert main["answer"].startswith("HTTP 200 in ")
    assert shop["release"] == main["release"] != "none"
    assert shop["backup"].endswith("MB") and shop["certificate"].endswith("days left")
    assert shop["cron"].startswith("last run ")
    assert all(not key.startswith("site_") for row in found.values() for key in row)


def test_upgrading_one_sites_wordpress_leaves_the_other_as_it_is(two_sites, beds, tmp_path):
    """The shop's entry names a release of its own (uploaded from its own archive): the
    shop switches on both web hosts, the first site stays on its release and fails no
    GET meanwhile; a second run changes nothing."""
    bed = two_sites[0]
    base = testbed.wordpress_archive("13")
    work = tmp_path / "repack"
    work.mkdir()
    with tarfile.open(base.path) as original:
        original.extractall(work, filter="tar")
    (work / "wordpress" / "pwlb-shop-release.txt").write_text("the shop's own release\n")
    archive = tmp_path / "wordpress-shop.tar.gz"
    with tarfile.open(archive, "w:gz") as repacked:
        repacked.add(work / "wordpress", arcname="wordpress")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    sites = [{"name": "main", "site_url": bed.site_url},
             {"name": "shop", "site_url": f"https://{SHOP}", "site_title": SHOP_TITLE,
              "wordpress_version": base.version, "wordpress_checksum": f"sha256:{digest}",
              "wordpress_archive": str(archive)}]
    args = ("--data", "sites=" + json.dumps(sites))
    _, main_before = bed.exec("web1", "readlink /var/www/wordpress/current")
    urls = [bed.site_url + "/", bed.site_url + "/?past-the-cache=1"]
    with Background(urls, verify=wp.verify(bed), fresh=True) as load:
        upgraded = beds.run(bed, *args)
    assert upgraded.returncode == 0, upgraded.output[-6000:]
    assert load.result.sent > 20 and load.result.failed == 0, load.result.errors
    for web in ("web1", "web2"):
        _, shop = bed.exec(web, "readlink /var/www/shop/current")
        assert shop.strip() == f"releases/{base.version}-{digest[:12]}", (web, shop)
        _, main = bed.exec(web, "readlink /var/www/wordpress/current")
        assert main == main_before, (web, main)
    page = shop_get(bed, "/pwlb-shop-release.txt")
    assert page.status == 200 and page.data == b"the shop's own release\n"
    assert wp.get(bed.site_url, "/pwlb-shop-release.txt", bed=bed).status_code == 404
    again = beds.run(bed, *args)
    assert again.returncode == 0 and again.changed == 0, again.changed_ops


def test_removing_a_site_fails_no_get_of_the_first_and_keeps_its_data_unless_purged(two_sites, beds):
    """`absent = true`: the balancers stop serving it, then its units, pool and vhost go;
    its files, database and a final backup stay (`purge = true` then deletes them). Then
    the entry may leave the list: the bed's own deploy (one site, no `sites`) changes
    nothing."""
    bed = two_sites[0]
    sites = [{"name": "main", "site_url": bed.site_url},
             {"name": "shop", "site_url": f"https://{SHOP}", "site_title": SHOP_TITLE,
              "absent": True}]
    args = ("--data", "sites=" + json.dumps(sites))
    _, before = bed.exec("db1", "ls /var/backups/wordpress-shop")
    urls = [bed.site_url + "/", bed.site_url + "/?past-the-cache=1"]
    with Background(urls, verify=wp.verify(bed), fresh=True) as load:
        removed = beds.run(bed, *args)
    assert removed.returncode == 0, removed.output[-6000:]
    result = load.result
    print(f"removing a site: {result.sent} GETs of the first, {result.failed} failed")
    assert result.sent > 20 and result.failed == 0, result.errors
    again = beds.run(bed, *args)
    assert again.returncode == 0 and again.changed == 0, again.changed_ops
    for web in ("web1", "web2"):
        bed.exec(web, "test ! -e /etc/nginx/sites-available/wp-shop && "
                      "! ls /etc/php/*/fpm/pool.d/wp-shop.conf 2>/dev/null && "
                      "! systemctl is-active syncthing-wordpress-shop.service wp-shop-cron.timer")
        bed.exec(web, "test -f /var/www/shop/wp-config.php && id wp-shop")  # kept
    _, databases = bed.exec("db1", "mariadb -N -e 'SHOW DATABASES'")
    assert "wp_shop" in databases.split()
    _, after = bed.exec("db1", "ls /var/backups/wordpress-shop")
    assert len(after.split()) == len(before.split()) + 1, (before, after)  # the final one
    bed.exec("db1", "test ! -e /etc/systemd/system/wordpress-backup-shop.timer")
    # purge: its files, database, account, user and backups go too.
    sites[1]["purge"] = True
    purged = beds.run(bed, "--data", "sites=" + json.dumps(sites))
    assert purged.returncode == 0, purged.output[-6000:]
    for web in ("web1", "web2"):
        bed.exec(web, "test ! -e /var/www/shop && ! id wp-shop && test ! -e /var/lib/wp-shop")
    _, databases = bed.exec("db1", "mariadb -N -e 'SHOW DATABASES'")
    assert "wp_shop" not in databases.split()
    _, accounts = bed.exec("db1", "mariadb -N -e \"SELECT COUNT(*) FROM mysql.user "
                                  "WHERE user = 'wp_shop'\"")
    assert accounts.strip() == "0"
    bed.exec("db1", "test ! -e /var/backups/wordpress-shop")
    plain = beds.run(bed)
    assert plain.returncode == 0 and plain.changed == 0, plain.changed_ops
