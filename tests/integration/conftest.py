"""Integration fixtures: real Debian hosts in containers, deployed over SSH.

Beds run one after another, never side by side: asking for a different bed tears the
current one down first. Tests that only read a deployed cluster share it; destructive
tests ask for a bed of their own name.
Set PWLB_KEEP_BED=1 to leave the last bed running for a look after the tests.
"""

from __future__ import annotations

import os

import pytest

from tests import testbed
from tests.runner import Run, pyinfra

pytestmark = pytest.mark.integration

PORT = int(os.environ.get("PWLB_TEST_PORT", "18080"))


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


class Beds:
    def __init__(self) -> None:
        self.current: testbed.Bed | None = None
        self.deploys: dict[str, tuple[Run, Run]] = {}

    def get(self, topology: str, release: str = "13", name: str | None = None) -> testbed.Bed:
        name = name or f"test-{topology}-{release}"
        if self.current and self.current.name == name:
            return self.current
        self.close()
        self.current = testbed.up(topology, release, name=name, port=PORT)
        return self.current

    def deployed(self, topology: str, release: str = "13") -> tuple[testbed.Bed, Run, Run]:
        """A bed with deploy.py run twice: (bed, first run, second run)."""
        bed = self.get(topology, release)
        if bed.name not in self.deploys:
            first = pyinfra(bed.hosts_file)
            assert first.returncode == 0, first.output[-6000:]
            second = pyinfra(bed.hosts_file)
            assert second.returncode == 0, second.output[-6000:]
            self.deploys[bed.name] = (first, second)
        return (bed, *self.deploys[bed.name])

    def close(self) -> None:
        if self.current:
            self.deploys.pop(self.current.name, None)
            if not os.environ.get("PWLB_KEEP_BED"):
                testbed.down(self.current.name)
            self.current = None


@pytest.fixture(scope="session")
def beds():
    pool = Beds()
    yield pool
    pool.close()
