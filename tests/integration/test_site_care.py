"""A site that looks after itself, on the `migrate` bed (the tutorial's two hosts: hosta is
lb + web + db, hostb is web; after the release tests): WP-Cron from the system timers,
on one host at a time; backups during load, kept and copied off; a restore after the
database was dropped and an upload deleted; bad backups refused."""

from __future__ import annotations

import json
import shlex
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.integration import mesh, wp
from tests.integration.load import Background
from tests.runner import pyinfra

pytestmark = pytest.mark.own_bed("migrate")

BACKUPS = "/var/backups/wordpress"
HANDLER = f"{mesh.UPLOADS.rsplit('/', 1)[0]}/mu-plugins/pwlb-cron-test.php"
HANDLER_CODE = """<?php
// Test bed only: a scheduled event whose runs are counted.
add_action( 'pwlb_cron_test', function ( $tag, $pause ) {
	global $wpdb;
	$wpdb->query( 'CREATE TABLE IF NOT EXISTS pwlb_cron_runs (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(64), host VARCHAR(64), at DOUBLE)' );
	if ( $pause ) {
		sleep( $pause );
	}
	$wpdb->insert( 'pwlb_cron_runs', array( 'tag' => $tag, 'host' => gethostname(), 'at' => microtime( true ) ) );
}, 10, 2 );
"""


def target(bed) -> str:
    return f"offsite@{bed.host('hostb').address}:/srv/offsite"


def args(bed) -> tuple[str, ...]:
    return ("--data", f"backup_target={target(bed)}", "--data", "backup_keep=2")


@pytest.fixture(scope="module")
def site(beds):
    bed = beds.get("seed", "12", name="test-migrate-12")
    first = pyinfra(bed.hosts_file, *args(bed))
    assert first.returncode == 0, first.why()
    again = pyinfra(bed.hosts_file, *args(bed))
    assert again.returncode == 0 and again.changed == 0, again.changed_ops
    bed.exec("hosta", f"cat > {HANDLER} <<'EOF'\n{HANDLER_CODE}EOF\nchown wordpress: {HANDLER}")
    assert mesh.wait_quiet(bed, ["hosta", "hostb"])
    bed.exec("hostb", f"test -f {HANDLER}")
    return bed


def php(bed, host: str, code: str) -> str:
    """PHP with WordPress loaded, as the pool user, on a web host (no HTTP request)."""
    script = f"$_SERVER['HTTP_HOST'] = '127.0.0.1'; require './wp-load.php'; {code}"
    return bed.exec(host, f"cd /var/www/wordpress/current && runuser -u wordpress -- "
                          f"php -r {shlex.quote(script)}")[1]


def schedule(bed, tag: str, pause: int = 0) -> None:
    php(bed, "hosta", f"wp_schedule_single_event(time() - 1, 'pwlb_cron_test', "
                      f"array('{tag}', {pause}));")


def runs(bed, tag: str) -> list[str]:
    out = php(bed, "hosta", "global $wpdb; $wpdb->suppress_errors(); echo json_encode("
                            f"$wpdb->get_col(\"SELECT host FROM pwlb_cron_runs WHERE tag='{tag}'\") ?: array());")
    return json.loads(out.strip().splitlines()[-1] or "[]")


def wait_runs(bed, tag: str, seconds: float = 90) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = runs(bed, tag)
        if found:
            return found
        time.sleep(2)
    return []


def test_a_due_event_runs_within_90_s_without_a_request(site):
    tag = f"due-{time.time_ns()}"
    began = time.monotonic()
    schedule(site, tag)
    assert wait_runs(site, tag), "the event did not run within 90 s"
    print(f"ran after {time.monotonic() - began:.1f} s")
    _, config = site.exec("hostb", "grep DISABLE_WP_CRON /var/www/wordpress/wp-config.php")
    assert "true" in config


def test_two_hosts_firing_together_run_an_event_once(site):
    for host in ("hosta", "hostb"):
        site.exec(host, "systemctl stop wordpress-cron.timer")
    try:
        tag = f"once-{time.time_ns()}"
        schedule(site, tag, pause=4)  # long enough for both runners to overlap
        for host in ("hosta", "hostb"):
            site.container(host).exec_run(["systemctl", "start", "--no-block",
                                           "wordpress-cron.service"])
        time.sleep(2)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [site.exec(h, "systemctl is-active wordpress-cron.service", check=False)[1]
                      .strip() for h in ("hosta", "hostb")]
            if all(s != "activating" for s in states):
                break
            time.sleep(1)
        assert runs(site, tag) and len(runs(site, tag)) == 1, runs(site, tag)
        logs = " ".join(site.exec(h, "journalctl -u wordpress-cron.service -n 5 --no-pager")[1]
                        for h in ("hosta", "hostb"))
        # The host second found the lock held or, its first look (the least of WordPress)
        # coming after the other had taken the event off the schedule, nothing due.
        assert ("another web host is running the scheduled events" in logs
                or "running 0 due event(s)" in logs), logs
        # The lock itself: both hosts' runners past that look at once (`--due`, as the
        # look starts WordPress in full when something is due).
        tag = f"lock-{time.time_ns()}"
        schedule(site, tag, pause=4)
        said: dict[str, str] = {}

        def run_due(host: str) -> None:
            said[host] = site.exec(host, "cd /var/www/wordpress/current && runuser -u wordpress "
                                         "-- php /usr/local/lib/wordpress-lb/wordpress-cron.php "
                                         "--due")[1]
        both = [threading.Thread(target=run_due, args=(h,)) for h in ("hosta", "hostb")]
        for thread in both:
            thread.start()
        for thread in both:
            thread.join(60)
        assert runs(site, tag) and len(runs(site, tag)) == 1, (runs(site, tag), said)
        assert sum("another web host is running the scheduled events" in out
                   for out in said.values()) == 1, said
    finally:
        for host in ("hosta", "hostb"):
            site.exec(host, "systemctl start wordpress-cron.timer")


def fire(bed, host: str) -> None:
    """What the host's timer does at the next minute (test_a_due_event_runs_within_90_s
    waits for the timer itself), now."""
    bed.exec(host, "systemctl start wordpress-cron.service")


def test_events_keep_running_when_the_host_that_ran_them_is_down(site):
    site.exec("hosta", "systemctl stop wordpress-cron.timer")
    try:
        tag = f"last-{time.time_ns()}"
        schedule(site, tag)
        fire(site, "hostb")
        assert wait_runs(site, tag) == ["hostb"]
    finally:
        site.exec("hosta", "systemctl start wordpress-cron.timer")
    site.container("hostb").stop(timeout=30)
    try:
        tag = f"after-{time.time_ns()}"
        schedule(site, tag)
        fire(site, "hosta")
        assert wait_runs(site, tag) == ["hosta"]
    finally:
        site.container("hostb").start()
        site.wait_booted("hostb")
    assert mesh.wait_quiet(site, ["hosta", "hostb"], timeout=120)


def test_backups_during_load_are_kept_and_copied_off_the_cluster(site):
    bed = site
    bed.exec("hostb", "id offsite >/dev/null 2>&1 || useradd -m -d /srv/offsite -s /bin/sh offsite; "
                      "install -d -m 700 -o offsite -g offsite /srv/offsite/.ssh")
    public = (bed.dir / "hosts.backup.pub").read_text()
    bed.exec("hostb", f"echo '{public.strip()}' > /srv/offsite/.ssh/authorized_keys && "
                      "chown offsite: /srv/offsite/.ssh/authorized_keys && "
                      "chmod 600 /srv/offsite/.ssh/authorized_keys")
    session = wp.admin(bed)
    nonce = session.get(bed.site_url + "/wp-admin/admin-ajax.php?action=rest-nonce").text
    title = f"Before the backup {time.time_ns()}"
    created = session.post(bed.site_url + "/wp-json/wp/v2/posts", headers={"X-WP-Nonce": nonce},
                           json={"title": title, "status": "publish", "content": "kept"},
                           timeout=30)
    assert created.status_code == 201
    upload = wp.upload(session, bed, "backed-up.png")
    assert mesh.wait_quiet(bed, ["hosta", "hostb"])
    with Background([bed.site_url + "/", bed.site_url + upload], fresh=True) as load:
        code, out = bed.exec("hosta", "systemctl start wordpress-backup.service", check=False)
    assert code == 0, bed.exec("hosta", "journalctl -u wordpress-backup -n 30 --no-pager")[1]
    assert load.result.sent > 20 and load.result.failed == 0, load.result.errors
    names = bed.exec("hosta", f"ls -1 {BACKUPS} | grep -v '^\\.' | sort")[1].split()
    newest = names[-1]
    bed.exec("hosta", f"cd {BACKUPS}/{newest} && sha256sum -c --quiet SHA256SUMS")
    assert bed.exec("hosta", f"cat {BACKUPS}/{newest}/OFFSITE")[1].startswith("ok ")
    bed.exec("hostb", f"cd /srv/offsite/{newest} && sha256sum -c --quiet SHA256SUMS")
    # The newest backup_keep (2) stay.
    for _ in range(2):
        bed.exec("hosta", "systemctl start wordpress-backup.service")
    assert len(bed.exec("hosta", f"ls -1 {BACKUPS} | grep -v '^\\.'")[1].split()) == 2
    bed.title, bed.upload = title, upload


def restore(bed, *more):
    return pyinfra(bed.hosts_file, *args(bed), *more, deploy="restore.py")


def test_a_missing_partial_or_corrupt_backup_is_refused_before_any_change(site):
    bed = site
    newest = bed.exec("hosta", f"ls -1 {BACKUPS} | grep -v '^\\.' | sort | tail -n 1")[1].strip()
    bed.exec("hosta", f"cp -a {BACKUPS}/{newest} {BACKUPS}/20000101T000000Z && "
                      f"truncate -s 100 {BACKUPS}/20000101T000000Z/wp-content.tar.gz && "
                      f"mkdir -p {BACKUPS}/20000101T000001Z.partial")
    try:
        cases = {"20990101T000000Z": "there is no such backup",
                 "20000101T000001Z": "it never finished",
                 "20000101T000000Z": "(checksum)"}
        for name, problem in cases.items():
            run = restore(bed, "--data", f"backup={name}")
            assert run.returncode != 0
            assert f"backup {name} on hosta cannot be restored" in run.output and problem in run.output
            assert "nothing was changed" in run.output and "Traceback" not in run.output
            assert run.changed == 0
        page = wp.http(bed).get(bed.site_url + "/", timeout=30)
        assert page.status_code == 200 and bed.title in page.text
    finally:
        bed.exec("hosta", f"rm -rf {BACKUPS}/20000101T000000Z {BACKUPS}/20000101T000001Z.partial")


def test_restore_brings_back_the_database_and_the_uploads(site):
    bed = site
    bed.exec("hosta", "mariadb -e 'DROP DATABASE wordpress'")
    for host in ("hosta", "hostb"):
        bed.exec(host, f"rm -f /var/www/wordpress/shared{bed.upload}")
    broken = wp.http(bed).get(bed.site_url + "/?p=1", timeout=30)
    assert broken.status_code >= 500
    copies = set(Path(tempfile.gettempdir()).glob("pwlb-restore-*"))
    run = restore(bed)
    assert run.returncode == 0, run.why()
    # Backups, the mesh and WP-Cron paused while the site was replaced, and run again.
    assert "Restore | Pause backups, the mesh and WP-Cron while the site is restored" \
        in run.changed_ops
    bed.exec("hosta", "systemctl is-active wordpress-backup.timer")
    for host in ("hosta", "hostb"):
        bed.exec(host, "systemctl is-active syncthing-wordpress.service wordpress-cron.timer")
    # The archive's copy on this machine is gone with the run.
    assert set(Path(tempfile.gettempdir()).glob("pwlb-restore-*")) == copies
    site_ = wp.http(bed)
    page = site_.get(bed.site_url + "/", timeout=30)
    assert page.status_code == 200 and bed.title in page.text
    for _ in range(6):
        got = site_.get(bed.site_url + bed.upload, timeout=30)
        assert got.status_code == 200 and got.content == wp.png()
    for host in ("hosta", "hostb"):
        bed.exec(host, f"test -s /var/www/wordpress/shared{bed.upload}")
        bed.exec(host, "test ! -e /var/www/wordpress/current/.maintenance")
    assert wp.logged_in(wp.login(bed.site_url, "admin", wp.secrets(bed)["admin_password"], bed))
    again = pyinfra(bed.hosts_file, *args(bed))
    assert again.returncode == 0 and again.changed == 0, again.changed_ops
