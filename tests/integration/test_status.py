"""The operator's view (`pyinfra -y inventory.py status.py`) on the shared split bed:
0 and no change when healthy; 1 naming the cause for each kind of trouble (each put
right again before the next); 2 when a host is down."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.integration import mesh
from tests.runner import pyinfra

BACKUPS = "/var/backups/wordpress"
CERT = "/etc/wordpress-lb/tls/site.crt"


@pytest.fixture(scope="module")
def split(beds):
    bed, _, _ = beds.deployed("split", "13")
    # A healthy site has a recent backup.
    bed.exec("db1", "systemctl start wordpress-backup.service")
    return bed


def status(bed, *args):
    return pyinfra(bed.hosts_file, *args, deploy="status.py", timeout=300)


def rows(bed) -> dict:
    run = status(bed, "--data", "status_format=json")
    start = run.output.index('{\n  "verdict"')
    document, _ = json.JSONDecoder().raw_decode(run.output[start:])
    assert document["verdict"] == run.returncode, run.output[-2000:]
    return {(r["host"], r["role"]): r for r in document["rows"]}


def attention(bed, host: str, role: str, words: str):
    """The command exits 1 and the row of this host and role says `words`."""
    run = status(bed)
    assert run.returncode == 1, run.output[-3000:]
    assert "NEEDS ATTENTION" in run.output
    row = rows(bed)[(host, role)]
    assert row["verdict"] == "attention"
    assert any(words in problem for problem in row["problems"]), row["problems"]
    return run


def test_a_healthy_cluster_exits_0_and_changes_nothing(split):
    # WP-Cron has run at least once (a bed just deployed may not have reached its minute).
    split.exec("web1", "systemctl start wordpress-cron.service")
    run = status(split)
    assert run.returncode == 0, run.output[-3000:]
    assert run.changed == 0, run.changed_ops
    assert "ALL WELL" in run.output
    found = rows(split)
    assert found[("lb1", "lb")]["checks"]["backends"] == {
        f"{split.host('web1').address}:80": "up", f"{split.host('web2').address}:80": "up"}
    holders = [h for h in ("lb1", "lb2") if found[(h, "lb")]["checks"]["address"] == split.vip]
    assert len(holders) == 1
    assert found[("web1", "web")]["checks"]["release"] == found[("web2", "web")]["checks"]["release"]
    assert found[("db1", "db")]["checks"]["backup"].endswith("MB")
    # The site's row: what a visitor gets, and what the host rows say of the site.
    site = found[("(site)", "cluster")]["checks"]
    assert site["answer"].startswith("HTTP 200 in ")
    assert site["release"] == found[("web1", "web")]["checks"]["release"]
    assert site["backup"] == found[("db1", "db")]["checks"]["backup"]
    assert site["certificate"] == min((found[(h, "lb")]["checks"]["certificate"]
                                       for h in ("lb1", "lb2")), key=lambda d: int(d.split()[0]))
    assert re.fullmatch(r"last run \d+ (s|min|h|d) ago on web[12]", site["cron"]), site["cron"]
    assert all("cron_last" not in row for row in found.values())


def test_php_fpm_stopped_on_a_web_host(split):
    split.exec("web2", "systemctl stop 'php*-fpm.service'")
    try:
        attention(split, "web2", "web", "php-fpm is not running")
        # The balancers see it too: the backend fails.
        assert rows(split)[("lb1", "lb")]["checks"]["backends"][
            f"{split.host('web2').address}:80"].startswith("failing")
    finally:
        split.exec("web2", "systemctl start 'php*-fpm.service' --all")


def test_the_mesh_stopped(split):
    split.exec("web1", "systemctl stop syncthing-wordpress.service")
    try:
        attention(split, "web1", "web", "the sync mesh (syncthing-wordpress.service) is stopped")
    finally:
        split.exec("web1", "systemctl start syncthing-wordpress.service")
    assert mesh.wait_quiet(split, ["web1", "web2"], timeout=60)
    assert split.exec("web1", "systemctl is-active wordpress-lb-mesh-watch.service")[0] == 0


def test_the_mesh_watcher_stopped(split):
    split.exec("web2", "systemctl stop wordpress-lb-mesh-watch.service")
    try:
        attention(split, "web2", "web", "the mesh's watcher (wordpress-lb-mesh-watch.service) "
                                        "is stopped")
    finally:
        split.exec("web2", "systemctl start wordpress-lb-mesh-watch.service")


def test_a_drained_backend(split):
    vhost = "/etc/nginx/sites-available/wordpress-lb"
    web2 = split.host("web2").address
    split.exec("lb1", f"cp {vhost} /root/vhost.saved && "
                      f"sed -i 's/server {web2}:80 \\(.*\\);/server {web2}:80 \\1 down;/' {vhost} && "
                      "systemctl reload nginx")
    try:
        attention(split, "lb1", "lb", f"backend {web2}:80 is drained")
        assert rows(split)[("lb1", "lb")]["checks"]["backends"][f"{web2}:80"] == "drained"
    finally:
        split.exec("lb1", f"cp /root/vhost.saved {vhost} && systemctl reload nginx")


def test_a_certificate_close_to_expiry(split):
    split.exec("lb2", f"cp {CERT} /root/site.crt.saved && "
                      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                      f"-days 7 -subj /CN=soon -keyout /root/soon.key -out {CERT} 2>/dev/null")
    try:
        attention(split, "lb2", "lb", "the site's certificate 6 days left")
    finally:
        split.exec("lb2", f"cp /root/site.crt.saved {CERT} && rm -f /root/soon.key")


def test_no_backup_in_the_last_two_periods(split):
    newest = split.exec("db1", f"ls -1 {BACKUPS} | grep -v '^\\.' | sort | tail -n 1")[1].strip()
    split.exec("db1", f"mv {BACKUPS}/{newest} {BACKUPS}/20000101T000000Z")
    try:
        attention(split, "db1", "db", "the last backup is")
    finally:
        split.exec("db1", f"mv {BACKUPS}/20000101T000000Z {BACKUPS}/{newest}")


def test_web_hosts_serving_different_releases(split):
    base = "/var/www/wordpress"
    current = split.exec("web2", f"readlink {base}/current")[1].strip()
    split.exec("web2", f"cp -a {base}/{current} {base}/releases/0.0.0-elsewhere && "
                       f"ln -sfn releases/0.0.0-elsewhere {base}/current.new && "
                       f"mv -T {base}/current.new {base}/current")
    try:
        attention(split, "web1", "web", "web hosts serve different releases")
    finally:
        split.exec("web2", f"ln -sfn {current} {base}/current.new && "
                           f"mv -T {base}/current.new {base}/current && "
                           f"rm -rf {base}/releases/0.0.0-elsewhere")


def test_a_stopped_host_exits_2(split):
    split.container("web2").stop(timeout=30)
    try:
        began = time.monotonic()
        run = status(split)
        assert run.returncode == 2, run.output[-3000:]
        assert "UNREACHABLE: web2" in run.output
        assert time.monotonic() - began < 120
    finally:
        split.container("web2").start()
        split.wait_booted("web2")
    assert mesh.wait_quiet(split, ["web1", "web2"], timeout=120)
    assert status(split).returncode == 0
