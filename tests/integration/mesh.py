"""Measuring the sync mesh from inside the bed's hosts (they share this machine's clock)."""

from __future__ import annotations

import json
import shlex
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
    """{relative path: sha256} of every file under `path` on a host (syncthing's own
    temporary files left out)."""
    _, out = bed.exec(host, f"cd {path} && find . -type f ! -name '.syncthing.*.tmp' -print0 "
                            "| sort -z | xargs -0 -r sha256sum")
    return {line[66:]: line[:64] for line in out.splitlines() if line.strip()}


def status(bed: Bed, host: str) -> dict:
    """The host's mesh as `wordpress-lb-mesh status` reports it ({} if it cannot)."""
    code, out = bed.exec(host, "/usr/local/sbin/wordpress-lb-mesh status", check=False)
    try:
        return json.loads(out) if code == 0 else {}
    except ValueError:
        return {}


def wait_quiet(bed: Bed, hosts: list[str], timeout: float = 60) -> bool:
    """Until every host's mesh is idle, needs nothing, and each of its peers among
    `hosts` is connected and lacks nothing: 3 checks in a row, 1 s apart."""
    deadline, calm = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        quiet = True
        for host in hosts:
            found = status(bed, host)
            if not found and _lsyncd(bed, host) is not None:  # a bed of an earlier version
                if _lsyncd(bed, host):
                    quiet = False
                    break
                continue
            peers = {name: p for name, p in (found.get("peers") or {}).items() if name in hosts}
            if (found.get("state") != "idle" or found.get("needs") or found.get("catching_up")
                    or len(peers) < len(hosts) - 1
                    or any(not p["connected"] or p["lacks"] for p in peers.values())):
                quiet = False
                break
        calm = calm + 1 if quiet else 0
        if calm >= 3:
            return True
        time.sleep(1)
    return False


def _lsyncd(bed: Bed, host: str) -> bool | None:
    """Is the lsyncd mesh of an earlier version (a legacy bed) busy? None: no lsyncd."""
    code, out = bed.exec(host, "cat /var/lib/wordpress/lsyncd.status 2>/dev/null || exit 3; "
                               "pgrep -x rsync >/dev/null && echo RSYNC-RUNNING", check=False)
    if code == 3:
        return None
    return "RSYNC-RUNNING" in out or any(
        line.startswith("There are") and not line.startswith("There are 0")
        for line in out.splitlines())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# The CPU time of every process alive in a host's container (utime + stime, and what
# its waited-for children used), read from /proc inside it: the bed's systemd puts the
# services it starts outside the cgroup that `docker stats` counts.
CPU = ("import glob, os\n"
       "total = 0\n"
       "for path in glob.glob('/proc/[0-9]*/stat'):\n"
       "    try:\n"
       "        fields = open(path).read().rsplit(')', 1)[1].split()\n"
       "    except OSError:\n"
       "        continue\n"
       "    total += sum(int(f) for f in fields[11:15])\n"
       "print(total / os.sysconf('SC_CLK_TCK'))\n")


def cpu_seconds(bed: Bed, host: str) -> float:
    """CPU seconds the processes alive in the host's container have used so far."""
    return float(bed.exec(host, f"python3 -c {shlex.quote(CPU)}")[1].split()[-1])


def burst(bed: Bed, source: str, targets: list[str], count: int = 100, gap: float = 0.01,
          size: int = 1024, timeout: float = 60) -> dict:
    """`count` files written on `source` in a burst; when each reached each target, and
    the CPU time `source` used."""
    stamp = f"burst-{time.time_ns()}"
    paths = [f"{UPLOADS}/{stamp}-{i}.bin" for i in range(count)]
    listed = json.dumps(paths)
    watch = {t: put_script(bed, t, "pwlb_watch", WATCH) for t in targets}
    write = put_script(bed, source, "pwlb_write", WRITE)
    for target in targets:
        bed.container(target).exec_run(
            ["python3", watch[target], listed, f"/tmp/seen-{stamp}.json", str(timeout)],
            detach=True)
    time.sleep(0.5)
    before = cpu_seconds(bed, source)
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
    used = cpu_seconds(bed, source) - before
    bed.exec(source, f"rm -f {UPLOADS}/{stamp}-*", user="wordpress")
    return {"latencies": arrived, "cpu_seconds": round(used, 2)}
