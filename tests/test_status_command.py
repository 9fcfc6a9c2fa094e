"""`make status` (scripts/status): which cluster it reads, and its exit status when no
host answers at all."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_make_status_reads_the_demo_bed_unless_pwlb_hosts_says_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "PWLB_HOSTS"}
    dry = subprocess.run(["make", "-n", "status"], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout
    assert f'PWLB_HOSTS="${{PWLB_HOSTS:-{ROOT}/.testbed/split/hosts.toml}}" scripts/status' in dry


def test_no_host_reachable_is_exit_2(tmp_path):
    hosts = tmp_path / "hosts.toml"
    hosts.write_text('[hosts.nobody]\ngroups = ["web", "db"]\nssh_hostname = "127.0.0.1"\n'
                     "ssh_port = 1\n")
    got = subprocess.run([str(ROOT / "scripts/status")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL,
                         env={**os.environ, "PWLB_HOSTS": str(hosts)})
    assert got.returncode == 2, got.stdout[-2000:] + got.stderr[-2000:]
    assert "no host could be reached" in got.stderr
