"""Zero-downtime changes of WordPress core, on a bed of its own (the tutorial's two hosts,
Debian 12, plain HTTP), each under GETs through the balancer of the front page and of
uploads:

1. a cluster deployed by the previous version of this project (one docroot per host,
   core and uploads mixed, the mesh mirroring all of it) moves to release directories;
2. WordPress 6.1 (Debian 12's) is upgraded to 6.8 (Debian 13's), database included;
3. and rolled back to 6.1;
4. a web host killed in the middle of an upgrade: no host switches, the site serves one
   release; once the host is back, a re-run finishes the upgrade.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests import testbed
from tests.integration import mesh, wp
from tests.integration.load import Background
from pyinfra_wordpress_lb.templates import php_string
from tests.runner import ROOT, pyinfra

pytestmark = pytest.mark.own_bed("migrate")

# The last commit whose deploy kept WordPress in one docroot per host.
LEGACY_COMMIT = "aa2e369883859d9666220ed507c087ec8ab42f99"
BASE = "/var/www/wordpress"


@pytest.fixture(scope="module")
def legacy(beds, tmp_path_factory):
    """The bed deployed by that earlier version, with uploads, a plugin of the site's own
    and a file of the operator's in the old docroot."""
    bed = beds.get("seed", "12", name="test-migrate-12")
    tree = tmp_path_factory.mktemp("legacy")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", LEGACY_COMMIT],
                             capture_output=True, check=False)
    assert archive.returncode == 0, (
        f"the earlier version ({LEGACY_COMMIT}) is not in this clone's history: "
        f"{archive.stderr.decode()[:300]}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    run = pyinfra(bed.hosts_file, cwd=tree)
    assert run.returncode == 0, run.why()
    for host in ("hosta", "hostb"):
        code, _ = bed.exec(host, f"test -d {BASE}/wp-includes && test ! -e {BASE}/current",
                           check=False)
        assert code == 0, f"{host} does not have the old layout"
    session = wp.admin(bed)
    uploads = [wp.upload(session, bed, f"kept-{i}.png") for i in range(3)]
    bed.exec("hosta", f"mkdir -p {BASE}/wp-content/plugins/pwlb-kept && echo '<?php' > "
                      f"{BASE}/wp-content/plugins/pwlb-kept/pwlb-kept.php", user="wordpress")
    bed.exec("hostb", f"echo 'User-agent: *' > {BASE}/robots.txt")
    assert mesh.wait_quiet(bed, ["hosta", "hostb"])
    bed.uploads = uploads
    return bed


def server_errors(bed) -> dict[str, str]:
    """The end of each host's nginx and PHP-FPM error logs (for a failed request's cause),
    nginx's "no live upstreams" (one line per request) counted, with its first and last
    (it would hide what rested the backends)."""
    log, none_left = "/var/log/nginx/error.log", "'no live upstreams'"
    return {h.name: bed.exec(h.name, f"echo \"$(grep -c {none_left} {log}) requests found no "
                                     f"live upstream, first and last:\"; grep {none_left} {log} "
                                     f"| sed -n '1p;$p'; grep -v {none_left} {log} | tail -n 30; "
                                     "tail -n 15 /var/log/php*-fpm.log", check=False)[1]
            for h in bed.hosts}


def under_load(bed, *args):
    """Deploy while GETs of the front page and every upload go through the balancer."""
    urls = [bed.site_url + "/", bed.site_url + "/?past-the-cache=1"] + \
        [bed.site_url + path for path in bed.uploads]
    with Background(urls, fresh=True) as load:
        run = pyinfra(bed.hosts_file, *args)
    assert run.returncode == 0, run.why()
    print(f"{' '.join(args) or 'deploy'}: {load.result.sent} GETs, {load.result.failed} failed")
    assert load.result.sent > 50
    if load.result.failed:
        print("failed requests:", dict(load.result.errors))
        for host, text in server_errors(bed).items():
            print(f"--- {host}: nginx and PHP-FPM error logs ---\n{text}")
    # hosta is balancer and backend; Debian 12's nginx 1.22 cuts the PHP pages it is
    # sending when it reloads (README, NOTES): at most one per client then waiting on a
    # page, only on Debian 12 (1.26 on Debian 13 does not), only PHP pages. Else none.
    allowed = load.concurrency if bed.release == "12" else 0
    assert load.result.failed <= allowed, load.result.errors
    assert all(not e.endswith(tuple(bed.uploads)) for e in load.result.errors), \
        load.result.errors
    again = pyinfra(bed.hosts_file, *args)
    assert again.returncode == 0 and again.changed == 0, again.changed_ops
    return run


def served_release(bed, host) -> str:
    return bed.exec(host, f"readlink {BASE}/current")[1].strip()


def test_the_single_docroot_moves_to_releases_without_a_failed_request(legacy):
    bed = legacy
    run = under_load(bed)
    # The earlier version's balancer had no never-rested backups: given them before any
    # backend reloads (two backends failing a request each within lb_fail_timeout left it
    # none: 557 of 7,848 GETs a 502 once, in CI).
    assert "Balancer | Give the backends never-rested backups before they change" \
        in run.changed_ops
    archive = testbed.wordpress_archive("12")
    for host in ("hosta", "hostb"):
        assert served_release(bed, host).startswith(f"releases/{archive.version}-")
        _, top = bed.exec(host, f"ls -A {BASE}")
        assert set(top.split()) <= {"releases", "shared", "current", "wp-config.php",
                                    "legacy-docroot"}, top
        for path in bed.uploads:  # every upload, in the shared tree of every host
            bed.exec(host, f"test -s {BASE}/shared{path}")
        bed.exec(host, f"test -f {BASE}/shared/wp-content/plugins/pwlb-kept/pwlb-kept.php")
    # The operator's own file is kept aside, not served, not lost.
    bed.exec("hostb", f"test -f {BASE}/legacy-docroot/robots.txt")
    # The mesh now mirrors the shared tree only.
    latency = mesh.propagation(bed, "hostb", "hosta", count=3,
                               directory=f"{BASE}/shared/wp-content/uploads")
    assert max(latency) < 5
    site = wp.http(bed)
    for path in bed.uploads:  # through the balancer, and from each backend directly
        got = site.get(bed.site_url + path, timeout=30)
        assert got.status_code == 200 and got.content == wp.png()
        for host in ("hosta", "hostb"):
            direct = wp.get(f"http://{bed.host(host).address}:{90 if host == 'hosta' else 80}",
                            path, bed=bed)
            assert direct.status_code == 200 and direct.content == wp.png(), host


def only_in(newer: testbed.Archive, older: testbed.Archive) -> str:
    """A static file the newer release has and the older one has not."""
    def names(archive):
        with tarfile.open(archive.path) as tar:
            return {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
    fresh = sorted(n for n in names(newer) - names(older)
                   if n.startswith("wp-includes/") and n.endswith(".css"))
    assert fresh, "no file only in the newer release"
    return fresh[0]


def upgrade_args(archive: testbed.Archive) -> list[str]:
    return ["--data", f"wordpress_archive={archive.path}", "--data",
            f"wordpress_version={archive.version}", "--data",
            f"wordpress_checksum={archive.checksum}"]


def db_versions(bed, host: str = "hostb") -> tuple[int, int]:
    """(what the code `host` serves expects, what the database has)."""
    _, code = bed.exec(host, f"grep -h '^\\$wp_db_version' {BASE}/current/wp-includes/version.php")
    expected = int(re.search(r"(\d+)", code).group(1))
    password = wp.secrets(bed)["db_password"]
    _, stored = wp.mariadb_as(bed, host, "wordpress", password, bed.host("hosta").address,
                              "SELECT option_value FROM wp_options WHERE option_name=\"db_version\"")
    return expected, int(stored.strip())


def test_an_upgrade_switches_every_host_and_upgrades_the_database_once(legacy):
    bed = legacy
    older, newer = testbed.wordpress_archive("12"), testbed.wordpress_archive("13")
    before = db_versions(bed)
    run = under_load(bed, *upgrade_args(newer))
    assert "WordPress install | Upgrade the database when the served release needs it " \
           "(once per database)" in run.changed_ops
    for host in ("hosta", "hostb"):
        assert served_release(bed, host).startswith(f"releases/{newer.version}-")
        # The previous release is kept, for a rollback.
        bed.exec(host, f"test -d {BASE}/releases/{older.version}-{older.sha256[:12]}")
    expected, stored = db_versions(bed)
    assert stored == expected > before[1]
    # wp-admin works, without asking for a database update.
    session = wp.admin(bed)
    dashboard = session.get(bed.site_url + "/wp-admin/", timeout=30, allow_redirects=False)
    assert dashboard.status_code == 200 and "Dashboard" in wp.title(dashboard.text)
    assert wp.http(bed).get(bed.site_url + "/" + only_in(newer, older),
                            timeout=30).status_code == 200


def test_a_rollback_switches_back_at_once(legacy):
    bed = legacy
    older, newer = testbed.wordpress_archive("12"), testbed.wordpress_archive("13")
    run = under_load(bed)
    assert not any(op.startswith(("WordPress | Upload", "WordPress | Download",
                                  "WordPress | Unpack")) for op in run.changed_ops), \
        run.changed_ops  # the kept release: no download, no unpack
    for host in ("hosta", "hostb"):
        assert served_release(bed, host) == f"releases/{older.version}-{older.sha256[:12]}"
    # A file only the newer release had is not served any more.
    gone = wp.http(bed).get(bed.site_url + "/" + only_in(newer, older), timeout=30)
    assert gone.status_code == 404
    assert wp.title(wp.http(bed).get(bed.site_url + "/", timeout=30).text) == "WordPress on pyinfra"
    # WordPress 6.8 stores passwords as bcrypt when a user logs in; releases before 6.8
    # cannot check those (README, Roll back): the administrator, who logged in on 6.8,
    # must set the password again.
    password = wp.secrets(bed)["admin_password"]
    assert not wp.logged_in(wp.login(bed.site_url, "admin", password, bed))
    script = ("$_SERVER['HTTP_HOST'] = '127.0.0.1'; require './wp-load.php'; "
              f"wp_set_password({php_string(password)}, get_user_by('login', 'admin')->ID);")
    bed.exec("hosta", f"cd {BASE}/current && runuser -u wordpress -- php -r {shlex.quote(script)}")
    assert wp.logged_in(wp.login(bed.site_url, "admin", password, bed))


def test_a_web_host_killed_during_an_upgrade_leaves_one_release_served(legacy):
    bed = legacy
    older, newer = testbed.wordpress_archive("12"), testbed.wordpress_archive("13")
    old_release = f"releases/{older.version}-{older.sha256[:12]}"
    killed = []

    # Well before the switch: the steps between are over in a moment (the releases are
    # unpacked already, from the tests above, and a host's answers are kept while nothing
    # changes on it), and the kill takes a moment to land. hostb is first asked afresh at
    # the roll call before the switch, and fails there. (At a step of pyinfra's own that
    # reads a fact as it runs, server.group, a kill landing on that read crashed pyinfra:
    # NOTES; hence not during the common base.)
    def kill_hostb_early(line: str) -> None:
        if not killed and "Starting operation: Packages | " in line:
            killed.append(time.monotonic() - load._began)
            bed.container("hostb").kill()

    urls = [bed.site_url + "/", bed.site_url + "/?past-the-cache=1"] + \
        [bed.site_url + path for path in bed.uploads]
    before = db_versions(bed, "hosta")
    try:
        with Background(urls, fresh=True) as load:
            run = pyinfra(bed.hosts_file, *upgrade_args(newer),
                          on_line=kill_hostb_early)
        assert killed, "the run never reached the step where hostb is killed"
        assert run.returncode == 1, run.why()
        assert "Traceback" not in run.output and "internal exception" not in run.output, \
            run.why()
        assert re.search(r"hostb failed at '[^']+'", run.output), run.why()
        # At the latest when it is asked afresh, before the cluster decides to switch.
        failed_at = re.search(r"hostb failed at '([^']+)'", run.output)[1]
        assert run.output.index(f"Starting operation: {failed_at}") <= run.output.index(
            "Starting operation: WordPress | Every web host answers before the switch"), failed_at
        print(f"kill during upgrade: {load.result.sent} GETs, {load.result.failed} failed")
        assert load.result.sent > 50
        # A page hostb was sending when it died cannot be retried (its headers are out), and
        # on Debian 12 hosta (balancer and backend) cuts a PHP page when its nginx reloads
        # to hold hostb out (README, NOTES): cut pages only, at most a few; nothing refused.
        assert load.result.failed <= load.concurrency, load.result.errors
        assert all(e.startswith("ChunkedEncodingError") for e in load.result.errors), \
            load.result.errors
        # The host that stayed serves the release it served; the database was not upgraded.
        assert served_release(bed, "hosta") == old_release
        assert db_versions(bed, "hosta") == before
        # The balancer keeps the failed host out until a run succeeds on it.
        _, conf = bed.exec("hosta", "cat /etc/nginx/sites-available/wordpress-lb")
        assert "# failed during the last deploy" in conf
    finally:
        bed.container("hostb").start()
        bed.wait_booted("hostb")
    again = pyinfra(bed.hosts_file, *upgrade_args(newer))
    assert again.returncode == 0, again.why()
    assert "failed at" not in again.output
    for host in ("hosta", "hostb"):
        assert served_release(bed, host).startswith(f"releases/{newer.version}-")
    _, conf = bed.exec("hosta", "cat /etc/nginx/sites-available/wordpress-lb")
    assert "# failed during the last deploy" not in conf
    for name, port in (("hosta", 90), ("hostb", 80)):  # hosta's backend is beside its balancer
        answer = wp.get(f"http://{bed.host(name).address}:{port}", "/", bed=bed)
        assert answer.status_code == 200 and wp.title(answer.text) == "WordPress on pyinfra", name
    assert pyinfra(bed.hosts_file, *upgrade_args(newer)).changed == 0



def test_a_release_that_fails_verification_on_one_host_switches_no_host(legacy, tmp_path):
    """hostb gets a damaged copy of the new release (as from a download that broke off):
    hostb fails, naming itself; hosta has the release unpacked but does not switch; the
    site keeps serving one release; the balancer holds hostb out.
    With a good copy, a re-run switches both."""
    bed = legacy
    served = served_release(bed, "hosta")
    # A release neither host has: Debian 12's WordPress, repacked with one file more.
    base = testbed.wordpress_archive("12")
    work = tmp_path / "repack"
    work.mkdir()
    with tarfile.open(base.path) as original:
        original.extractall(work, filter="tar")
    (work / "wordpress" / "pwlb-repacked.txt").write_text("a release of its own\n")
    good = tmp_path / "wordpress-repacked.tar.gz"
    with tarfile.open(good, "w:gz") as repacked:
        repacked.add(work / "wordpress", arcname="wordpress")
    damaged = tmp_path / "wordpress-damaged.tar.gz"
    damaged.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    release = ["--data", f"wordpress_version={base.version}",
               "--data", f"wordpress_checksum=sha256:{digest}"]

    def archives(for_hostb: Path) -> Path:
        text = bed.hosts_file.read_text()
        start = text.index("[hosts.hostb]")
        head, tail = text[:start], text[start:]
        text = (re.sub(r'wordpress_archive = ".*"', f'wordpress_archive = "{good}"', head)
                + re.sub(r'wordpress_archive = ".*"', f'wordpress_archive = "{for_hostb}"', tail))
        variant = bed.dir / "hosts.release-check.toml"  # same secrets file as the bed's
        variant.write_text(text)
        return variant

    urls = [bed.site_url + "/", bed.site_url + "/?past-the-cache=1"] + \
        [bed.site_url + path for path in bed.uploads]
    with Background(urls, fresh=True) as load:
        run = pyinfra(archives(damaged), *release)
    assert run.returncode == 1, run.why()
    assert "Traceback" not in run.output, run.why()
    assert re.search(r"hostb failed at 'WordPress \| Unpack the verified", run.output), run.why()
    # The balancer reloads to hold hostb out. hosta is balancer and backend, and Debian 12's
    # nginx 1.22 cuts the PHP responses it is sending when it reloads (README, NOTES): at
    # most one per client then waiting on a page (0-2 seen in our runs); nothing else fails.
    assert load.result.failed <= load.concurrency, load.result.errors
    assert all(e.startswith("ChunkedEncodingError") for e in load.result.errors), \
        load.result.errors
    new_release = f"releases/{base.version}-{digest[:12]}"
    bed.exec("hosta", f"test -d {BASE}/{new_release}")  # unpacked beside, not served
    assert served_release(bed, "hosta") == served == served_release(bed, "hostb")
    _, conf = bed.exec("hosta", "cat /etc/nginx/sites-available/wordpress-lb")
    assert "# failed during the last deploy" in conf
    # A good copy everywhere: the cluster switches, and the pool is whole again.
    again = pyinfra(archives(good), *release)
    assert again.returncode == 0, again.why()
    for host in ("hosta", "hostb"):
        assert served_release(bed, host) == new_release
    _, conf = bed.exec("hosta", "cat /etc/nginx/sites-available/wordpress-lb")
    assert "# failed during the last deploy" not in conf
