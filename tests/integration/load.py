"""Bounded GET loads against the bed (127.0.0.1 or its own addresses), recording every
failure, the worst latency and when each request ran."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests


@dataclass
class LoadResult:
    sent: int = 0
    failed: int = 0
    errors: Counter = field(default_factory=Counter)
    served_by: Counter = field(default_factory=Counter)
    worst: float = 0.0
    seconds: float = 0.0
    # (start, end, ok) of every request, in seconds since the load began; `at`: when
    # `during()` was started.
    timeline: list = field(default_factory=list, repr=False)
    at: float = 0.0

    def outage(self) -> float:
        """Seconds from `during()` until requests succeeded again after the first
        failure (0.0 when none failed): how long the site did not answer."""
        failures = [start for start, _, ok in self.timeline if not ok and start >= self.at]
        if not failures:
            return 0.0
        first = min(failures)
        recovered = min((end for start, end, ok in self.timeline if ok and start > first),
                        default=self.seconds)
        return recovered - self.at

    def failed_after(self, moment: float) -> int:
        """Failures among requests that started after `moment`."""
        return sum(1 for start, _, ok in self.timeline if not ok and start > moment)


def get_load(url: str, total: int = 600, seconds: float = 6.0, concurrency: int = 4,
             host_header: str | None = None, during=None, at: float = 1.0,
             timeout: float = 15.0, verify=True, fresh: bool = False) -> LoadResult:
    """Send `total` GETs spread evenly over about `seconds` (bounded in count and time);
    `during()` runs in the background `at` seconds in. Any non-200 answer or error fails.
    With `fresh`, every GET opens a new connection (as many different visitors do),
    else each worker keeps one (as one browser does)."""
    result = LoadResult(at=at)
    lock = threading.Lock()
    interval = seconds / total
    start = time.monotonic()
    stop_at = start + seconds + 60  # never runs past this
    counter = iter(range(total))
    headers = {"Host": host_header} if host_header else {}
    if fresh:
        headers["Connection"] = "close"

    def worker():
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would replace `verify`
        while True:
            with lock:
                index = next(counter, None)
            if index is None or time.monotonic() > stop_at:
                return
            delay = start + index * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            began = time.monotonic()
            try:
                response = session.get(url, headers=headers, timeout=timeout, verify=verify,
                                       allow_redirects=False)
                ok, reason = response.status_code == 200, str(response.status_code)
                server = response.headers.get("X-Served-By", "?")
            except requests.RequestException as exc:
                ok, reason, server = False, type(exc).__name__, "-"
            finally:
                if fresh:
                    session.close()
            ended = time.monotonic()
            with lock:
                result.sent += 1
                result.worst = max(result.worst, ended - began)
                result.served_by[server] += 1
                result.timeline.append((began - start, ended - start, ok))
                if not ok:
                    result.failed += 1
                    result.errors[reason] += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    side = None
    if during:
        side = threading.Timer(at, during)
        side.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if side:
        side.join()
    result.seconds = time.monotonic() - start
    return result


@contextlib.contextmanager
def resolving(name: str, address: str):
    """Resolve `name` to `address` in this process (the bed's site names are not in
    any DNS this machine asks), as a hosts-file line would."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return real(address if host == name else host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = real
