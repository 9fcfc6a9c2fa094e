"""Which engine keeps the web hosts' shared tree the same (issue: the mesh keeps
deletions): csync2 and syncthing, from Debian, on three bare containers of the test
bed's base image, put through the same cases as the mesh's integration tests.

    python -m bench.mesh_engines      (make bench-mesh; about 13 minutes)

Writes bench/results/mesh-engines.json and .md. Cases, per engine:
- race: the same 50 paths written on two hosts at once (then every change pushed):
  paths whose content differs between the three hosts at the end;
- away: 100 files on every host; one host killed; the files deleted on another; the
  killed host back: files that came back (resurrected), on any host;
- latency (syncthing, which watches by itself; `fsWatcherDelayS` 0.25 and 1, and 1 with
  our watcher, `wordpress-lb-mesh watch`, asking for a scan of each changed path): a file
  written on one host, polled for on another every 2 ms inside the containers (one
  clock: the same kernel), alone and in a stream 0.1 s apart; and the CPU the hosts use
  in quiet seconds after a directory was deleted;
- push (csync2, which is driven by a trigger such as lsyncd): the time one
  `csync2 -x` takes for one change;
- cpu: the writer's CPU seconds (its whole container) for a burst of 100 files, sent.
unison: whether Debian ships its file watcher (`unison-fsmonitor`); without it unison
can only rescan on a timer.
"""

from __future__ import annotations

import datetime
import json
import statistics
import subprocess
import threading
import time
from pathlib import Path

from tests import testbed

RESULTS = Path(__file__).resolve().parent / "results"
NAME = "bench-engines"
SUBNET, PREFIX = "10.231.7.0/24", "10.231.7."
HOSTS = {f"e{i}": f"{PREFIX}{10 + i}" for i in (1, 2, 3)}
ROOT = "/srv/mesh"
CSYNC = "/usr/sbin/csync2 -C mesh -D /var/lib/wp/csync2"


def sh(host: str, command: str, user: str = "root", check: bool = True) -> str:
    done = subprocess.run(["docker", "exec", "-u", user, f"pwlb-{NAME}-{host}", "sh", "-c", command],
                          capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{host}: {command}: {done.stderr[-2000:]}")
    return done.stdout


def start_beds() -> None:
    import docker

    testbed.down(NAME)
    tag = testbed.build_image("13")
    c = testbed.client()
    network = c.networks.create(f"pwlb-{NAME}", driver="bridge", labels=testbed._labels(NAME),
                                ipam=docker.types.IPAMConfig(pool_configs=[
                                    docker.types.IPAMPool(subnet=SUBNET)]))
    for host, address in HOSTS.items():
        container = c.containers.create(tag, name=f"pwlb-{NAME}-{host}", hostname=host,
                                        labels=testbed._labels(NAME), entrypoint=["sleep", "infinity"],
                                        detach=True)
        network.connect(container, ipv4_address=address)
        container.start()
    threads = [threading.Thread(target=sh, args=(h, (
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        "--no-install-recommends csync2 syncthing unison procps inotify-tools python3 >/dev/null && "
        f"useradd -r -m -d /var/lib/wp wp && mkdir -p {ROOT}/cs {ROOT}/st/.stfolder "
        "/var/lib/wp/csync2 /var/lib/wp/st && chown -R wp: /srv/mesh /var/lib/wp")))
        for h in HOSTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def csync2_setup(auto: str) -> None:
    sh("e1", "test -f /etc/csync2.key_mesh || csync2 -k /etc/csync2.key_mesh")
    key = sh("e1", "cat /etc/csync2.key_mesh")
    for host, address in HOSTS.items():
        sh(host, f"pkill -x csync2; rm -rf /var/lib/wp/csync2/* {ROOT}/cs/*; "
                 f"printf '%s' '{key}' > /etc/csync2.key_mesh; chown wp /etc/csync2.key_mesh; "
                 f"chmod 600 /etc/csync2.key_mesh; printf 'nossl * *;\\nignore uid;\\nignore gid;\\n"
                 f"group mesh {{\\n host {' '.join(HOSTS.values())};\\n key /etc/csync2.key_mesh;\\n"
                 f" include {ROOT}/cs;\\n auto {auto};\\n}}\\n' > /etc/csync2_mesh.cfg", check=False)
        sh(host, f"nohup {CSYNC} -ii -N {address} >/dev/null 2>&1 &", user="wp")
    time.sleep(1)


def csync2_push(host: str) -> None:
    sh(host, f"{CSYNC} -N {HOSTS[host]} -x >/dev/null 2>&1", user="wp", check=False)


def syncthing_setup(delay: str) -> None:
    from pyinfra_wordpress_lb.deploys.sync import _identity, device_id

    idents = {h: _identity("bench-engines", h) for h in HOSTS}
    ids = {h: device_id(idents[h][1]) for h in HOSTS}
    devices = "".join(f'<device id="{ids[h]}" name="{h}" compression="never"><address>'
                      f"tcp://{a}:22000</address></device>" for h, a in HOSTS.items())
    shared = "".join(f'<device id="{ids[h]}"></device>' for h in HOSTS)
    for host, address in HOSTS.items():
        config = (f'<configuration version="37"><folder id="m" path="{ROOT}/st" type="sendreceive" '
                  f'rescanIntervalS="3600" fsWatcherEnabled="true" fsWatcherDelayS="{delay}">{shared}'
                  f"<maxConflicts>0</maxConflicts></folder>{devices}<gui enabled=\"true\" tls=\"false\">"
                  "<address>127.0.0.1:8384</address><apikey>bench</apikey></gui><options>"
                  f"<listenAddress>tcp://{address}:22000</listenAddress>"
                  "<globalAnnounceEnabled>false</globalAnnounceEnabled><localAnnounceEnabled>false"
                  "</localAnnounceEnabled><relaysEnabled>false</relaysEnabled><natEnabled>false"
                  "</natEnabled><urAccepted>-1</urAccepted></options></configuration>")
        files = {"config.xml": config, "key.pem": idents[host][0], "cert.pem": idents[host][1]}
        for name, text in files.items():
            subprocess.run(["docker", "exec", "-i", "-u", "wp", f"pwlb-{NAME}-{host}", "sh", "-c",
                            f"cat > /var/lib/wp/st/{name}"], input=text, text=True, check=True)
        sh(host, "pkill -x syncthing; sleep 1", check=False)
        syncthing_start(host)
    time.sleep(10)


def watcher_start(hosts=tuple(HOSTS)) -> None:
    """Our watcher (templates/sbin/wordpress-lb-mesh.j2) on every host, as the deploy runs it."""
    from pyinfra_wordpress_lb import templates

    tool = templates.render("sbin/wordpress-lb-mesh.j2", config="/var/lib/wp/st/config.xml",
                            folder="m", flag="/tmp/unused", root=f"{ROOT}/st", excludes=[])
    for host in hosts:
        subprocess.run(["docker", "exec", "-i", f"pwlb-{NAME}-{host}", "sh", "-c",
                        "cat > /usr/local/sbin/wordpress-lb-mesh && chmod 755 "
                        "/usr/local/sbin/wordpress-lb-mesh"], input=tool, text=True, check=True)
        sh(host, "nohup /usr/local/sbin/wordpress-lb-mesh watch >/tmp/watch.log 2>&1 &", user="wp")
    time.sleep(2)


def syncthing_start(host: str) -> None:
    sh(host, "nohup syncthing serve --home=/var/lib/wp/st --no-browser --no-restart "
             "--no-upgrade >/tmp/st.log 2>&1 &", user="wp")


def digests(host: str, folder: str) -> dict[str, str]:
    out = sh(host, f"cd {folder} && find . -type f ! -name '.syncthing.*' ! -path './.st*' "
                   "-exec sha256sum {} + | sort -k2")
    return {line.split()[1]: line.split()[0] for line in out.splitlines() if line.strip()}


def race(folder: str, push=None) -> int:
    for n in range(50):
        a, b = ("e1", "e2") if n % 2 else ("e2", "e3")
        threads = [threading.Thread(target=sh, args=(h, f"echo {h}-{n}-$(date +%s%N) > "
                                                        f"{folder}/race{n}", "wp")) for h in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if push:
            pushes = [threading.Thread(target=push, args=(h,)) for h in (a, b)]
            for t in pushes:
                t.start()
            for t in pushes:
                t.join()
    if push:
        for host in HOSTS:
            push(host)
    else:
        time.sleep(15)
    trees = {h: digests(h, folder) for h in HOSTS}
    paths = {p for t in trees.values() for p in t if "race" in p}
    return sum(1 for p in paths if len({trees[h].get(p) for h in HOSTS}) > 1)


def away(folder: str, push=None, restart=None) -> int:
    sh("e1", f"mkdir -p {folder}/away && for i in $(seq 1 100); do echo $i > {folder}/away/f$i; done",
       user="wp")
    if push:
        push("e1")
    time.sleep(5)
    assert len([p for p in digests("e3", folder) if "/away/" in p]) == 100
    testbed.client().containers.get(f"pwlb-{NAME}-e3").kill()
    sh("e1", f"rm -r {folder}/away", user="wp")
    if push:
        push("e1")
    time.sleep(3)
    testbed.client().containers.get(f"pwlb-{NAME}-e3").start()
    if restart:
        restart("e3")
    if push:
        push("e3")
        push("e1")
    time.sleep(12)
    return max(len([p for p in digests(h, folder) if "/away/" in p]) for h in HOSTS)


def latency(folder: str, count: int = 20, gap: float = 0.3) -> list[float]:
    """Lone writes (the default), or a stream: each write `gap` seconds after the last."""
    found = []
    for n in range(count):
        path = f"{folder}/lat{n}-{time.time_ns()}"
        watcher = subprocess.Popen(
            ["docker", "exec", f"pwlb-{NAME}-e2", "sh", "-c",
             f"i=0; while [ ! -e {path} ] && [ $i -lt 2500 ]; do sleep 0.002; i=$((i+1)); done; "
             "date +%s%N"], stdout=subprocess.PIPE, text=True)
        time.sleep(gap)
        wrote = int(sh("e1", f"date +%s%N; echo x > {path}", user="wp").split()[0])
        seen = int(watcher.communicate()[0].split()[0])
        found.append((seen - wrote) / 1e9)
    return found


def cpu(host: str) -> float:
    """CPU seconds the host's container has used (short-lived pushes included)."""
    stats = testbed.client().containers.get(f"pwlb-{NAME}-{host}").stats(stream=False)
    return stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def burst_cpu(folder: str, push=None) -> float:
    """The writer's CPU for 100 files written and sent (the writing loop included)."""
    before = cpu("e1")
    sh("e1", f"mkdir -p {folder}/burst && for i in $(seq 1 100); do echo $i > {folder}/burst/b$i; "
             "done", user="wp")
    if push:
        for _ in range(100):  # one trigger per file, as an inotify trigger would
            push("e1")
    time.sleep(10)
    return round(cpu("e1") - before, 2)


def spin_after_delete(folder: str) -> float:
    """A directory of 100 files deleted on e1 (all hosts up): CPU every host then uses in
    10 s of quiet (syncthing issue 9135: a sub-second watcher delay can spin for good)."""
    sh("e1", f"mkdir -p {folder}/gone && for i in $(seq 1 100); do echo $i > {folder}/gone/f$i; "
             "done", user="wp")
    time.sleep(4)
    sh("e1", f"rm -r {folder}/gone", user="wp")
    time.sleep(5)
    before = sum(cpu(h) for h in HOSTS)
    time.sleep(10)
    return round(sum(cpu(h) for h in HOSTS) - before, 2)


def main() -> int:
    started = time.monotonic()
    start_beds()
    result: dict = {"when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes")}
    try:
        result["unison"] = {
            "version": sh("e1", "unison -version").strip(),
            "fsmonitor": bool(sh("e1", "command -v unison-fsmonitor || true").strip()),
        }
        cs: dict = {}
        for auto in ("younger", "left"):
            csync2_setup(auto)
            cs[f"race_differing_auto_{auto}"] = race(f"{ROOT}/cs", push=csync2_push)
        csync2_setup("left")
        cs["away_resurrected"] = away(f"{ROOT}/cs", push=csync2_push,
                                      restart=lambda h: sh(h, f"nohup {CSYNC} -ii -N {HOSTS[h]} "
                                                              ">/dev/null 2>&1 &", user="wp"))
        sh("e1", f"echo one > {ROOT}/cs/one", user="wp")
        began = time.monotonic()
        csync2_push("e1")
        cs["push_one_change_s"] = round(time.monotonic() - began, 3)
        cs["burst_cpu_s"] = burst_cpu(f"{ROOT}/cs", push=csync2_push)
        result["csync2"] = cs
        for host in HOSTS:
            sh(host, "pkill -x csync2", check=False)

        st: dict = {}
        for delay in ("0.25", "1", "1+watcher"):  # sub-second, syncthing's own 1 s, ours
            syncthing_setup(delay.split("+")[0])
            if delay.endswith("watcher"):
                watcher_start()
            lat = latency(f"{ROOT}/st")
            stream = latency(f"{ROOT}/st", count=40, gap=0.1)
            st[delay] = {"latency_p50_s": round(statistics.median(lat), 3),
                         "latency_p95_s": round(sorted(lat)[int(0.95 * (len(lat) - 1))], 3),
                         "latency_max_s": round(max(lat), 3),
                         "stream_p95_s": round(sorted(stream)[int(0.95 * (len(stream) - 1))], 3),
                         "stream_max_s": round(max(stream), 3),
                         "idle_cpu_after_dir_delete_s": spin_after_delete(f"{ROOT}/st")}
        st["race_differing"] = race(f"{ROOT}/st")
        st["away_resurrected"] = away(f"{ROOT}/st", restart=lambda h: (
            syncthing_start(h), watcher_start((h,))))
        st["burst_cpu_s"] = burst_cpu(f"{ROOT}/st")
        result["syncthing"] = st
    finally:
        testbed.down(NAME)
    result["minutes"] = round((time.monotonic() - started) / 60, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mesh-engines.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "mesh-engines.md").write_text(report(result))
    print(report(result))
    return 0


def report(r: dict) -> str:
    cs, st, un = r["csync2"], r["syncthing"], r["unison"]
    return "\n".join([
        f"# Mesh engines, measured {r['when']} (`make bench-mesh`, {r['minutes']} min)", "",
        "Three Debian 13 containers; cases as in `bench/mesh_engines.py`.", "",
        "| engine | same path on two hosts at once: paths differing of 50 | deleted while a host "
        "was away: resurrected of 100 | latency | CPU for 100 files (writer) |",
        "|---|---|---|---|---|",
        f"| csync2 (`auto younger`) | {cs['race_differing_auto_younger']} | — | — | — |",
        f"| csync2 (`auto left`) | {cs['race_differing_auto_left']} | {cs['away_resurrected']} | "
        f"{cs['push_one_change_s']} s per `csync2 -x` | {cs['burst_cpu_s']} s (one push per file) |",
        *(f"| syncthing (`maxConflicts` 0, `fsWatcherDelayS` {d}) | "
          f"{st['race_differing'] if d == '1+watcher' else '—'} | "
          f"{st['away_resurrected'] if d == '1+watcher' else '—'} | lone: p50 "
          f"{st[d]['latency_p50_s']} s, p95 {st[d]['latency_p95_s']} s, max "
          f"{st[d]['latency_max_s']} s; 0.1 s apart: p95 {st[d]['stream_p95_s']} s, max "
          f"{st[d]['stream_max_s']} s | "
          f"{st['burst_cpu_s'] if d == '1+watcher' else '—'} s |" for d in st if d[0] in "01"),
        "",
        "CPU of the three hosts in 10 quiet seconds after a directory of 100 files was "
        "deleted: " + ", ".join(f"`fsWatcherDelayS` {d}: {st[d]['idle_cpu_after_dir_delete_s']} s"
                                for d in st if d[0] in "01") + " (syncthing issue 9135).",
        "",
        f"unison: {un['version']}; `unison-fsmonitor` shipped: {un['fsmonitor']} "
        "(without it, only timed rescans).", ""])


if __name__ == "__main__":
    raise SystemExit(main())
