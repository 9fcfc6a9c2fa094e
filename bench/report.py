"""The benchmark report: Markdown tables and PNG charts from bench/results/latest.json.

Usage: python -m bench.report   (re-renders from the JSON)
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
COLORS = {"ours": "#2a7ab9", "tutorial": "#c8553d"}


def table(report: dict) -> str:
    """The README's Performance table."""
    d, o, b = report["deploy"], report["ours"], report["baseline"]
    hosts = len(d["alone_seconds"])
    rows = [
        (f"Cold deploy, {hosts} hosts (split)", f"{d['cold_all_seconds']} s", "—"),
        ("Re-run on an unchanged cluster", f"{min(d['rerun_seconds'])}–{max(d['rerun_seconds'])} s, "
         f"{max(d['rerun_changed'])} changes ({round(100 * d['rerun_over_cold'])}% of cold)", "—"),
        ("Cold all / slowest host alone", f"{d['cold_all_over_slowest_alone']}× "
         f"(slowest alone {d['slowest_alone_seconds']} s)", "—"),
        ("Front page via LB, rendered by PHP (req/s, p50 / p99)"
         + (", ours over HTTPS" if "http_plain" in o else ""),
         _http(o["http"]["lb"]), _http(b["http"]["lb"])),
        ("Front page, one backend direct", _http(o["http"]["direct"]), _http(b["http"]["direct"])),
        ("LB / direct throughput", f"{round(100 * o['http']['lb_over_direct'])}%",
         f"{round(100 * b['http']['lb_over_direct'])}%"),
        ("Sync 1 KB file, p50 / p95 / max", _sync(o["sync"]["1KB"]), _sync(b["sync"]["1KB"])),
        ("Sync 1 MB file, p50 / p95 / max", _sync(o["sync"]["1MB"]), _sync(b["sync"]["1MB"])),
        ("Failed GETs, PHP-FPM down on 1 of 2", _fail(o["failover"]["php_fpm_stopped"]),
         _fail(b["failover"]["php_fpm_stopped"])),
        ("Failed GETs, backend container stopped", _fail(o["failover"]["container_stopped"]),
         _fail(b["failover"]["container_stopped"])),
    ]
    if "http_plain" in o:
        rows.insert(5, ("Front page via LB over plain HTTP, our other settings",
                        _http(o["http_plain"]["lb"]) + f" (HTTPS/HTTP: "
                        f"{round(100 * o['https_over_http'])}%)", "—"))
    if "cache" in o:
        c = o["cache"]
        rows.insert(6, ("Front page via LB, anonymous (page cache)",
                        _http(c["cached"]) + f": {c['cached_over_uncached']}× the same page "
                        f"with a logged-in cookie ({_http(c['uncached'])})", "no cache"))
    if "read_your_upload" in o:
        r = o["read_your_upload"]
        rows.append(("GETs of a file right after it was written on one web host, 404s",
                     f"{r['not_found']} of {r['gets']}", "—"))
    if "stale" in o:
        st = o["stale"]
        rows.append(("PHP-FPM down on every web host: a page cached before",
                     f"{st['ok']} of {st['gets']} GETs answered 200 ({st['hit']} fresh, "
                     f"{st['stale']} stale)", "—"))
    if "takeover" in o:
        t = o["takeover"]
        single = t["one_balancer_kill"]
        rows += [
            (f"Site answers again after the address holder is killed ({len(t['kills'])} kills)",
             f"p50 {t['kill_outage_p50_s']} s, max {t['kill_outage_max_s']} s; failed GETs "
             f"{'/'.join(str(k['failed']) for k in t['kills'])} (in flight), "
             f"{sum(k['failed_after_move'] for k in t['kills'])} after the move",
             f"one balancer: down {single['outage_s']} s even with an immediate restart, "
             f"{single['failed']} of {single['requests']} GETs failed"),
        ]
        for how, runs in t["graceful"].items():
            rows.append((f"Failed GETs, holder's {how} ({len(runs)} runs)",
                         f"{sum(r['failed'] for r in runs)} of {sum(r['requests'] for r in runs)}"
                         f", worst {max(r['worst_s'] for r in runs)} s", "—"))
    if "status_seconds" in d:
        rows.insert(3, (f"Status command (`status.py`), {hosts} hosts",
                        f"{min(d['status_seconds'])}–{max(d['status_seconds'])} s "
                        f"(exit {max(d['status_exit'])})", "—"))
    lines = ["| measure | ours (defaults) | tutorial baseline |", "|---|---|---|"]
    lines += [f"| {a} | {b_} | {c} |" for a, b_, c in rows]
    footprint = ", ".join(f"{role}: {mb} MB" for role, mb in report["footprint_mb"].items())
    lines.append(f"| Resident memory after deploy | {footprint} | — |")
    if "scale" in report:
        sc = report["scale"]
        lines += ["", "Mesh size study (`make bench`): 100 small files written in a burst on "
                  "one web host, time until each reached every other host:", "",
                  "| web hosts | p50 | p95 | max | lost "
                  "| writer's CPU during the burst |", "|---|---|---|---|---|---|"]
        for k in ("2", "4", "6"):
            if k in sc:
                r = sc[k]
                lines.append(f"| {k} | {r['p50_s']} s | {r['p95_s']} s | {r['max_s']} s | "
                             f"{r['lost']} of {r['arrivals']} | {r['cpu_seconds']} s |")
        lines.append(f"\np95 with 6 hosts / p95 with 2: {sc['p95_6_over_2']}×.")
    if "database" in report:
        lines += ["", database_table(report["database"])]
    if "sites" in report:
        lines += ["", sites_table(report["sites"])]
    return "\n".join(lines)


def sites_table(found: dict) -> str:
    """Many sites on the split bed (bench/sites.py)."""
    counts = [k for k in found if k.isdigit()]
    lines = ["Many sites (`python -m bench.run --only sites`, the split bed grown from 1 site "
             "to 5 and 20; the no-op is the median of the re-runs after each):", "",
             "| sites | deploy that got there | no-op re-run | lb1 nginx | web1 nginx + "
             "php-fpm + syncthing (syncthing alone) | db1 mariadb |", "|---|---|---|---|---|---|"]
    for k in counts:
        r, m = found[k], found[k]["rss_mb"]
        lines.append(
            f"| {k} | {r['deploy_s']} s ({r['deploy_changed']} changes) | {r['noop_s']} s "
            f"({r['noop_changed']} changes) | {m['lb1 (nginx)']} MB | "
            f"{m['web1 (nginx, php-fpm, syncthing)']} MB ({m['web1 syncthing alone']} MB) | "
            f"{m['db1 (mariadb)']} MB |")
    lines.append(f"\nNo-op with {counts[-1]} sites / with {counts[0]}: {found['noop_ratio']}×.")
    return "\n".join(lines)


def database_table(db: dict) -> str:
    """One MariaDB host beside a Galera cluster of three (bench/database.py)."""
    one, three = db["single"], db["galera"]

    def write(w: dict) -> str:
        return (f"p50 {w['p50_ms']} ms, p95 {w['p95_ms']} ms ({w['ok']} of {w['posts']})"
                if w.get("ok") else f"none of {w['posts']} succeeded")

    kill = one["kill"]
    alone = (f"none for the {kill['watched_s']} s watched (until db1 is back)"
             if kill["resumed_s"] is None else f"after {kill['resumed_s']} s")
    resumed = ", ".join(f"{k['resumed_s']} s" for k in three["kills"])
    return "\n".join([
        f"The database (`python -m bench.run --only database`, the `galera` bed): one post "
        f"written from web1 on a new connection, {db['posts_per_second']} a second for "
        f"{db['seconds_per_measure']} s; the writer killed 3 s into such a run:", "",
        "| measure | one db host | Galera, three db hosts |", "|---|---|---|",
        f"| One post (connect, insert, commit) | {write(one['write'])} direct | "
        f"{write(three['write'])} through the web host's proxy; {write(three['write_direct'])} "
        "direct |",
        f"| Writes again after the writer is killed | {alone} | {resumed} |",
        f"| Deploy (lb1, web1, web2 and the db hosts) | cold {one['cold_deploy_s']} s | "
        f"growing 1 → 3: {three['grow_deploy_s']} s |",
    ])


def _http(h: dict) -> str:
    return f"{h['rps']:.0f} req/s, {h['p50_ms']} / {h['p99_ms']} ms"


def _sync(s: dict) -> str:
    lost = "" if s["arrived"] == s["files"] else f" ({s['files'] - s['arrived']} lost)"
    return f"{s['p50_s']} / {s['p95_s']} / {s['max_s']} s{lost}"


def _fail(f: dict) -> str:
    return f"{f['failed']} of {f['requests']} ({f['failed_pct']}%), worst {f['worst_s']} s"


def charts(report: dict, out: Path) -> list[str]:
    o, b = report["ours"], report["baseline"]
    names = []

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, size in zip(axes, ("1KB", "1MB")):
        stats = ("p50_s", "p95_s", "max_s")
        xs = range(len(stats))
        ax.bar([x - 0.2 for x in xs], [o["sync"][size][s] for s in stats], 0.4,
               label="ours", color=COLORS["ours"])
        ax.bar([x + 0.2 for x in xs], [b["sync"][size][s] for s in stats], 0.4,
               label="tutorial", color=COLORS["tutorial"])
        ax.set_xticks(list(xs), ["p50", "p95", "max"])
        ax.set_title(f"Sync propagation, {size} files (s, lower is better)")
        ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "sync.png", dpi=100)
    names.append("sync.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    labels = ["via LB", "one backend"]
    ours_rps = [o["http"]["lb"]["rps"], o["http"]["direct"]["rps"]]
    base_rps = [b["http"]["lb"]["rps"], b["http"]["direct"]["rps"]]
    ax.bar([x - 0.2 for x in range(2)], ours_rps, 0.4, label="ours", color=COLORS["ours"])
    ax.bar([x + 0.2 for x in range(2)], base_rps, 0.4, label="tutorial", color=COLORS["tutorial"])
    ax.set_xticks(range(2), labels)
    ax.set_title("Front page throughput (req/s, higher is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "http.png", dpi=100)
    names.append("http.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    cases = [("php_fpm_stopped", "PHP-FPM down"), ("container_stopped", "backend stopped")]
    ax.bar([x - 0.2 for x in range(2)], [o["failover"][c]["failed_pct"] for c, _ in cases], 0.4,
           label="ours", color=COLORS["ours"])
    ax.bar([x + 0.2 for x in range(2)], [b["failover"][c]["failed_pct"] for c, _ in cases], 0.4,
           label="tutorial", color=COLORS["tutorial"])
    ax.set_xticks(range(2), [label for _, label in cases])
    ax.set_title("Failed GETs while one of two backends fails (%, lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "failover.png", dpi=100)
    names.append("failover.png")

    if "scale" in report:
        sc = report["scale"]
        sizes = [k for k in ("2", "4", "6") if k in sc]
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        for stat, style in (("p50_s", "o-"), ("p95_s", "s-"), ("max_s", "^-")):
            left.plot([int(k) for k in sizes], [sc[k][stat] for k in sizes], style,
                      label=stat.removesuffix("_s"), color=COLORS["ours"])
        left.set_xlabel("web hosts")
        left.set_ylabel("seconds to every other host")
        left.set_title("Mesh: 100 files in a burst")
        left.set_xticks([int(k) for k in sizes])
        left.legend(loc="upper left")
        right.bar(range(len(sizes)), [sc[k]["cpu_seconds"] for k in sizes],
                  0.5, label="writer's CPU seconds", color=COLORS["ours"])
        right.set_xticks(range(len(sizes)), [f"{k} hosts" for k in sizes])
        right.set_title("The writing host during the burst")
        right.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(out / "scale.png", dpi=100)
        names.append("scale.png")

    d = report["deploy"]
    fig, ax = plt.subplots(figsize=(8, 4))
    bars = {"cold, all 4": d["cold_all_seconds"],
            "re-run (median)": sorted(d["rerun_seconds"])[len(d["rerun_seconds"]) // 2]}
    bars.update({f"{h} alone": s for h, s in d["alone_seconds"].items()})
    ax.bar(list(bars), list(bars.values()), color=COLORS["ours"])
    ax.set_title("Deploy time (s)")
    ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(out / "deploy.png", dpi=100)
    names.append("deploy.png")
    plt.close("all")
    return names


def write_report(report: dict, out: Path = RESULTS) -> None:
    names = charts(report, out)
    text = [
        "# Benchmark report",
        "",
        f"{report['date']}, on {report['machine']}; `{report['command']}` "
        f"({report['bench_seconds']} s). Ours = this project's defaults; tutorial baseline "
        "= the same deploy with the tutorial's settings "
        f"(`{json.dumps(report['baseline_settings'])}`), measured on the same bed in the "
        "same run.",
        "",
        table(report),
        "",
        *[f"![{n}]({n})" for n in names],
        "",
    ]
    (out / "latest.md").write_text("\n".join(text))


def readme_block(report: dict) -> str:
    d = report["deploy"]
    return "\n".join([
        f"Measured {report['date']} on {report['machine']} with `{report['command']}` "
        f"({report['bench_seconds'] // 60} min; full report: `bench/results/latest.md`, "
        "charts beside it). The tutorial baseline is this same deploy with the tutorial's "
        "settings: plain HTTP (`tls=off`), `mesh_delay=10` (syncthing's default) with "
        "`mesh_watch=false` (its own watcher only), and an upstream with nginx's defaults "
        "only (`lb_keepalive=0`, `lb_next_upstream=\"error timeout\"`, "
        "`lb_connect_timeout=60s`), measured on the same bed in the same run.",
        "",
        table(report),
        "",
        f"Deploy: the {len(d['alone_seconds'])} hosts deployed together took {d['cold_all_seconds']} s; each "
        f"alone took {', '.join(f'{h} {s} s' for h, s in d['alone_seconds'].items())} (their "
        f"sum is {d['sum_alone_over_cold_all']}× the cold deploy: a step that several hosts "
        "have runs on all of them at once).",
        *([] if "deploy_measured" not in report else [
            "",
            f"The deploy figures (cold deploy, re-run, cold/slowest alone, status command, "
            f"and the line above) are from a later run of the deploy part alone, "
            f"`{report['deploy_measured']['command']}`, {report['deploy_measured']['date']} "
            f"({report['deploy_measured']['seconds'] // 60} min), after the deploy itself "
            "changed; the other figures are from the run named first."]),
        *([] if "sites_measured" not in report else [
            "",
            f"The sites table is from `{report['sites_measured']['command']}`, "
            f"{report['sites_measured']['date']} "
            f"({report['sites_measured']['seconds'] // 60} min)."]),
        *([] if "database_measured" not in report else [
            "",
            f"The database table is from `{report['database_measured']['command']}`, "
            f"{report['database_measured']['date']} "
            f"({report['database_measured']['seconds'] // 60} min)."]),
    ])


def write_readme(report: dict, path: Path) -> None:
    """Replace the README's Performance block with these figures."""
    import re

    text = path.read_text()
    text = re.sub(r"(<!-- bench:begin -->\n).*?(<!-- bench:end -->)",
                  lambda m: m.group(1) + readme_block(report) + "\n" + m.group(2), text,
                  flags=re.S)
    path.write_text(text)


if __name__ == "__main__":
    import sys

    latest = json.loads((RESULTS / "latest.json").read_text())
    write_report(latest)
    if sys.argv[1:2] == ["--readme"]:
        write_readme(latest, Path(sys.argv[2]))
