"""inventory.py: which hosts file it reads, and what it refuses."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HOSTS = """
[hosts.lb1]
groups = ["lb"]
[hosts.web1]
groups = ["web", "db"]
"""


def load(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Import inventory.py in a fresh interpreter from a copy beside `tmp_path`'s files."""
    (tmp_path / "inventory.py").write_text((ROOT / "inventory.py").read_text())
    run_env = {k: v for k, v in os.environ.items() if k not in ("PWLB_HOSTS", "PWLB_TESTBED_DIR")}
    run_env.update(PWLB_TESTBED_DIR=str(tmp_path / "no-bed"), **env)
    return subprocess.run(
        [sys.executable, "-c", "import inventory; print(sorted(n for n, _ in inventory.lb + inventory.web))"],
        cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=60)


def test_a_missing_pwlb_hosts_file_is_an_error_even_with_another_inventory_beside(tmp_path):
    (tmp_path / "hosts.toml").write_text(HOSTS)  # the inventory that must not be used
    got = load(tmp_path, PWLB_HOSTS=str(tmp_path / "typo.toml"))
    assert got.returncode != 0
    assert f"PWLB_HOSTS={tmp_path / 'typo.toml'}: no such file" in got.stderr
    assert "lb1" not in got.stdout


def test_pwlb_hosts_names_the_inventory(tmp_path):
    (tmp_path / "mine.toml").write_text(HOSTS)
    got = load(tmp_path, PWLB_HOSTS=str(tmp_path / "mine.toml"))
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "['lb1', 'web1']"


def test_without_pwlb_hosts_the_local_hosts_file_is_read(tmp_path):
    (tmp_path / "hosts.toml").write_text(HOSTS)
    got = load(tmp_path)
    assert got.returncode == 0, got.stderr
    assert "lb1" in got.stdout


def test_no_inventory_anywhere_says_how_to_make_one(tmp_path):
    got = load(tmp_path)
    assert got.returncode != 0 and "No hosts: write hosts.toml" in got.stderr


def test_the_python_the_project_requires_has_tomllib():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"  # tomllib is in the standard library from 3.11
    assert "import tomllib" in (ROOT / "inventory.py").read_text()


def test_a_toml_mistake_names_the_file_and_the_line(tmp_path):
    (tmp_path / "hosts.toml").write_text('[hosts.web1]\ngroups = ["web"]\nssh_user = debian\n')
    got = load(tmp_path)
    assert got.returncode != 0 and "Traceback" not in got.stderr
    assert f"{tmp_path / 'hosts.toml'}: not valid TOML" in got.stderr
    assert "line 3" in got.stderr


def test_groups_as_a_string_is_refused_with_the_fix(tmp_path):
    (tmp_path / "hosts.toml").write_text('[hosts.web1]\ngroups = "web"\n')
    got = load(tmp_path)
    assert got.returncode != 0 and "Traceback" not in got.stderr
    assert 'host "web1": groups = "web" is not a list; write groups = ["web"]' in got.stderr


def test_the_package_holds_its_four_subpackages_and_nothing_else():
    """In a checkout, `pyinfra_wordpress_lb.*` names one file each (links to the top-level
    directories), never the checkout's other modules (deploy.py, tests, ...)."""
    import pkgutil

    import pyinfra_wordpress_lb

    found = sorted(m.name for m in pkgutil.iter_modules(pyinfra_wordpress_lb.__path__))
    assert found == ["deploys", "facts", "operations", "templates"]
    import pyinfra_wordpress_lb.deploys.validate as validate

    assert Path(validate.__file__).resolve() == ROOT / "deploys" / "validate.py"


@pytest.mark.parametrize("module, old, new", [
    ("balancer", "admit", "admit_new_web_hosts"),
    ("database", "prune_departed", "drop_departed_accounts"),
    ("firewall", "prune_departed", "close_to_departed_hosts"),
    ("sync", "prune_departed", "unshare_departed_hosts"),
    ("wordpress", "release", "serve_release"),
    ("wordpress", "install", "install_site"),
])
def test_old_deploy_names_still_work_and_say_their_new_names(module, old, new):
    import importlib

    tier = importlib.import_module(f"pyinfra_wordpress_lb.deploys.{module}")
    alias = getattr(tier, old)
    assert alias.__wrapped__ is getattr(tier, new)
    with pytest.warns(DeprecationWarning, match=f"{old} is now {new}"):
        with pytest.raises(Exception):  # (no pyinfra run here: the warning comes first)
            alias()
