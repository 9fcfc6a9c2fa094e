"""The database measured as one MariaDB host and as a Galera cluster of three, on the
`galera` bed (lb1, web1, web2, db1-db3), in one run: what one post costs to write, and
how long writes stop when the host taking them dies.

A post is one INSERT into wp_posts on a new connection (as PHP opens one per request),
from web1, 20 a second (tests/integration/galera.py's writer); its time is connect +
insert + commit. One host: to db1 directly (WordPress's DB_HOST). The cluster: through
web1's local proxy (127.0.0.1:3307, as WordPress does), and to db1 directly (the
proxy's share). A kill is `docker kill` of db1 while posts are written.

Usage: python -m bench.run --only database [--quick]
"""

from __future__ import annotations

import statistics
import time

from tests import testbed
from tests.integration.galera import (
    DBS, kill_while_writing, resumed_after, wait_synced, without_hosts, write_posts,
)
from tests.runner import pyinfra

BED, PORT = "bench-galera", 18280


def _latency(attempts: list[dict]) -> dict:
    ok = sorted(a["ms"] for a in attempts if a["ok"])
    if not ok:
        return {"posts": len(attempts), "ok": 0}
    return {"posts": len(attempts), "ok": len(ok), "p50_ms": round(statistics.median(ok), 2),
            "p95_ms": round(ok[max(0, int(len(ok) * 0.95) - 1)], 2), "max_ms": ok[-1]}


def _kill_writer(bed: testbed.Bed, seconds: float, **where) -> dict:
    """db1 killed 3 s into `seconds` of posts; when posts succeeded again after it."""
    attempts, killed_at = kill_while_writing(bed, "db1", f"kill{int(time.time())}", seconds,
                                             **where)
    resumed = resumed_after(attempts, killed_at)
    return {"resumed_s": round(resumed, 2) if resumed is not None else None,
            "watched_s": round(seconds - 3, 1),
            "failed": sum(1 for a in attempts if not a["ok"]), "posts": len(attempts)}


def _deploy(bed: testbed.Bed) -> float:
    began = time.monotonic()
    run = pyinfra(bed.hosts_file)
    if run.returncode != 0:
        raise SystemExit(f"bench: deploy failed:\n{run.output[-4000:]}")
    return round(time.monotonic() - began, 2)


def measure(quick: bool) -> dict:
    seconds = 8 if quick else 15
    bed = testbed.up("galera", "13", name=BED, port=PORT)
    try:
        full = bed.hosts_file.read_text()
        bed.hosts_file.write_text(without_hosts(full, "db2", "db3"))
        single: dict = {"cold_deploy_s": _deploy(bed)}
        direct = {"host": bed.host("db1").address, "port": 3306}
        single["write"] = _latency(write_posts(bed, "one", seconds, **direct))
        single["kill"] = _kill_writer(bed, seconds, **direct)
        bed.wait_booted("db1")
        time.sleep(5)  # MariaDB starting again on db1

        bed.hosts_file.write_text(full)
        cluster: dict = {"grow_deploy_s": _deploy(bed)}
        wait_synced(bed, DBS, 3)
        cluster["write"] = _latency(write_posts(bed, "three", seconds))
        cluster["write_direct"] = _latency(write_posts(bed, "three-direct", seconds, **direct))
        cluster["kills"] = []
        for _ in range(1 if quick else 3):
            cluster["kills"].append(_kill_writer(bed, seconds))
            bed.wait_booted("db1")
            wait_synced(bed, DBS, 3)
        resumed = [k["resumed_s"] for k in cluster["kills"] if k["resumed_s"] is not None]
        cluster["resumed_max_s"] = max(resumed) if resumed else None
        return {"single": single, "galera": cluster, "posts_per_second": 20,
                "seconds_per_measure": seconds}
    finally:
        testbed.down(BED)
