"""Run the pyinfra CLI on deploy.py against @fake hosts, as an operator would (no hosts
needed): what a whole run does when one host's command fails.

The fake hosts answer the facts an executed run asks as a cluster that has just been
deployed would (an archive that matches its checksum, WordPress installed, the site
answering), so the run goes through to the end unless a test makes a command fail.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.fakedeploy import FAKE_HOST, ip_addr_json
from tests.runner import Run, parse_results

ROOT = Path(__file__).resolve().parent.parent
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
SITE = "https://www.example.com"
TITLE = "WordPress on pyinfra"
ARCHIVE_SHA1 = "e0ca593bc062f7a8c5a956ca44aff7375b0841e0"  # the default release's

# What an executed run reads back (first match wins, after a test's own answers).
EXECUTED: dict = {
    "nft list table": ["loaded=no", "file=0123", "stamp="],
    "sha1sum": f"{ARCHIVE_SHA1}  /var/cache/wordpress-lb/wordpress-7.1.0-{ARCHIVE_SHA1[:12]}.tar.gz",
    "php-fpm 2>/dev/null": "install ok installed|php8.4-fpm",
    "is_blog_installed": ["installed", "core=60000 db=60000"],  # (and its database version)
    "::127.0.0.1:80 ": ["PWLB-STATUS:301", f"location: {SITE}/", "PWLB-TIME:0.01",
                        "PWLB-EXIT:0"],
    "PWLB-STATUS": [f"<title>{TITLE}</title>", "PWLB-STATUS:200", "PWLB-TIME:0.01",
                    "PWLB-EXIT:0"],
}


def download_fails() -> dict:
    """Answers of a host whose download of the release archive times out."""
    return {re.compile(r"(curl|wget) .*wordpress-"): {"success": False,
                                                       "stderr": "curl: (28) timed out"}}


@dataclass(frozen=True)
class Command:
    """One prepared CLI run: its arguments, directory and environment."""
    argv: tuple[str, ...]
    cwd: str
    env: dict


def prepare(tmp: Path, groups: dict[str, list[str]], answers: dict[str, dict] | None = None,
            data: dict | None = None, args: tuple[str, ...] = (), pyinfra: str = PYINFRA,
            project: Path = ROOT, env: dict | None = None, deploy: str = "deploy.py",
            unreachable: tuple[str, ...] = ()) -> Command:
    """Write the fake inventory for `pyinfra -y <inventory> deploy.py` on fake hosts:
    `groups` as in an inventory, `answers` per host (fake responses tried before the
    executed cluster's); with `pyinfra` and `project`, another installation's CLI in
    another directory; hosts in `unreachable` are SSH hosts that cannot be reached."""
    names: list[str] = []
    for hosts in groups.values():
        names += [h for h in hosts if h not in names]
    hosts = {}
    for index, name in enumerate(names):
        address = f"10.0.0.{10 + index}"
        responses = {**(answers or {}).get(name, {}), **FAKE_HOST,
                     "ip -j addr": ip_addr_json(address), **EXECUTED}
        common = {"private_address": address, "secrets_file": str(tmp / "hosts.secrets.json"),
                  "site_url": SITE, **(data or {})}
        if name in unreachable:  # SSH to a closed port: "Could not connect", at once
            hosts[name] = (name, {"ssh_hostname": "127.0.0.1", "ssh_port": 1, **common})
        else:
            hosts[name] = (f"@fake/{name}", {
                "fake_delay": 0, "fake_delay_jitter": 0, "fake_responses": responses,
                **common})
    lines = ["import re", ""]
    for group, members in groups.items():
        lines.append(f"{group} = {[hosts[m] for m in members]!r}")
    tmp.mkdir(parents=True, exist_ok=True)
    inventory = tmp / "fake_inventory.py"
    inventory.write_text("\n".join(lines) + "\n")
    return Command((pyinfra, "-y", *args, str(inventory), deploy), str(project),
                   {**(os.environ if env is None else env), "COLUMNS": "250"})


def run(tmp: Path, groups: dict[str, list[str]], **kwargs) -> Run:
    """Prepare and run one CLI run now (see `prepare`)."""
    command = prepare(tmp, groups, **kwargs)
    proc = subprocess.run(command.argv, cwd=command.cwd, env=command.env,
                          capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    return Run(proc.returncode, output, parse_results(output))


class Batch:
    """CLI runs started in the background, one after another, in one shell: each is a
    fresh interpreter that mostly burns CPU, so they run on the second core while the
    test process goes on with other tests. `result(key)` waits for one of them."""

    def __init__(self, commands: dict[str, Command], outdir: Path):
        self.outdir = outdir
        self.keys = list(commands)
        script = []
        for index, command in enumerate(commands.values()):
            out = outdir / f"{index}.out"
            env = " ".join(shlex.quote(f"{k}={v}") for k, v in command.env.items()
                           if k == "COLUMNS")
            script.append(f"cd {shlex.quote(command.cwd)} && env {env} "
                          f"timeout 300 {shlex.join(command.argv)} </dev/null >{out} 2>{out}.err; "
                          f"echo $? >{out}.rc.tmp && mv {out}.rc.tmp {out}.rc")
        self.proc = subprocess.Popen(["sh", "-c", "\n".join(script)], env=dict(os.environ),
                                     stdin=subprocess.DEVNULL)

    def result(self, key: str, timeout: float = 600) -> Run:
        index = self.keys.index(key)
        out, rc = self.outdir / f"{index}.out", self.outdir / f"{index}.out.rc"
        deadline = time.monotonic() + timeout
        while not rc.exists():
            if self.proc.poll() is not None and not rc.exists():
                raise RuntimeError(f"the background CLI runs stopped before {key!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the background CLI run {key!r} did not end")
            time.sleep(0.05)
        output = out.read_text() + Path(f"{out}.err").read_text()  # as `run` reads them
        return Run(int(rc.read_text()), output, parse_results(output))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def step(output: str, name: str) -> dict[str, str]:
    """What each host reported for one step: {host: "Success" | "No changes" | its error
    lines}; hosts the step is not for, and hosts out of the run by then, are missing."""
    found: dict[str, str] = {}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("--> Starting operation:") and line.split(":", 1)[1].strip() == name:
            for row in lines[i + 1:]:
                match = re.match(r"^\s+\[@fake/(\S+)\]\s+(.*)$", row)
                if not match:
                    break
                if match[2].strip() != "Skipped":
                    found[match[1]] = f"{found.get(match[1], '')} {match[2].strip()}".strip()
    return found
