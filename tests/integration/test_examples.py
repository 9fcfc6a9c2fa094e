"""Reuse from another pyinfra project: the wheel installed into a fresh virtualenv outside
the repository, imported beside a project's own `deploys`, `operations`, `facts` and
`templates` packages; then each project in examples/ deployed to a bed of its own (and
re-run with no change)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests import fakerun
from tests.runner import ROOT, parse_results
from tests.testbed import DEPLOY_USER

PACKAGES = ("deploys", "operations", "facts", "templates")
# Nothing of the checkout leaks in: no PWLB_* settings, no PYTHONPATH, no active venv.
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith("PWLB_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
CLEAN_ENV["COLUMNS"] = "250"


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv, outside the repository, with the package's wheel installed."""
    work = tmp_path_factory.mktemp("wheel")
    # From a copy of what git tracks (a build/ left in the checkout would hide a file
    # the package no longer ships).
    source = work / "source"
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard"],
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work),
                    str(source)], check=True, cwd=work)
    wheel = next(work.glob("pyinfra_wordpress_lb-*.whl"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "-q", str(wheel)], check=True, cwd=work)
    return venv


def test_the_wheel_installs_no_generic_top_level_name(installed):
    site = next(installed.glob("lib/python*/site-packages"))
    for name in PACKAGES:
        assert not (site / name).exists(), f"the wheel installed a top-level {name!r}"
    assert (site / "pyinfra_wordpress_lb/templates/nginx/balancer.conf.j2").is_file()


def test_every_module_imports_beside_a_projects_own_packages(installed, tmp_path):
    # A project of the most ordinary layout: its own packages with the same four names.
    for name in PACKAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"MINE = {name!r}\n")
    (tmp_path / "deploys" / "web.py").write_text("OWN_WEB = True\n")
    script = """
import importlib, json, pkgutil, sys
import deploys, operations, facts, templates
import deploys.web
assert deploys.web.OWN_WEB and templates.MINE == "templates"
import pyinfra_wordpress_lb
found = []
for info in pkgutil.walk_packages(pyinfra_wordpress_lb.__path__, "pyinfra_wordpress_lb."):
    importlib.import_module(info.name)
    found.append(info.name)
print(json.dumps({"ours": found, "mine": [m.MINE for m in (deploys, operations, facts, templates)],
                  "file": pyinfra_wordpress_lb.__file__}))
"""
    done = subprocess.run([str(installed / "bin/python"), "-c", script], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["mine"] == list(PACKAGES)
    assert str(ROOT) not in result["file"], "imported from the checkout, not the wheel"
    modules = set(result["ours"])
    for expected in ("deploys.web", "deploys.sync", "deploys.balancer", "deploys.validate",
                     "operations.wordpress", "operations.ssh", "facts.syncthing", "facts.http",
                     "templates"):
        assert f"pyinfra_wordpress_lb.{expected}" in modules, sorted(modules)


def test_the_whole_deploy_runs_from_the_wheel(installed, tmp_path):
    """deploy.py, copied beside an inventory of @fake hosts, runs from the installed wheel
    alone: a file missing from the package (a template, a script) fails here."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "deploy.py", project / "deploy.py")
    run = fakerun.run(tmp_path, {"lb": ["lb1"], "web": ["web1", "web2"], "db": ["db1"]},
                      pyinfra=str(installed / "bin/pyinfra"), project=project, env=CLEAN_ENV)
    assert "Traceback" not in run.output, run.why()
    assert run.returncode == 0, run.why()
    assert str(ROOT) not in run.output


def _host_data(bed, host) -> dict:
    return {"ssh_hostname": host.address, "ssh_user": DEPLOY_USER, "ssh_key": str(bed.key_file),
            "ssh_known_hosts_file": str(bed.dir / "known_hosts"),
            "ssh_strict_host_key_checking": "yes", "_sudo": True,
            "private_address": host.address}


def example_project(name: str, bed, tmp_path: Path, groups: dict[str, list[str]],
                    extra: dict[str, dict] | None = None) -> Path:
    """A copy of examples/<name> whose inventory names the bed's hosts, as an operator
    edits the example's inventory.py for theirs."""
    project = tmp_path / name
    shutil.copytree(ROOT / "examples" / name, project)
    lines = ['"""The test bed\'s hosts (written by tests/integration/test_examples.py)."""']
    for group, names in groups.items():
        hosts = [(n, {**_host_data(bed, bed.host(n)), **(extra or {}).get(n, {})}) for n in names]
        lines.append(f"{group} = {hosts!r}")
    (project / "inventory.py").write_text("\n".join(lines) + "\n")
    return project


def deploy(installed: Path, project: Path):
    proc = subprocess.run([str(installed / "bin/pyinfra"), "-y", "inventory.py", "deploy.py"],
                          cwd=project, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL, env=CLEAN_ENV)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    results = parse_results(output)
    return sum(r["success"] for r in results.values()), output


@pytest.fixture(scope="module")
def examples_bed(beds):
    return beds.get("examples", "13")


@pytest.mark.own_bed("examples")
def test_mesh_only_example_mirrors_two_plain_web_servers(installed, examples_bed, tmp_path):
    bed = examples_bed
    project = example_project("mesh-only", bed, tmp_path, {"web": ["web1", "web2"]})
    first, _ = deploy(installed, project)
    assert first > 0
    again, output = deploy(installed, project)
    assert again == 0, output[-4000:]
    assert (project / "mesh.secrets.json").stat().st_mode & 0o077 == 0
    bed.exec("web1", "echo 'hello from web1' > /srv/site/htdocs/index.html", user="site")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        code, text = bed.exec("web2", "cat /srv/site/htdocs/index.html", check=False)
        if code == 0:
            break
        time.sleep(0.2)
    assert text.strip() == "hello from web1"
    served = requests.get(f"http://{bed.host('web2').address}/", timeout=10)
    assert served.text.strip() == "hello from web1"
    assert served.headers["X-Served-By"] == "web2"


@pytest.mark.own_bed("examples")
def test_balancer_only_example_fronts_backends_it_does_not_manage(installed, examples_bed,
                                                                   tmp_path):
    bed = examples_bed  # web1 and web2 serve the mesh example's site (the test above)
    backends = [f"{bed.host(n).address}:80" for n in ("web1", "web2")]
    project = example_project("balancer-only", bed, tmp_path, {"lb": ["lb1"]},
                              {"lb1": {"lb_backends": backends,
                                        # the test counts which backend served
                                        "lb_show_backend": True}})
    first, _ = deploy(installed, project)
    assert first > 0
    again, output = deploy(installed, project)
    assert again == 0, output[-4000:]
    served = set()
    for i in range(20):  # (a query string: past the balancer's page cache)
        response = requests.get(f"http://127.0.0.1:{bed.port}/?n={i}", timeout=10)
        assert response.status_code == 200 and "hello from web1" in response.text
        served.add(response.headers["X-Served-By"])
    assert served == {"web1", "web2"}
