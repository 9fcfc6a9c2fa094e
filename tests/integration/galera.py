"""The Galera cluster on a bed, as the tests and the bench look at it: each node's
state, posts written from web1 a new connection each (as PHP does per request), and
files read back from the hosts."""

from __future__ import annotations

import io
import json
import tarfile
import time

from tests.integration import wp

DBS = ("db1", "db2", "db3")
STATUS = ("SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
          "WHERE LOWER(VARIABLE_NAME) IN ('wsrep_cluster_size', 'wsrep_cluster_status', "
          "'wsrep_local_state_comment', 'wsrep_ready', 'wsrep_last_committed', "
          "'wsrep_local_state_uuid')")

# Posts written from web1 through its proxy, a new connection each (as PHP does per
# request), `rate` a second for `seconds`: one JSON line per post, acknowledged (its
# commit returned) or not, with the time it was attempted and how long it took (ms).
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
    $ms = round((microtime(true) - $t) * 1000, 2);
    fwrite($out, json_encode(['i' => $i, 't' => $t, 'ok' => $ok, 'ms' => $ms]) . "\n");
    $wait = 1.0 / $c['rate'] - (microtime(true) - $t);
    if ($wait > 0) usleep((int) ($wait * 1e6));
}
fclose($out);
"""


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


def without_hosts(hosts_toml: str, *names: str) -> str:
    """The bed's hosts file with these hosts left out."""
    sections = hosts_toml.split("\n[hosts.")
    return "\n[hosts.".join(p for p in sections if not p.startswith(tuple(f"{n}]" for n in names)))


def kill_while_writing(bed, victim: str, tag: str, seconds: float, at: float = 3,
                       **where) -> tuple[list[dict], float]:
    """Posts written for `seconds` (see write_posts) while `victim` is killed `at` s in
    and started again afterwards: (the attempts, when it was killed)."""
    killed: dict = {}

    def kill(elapsed):
        if elapsed >= at and not killed:
            bed.container(victim).kill()
            killed["at"] = time.time()

    try:
        attempts = write_posts(bed, tag, seconds=seconds, during=kill, **where)
    finally:
        if killed:
            bed.container(victim).start()
    assert killed, f"{victim} was not killed"
    return attempts, killed["at"]


def resumed_after(attempts: list[dict], killed_at: float) -> float | None:
    """Seconds from the kill to the first post that succeeded after it (None: none did)."""
    after = [a for a in attempts if a["ok"] and a["t"] >= killed_at]
    return after[0]["t"] - killed_at if after else None
