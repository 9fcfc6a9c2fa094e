"""Two sites on the split bed: a second site added under load on the first (no GET of it
fails); two WordPress networks (subdirectory, subdomain) added and removed under load
on both (web2 killed during the removal), their sub-sites served, logged in to,
rate-limited and run by WP-Cron; the second served by its own name
and certificate, its PHP, files, database account and mesh its own; upgraded alone;
removed, then purged. Run right after the shared split bed's deploy (marker
`after_deploy`); the bed is left as it was (its own deploy then changes nothing)."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import tarfile
import time
from urllib.parse import urlsplit

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
        added = beds.run(bed, *args, "-v")  # (-v: each check's "answers at" line)
    again = beds.run(bed, *args, "-v")
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
    # The run that added it checked it on each backend, through each balancer and on the
    # shared address; the one that changed nothing checks it once, through one balancer
    # past its cache (deploys/verify.py).
    assert _checked(added.output, "(shop)") == {"backend": 2, "balancer": 2, "shared": 1,
                                                "http": 2}
    assert _checked(again.output, "(shop)") == {"backend": 0, "balancer": 1, "shared": 0,
                                                "http": 1}
    assert _checked(again.output, "", first=True) == {"backend": 4, "balancer": 2,
                                                      "shared": 1, "http": 2}


def _checked(output: str, tag: str, first: bool = False) -> dict:
    """How many of the verify tier's checks of a site answered, by kind: of a backend,
    through a balancer, on the shared address (`first`: the checks without a site tag, the first site's). Read
    from a run with `-v` (pyinfra prints a check's "noop: ... answers at" line then)."""
    found = {"backend": 0, "balancer": 0, "shared": 0, "http": 0}
    for section in output.split("--> Starting operation: ")[1:]:
        head, _, body = section.partition("\n")
        if not head.startswith("Verify |") or (head.rstrip().endswith(")") if first
                                                else tag not in head):
            continue
        kind = ("backend" if "Backend" in head else
                "balancer" if "through this balancer" in head else
                "shared" if "shared address" in head else
                "http" if "Plain HTTP" in head else None)
        if kind:
            found[kind] += body.split("\n\n")[0].count(" answers at ")
    return found


MAGS, MAGS_TITLE = "mags.pwlb.test", "The magazines on pyinfra"
SPORT_TITLE = "Sport on pyinfra"


def sites_with_networks(bed) -> list[dict]:
    """The two sites, and two WordPress networks: `news` (sub-sites under its paths) and
    `mags` (sub-sites under its name)."""
    return [{"name": "main", "site_url": bed.site_url},
            {"name": "shop", "site_url": f"https://{SHOP}", "site_title": SHOP_TITLE},
            {"name": "news", "site_url": f"https://{NEWS}", "site_title": NEWS_TITLE,
             "multisite": "subdirectory"},
            {"name": "mags", "site_url": f"https://{MAGS}", "site_title": MAGS_TITLE,
             "multisite": "subdomain"}]


def new_sub_site(bed, site: str, domain: str, path: str) -> str:
    """Make a site of a network as Network Admin would (WordPress's own function), on
    web1 as the network's user; returns its id."""
    script = ("$_SERVER['HTTP_HOST'] = " + repr(f"{site}.pwlb.test") + "; "
              "$_SERVER['REQUEST_URI'] = '/'; $_SERVER['REMOTE_ADDR'] = '127.0.0.1'; "
              "require './wp-load.php'; "
              f"$id = get_blog_id_from_url({domain!r}, {path!r}) "
              f"?: wpmu_create_blog({domain!r}, {path!r}, {SPORT_TITLE!r}, 1); "
              "echo PHP_EOL, is_wp_error($id) ? 'error: ' . $id->get_error_message() : $id;")
    _, out = bed.exec("web1", f"cd /var/www/{site}/current && runuser -u wp-{site} -- "
                              f"php -r {shlex.quote(script)}")
    made = out.strip().splitlines()[-1]
    assert made.isdigit(), out
    return made


def curl(bed, names: list[str], args: str) -> str:
    """curl on web2 (it trusts the cluster's CA), `names` resolved to the shared
    address; a cookie jar of its own."""
    resolve = " ".join(f"--resolve {n}:443:{bed.vip} --resolve {n}:80:{bed.vip}"
                       for n in names)
    _, out = bed.exec("web2", f"curl -s {resolve} -c /tmp/pwlb-jar -b /tmp/pwlb-jar {args}",
                      check=False)
    return out


def logged_in_elsewhere(bed, main: str, other: str, password: str) -> list[str]:
    """Log in at a network's main site, then ask a sub-site's admin with those cookies:
    the login's status, the admin's."""
    bed.exec("web2", "rm -f /tmp/pwlb-jar")
    names = [main, urlsplit(other).hostname]
    curl(bed, names, f"-o /dev/null https://{main}/wp-login.php")  # the test cookie
    login = curl(bed, names, "-o /dev/null -w '%{http_code}' --data-urlencode log=admin "
                             f"--data-urlencode pwd={shlex.quote(password)} "
                             f"-d wp-submit=Log+In -d testcookie=1 https://{main}/wp-login.php")
    admin = curl(bed, names, f"-o /dev/null -w '%{{http_code}}' {other}")
    bed.exec("web2", "rm -f /tmp/pwlb-jar")
    return [login, admin]


@pytest.fixture(scope="module")
def networks(two_sites, beds):
    """Two sites serving: two networks added under GETs of both (cached and uncached
    pages): `news` installed as one, `mags` installed as one site then turned into a
    network by the next run; in each a sub-site made as Network Admin would."""
    bed = two_sites[0]
    sites = sites_with_networks(bed)
    one_site = [*sites[:3], {k: v for k, v in sites[3].items() if k != "multisite"}]
    urls = [bed.site_url + "/", bed.site_url + "/?past-the-cache=1",
            f"https://{SHOP}/", f"https://{SHOP}/?past-the-cache=1"]
    with resolving(SHOP, bed.vip):
        with Background(urls, verify=wp.verify(bed), fresh=True) as load:
            added = beds.run(bed, "--data", "sites=" + json.dumps(one_site))
    turned = beds.run(bed, "--data", "sites=" + json.dumps(sites))
    again = beds.run(bed, "--data", "sites=" + json.dumps(sites))
    if added.returncode == 0 and turned.returncode == 0:
        new_sub_site(bed, "news", NEWS, "/sport/")
        new_sub_site(bed, "mags", f"sport.{MAGS}", "/")
    return bed, (added, turned), again, load.result


def test_two_networks_are_added_without_failing_a_get_of_the_other_two(networks):
    bed, (added, turned), again, load = networks
    assert added.returncode == 0, added.output[-6000:]
    # An installed site turned into a network: its network installed by that run.
    assert turned.returncode == 0, turned.output[-6000:]
    assert turned.results["WordPress install | Install WordPress unattended (once per "
                          "database) (mags)"]["success"] == 1, turned.changed_ops
    print(f"adding two networks: {load.sent} GETs of the two sites, {load.failed} failed")
    assert load.sent > 50 and load.failed == 0, load.errors
    assert again.returncode == 0 and again.changed == 0, again.changed_ops
    for name, title in ((NEWS, NEWS_TITLE), (MAGS, MAGS_TITLE)):
        page = shop_get(bed, name=name)
        assert page.status == 200 and wp.title(page.data.decode()) == title


def test_a_subdirectory_networks_sites_are_served_logged_in_to_and_limited(networks):
    bed = networks[0]
    sport = shop_get(bed, "/sport/", name=NEWS)
    assert sport.status == 200 and wp.title(sport.data.decode()) == SPORT_TITLE
    # Its core files and scripts come from the network's release, by the site's path.
    style = shop_get(bed, "/sport/wp-includes/css/dashicons.min.css", name=NEWS)
    assert style.status == 200 and b"dashicons" in style.data
    # Its admin is never cached; logged out, it sends to the login page.
    for _ in range(2):
        admin = shop_get(bed, "/sport/wp-admin/", name=NEWS)
        assert admin.status == 302 and admin.headers["X-Cache"] == "BYPASS"
        assert "wp-login.php" in admin.headers["Location"]
    slash = shop_get(bed, "/sport/wp-admin", name=NEWS)
    assert slash.status == 301 and slash.headers["Location"].endswith("/sport/wp-admin/")
    # Logged in at the network's main site, the administrator is in the sub-site's admin
    # (the cookies are the network's).
    assert logged_in_elsewhere(bed, NEWS, f"https://{NEWS}/sport/wp-admin/",
                               wp.secrets(bed)["admin_password@news"]) == ["302", "200"]
    # Its logins have the site's limit too (login_burst 10 pass, then 10 a minute).
    _, out = bed.exec("web2", (
        f"for i in $(seq 30); do curl -s --resolve {NEWS}:443:{bed.vip} -o /dev/null "
        "-w '%{http_code}\\n' -d log=admin -d pwd=wrong-$i -d wp-submit=Log+In "
        f"https://{NEWS}/sport/wp-login.php; done"))
    codes = out.split()
    assert len(codes) == 30 and codes.count("429") >= 15, codes
    assert set(codes) <= {"200", "429"}, codes


def test_a_subdomain_networks_sites_answer_by_their_own_names(networks):
    bed = networks[0]
    name = f"sport.{MAGS}"
    sport = shop_get(bed, name=name)  # the certificate covers it (*.mags.pwlb.test)
    assert sport.status == 200 and wp.title(sport.data.decode()) == SPORT_TITLE
    assert wp.title(shop_get(bed, name=MAGS).data.decode()) == MAGS_TITLE  # its own cache
    # Plain HTTP moves to HTTPS by the sub-site's own name.
    moved = curl(bed, [name], f"-o /dev/null -w '%{{redirect_url}}' http://{name}/about/")
    assert moved == f"https://{name}/about/", moved
    # Logged in at the network's main site, the administrator is in the sub-site's admin
    # (the cookies are for the network's domain).
    assert logged_in_elsewhere(bed, MAGS, f"https://{name}/wp-admin/",
                               wp.secrets(bed)["admin_password@mags"]) == ["302", "200"]


def test_wp_cron_runs_the_events_of_every_site_of_a_network(networks):
    bed = networks[0]
    # The sub-site's events in a PHP of its own, then the main site's (again when the
    # timer on a web host held a lock at that moment).
    for _ in range(5):
        _, out = bed.exec("web1", "cd /var/www/news/current && runuser -u wp-news -- php "
                                  "/usr/local/lib/wordpress-lb/wp-news-cron.php")
        if "another web host" not in out:
            break
        time.sleep(3)
    assert out.count("due event(s)") == 2, out


def test_the_networks_go_under_gets_of_the_other_two_though_a_web_host_dies(networks, beds):
    """The two networks removed (purge) under GETs of the two sites, and web2 killed as
    the removal begins: the run names web2 and removes them from the other hosts, the
    two sites stay served; web2 back, the next run removes them there too, and the one
    after changes nothing."""
    bed = networks[0]
    sites = sites_with_networks(bed)
    for entry in sites[2:]:
        entry.update(absent=True, purge=True)
    args = ("--data", "sites=" + json.dumps(sites))
    urls = [bed.site_url + "/", bed.site_url + "/?past-the-cache=1",
            f"https://{SHOP}/", f"https://{SHOP}/?past-the-cache=1"]
    killed = []

    def kill_web2(line: str) -> None:
        if not killed and "Starting operation: Remove sites | " in line:
            killed.append(line)
            bed.container("web2").kill()

    try:
        with resolving(SHOP, bed.vip):
            with Background(urls, verify=wp.verify(bed), fresh=True) as load:
                removed = beds.run(bed, *args, on_line=kill_web2)
        assert killed, "the run never reached the removal"
        assert removed.returncode == 1, removed.why()
        assert "Traceback" not in removed.output, removed.why()
        assert re.search(r"web2 failed at [\"'][^\"']+", removed.output), removed.why()
        print(f"removing them, web2 killed: {load.result.sent} GETs of the two, "
              f"{load.result.failed} failed")
        # A page web2 was sending when it died cannot be retried (its headers are out):
        # cut pages only, at most one per client; nothing refused.
        assert load.result.sent > 20 and load.result.failed <= load.concurrency, \
            load.result.errors
        assert all(e.startswith("ChunkedEncodingError") for e in load.result.errors), \
            load.result.errors
        bed.exec("web1", "test ! -e /var/www/news && ! id wp-news && ! id wp-mags")
    finally:
        bed.container("web2").start()
        bed.wait_booted("web2")
    back = beds.run(bed, *args)
    assert back.returncode == 0, back.why()
    bed.exec("web2", "test ! -e /var/www/news && ! test -e /var/www/mags && ! id wp-news "
                     "&& ! test -e /etc/nginx/sites-available/wp-mags")
    again = beds.run(bed, *args)
    assert again.returncode == 0 and again.changed == 0, again.changed_ops
    assert shop_get(bed).status == 200


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
    # The quiet re-run's check: the title from the site's must-use plugin, no page.
    check = shop_get(bed, "/?pwlb-verify")
    assert check.status == 200 and check.headers.get("X-Cache") != "HIT"
    assert check.data.decode() == f"<title>{SHOP_TITLE}</title>\n"
    # The deploy's PHP questions (is it installed, its database version) keep their
    # compiled scripts in each site user's own home, no one else's to write.
    for user in ("wordpress", "wp-shop"):
        _, owner = bed.exec("web1", f"stat -c '%U %a' ~{user}/.cache/wordpress-lb-php")
        assert owner.split() == [user, "700"], owner


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
