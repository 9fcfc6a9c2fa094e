"""CLI runs on @fake hosts start in the background as soon as the tests are collected.

A test module declares them in `CLI_RUNS` (key -> `fakerun.prepare` arguments, without the
directory); they run one after another in a shell of their own while this process goes
on with other tests (a CLI run is ~1.5 s of a fresh interpreter's CPU: on two cores that
time is nearly free), and the `cli` fixture hands a test its run's result.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests import fakerun

_BATCH: dict = {}


def _wanted(items) -> dict[str, dict]:
    runs: dict[str, dict] = {}
    for item in items:
        declared = getattr(getattr(item, "module", None), "CLI_RUNS", None) or {}
        runs.update(declared)
    return runs


@pytest.hookimpl(trylast=True)  # (after the integration tests' order of beds)
def pytest_collection_modifyitems(items):
    """The tests reading a CLI run go last among the tests without a bed: by then the
    background runs are done instead of being waited for."""
    reading = [item for item in items if "cli" in getattr(item, "fixturenames", ())]
    if not reading:
        return
    rest = [item for item in items if item not in reading]
    first_bed = next((i for i, item in enumerate(rest)
                      if item.get_closest_marker("integration")), len(rest))
    items[:] = rest[:first_bed] + reading + rest[first_bed:]


def pytest_collection_finish(session):
    runs = _wanted(session.items)
    if not runs:
        return
    root = Path(tempfile.mkdtemp(prefix="pwlb-cli-"))
    commands = {key: fakerun.prepare(root / key, **kwargs) for key, kwargs in runs.items()}
    _BATCH["root"] = root
    _BATCH["batch"] = fakerun.Batch(commands, root)


def pytest_sessionfinish(session):
    batch = _BATCH.pop("batch", None)
    if batch is not None:
        batch.stop()
        shutil.rmtree(_BATCH.pop("root"), ignore_errors=True)


@pytest.fixture
def cli():
    """`cli(key)`: the run declared in CLI_RUNS under `key` ((run, its directory))."""
    def result(key: str):
        batch = _BATCH["batch"]
        return batch.result(key), _BATCH["root"] / key
    return result
