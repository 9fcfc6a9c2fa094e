"""`make bench`: the stack measured beside the tutorial's configuration, same bed, same run.

Figures, not tests: nothing here passes or fails on time. Everything runs on the local
test bed; traffic goes only to 127.0.0.1 (published ports) or to the bed's containers,
and every loop is bounded. Writes bench/results/latest.json, latest.md and PNG charts.

Usage: python -m bench.run [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import statistics
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from tests import testbed
from tests.integration import mesh
from tests.integration.load import get_load, resolving
from tests.runner import pyinfra

RESULTS = Path(__file__).resolve().parent / "results"
PORT, BACKEND_PORT = 18180, 18181

# The tutorial's configuration, selected through documented data keys: plain HTTP,
# the sync tool's default delay (syncthing's 10 s, its own watcher only), and an upstream with nginx's defaults only (least_conn and
# nothing else: no keepalive, retries only on connection errors and timeouts, 60 s
# connect timeout). (`site_url` follows: http on the same shared address.)
BASELINE = {
    "tls": "off",
    "page_cache_ttl": "0",
    "mesh_delay": "10",
    "mesh_watch": "false",
    "lb_keepalive": "0",
    "lb_next_upstream": "error timeout",
    "lb_next_upstream_tries": "0",
    "lb_next_upstream_timeout": "0",
    "lb_connect_timeout": "60s",
}


def data_args(settings: dict[str, str]) -> list[str]:
    args = []
    for key, value in settings.items():
        args += ["--data", f"{key}={value}"]
    return args


def timed_deploy(bed: testbed.Bed, *args: str) -> dict:
    began = time.monotonic()
    run = pyinfra(bed.hosts_file, *args)
    took = time.monotonic() - began
    if run.returncode != 0:
        raise SystemExit(f"bench: deploy failed:\n{run.output[-4000:]}")
    return {"seconds": round(took, 2), "changed": run.changed}


def timed_status(bed: testbed.Bed) -> dict:
    """The operator's status command on the whole bed (read-only)."""
    began = time.monotonic()
    run = pyinfra(bed.hosts_file, deploy="status.py")
    return {"seconds": round(time.monotonic() - began, 2), "exit": run.returncode}


def bed_up() -> testbed.Bed:
    return testbed.up("split", "13", name="bench", port=PORT, backend_port=BACKEND_PORT)


def plain_http(bed: testbed.Bed) -> dict[str, str]:
    """Settings that turn TLS off on the bench bed (the site on http:// instead)."""
    return {"tls": "off", "site_url": f"http://{bed.vip}"}


def measure_deploy(quick: bool) -> tuple[testbed.Bed, dict]:
    """Cold deploy of all five hosts, re-runs, and each host deployed alone."""
    bed = bed_up()
    cold = timed_deploy(bed)
    reruns = [timed_deploy(bed) for _ in range(2 if quick else 3)]
    status = [timed_status(bed) for _ in range(2 if quick else 3)]
    testbed.down(bed.name)

    # A fresh bed, each host deployed alone in dependency order: the slowest of them is
    # the floor for the whole cluster if hosts run in parallel.
    bed = bed_up()
    alone = {}
    for host in ("db1", "web1", "web2", "lb1", "lb2"):
        alone[host] = timed_deploy(bed, "--limit", host)
    slowest = max(r["seconds"] for r in alone.values())
    rerun = statistics.median(r["seconds"] for r in reruns)
    return bed, {
        "cold_all_seconds": cold["seconds"],
        "cold_all_changed": cold["changed"],
        "rerun_seconds": [r["seconds"] for r in reruns],
        "rerun_changed": [r["changed"] for r in reruns],
        "rerun_over_cold": round(rerun / cold["seconds"], 3),
        "status_seconds": [r["seconds"] for r in status],
        "status_exit": [r["exit"] for r in status],
        "alone_seconds": {h: r["seconds"] for h, r in alone.items()},
        "slowest_alone_seconds": slowest,
        "cold_all_over_slowest_alone": round(cold["seconds"] / slowest, 2),
        "sum_alone_over_cold_all": round(sum(r["seconds"] for r in alone.values())
                                         / cold["seconds"], 2),
    }


# A logged-in visitor's cookie: the page cache lets it through to PHP.
LOGGED_IN = "wordpress_logged_in_bench=1"


def wrk(url: str, host_header: str | None, seconds: int, connections: int,
        cookie: str | None = None) -> dict:
    header = ["-H", f"Host: {host_header}"] if host_header else []
    if cookie:
        header += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
         *header, url],
        capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return round(float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit], 2)

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": latency("50"), "p99_ms": latency("99"),
            "non_2xx": int(errors.group(1)) if errors else 0}


def measure_http(bed: testbed.Bed, quick: bool) -> dict:
    """Front page through the balancers' shared address (as the site's URL says: HTTPS,
    or HTTP with TLS off) and straight to one backend, same concurrency, both rendered
    by PHP (a logged-in cookie: no page cache). Runs alternate (LB, direct, LB, direct,
    ...) so that drift on a noisy machine hits both alike; each figure is the median."""
    site = testbed_site(bed)
    seconds, runs, connections = (5, 1, 8) if quick else (10, 5, 8)
    urls = {"lb": f"{site}/", "direct": f"http://127.0.0.1:{BACKEND_PORT}/"}
    host = urlsplit(site).netloc
    for url in urls.values():
        wrk(url, host, 3, connections, LOGGED_IN)  # warm OPcache and connections
    samples: dict[str, list[dict]] = {name: [] for name in urls}
    for _ in range(runs):
        for name, url in urls.items():
            samples[name].append(wrk(url, host, seconds, connections, LOGGED_IN))
    result = {}
    for name, runs_of in samples.items():
        median = sorted(runs_of, key=lambda s: s["rps"])[len(runs_of) // 2]
        result[name] = {**median, "runs": runs_of}
    result["lb_over_direct"] = round(result["lb"]["rps"] / result["direct"]["rps"], 3)
    result["connections"] = connections
    result["seconds"] = seconds
    return result


def measure_sync(bed: testbed.Bed, quick: bool, delay: int) -> dict:
    result = {}
    for label, size, count in (("1KB", 1024, 10 if quick else 20),
                               ("1MB", 1024 * 1024, 5 if quick else 10)):
        latencies = mesh.propagation(bed, "web1", "web2", count=count, gap=0.1, size=size,
                                     timeout=delay * 3 + 30)
        arrived = [x for x in latencies if x != float("inf")]
        result[label] = {
            "files": count, "arrived": len(arrived),
            "p50_s": round(mesh.percentile(arrived, 50), 3),
            "p95_s": round(mesh.percentile(arrived, 95), 3),
            "max_s": round(max(arrived), 3),
        }
        mesh.wait_quiet(bed, ["web1", "web2"], timeout=delay * 3 + 60)
    return result


def measure_cache(bed: testbed.Bed, quick: bool) -> dict:
    """The same front page through the balancers, anonymous (from the page cache) and
    with a logged-in cookie (past it, to PHP): same concurrency, runs alternating."""
    site = testbed_site(bed)
    host = urlsplit(site).netloc
    seconds, runs, connections = (5, 1, 8) if quick else (10, 3, 8)
    wrk(f"{site}/", host, 3, connections)
    samples: dict[str, list[dict]] = {"cached": [], "uncached": []}
    for _ in range(runs):
        samples["cached"].append(wrk(f"{site}/", host, seconds, connections))
        samples["uncached"].append(wrk(f"{site}/", host, seconds, connections, LOGGED_IN))
    result = {name: {**sorted(r, key=lambda s: s["rps"])[len(r) // 2], "runs": r}
              for name, r in samples.items()}
    result["cached_over_uncached"] = round(result["cached"]["rps"] / result["uncached"]["rps"], 1)
    result["connections"] = connections
    return result


def measure_read_your_upload(bed: testbed.Bed, quick: bool) -> dict:
    """A file written on web1 (the mesh running as usual), then at once 100 GETs of it
    through the balancers: how many answer 404."""
    import requests

    session = requests.Session()
    session.trust_env = False
    verify = str(bed.ca_file) if bed.site_url.startswith("https://") else True
    rounds, missing = (2 if quick else 5), 0
    for _ in range(rounds):
        name = f"bench-ryu-{time.time_ns()}.txt"
        bed.exec("web1", f"echo fresh > {mesh.UPLOADS}/{name}", user="wordpress")
        for _ in range(100):
            got = session.get(f"{bed.site_url}/wp-content/uploads/{name}", verify=verify,
                              timeout=15)
            missing += got.status_code == 404
    return {"gets": rounds * 100, "not_found": missing}


def measure_stale(bed: testbed.Bed) -> dict:
    """PHP-FPM stopped on every web host: GETs of a page cached moments before, for 15 s
    (past the cache's lifetime)."""
    import requests

    session = requests.Session()
    session.trust_env = False
    verify = str(bed.ca_file) if bed.site_url.startswith("https://") else True
    url = f"{bed.site_url}/hello-world/"
    for _ in range(3):
        session.get(url, verify=verify, timeout=15)
    fpm = bed.exec("web1", "ls /etc/php")[1].split()[0]
    webs = [h.name for h in bed.group("web")]
    for web in webs:
        bed.exec(web, f"systemctl stop php{fpm}-fpm")
    answers = []
    try:
        end = time.monotonic() + 15
        while time.monotonic() < end:
            got = session.get(url, verify=verify, timeout=15)
            answers.append((got.status_code, got.headers.get("X-Cache")))
            time.sleep(0.5)
    finally:
        for web in webs:
            bed.exec(web, f"systemctl start php{fpm}-fpm")
    return {"gets": len(answers), "ok": sum(1 for s, _ in answers if s == 200),
            "hit": sum(1 for _, c in answers if c == "HIT"),
            "stale": sum(1 for _, c in answers if c == "STALE")}


def measure_scale(quick: bool) -> dict:
    """The mesh with 2, 4 and 6 web hosts (one bed, hosts added by the deploy): a burst of
    100 small files written on web1, when each reached every other host, and the CPU time
    web1 spent."""
    bed = testbed.up("scale", "13", name="bench-scale", port=PORT)
    result = {}
    try:
        full = bed.hosts_file.read_text()
        for size in (2, 4, 6):
            hosts = full
            for index in range(size + 1, 7):
                start = hosts.index(f"[hosts.web{index}]")
                end = hosts.index("[hosts.", start + 1)
                hosts = hosts[:start] + hosts[end:]
            path = bed.dir / f"hosts-{size}.toml"
            path.write_text(hosts)
            run = pyinfra(path)
            if run.returncode != 0:
                raise SystemExit(f"bench: scale deploy failed:\n{run.output[-4000:]}")
            webs = [f"web{i}" for i in range(1, size + 1)]
            mesh.wait_quiet(bed, webs, timeout=120)
            rounds = []
            for _ in range(1 if quick else 3):
                rounds.append(mesh.burst(bed, "web1", webs[1:], count=100, gap=0.01))
                mesh.wait_quiet(bed, webs, timeout=120)
            latencies = [x for r in rounds for peer in r["latencies"].values() for x in peer]
            arrived = [x for x in latencies if x != float("inf")]
            result[str(size)] = {
                "arrivals": len(latencies), "lost": len(latencies) - len(arrived),
                "p50_s": round(mesh.percentile(arrived, 50), 3),
                "p95_s": round(mesh.percentile(arrived, 95), 3),
                "max_s": round(max(arrived), 3),
                "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in rounds), 2),
            }
    finally:
        testbed.down("bench-scale")
    result["p95_6_over_2"] = round(result["6"]["p95_s"] / result["2"]["p95_s"], 2)
    return result


def testbed_site(bed: testbed.Bed) -> str:
    """The site's URL as currently deployed (the hosts file's, unless TLS is off)."""
    return CURRENT.get("site", bed.site_url)


CURRENT: dict[str, str] = {}


def measure_failover(bed: testbed.Bed) -> dict:
    result = {}
    url = f"{testbed_site(bed)}/"
    verify = str(bed.ca_file) if url.startswith("https://") else True
    fpm = bed.exec("web1", "ls /etc/php")[1].split()[0]
    # PHP-FPM down on one backend (nginx there answers 502).
    load = get_load(url, total=600, seconds=6, verify=verify,
                    during=lambda: bed.exec("web1", f"systemctl stop php{fpm}-fpm"))
    bed.exec("web1", f"systemctl start php{fpm}-fpm")
    result["php_fpm_stopped"] = _load_figures(load)
    time.sleep(12)  # past fail_timeout: both backends in the pool again
    load = get_load(url, total=600, seconds=6, verify=verify,
                    during=lambda: bed.container("web1").stop(timeout=20))
    bed.container("web1").start()
    bed.wait_booted("web1")
    result["container_stopped"] = _load_figures(load)
    mesh.wait_quiet(bed, ["web1", "web2"], timeout=120)
    time.sleep(12)
    return result


def holder(bed: testbed.Bed) -> str:
    for lb in bed.group("lb"):
        try:
            _, addresses = bed.exec(lb.name, "ip -4 -o addr show", check=False)
        except Exception:  # noqa: BLE001 - a stopped container holds nothing
            continue
        if f" {bed.vip}/" in addresses:
            return lb.name
    raise SystemExit("bench: no balancer holds the shared address")


def restart(bed: testbed.Bed, name: str) -> None:
    bed.container(name).start()
    bed.wait_booted(name)
    time.sleep(3)  # its keepalived settles as backup


def measure_takeover(bed: testbed.Bed, quick: bool) -> dict:
    """The balancer holding the shared address killed, its nginx stopped, the host
    stopped, under GETs through the address (a new connection each, as many visitors);
    beside one balancer alone (clients on its own address) killed and restarted at once."""
    url, verify = f"{bed.site_url}/", str(bed.ca_file)

    def run(during, seconds=6.0, total=300):
        return get_load(url, total=total, seconds=seconds, at=2.0, during=during,
                        verify=verify, fresh=True, timeout=15)

    kills = []
    for _ in range(3 if quick else 5):
        victim = holder(bed)
        load = run(lambda: bed.container(victim).kill())
        outage = load.outage()
        kills.append({"outage_s": round(outage, 3), "failed": load.failed,
                      "failed_after_move": load.failed_after(load.at + outage),
                      "requests": load.sent})
        restart(bed, victim)
    graceful = {}
    for how in ("nginx stop", "host stop"):
        runs = []
        for _ in range(2 if quick else 3):
            victim = holder(bed)
            if how == "nginx stop":
                load = run(lambda: bed.exec(victim, "systemctl stop nginx"))
                bed.exec(victim, "systemctl start nginx")
            else:
                load = run(lambda: bed.container(victim).stop(timeout=30))
                restart(bed, victim)
            runs.append({"failed": load.failed, "requests": load.sent,
                         "worst_s": round(load.worst, 3)})
            time.sleep(2)
        graceful[how] = runs
    # One balancer: clients go to lb1's own address; killed, it is restarted at once.
    lb1 = bed.host("lb1").address
    with resolving(bed.vip, lb1):
        load = run(lambda: (bed.container("lb1").kill(), restart(bed, "lb1")), seconds=30,
                   total=600)
    single = {"outage_s": round(load.outage(), 3), "failed": load.failed, "requests": load.sent}
    outages = sorted(k["outage_s"] for k in kills)
    return {
        "kills": kills,
        "kill_outage_p50_s": outages[len(outages) // 2],
        "kill_outage_max_s": outages[-1],
        "graceful": graceful,
        "one_balancer_kill": single,
    }


def _load_figures(load) -> dict:
    return {"requests": load.sent, "failed": load.failed,
            "failed_pct": round(100 * load.failed / max(load.sent, 1), 1),
            "worst_s": round(load.worst, 3), "seconds": round(load.seconds, 1),
            "errors": dict(load.errors)}


def measure_footprint(bed: testbed.Bed) -> dict:
    """Resident memory (MB) of each role's services after the deploy."""
    def rss(host: str, *commands: str) -> float:
        total = 0
        for command in commands:
            _, out = bed.exec(host, f"ps -o rss= -C {command} || true", check=False)
            total += sum(int(x) for x in out.split() if x.isdigit())
        return round(total / 1024, 1)

    fpm = bed.exec("web1", "ls /etc/php")[1].split()[0]
    return {
        "lb (nginx)": rss("lb1", "nginx"),
        "web (nginx, php-fpm, syncthing)": rss("web1", "nginx", f"php-fpm{fpm}", "syncthing"),
        "db (mariadb)": rss("db1", "mariadbd"),
    }


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    cores = len([1 for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("processor")])
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return f"{cores} cores ({cpu}), {memory} GiB, {platform.system()} {platform.release()}"


def only(part: str, quick: bool) -> int:
    """One part's figures alone (`deploy`, `database`), measured now, into the last full
    report (which says which figures come from which run)."""
    from bench import database

    began = time.monotonic()
    report = json.loads((RESULTS / "latest.json").read_text())
    if part == "deploy":
        try:
            _, report["deploy"] = measure_deploy(quick)
        finally:
            testbed.down("bench")
    elif part == "sites":
        from bench import sites

        report["sites"] = sites.measure(quick)
    else:
        report["database"] = database.measure(quick)
    report[f"{part}_measured"] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"python -m bench.run --only {part}" + (" --quick" if quick else ""),
        "seconds": round(time.monotonic() - began)}
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    from bench.report import write_readme, write_report

    write_report(report, RESULTS)
    write_readme(report, Path(__file__).resolve().parent.parent / "README.md")
    print(f"bench: {part} measured in {report[f'{part}_measured']['seconds']} s")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    parser.add_argument("--only", choices=["deploy", "database", "sites"],
                        help="measure only the deploy (cold, re-runs, status, each host "
                             "alone), the database (one host vs a Galera cluster: a "
                             "post's latency, writes after the writer is killed) or many "
                             "sites (1, 5, 20: deploy, no-op, memory) and put it into the "
                             "last full report")
    args = parser.parse_args(argv)
    if args.only:
        return only(args.only, args.quick)
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk is not installed (apt-get install wrk)")
    began = time.monotonic()
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": machine(),
              "command": "python -m bench.run --quick" if args.quick else "make bench",
              "baseline_settings": BASELINE}
    try:
        print("bench: deploy", flush=True)
        bed, report["deploy"] = measure_deploy(args.quick)
        ours, base = {}, {}
        print("bench: ours", flush=True)
        ours["http"] = measure_http(bed, args.quick)
        ours["cache"] = measure_cache(bed, args.quick)
        ours["read_your_upload"] = measure_read_your_upload(bed, args.quick)
        ours["stale"] = measure_stale(bed)
        ours["sync"] = measure_sync(bed, args.quick, delay=1)
        ours["failover"] = measure_failover(bed)
        print("bench: the shared address", flush=True)
        ours["takeover"] = measure_takeover(bed, args.quick)
        report["footprint_mb"] = measure_footprint(bed)
        print("bench: ours over plain HTTP", flush=True)
        timed_deploy(bed, *data_args(plain_http(bed)))
        CURRENT["site"] = f"http://{bed.vip}"
        ours["http_plain"] = measure_http(bed, args.quick)
        ours["https_over_http"] = round(ours["http"]["lb"]["rps"]
                                        / ours["http_plain"]["lb"]["rps"], 3)
        print("bench: tutorial baseline", flush=True)
        report["baseline_deploy"] = timed_deploy(bed, *data_args({**BASELINE, **plain_http(bed)}))
        base["http"] = measure_http(bed, args.quick)
        base["sync"] = measure_sync(bed, args.quick, delay=15)
        base["failover"] = measure_failover(bed)
        report["ours"], report["baseline"] = ours, base
        CURRENT.pop("site")
        report["restored"] = timed_deploy(bed)
        testbed.down("bench")
        print("bench: the mesh with 2, 4 and 6 web hosts", flush=True)
        report["scale"] = measure_scale(args.quick)
        print("bench: the database, one host and a Galera cluster", flush=True)
        from bench import database

        report["database"] = database.measure(args.quick)
        print("bench: 1, 5 and 20 sites on the split bed", flush=True)
        from bench import sites

        report["sites"] = sites.measure(args.quick)
    finally:
        testbed.down("bench")
    report["bench_seconds"] = round(time.monotonic() - began)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    from bench.report import write_readme, write_report

    write_report(report, RESULTS)
    write_readme(report, Path(__file__).resolve().parent.parent / "README.md")
    print(f"bench: done in {report['bench_seconds']} s; see {RESULTS / 'latest.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
