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
