"""A bounded GET load against 127.0.0.1, recording every failure and the worst latency."""

from __future__ import annotations

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


def get_load(url: str, total: int = 600, seconds: float = 6.0, concurrency: int = 4,
             host_header: str | None = None, during=None, at: float = 1.0,
             timeout: float = 15.0) -> LoadResult:
    """Send `total` GETs spread evenly over about `seconds` (bounded in count and time);
    `during()` runs in the background `at` seconds in. Any non-200 answer or error fails."""
    result = LoadResult()
    lock = threading.Lock()
    interval = seconds / total
    start = time.monotonic()
    stop_at = start + seconds + 60  # never runs past this
    counter = iter(range(total))
    headers = {"Host": host_header} if host_header else {}

    def worker():
        session = requests.Session()
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
                response = session.get(url, headers=headers, timeout=timeout,
                                       allow_redirects=False)
                ok, reason = response.status_code == 200, str(response.status_code)
                server = response.headers.get("X-Served-By", "?")
            except requests.RequestException as exc:
                ok, reason, server = False, type(exc).__name__, "-"
            took = time.monotonic() - began
            with lock:
                result.sent += 1
                result.worst = max(result.worst, took)
                result.served_by[server] += 1
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
