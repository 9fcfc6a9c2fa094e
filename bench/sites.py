"""Many sites on one cluster (`python -m bench.run --only sites`): the split bed deployed
with 1 site, then grown to 5 and 20; for each count, the deploy that got there, the
no-op re-run after it, and the resident memory of each role's services.

Figures, not tests. The sites beside the first are named `s2`, `s3`, ... with
`https://s<N>.pwlb.test` (nothing resolves them here: the balancers answer them by name).
"""

from __future__ import annotations

import json
import statistics

from tests import testbed

BED, PORT = "bench-sites", 18280
COUNTS = (1, 5, 20)


def sites(bed: testbed.Bed, count: int) -> list[dict]:
    return [{"name": "main", "site_url": bed.site_url}] + [
        {"name": f"s{i}", "site_url": f"https://s{i}.pwlb.test"} for i in range(2, count + 1)]


def rss(bed: testbed.Bed, host: str, *commands: str) -> float:
    """Resident memory (MB) of these processes on a host."""
    total = 0
    for command in commands:
        _, out = bed.exec(host, f"ps -o rss= -C {command} || true", check=False)
        total += sum(int(x) for x in out.split() if x.isdigit())
    return round(total / 1024, 1)


def footprint(bed: testbed.Bed) -> dict:
    fpm = bed.exec("web1", "ls /etc/php")[1].split()[0]
    return {"lb1 (nginx)": rss(bed, "lb1", "nginx"),
            "web1 (nginx, php-fpm, syncthing)": rss(bed, "web1", "nginx", f"php-fpm{fpm}",
                                                    "syncthing"),
            "web1 syncthing alone": rss(bed, "web1", "syncthing"),
            "db1 (mariadb)": rss(bed, "db1", "mariadbd")}


def measure(quick: bool) -> dict:
    from bench.run import timed_deploy

    counts = (1, 5) if quick else COUNTS
    bed = testbed.up("split", "13", name=BED, port=PORT)
    found = {}
    try:
        for count in counts:
            args = ("--data", "sites=" + json.dumps(sites(bed, count)))
            print(f"bench: {count} sites", flush=True)
            deploy = timed_deploy(bed, *args)
            noops = [timed_deploy(bed, *args) for _ in range(2 if quick else 5)]
            found[str(count)] = {
                "deploy_s": deploy["seconds"], "deploy_changed": deploy["changed"],
                "noop_s": statistics.median(n["seconds"] for n in noops),
                "noop_changed": max(n["changed"] for n in noops),
                "noop_runs_s": [n["seconds"] for n in noops],  # (the first: right after)
                "rss_mb": footprint(bed)}
    finally:
        testbed.down(BED)
    first, last = found[str(counts[0])], found[str(counts[-1])]
    found["noop_ratio"] = round(last["noop_s"] / first["noop_s"], 2)
    return found
