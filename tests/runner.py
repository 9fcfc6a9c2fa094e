"""Run the pyinfra CLI against a test bed, as an operator would, and read its results."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))


@dataclass
class Run:
    returncode: int
    output: str
    # operation name -> {"hosts": n, "success": n, "error": n, "no_change": n}
    results: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(r["success"] for r in self.results.values())

    @property
    def changed_ops(self) -> list[str]:
        return [name for name, r in self.results.items() if r["success"]]

    @property
    def errors(self) -> int:
        return sum(r["error"] for r in self.results.values())

    def why(self, context: int = 12) -> str:
        """What pyinfra printed around its errors (for an assertion's message)."""
        lines = self.output.splitlines()
        marks = [i for i, line in enumerate(lines)
                 if "Error" in line or "error:" in line or "Traceback" in line]
        keep = sorted({j for i in marks for j in range(max(0, i - context), min(len(lines), i + 3))})
        return "\n".join(lines[j] for j in keep)[-8000:] or self.output[-4000:]


_ROW = re.compile(r"^\s{4}(?P<name>.+?)\s{2,}(?P<hosts>\d+)\s+(?P<success>\d+|-)\s+"
                  r"(?P<error>\d+|-)\s+(?P<no_change>\d+|-)\s*$")


def parse_results(output: str) -> dict[str, dict[str, int]]:
    """The `--> Results:` table: changed operations count under Success."""
    results: dict[str, dict[str, int]] = {}
    in_table = False
    for line in output.splitlines():
        if line.startswith("--> Results:"):
            in_table = True
            continue
        if not in_table:
            continue
        if line.startswith("-->"):
            break
        match = _ROW.match(line)
        if not match or match["name"].strip() in ("Operation", "Grand total"):
            continue
        results[match["name"].strip()] = {
            key: 0 if match[key] == "-" else int(match[key])
            for key in ("hosts", "success", "error", "no_change")
        }
    return results


def pyinfra(hosts_file: Path, *args: str, deploy: str = "deploy.py", env: dict | None = None,
            timeout: float = 1800, cwd: Path = ROOT, on_line=None) -> Run:
    """`pyinfra -y inventory.py deploy.py` with PWLB_HOSTS pointing at a bed's hosts file
    (from another tree with `cwd`: an earlier version of this project). `on_line` is
    called with each line of output as it comes (to act at a given step of the run)."""
    command = [PYINFRA, "-y", "inventory.py", *([deploy] if deploy else []), *args]
    run_env = {**os.environ, "PWLB_HOSTS": str(hosts_file), "COLUMNS": "250",
               **(env or {})}
    if on_line is None:
        proc = subprocess.run(command, cwd=cwd, env=run_env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        output = proc.stdout + proc.stderr
        return Run(proc.returncode, output, parse_results(output))
    lines = []
    run_env["PYTHONUNBUFFERED"] = "1"  # each line as pyinfra prints it, not in blocks
    with subprocess.Popen(command, cwd=cwd, env=run_env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL) as proc:
        for line in proc.stdout:
            lines.append(line)
            on_line(line)
        returncode = proc.wait(timeout=timeout)
    output = "".join(lines)
    return Run(returncode, output, parse_results(output))
