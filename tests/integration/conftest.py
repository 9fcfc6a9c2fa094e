"""Integration fixtures: real Debian hosts in containers, deployed over SSH.

Beds run one after another, never side by side: asking for a different bed tears the
current one down first. Tests that only read a deployed cluster share it; destructive
tests ask for a bed of their own name.
Set PWLB_KEEP_BED=1 to leave the last bed running for a look after the tests, and
PWLB_REUSE_BED=1 to reuse a bed of the same name that is still up (a faster edit-test
loop; CI never sets it). PWLB_GALERA_RELEASE=12 runs the galera bed's tests on Debian 12
(MariaDB 10.11) instead of 13.
"""

from __future__ import annotations

import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests import testbed
from tests.runner import Run, pyinfra

pytestmark = pytest.mark.integration

PORT = int(os.environ.get("PWLB_TEST_PORT", "18080"))


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    # One bed at a time, each brought up once: every test on the shared split bed first
    # (those marked `before_deploy` before it is deployed, `after_deploy` right after
    # its deploy, before the others change its state), then those on the seed bed,
    # then those with beds of their own, grouped by the bed their `own_bed("name")`
    # marker names (stable otherwise: file order within a bed).
    def bed_order(item):
        if not item.get_closest_marker("integration"):
            return (0, "")  # tests without a bed first, as collected
        own = item.get_closest_marker("own_bed")
        if own:
            return (3, own.args[0] if own.args else "")
        if "seed" in item.nodeid:
            return (2, "")
        return (1, "0" if item.get_closest_marker("before_deploy") else
                "1" if item.get_closest_marker("after_deploy") else "2")

    items.sort(key=bed_order)


class Beds:
    def __init__(self) -> None:
        self.current: testbed.Bed | None = None
        self.deploys: dict[str, tuple[Run, Run]] = {}
        self.args: dict[str, tuple[str, ...]] = {}  # what each bed's deploy was run with
        self.server: ArchiveServer | None = None

    def get(self, topology: str, release: str = "13", name: str | None = None) -> testbed.Bed:
        name = name or f"test-{topology}-{release}"
        if self.current and self.current.name == name:
            return self.current
        self.close()
        self.current = testbed.up(topology, release, name=name, port=PORT,
                                  reuse=bool(os.environ.get("PWLB_REUSE_BED")))
        return self.current

    def deployed(self, topology: str, release: str = "13") -> tuple[testbed.Bed, Run, Run]:
        """A bed with deploy.py run twice: (bed, first run, second run).

        The `split` bed uploads the release archive from this machine (as an air-gapped
        site would); the `seed` bed downloads it by URL, so both paths are exercised."""
        bed = self.get(topology, release)
        if bed.name not in self.deploys:
            args: tuple[str, ...] = ()
            if topology == "seed":
                self.server = ArchiveServer(bed)
                args = ("--data", "wordpress_archive=", "--data",
                        f"wordpress_url={self.server.url}")
            self.args[bed.name] = args
            first = pyinfra(bed.hosts_file, *args)
            assert first.returncode == 0, first.output[-6000:]
            second = pyinfra(bed.hosts_file, *args)
            assert second.returncode == 0, second.output[-6000:]
            self.deploys[bed.name] = (first, second)
        return (bed, *self.deploys[bed.name])

    def run(self, bed: testbed.Bed, *args: str, **kw) -> Run:
        """deploy.py again on a deployed bed, with what it was deployed with and `args`."""
        return pyinfra(bed.hosts_file, *self.args.get(bed.name, ()), *args, **kw)

    def close(self, final: bool = False) -> None:
        if self.server:
            self.server.close()
            self.server = None
        if self.current:
            self.deploys.pop(self.current.name, None)
            if not (final and os.environ.get("PWLB_KEEP_BED")):
                testbed.down(self.current.name)
            self.current = None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class ArchiveServer:
    """The bed's release archive over HTTP, from this machine on the bed's gateway
    address (reachable only from the bed's own network), for the download path."""

    def __init__(self, bed: testbed.Bed) -> None:
        self.archive = testbed.wordpress_archive(bed.release)
        handler = partial(_QuietHandler, directory=str(self.archive.path.parent))
        gateway = bed.subnet.rsplit(".", 1)[0] + ".1"
        self.server = ThreadingHTTPServer((gateway, 0), handler)
        self.url = f"http://{gateway}:{self.server.server_port}/{self.archive.path.name}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def beds():
    pool = Beds()
    yield pool
    pool.close(final=True)
