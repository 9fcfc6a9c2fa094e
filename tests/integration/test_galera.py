"""The database as a Galera cluster of three, on a bed of its own (nodes are killed):
formed by the deploy, written through each web host's local proxy to one node at a
time, the writer killed under write load, every node killed at once."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time

import pytest

from tests.integration import wp
from tests.integration.load import get_load
from tests.runner import pyinfra

pytestmark = pytest.mark.own_bed("galera")

DBS = ("db1", "db2", "db3")
STATUS = ("SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
          "WHERE LOWER(VARIABLE_NAME) IN ('wsrep_cluster_size', 'wsrep_cluster_status', "
          "'wsrep_local_state_comment', 'wsrep_ready', 'wsrep_last_committed')")

# Posts written from web1 through its proxy, a new connection each (as PHP does per
# request), `rate` a second for `seconds`: one JSON line per post, acknowledged (its
# commit returned) or not, with the time it was attempted.
WRITER = r"""<?php
$c = json_decode(file_get_contents('/root/galera-writer.json'), true);
$out = fopen('/root/galera-writes.jsonl', 'w');
$end = microtime(true) + $c['seconds'];
$i = 0;
mysqli_report(MYSQLI_REPORT_OFF);
while (microtime(true) < $end && !file_exists('/root/galera-writer.stop')) {
    $i++;
    $t = microtime(true);
    $ok = false;
    $db = mysqli_init();
    $db->options(MYSQLI_OPT_CONNECT_TIMEOUT, 1);
    $db->options(MYSQLI_OPT_READ_TIMEOUT, 2);
    if (@$db->real_connect($c['host'], $c['user'], $c['password'], $c['database'], $c['port'])) {
        $title = $db->real_escape_string("galera-" . $c['tag'] . "-" . $i);
        $ok = $db->query("INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt, post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, post_type) VALUES (1, NOW(), UTC_TIMESTAMP(), 'load', '$title', '', 'publish', '$title', '', '', NOW(), UTC_TIMESTAMP(), '', 'post')") === true;
        $db->close();
    }
    fwrite($out, json_encode(['i' => $i, 't' => $t, 'ok' => $ok]) . "\n");
    $wait = 1.0 / $c['rate'] - (microtime(true) - $t);
    if ($wait > 0) usleep((int) ($wait * 1e6));
}
fclose($out);
"""


@pytest.fixture(scope="module")
def galera(beds):
    """The site deployed with db1 alone, then grown to three db hosts while it is read
    (anonymous GETs through the balancer) and written (posts to db1): (bed, the growing
    run, the run after it, the GET load, the write attempts)."""
    bed = beds.get("galera", "13")
    full = bed.hosts_file.read_text()
    sections = full.split("\n[hosts.")
    one = "\n[hosts.".join(part for part in sections
                           if not part.startswith(("db2]", "db3]")))
    bed.hosts_file.write_text(one)
    alone = pyinfra(bed.hosts_file)
    assert alone.returncode == 0, alone.output[-6000:]
    bed.hosts_file.write_text(full)
    wp.get(bed.site_url, "/", bed)  # in the page cache
    runs = {}

    def grow(elapsed):
        if "thread" not in runs and elapsed >= 2:
            def deploy():
                run = pyinfra(bed.hosts_file)
                runs["end"] = time.monotonic()
                runs["run"] = run
            runs["thread"] = threading.Thread(target=deploy)
            runs["thread"].start()

    reads, done = {}, threading.Event()
    reader = threading.Thread(target=lambda: reads.setdefault("load", get_load(
        f"{bed.site_url}/", total=3000, seconds=300, concurrency=2, verify=wp.verify(bed),
        stop=done)))
    reader.start()
    # Both loads last until the growing run is over (and 3 s more).
    attempts = write_posts(bed, "grow", seconds=300, rate=5, during=grow,
                           host=bed.host("db1").address, port=3306,
                           until=lambda: "run" in runs and time.monotonic() > runs["end"] + 3)
    done.set()
    runs["thread"].join(timeout=900)
    reader.join(timeout=300)
    grown = runs["run"]
    assert grown.returncode == 0, grown.output[-6000:]
    second = pyinfra(bed.hosts_file)
    assert second.returncode == 0, second.output[-6000:]
    return bed, grown, second, reads["load"], attempts


def status(bed, host: str) -> dict:
    code, out = bed.exec(host, f'mariadb -N -B -e "{STATUS}"', check=False)
    if code != 0:
        return {}
    return dict(line.split("\t", 1) for line in out.strip().splitlines() if "\t" in line)


def wait_synced(bed, hosts, size: int, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    found = {}
    while time.monotonic() < deadline:
        found = {h: status(bed, h) for h in hosts}
        if all(s.get("wsrep_local_state_comment") == "Synced"
               and s.get("wsrep_cluster_size") == str(size) for s in found.values()):
            return found
        time.sleep(1)
    raise AssertionError(f"not synced after {timeout} s: {found}")


def through_proxy(bed, web: str, sql: str) -> tuple[int, str]:
    password = wp.secrets(bed)["db_password"]
    return wp.mariadb_as(bed, web, "wordpress", password, "127.0.0.1 -P 3307", sql)


def count_posts(bed, host: str, tag: str) -> set[str]:
    bed.exec(host, "mariadb -N -B wordpress -e \"SELECT post_title FROM wp_posts "
                   f"WHERE post_title LIKE 'galera-{tag}-%'\" > /root/galera-titles.txt")
    out = read_file(bed, host, "/root/galera-titles.txt")
    return {line.strip() for line in out.splitlines() if line.strip()}


def write_posts(bed, tag: str, seconds: float, rate: int = 20, during=None,
                host: str = "127.0.0.1", port: int = 3307, until=None) -> list[dict]:
    """Write posts from web1 for `seconds` (through its proxy unless `host` and `port`
    say otherwise); `during(elapsed)` is called about every 0.2 s meanwhile, `until()`
    ends it early. Returns each attempt."""
    config = {"user": "wordpress", "password": wp.secrets(bed)["db_password"],
              "database": "wordpress", "host": host, "port": port, "seconds": seconds,
              "rate": rate, "tag": tag}
    bed.exec("web1", f"cat > /root/galera-writer.json <<'EOF'\n{json.dumps(config)}\nEOF")
    bed.exec("web1", f"cat > /root/galera-writer.php <<'EOF'\n{WRITER}\nEOF\n"
                     "rm -f /root/galera-writer.stop")
    container = bed.container("web1")
    container.exec_run(["php", "/root/galera-writer.php"], detach=True)
    began = time.monotonic()
    while time.monotonic() - began < seconds + 5:
        if during:
            during(time.monotonic() - began)
        if until and until():
            bed.exec("web1", "touch /root/galera-writer.stop")
            break
        time.sleep(0.2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        code, _ = bed.exec("web1", "pgrep -f galera-writer.php", check=False)
        if code != 0:
            break
        time.sleep(0.5)
    out = read_file(bed, "web1", "/root/galera-writes.jsonl")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def read_file(bed, host: str, path: str) -> str:
    """A file of a host, as a tar stream (an exec's output of tens of kB came back with
    docker's stream headers in it)."""
    stream, _ = bed.container(host).get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        return tar.extractfile(path.rsplit("/", 1)[-1]).read().decode()


def test_one_db_host_grows_to_three_on_a_live_site(galera):
    """db1 served the site alone; db2 and db3 added to the inventory and deployed while
    the site is read and written: db1 starts the cluster with its data, the others join;
    no GET fails, no acknowledged post is lost; a second run changes nothing."""
    bed, grown, second, load, attempts = galera
    assert "Database | Start the Galera cluster on this node (the most advanced)" \
        in grown.changed_ops
    assert second.changed == 0, second.changed_ops
    found = wait_synced(bed, DBS, 3, timeout=30)
    assert all(s["wsrep_cluster_status"] == "Primary" for s in found.values()), found
    assert load.failed == 0 and load.sent > 1000, (load.sent, load.errors)
    acknowledged = {f"galera-grow-{a['i']}" for a in attempts if a["ok"]}
    assert len(acknowledged) > 300, len(acknowledged)
    for host in DBS:
        missing = acknowledged - count_posts(bed, host, "grow")
        assert not missing, (host, sorted(missing)[:5])
    failed = [a for a in attempts if not a["ok"]]
    print(f"growing 1 -> 3: {load.sent} GETs, {load.failed} failed; {len(acknowledged)} "
          f"posts acknowledged, all on every node; {len(failed)} writes refused while db1 "
          "restarted into the cluster")
    assert wp.get(bed.site_url, "/", bed).status_code == 200


def test_every_web_host_writes_to_the_first_node(galera):
    bed = galera[0]
    for web in ("web1", "web2"):
        code, out = through_proxy(bed, web, "SELECT @@hostname")
        assert code == 0, out
        assert out.strip() == bed.container("db1").attrs["Config"]["Hostname"], (web, out)
    # WordPress itself goes through the proxy.
    _, config = bed.exec("web1", "grep DB_HOST /var/www/wordpress/current/wp-config.php "
                                 "|| grep -r DB_HOST /var/www/wordpress/ --include=wp-config.php")
    assert "127.0.0.1:3307" in config


def test_the_check_says_synced_and_galera_ports_are_closed_to_others(galera):
    bed = galera[0]
    db1 = bed.host("db1").address
    code, out = bed.exec("web1", f"curl -s -o /dev/null -w '%{{http_code}}' http://{db1}:9200/")
    assert out == "200", out
    # From a balancer: neither the check nor Galera's replication port answers.
    code, out = bed.exec("lb1", f"curl -s -m 3 http://{db1}:9200/ || echo refused", check=False)
    assert "synced" not in out
    code, out = bed.exec("lb1", f"timeout 3 bash -c '</dev/tcp/{db1}/4567' && echo open "
                                "|| echo closed", check=False)
    assert "closed" in out


def test_status_shows_each_node_the_cluster_size_and_the_writer(galera):
    bed = galera[0]
    bed.exec("db3", "systemctl start wordpress-backup.service")  # backups come from db3
    run = pyinfra(bed.hosts_file, "--data", "status_format=json", deploy="status.py",
                  timeout=300)
    start = run.output.index('{\n  "verdict"')
    document, _ = json.JSONDecoder().raw_decode(run.output[start:])
    assert run.returncode == 0, run.output[-3000:]
    found = {r["host"]: r for r in document["rows"] if r["role"] == "db"}
    for host in DBS:
        checks = found[host]["checks"]
        assert checks["galera"] == "synced" and checks["cluster size"] == "3 of 3", checks
        assert checks["writes"] == ("here" if host == "db1" else "to db1"), checks
    # A plugin's MyISAM table is named, with what to do.
    bed.exec("db1", "mariadb wordpress -e 'CREATE TABLE wp_plugin_stats (n INT) ENGINE=MyISAM'")
    try:
        run = pyinfra(bed.hosts_file, deploy="status.py", timeout=300)
        assert run.returncode == 1, run.output[-3000:]
        assert "not InnoDB (Galera replicates InnoDB only): wp_plugin_stats" in run.output
    finally:
        bed.exec("db1", "mariadb wordpress -e 'DROP TABLE wp_plugin_stats'")


def test_the_writer_killed_under_load_writes_resume_and_nothing_is_lost(galera):
    """20 posts a second written from web1, GETs the page cache cannot serve (a logged-in
    visitor's) through the balancer, and the node taking the writes killed."""
    bed = galera[0]
    killed = {}
    reads = {}

    def read_load():
        reads["began"] = time.monotonic()
        reads["result"] = get_load(f"{bed.site_url}/", total=180, seconds=18,
                                   concurrency=3, verify=wp.verify(bed),
                                   headers={"Cookie": "wordpress_logged_in_test=1"})

    reader = threading.Thread(target=read_load)

    def kill_db1(elapsed):
        if not reader.is_alive() and "began" not in reads:
            reader.start()
        if elapsed >= 5 and not killed:
            bed.container("db1").kill()
            killed["at"] = time.time()
            killed["mono"] = time.monotonic()

    try:
        attempts = write_posts(bed, "kill", seconds=20, during=kill_db1)
        reader.join(timeout=120)
    finally:
        if killed:  # whatever the outcome, db1 comes back for the next test
            bed.container("db1").start()
    assert killed, "db1 was not killed"
    load = reads["result"]
    kill_at = killed["mono"] - reads["began"]
    failed = sorted(start - kill_at for start, _, ok in load.timeline if not ok)
    # Reads fail only around the kill: those in flight on the killed node, and those
    # sent before the proxies and the cluster let it go (the same window as writes).
    assert not failed or (failed[0] >= -2 and failed[-1] <= 5), (failed, load.errors)
    assert load.sent - load.failed > 100, load
    ok = [a for a in attempts if a["ok"]]
    assert len(ok) > 200, len(ok)
    after = [a for a in ok if a["t"] >= killed["at"]]
    assert after, "no write succeeded after the kill"
    resumed = after[0]["t"] - killed["at"]
    assert resumed <= 5, f"writes resumed {resumed:.1f} s after the kill"
    acknowledged = {f"galera-kill-{a['i']}" for a in ok}
    # The survivors hold every acknowledged post.
    for host in ("db2", "db3"):
        missing = acknowledged - count_posts(bed, host, "kill")
        assert not missing, (host, sorted(missing)[:5])
    # db1 comes back (started above), catches up (IST) and holds them too.
    bed.wait_booted("db1")
    wait_synced(bed, DBS, 3)
    missing = acknowledged - count_posts(bed, "db1", "kill")
    assert not missing, sorted(missing)[:5]
    _, log = bed.exec("db1", "journalctl -u mariadb -b --no-pager", check=False)
    assert "IST received" in log, "db1 did not rejoin by IST:\n" + log[-3000:]
    print(f"writes resumed {resumed:.2f} s after the writer was killed; "
          f"{len(acknowledged)} posts acknowledged, all on every node; uncached reads: "
          f"{load.failed} of {load.sent} failed, from {failed[0] if failed else 0:.1f} s to "
          f"{failed[-1] if failed else 0:.1f} s after the kill")


def test_every_node_killed_at_once_the_deploy_brings_the_cluster_back(galera, beds):
    bed = galera[0]
    attempts = write_posts(bed, "all", seconds=4)
    acknowledged = {f"galera-all-{a['i']}" for a in attempts if a["ok"]}
    assert acknowledged
    for host in DBS:
        bed.container(host).kill()
    for host in DBS:
        bed.container(host).start()
    for host in DBS:
        bed.wait_booted(host)
    run = beds.run(bed)
    assert run.returncode == 0, run.why()
    wait_synced(bed, DBS, 3)
    for host in DBS:
        missing = acknowledged - count_posts(bed, host, "all")
        assert not missing, (host, sorted(missing)[:5])
    again = beds.run(bed)
    assert again.returncode == 0 and again.changed == 0, again.changed_ops
    assert wp.get(bed.site_url, "/", bed).status_code == 200
