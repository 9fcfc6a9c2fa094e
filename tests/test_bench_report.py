"""The benchmark report renders from a results file (a real quick run's figures)."""

import json
from pathlib import Path

from bench.report import table, write_report

SAMPLE = json.loads((Path(__file__).parent / "bench_sample.json").read_text())


def test_report_table_has_every_figure_for_both_configurations():
    text = table(SAMPLE)
    for measure in ("Cold deploy", "Re-run", "slowest host alone", "via LB", "one backend direct",
                    "Sync 1 KB", "Sync 1 MB", "PHP-FPM down", "container stopped",
                    "Resident memory"):
        assert measure in text, measure
    row = next(line for line in text.splitlines() if line.startswith("| Sync 1 KB"))
    ours, tutorial = row.split("|")[2:4]
    assert ours.strip() and tutorial.strip() and tutorial.strip() != "—"


def test_report_writes_markdown_and_charts(tmp_path):
    write_report(SAMPLE, tmp_path)
    assert (tmp_path / "latest.md").read_text().startswith("# Benchmark report")
    for chart in ("sync.png", "http.png", "failover.png", "deploy.png"):
        assert (tmp_path / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_deploy_figures_measured_later_are_named_as_such():
    from bench.report import readme_block

    sample = {**SAMPLE, "bench_seconds": SAMPLE.get("bench_seconds", 1500)}
    later = {**sample, "deploy_measured": {"date": "2026-12-02 03:00 UTC", "seconds": 600,
                                           "command": "python -m bench.run --only deploy"}}
    text = readme_block(later)
    assert "`python -m bench.run --only deploy`, 2026-12-02 03:00 UTC (10 min)" in text
    assert "from a later run of the deploy part alone" not in readme_block(sample)


def test_the_database_table_sets_one_host_beside_the_cluster():
    from bench.report import database_table

    write = {"posts": 300, "ok": 300, "p50_ms": 2.1, "p95_ms": 3.4, "max_ms": 9.0}
    db = {"posts_per_second": 20, "seconds_per_measure": 15,
          "single": {"cold_deploy_s": 120.0, "write": write,
                     "kill": {"resumed_s": None, "watched_s": 12.0, "failed": 240, "posts": 300}},
          "galera": {"grow_deploy_s": 90.0, "write": {**write, "p50_ms": 4.0},
                     "write_direct": write, "resumed_max_s": 3.9,
                     "kills": [{"resumed_s": 3.8}, {"resumed_s": 3.9}]}}
    text = table({**SAMPLE, "database": db})
    assert "| One post (connect, insert, commit) | p50 2.1 ms, p95 3.4 ms (300 of 300) direct " \
           "| p50 4.0 ms, p95 3.4 ms (300 of 300) through the web host's proxy" in text
    assert "| Writes again after the writer is killed | none for the 12.0 s watched " \
           "(until db1 is back) | 3.8 s, 3.9 s |" in text
    assert database_table(db) in text


def test_the_sites_table_shows_each_count_and_the_no_op_ratio():
    from bench.report import sites_table

    rss = {"lb1 (nginx)": 20.0, "web1 (nginx, php-fpm, syncthing)": 300.0,
           "web1 syncthing alone": 40.0, "db1 (mariadb)": 150.0}
    found = {"1": {"deploy_s": 80.0, "deploy_changed": 250, "noop_s": 4.6, "noop_changed": 0,
                   "rss_mb": rss},
             "20": {"deploy_s": 300.0, "deploy_changed": 900, "noop_s": 8.1, "noop_changed": 0,
                    "rss_mb": {**rss, "web1 syncthing alone": 800.0}},
             "noop_ratio": 1.76}
    text = table({**SAMPLE, "sites": found})
    assert sites_table(found) in text
    assert "| 20 | 300.0 s (900 changes) | 8.1 s (0 changes) | 20.0 MB | 300.0 MB (800.0 MB)" \
        in text
    assert "No-op with 20 sites / with 1: 1.76×." in text
