"""The operator's view: print the cluster's health (see deploys/status.py). Changes
nothing."""

from __future__ import annotations

import json
from typing import Callable

import click
from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.state import StateStage
from pyinfra.context import state


def verdict_code(rows: list[dict]) -> int:
    """0 all well, 1 something needs attention, 2 a host cannot be reached."""
    if any(r["verdict"] == "unreachable" for r in rows):
        return 2
    return 1 if any(r["verdict"] == "attention" for r in rows) else 0


def to_json(rows: list[dict]) -> str:
    return json.dumps({"verdict": verdict_code(rows), "rows": rows}, indent=2, default=str)


def _details(checks: dict) -> str:
    parts = []
    for key, found in checks.items():
        if isinstance(found, dict):
            found = ", ".join(f"{k} {v}" for k, v in found.items()) or "none"
        parts.append(f"{key}: {found}")
    return "; ".join(parts)


def table(rows: list[dict]) -> str:
    """Rows as the operator reads them: host, role, verdict, what was found; under each
    row that needs attention, what and how to fix it; then a summary."""
    width_host = max([len("HOST")] + [len(r["host"]) for r in rows])
    width_role = max([len("ROLE")] + [len(r["role"]) for r in rows])
    lines = [f"{'HOST':<{width_host}}  {'ROLE':<{width_role}}  {'VERDICT':<11}  DETAILS"]
    for r in rows:
        lines.append(f"{r['host']:<{width_host}}  {r['role']:<{width_role}}  "
                     f"{r['verdict'].upper():<11}  {_details(r['checks'])}")
        for problem in r["problems"]:
            lines.append(f"{'':<{width_host}}  {'':<{width_role}}  {'':<11}  ! {problem}")
    attention = [r for r in rows if r["verdict"] == "attention"]
    unreachable = [r["host"] for r in rows if r["verdict"] == "unreachable"]
    if unreachable:
        summary = f"UNREACHABLE: {', '.join(unreachable)} (exit 2)"
    elif attention:
        summary = (f"NEEDS ATTENTION: {len(attention)} of {len(rows)} rows "
                   f"({', '.join(sorted({r['host'] for r in attention}))}) (exit 1)")
    else:
        summary = f"ALL WELL: {len(rows)} rows (exit 0)"
    return "\n".join(lines + ["", summary])


@operation()
def report(collect: Callable[[], list[dict]], as_json: bool = False,
           on_verdict: Callable[[int], None] | None = None):
    """
    Print the rows ``collect()`` returns (each ``{"host", "role", "verdict", "checks",
    "problems"}``) as a table, or as JSON, on standard output, and hand the exit status
    (0 all well, 1 attention, 2 unreachable) to ``on_verdict``. Changes nothing.

    + collect: returns the rows, asked when the operation runs (every host's facts are in)
    + as_json: print ``{"verdict": ..., "rows": [...]}`` instead of the table
    + on_verdict: called with the exit status

    **Example:**

    .. code:: python

        status.report(name="Report the cluster's health", collect=lambda: rows)
    """
    if getattr(state, "current_stage", None) == StateStage.Prepare:
        host.noop("the cluster's health is reported when the run starts")
        return
    rows = collect()
    code = verdict_code(rows)
    click.echo(to_json(rows) if as_json else "\n" + table(rows) + "\n")
    if on_verdict:
        on_verdict(code)
    host.noop(["all well", "needs attention", "a host cannot be reached"][code])
    return
    yield  # an operation is a generator, even one that never changes anything
