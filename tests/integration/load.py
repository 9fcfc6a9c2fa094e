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
             timeout: float = 15.0, verify=True, fresh: bool = False,
             headers: dict | None = None, stop: threading.Event | None = None) -> LoadResult:
    """Send `total` GETs spread evenly over about `seconds` (bounded in count and time);
    `during()` runs in the background `at` seconds in. Any non-200 answer or error fails.
    With `fresh`, every GET opens a new connection (as many different visitors do),
    else each worker keeps one (as one browser does); `stop` set ends it early."""
    result = LoadResult(at=at)
    lock = threading.Lock()
    interval = seconds / total
    start = time.monotonic()
    stop_at = start + seconds + 60  # never runs past this
    counter = iter(range(total))
    headers = {**(headers or {}), **({"Host": host_header} if host_header else {})}
    if fresh:
        headers["Connection"] = "close"

    def worker():
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would replace `verify`
        while True:
            with lock:
                index = next(counter, None)
            if index is None or time.monotonic() > stop_at or (stop and stop.is_set()):
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


class Background:
    """GETs of these URLs in turn, from `concurrency` workers, for as long as the `with`
    block runs (bounded: at most `limit` requests and `max_seconds`). Any answer other
    than 200 counts as failed (a 404 for an upload included). With `fresh`, each GET
    opens a connection of its own, as visitors arriving do (a keep-alive connection that
    nginx closes during a graceful reload can meet a request on its way; browsers send
    that again by themselves, `requests` does not).

        with Background([site + "/", site + upload]) as load:
            pyinfra(...)
        assert load.result.failed == 0, load.result.errors
    """

    def __init__(self, urls: list[str], verify=True, concurrency: int = 4,
                 pause: float = 0.02, fresh: bool = False, limit: int = 50000,
                 max_seconds: float = 900) -> None:
        self.urls, self.verify, self.pause, self.fresh = urls, verify, pause, fresh
        self.limit, self.max_seconds = limit, max_seconds
        self.concurrency = concurrency
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _worker(self, offset: int) -> None:
        session = requests.Session()
        session.trust_env = False
        index = offset
        began_all = time.monotonic()
        headers = {"Connection": "close"} if self.fresh else {}
        while not self._stop.is_set() and time.monotonic() - began_all < self.max_seconds:
            with self._lock:
                if self.result.sent >= self.limit:
                    return
            url = self.urls[index % len(self.urls)]
            index += 1
            began = time.monotonic()
            try:
                response = session.get(url, timeout=15, verify=self.verify, headers=headers,
                                       allow_redirects=False)
                ok, reason = response.status_code == 200, f"{response.status_code} {url}"
                server = response.headers.get("X-Served-By", "?")
            except requests.RequestException as exc:
                ok, reason, server = False, f"{type(exc).__name__} {url}", "-"
            finally:
                if self.fresh:
                    session.close()
            ended = time.monotonic()
            with self._lock:
                self.result.timeline.append((began - self._began, ended - self._began, ok))
                self.result.sent += 1
                self.result.worst = max(self.result.worst, ended - began)
                self.result.served_by[server] += 1
                if not ok:
                    self.result.failed += 1
                    self.result.errors[reason] += 1
            time.sleep(self.pause)

    def __enter__(self) -> "Background":
        self._began = time.monotonic()
        self._threads = [threading.Thread(target=self._worker, args=(i,))
                         for i in range(self.concurrency)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.result.seconds = time.monotonic() - self._began
