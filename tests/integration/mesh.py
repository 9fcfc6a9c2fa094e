"""Measuring the sync mesh from inside the bed's hosts (they share this machine's clock)."""

from __future__ import annotations

import json
import time

from tests.testbed import Bed

UPLOADS = "/var/www/wordpress/shared/wp-content/uploads"  # mirrored by the mesh

# Waits for files to appear and records when each did (polling every 10 ms).
WATCH = r"""
import json, os, sys, time
paths, out, deadline = json.loads(sys.argv[1]), sys.argv[2], time.time() + float(sys.argv[3])
seen = {}
while len(seen) < len(paths) and time.time() < deadline:
    for p in paths:
        if p not in seen and os.path.exists(p):
            seen[p] = time.time()
    time.sleep(0.01)
json.dump(seen, open(out, "w"))
"""

# Writes files one after another and records when each was written.
WRITE = r"""
import json, os, sys, time
paths, gap, out, size = json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
written = {}
for p in paths:
    with open(p, "wb") as f:
        f.write(os.urandom(size))
    written[p] = time.time()
    time.sleep(gap)
json.dump(written, open(out, "w"))
"""


def put_script(bed: Bed, host: str, name: str, text: str) -> str:
    path = f"/tmp/{name}.py"
    bed.exec(host, f"cat > {path} <<'PYEOF'\n{text}\nPYEOF")
    return path


def propagation(bed: Bed, source: str, target: str, count: int = 50, gap: float = 0.1,
                size: int = 1024, timeout: float = 30, directory: str = UPLOADS) -> list[float]:
    """Seconds each of `count` new files took from being written on `source` to
    existing on `target`; a file that never arrived counts as infinity."""
    stamp = f"{source}-{target}-{time.time_ns()}"
    paths = [f"{directory}/prop-{stamp}-{i}.bin" for i in range(count)]
    watch = put_script(bed, target, "pwlb_watch", WATCH)
    write = put_script(bed, source, "pwlb_write", WRITE)
    listed = json.dumps(paths)
    bed.container(target).exec_run(
        ["python3", watch, listed, f"/tmp/seen-{stamp}.json", str(timeout + count * gap)],
        detach=True)
    time.sleep(0.5)
    bed.exec(source, f"python3 {write} '{listed}' {gap} /tmp/written-{stamp}.json {size}",
             user="wordpress")
    deadline = time.monotonic() + timeout + count * gap + 5
    while time.monotonic() < deadline:
        code, out = bed.exec(target, f"cat /tmp/seen-{stamp}.json", check=False)
        if code == 0 and out.strip():
            break
        time.sleep(0.5)
    seen = json.loads(out)
    written = json.loads(bed.exec(source, f"cat /tmp/written-{stamp}.json")[1])
    return [seen[p] - written[p] if p in seen else float("inf") for p in paths]


def tree_digest(bed: Bed, host: str, path: str = UPLOADS) -> dict[str, str]:
    """{relative path: sha256} of every file under `path` on a host."""
    _, out = bed.exec(host, f"cd {path} && find . -type f -print0 | sort -z | "
                            "xargs -0 -r sha256sum")
    return {line[66:]: line[:64] for line in out.splitlines() if line.strip()}


def wait_quiet(bed: Bed, hosts: list[str], timeout: float = 60) -> bool:
    """Until no host has lsyncd events waiting nor an rsync running, 3 checks in a row."""
    deadline, calm = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        busy = False
        for host in hosts:
            _, status = bed.exec(host, "cat /var/lib/wordpress/lsyncd.status 2>/dev/null; "
                                       "pgrep -x rsync >/dev/null && echo RSYNC-RUNNING",
                                 check=False)
            if "RSYNC-RUNNING" in status or any(
                    line.startswith("There are") and not line.startswith("There are 0")
                    for line in status.splitlines()):
                busy = True
        calm = 0 if busy else calm + 1
        if calm >= 3:  # the status file is rewritten every 5 s
            return True
        time.sleep(3)
    return False


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# Samples, on the writer, how many rsync processes run (every 50 ms) while it writes.
SAMPLE_RSYNC = r"""
import json, os, sys, time
out, seconds = sys.argv[1], float(sys.argv[2])
peak, samples, end = 0, [], time.time() + seconds
while time.time() < end:
    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if open(f"/proc/{pid}/comm").read().strip() == "rsync":
                    count += 1
            except OSError:
                pass
    samples.append(count)
    peak = max(peak, count)
    time.sleep(0.05)
json.dump({"peak": peak, "mean": sum(samples) / max(len(samples), 1)}, open(out, "w"))
"""


def cpu_seconds(bed: Bed, host: str) -> float:
    """CPU time the host's container has used so far (the engine's own count)."""
    stats = bed.container(host).stats(stream=False)
    return stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def burst(bed: Bed, source: str, targets: list[str], count: int = 100, gap: float = 0.01,
          size: int = 1024, timeout: float = 60) -> dict:
    """`count` files written on `source` in a burst; when each reached each target, the
    most rsync processes running on `source` at once, and the CPU time `source` used."""
    stamp = f"burst-{time.time_ns()}"
    paths = [f"{UPLOADS}/{stamp}-{i}.bin" for i in range(count)]
    listed = json.dumps(paths)
    watch = {t: put_script(bed, t, "pwlb_watch", WATCH) for t in targets}
    write = put_script(bed, source, "pwlb_write", WRITE)
    sample = put_script(bed, source, "pwlb_sample", SAMPLE_RSYNC)
    for target in targets:
        bed.container(target).exec_run(
            ["python3", watch[target], listed, f"/tmp/seen-{stamp}.json", str(timeout)],
            detach=True)
    time.sleep(0.5)
    before = cpu_seconds(bed, source)
    window = count * gap + 10
    bed.container(source).exec_run(
        ["python3", sample, f"/tmp/rsync-{stamp}.json", str(window)], detach=True)
    bed.exec(source, f"python3 {write} '{listed}' {gap} /tmp/written-{stamp}.json {size}",
             user="wordpress")
    written = json.loads(bed.exec(source, f"cat /tmp/written-{stamp}.json")[1])
    arrived: dict[str, list[float]] = {}
    for target in targets:
        deadline = time.monotonic() + timeout + 5
        out = ""
        while time.monotonic() < deadline:
            code, out = bed.exec(target, f"cat /tmp/seen-{stamp}.json", check=False)
            if code == 0 and out.strip():
                break
            time.sleep(0.5)
        seen = json.loads(out or "{}")
        arrived[target] = [seen[p] - written[p] if p in seen else float("inf") for p in paths]
    deadline = time.monotonic() + window + 5
    while time.monotonic() < deadline:
        code, out = bed.exec(source, f"cat /tmp/rsync-{stamp}.json", check=False)
        if code == 0 and out.strip():
            break
        time.sleep(0.5)
    rsync = json.loads(out)
    used = cpu_seconds(bed, source) - before
    bed.exec(source, f"rm -f {UPLOADS}/{stamp}-*", user="wordpress")
    return {"latencies": arrived, "rsync_peak": rsync["peak"], "rsync_mean": rsync["mean"],
            "cpu_seconds": round(used, 2)}
