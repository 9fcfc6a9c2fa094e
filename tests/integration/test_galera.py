"""The database as a Galera cluster of three, on a bed of its own (nodes are killed):
formed by the deploy, written through each web host's local proxy to one node at a
time, the writer killed under write load, every node killed at once, a backup restored
onto the cluster, and last the cluster cut to two nodes and an arbitrator."""

from __future__ import annotations

import json
import os
import re
import threading
import time

import pytest

from tests.integration import wp
from tests.integration.galera import (
    DBS, count_posts, kill_while_writing, read_file, resumed_after, status, through_proxy,
    wait_synced, without_hosts, write_posts,
)
from tests.integration.load import get_load
from tests.runner import pyinfra

pytestmark = pytest.mark.own_bed("galera")


@pytest.fixture(scope="module")
def galera(beds):
    """The site deployed with db1 alone, then grown to three db hosts while it is read
    (anonymous GETs through the balancer) and written (posts to db1): (bed, the growing
    run, the run after it, the GET load, the write attempts)."""
    bed = beds.get("galera", os.environ.get("PWLB_GALERA_RELEASE", "13"))
    full = bed.hosts_file.read_text()
    bed.hosts_file.write_text(without_hosts(full, "db2", "db3"))
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
    # ~10 GETs a second for as long as the growing run lasts (~95-110 s on this bed).
    assert load.failed == 0 and load.sent > 500, (load.sent, load.errors)
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


def test_a_node_killed_while_it_joins_leaves_the_others_serving_and_comes_back(galera, beds):
    """db3 must join by a full copy (its Galera state gone, as after a disk replaced) and
    is killed while it receives it: the run fails for db3 alone, db1 and db2 go on taking
    writes; db3 started again, the next run brings it in with every post, then a run
    changes nothing."""
    bed = galera[0]
    bed.exec("db3", "systemctl stop mariadb && "
                    "rm -f /var/lib/mysql/grastate.dat /var/lib/mysql/galera.cache")
    killed = []

    def kill_db3_joining(line: str) -> None:
        # ("Starting serial operation": the joins run one node at a time.)
        if not killed and "operation: Database | Join the Galera cluster" in line:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # until the copy is under way
                if bed.exec("db3", "pgrep -f wsrep_sst", check=False)[0] == 0:
                    killed.append("during the copy")
                    break
                time.sleep(0.1)
            bed.container("db3").kill()
            killed.append(time.monotonic())

    try:
        run = beds.run(bed, on_line=kill_db3_joining)
        assert killed, "the run never reached db3's join"
        assert killed[0] == "during the copy", "db3 was killed before its copy began"
        assert run.returncode == 1, run.why()
        assert "Traceback" not in run.output, run.why()
        assert re.search(r"db3 failed at '[^']+'", run.output), run.why()
        assert not re.search(r"db[12] failed at", run.output), run.why()
        wait_synced(bed, ("db1", "db2"), 2, timeout=60)
        attempts = write_posts(bed, "join", seconds=3)
        acknowledged = {f"galera-join-{a['i']}" for a in attempts if a["ok"]}
        assert len(acknowledged) == len(attempts), [a for a in attempts if not a["ok"]][:3]
        assert wp.get(bed.site_url, "/", bed).status_code == 200
    finally:
        bed.container("db3").start()
        bed.wait_booted("db3")
    back = beds.run(bed)
    assert back.returncode == 0, back.why()
    wait_synced(bed, DBS, 3)
    assert not acknowledged - count_posts(bed, "db3", "join")
    again = beds.run(bed)
    assert again.returncode == 0 and again.changed == 0, again.changed_ops


def newest_backup(bed, host: str = "db3") -> dict:
    _, name = bed.exec(host, "ls -1d /var/backups/wordpress/2*Z | tail -n 1")
    return json.loads(read_file(bed, host, f"{name.strip()}/backup.json"))


def test_a_backup_from_the_last_node_restores_onto_the_cluster(galera, beds):
    """Backups come from db3 (not the writer) with the cluster's position; restore.py
    loads one there, the load replicates: every node has the site as it was, posts
    written after the backup are gone from every node, and a deploy then changes
    nothing."""
    bed = galera[0]
    before = {f"galera-before-{a['i']}" for a in write_posts(bed, "before", 2, rate=5)
              if a["ok"]}
    assert before
    bed.exec("db3", "systemctl start wordpress-backup.service")
    taken = newest_backup(bed)
    uuid, _, seqno = str(taken["galera_position"]).partition(":")
    assert uuid == status(bed, "db1")["wsrep_local_state_uuid"] and int(seqno) > 0, taken
    after = {f"galera-after-{a['i']}" for a in write_posts(bed, "after", 2, rate=5) if a["ok"]}
    assert after
    run = pyinfra(bed.hosts_file, deploy="restore.py", timeout=600)
    assert run.returncode == 0, run.output[-6000:]
    assert f"Restore | Replace the database with backup {taken['name']}" in run.changed_ops
    for host in DBS:
        assert before <= count_posts(bed, host, "before"), host
        assert not count_posts(bed, host, "after"), host
    wait_synced(bed, DBS, 3, timeout=30)
    assert wp.get(bed.site_url, "/", bed).status_code == 200
    again = beds.run(bed)
    assert again.returncode == 0 and again.changed == 0, again.changed_ops


def test_two_db_hosts_and_an_arbitrator_keep_taking_writes_when_the_writer_dies(galera):
    """Going from three db hosts to two (README: db3's MariaDB stopped, db3 out of the
    inventory) with `db_arbitrator` on the balancer: garbd gives the pair a majority,
    so when db1, the writer, is killed, db2 goes on taking the writes."""
    bed = galera[0]
    bed.exec("db3", "systemctl stop mariadb")
    bed.hosts_file.write_text(without_hosts(bed.hosts_file.read_text(), "db3"))
    arbitrator = ("--data", "db_arbitrator=lb1")
    run = pyinfra(bed.hosts_file, *arbitrator)
    assert run.returncode == 0, run.output[-6000:]
    again = pyinfra(bed.hosts_file, *arbitrator)
    assert again.returncode == 0 and again.changed == 0, again.changed_ops
    wait_synced(bed, ("db1", "db2"), 3, timeout=60)  # two nodes and garbd
    _, active = bed.exec("lb1", "systemctl is-active garb", check=False)
    assert active.strip() == "active", active
    attempts, killed_at = kill_while_writing(bed, "db1", "arbiter", 12)
    ok = [a for a in attempts if a["ok"]]
    resumed = resumed_after(attempts, killed_at)
    assert resumed is not None, "no write succeeded after the writer was killed"
    assert resumed <= 5, f"writes resumed {resumed:.1f} s after the kill"
    assert status(bed, "db2").get("wsrep_cluster_status") == "Primary"
    acknowledged = {f"galera-arbiter-{a['i']}" for a in ok}
    missing = acknowledged - count_posts(bed, "db2", "arbiter")
    assert not missing, sorted(missing)[:5]
    bed.wait_booted("db1")
    wait_synced(bed, ("db1", "db2"), 3)
    print(f"two nodes and an arbitrator: writes resumed {resumed:.2f} s after the writer "
          f"was killed; {len(acknowledged)} posts acknowledged, all on db2")
