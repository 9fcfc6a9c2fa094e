"""Shared by facts whose command prints `key=value` lines."""

from __future__ import annotations

# A systemd timestamp on stdin -> ISO 8601 in UTC (nothing for an empty one).
TO_UTC = "xargs -r -I{} date -u -d '{}' +%Y-%m-%dT%H:%M:%S+00:00"


def key_values(output: list[str]) -> dict[str, str]:
    """`key=value` lines as a dict (the last of a key wins; other lines are skipped)."""
    found = {}
    for line in output:
        key, sep, value = line.strip().partition("=")
        if sep:
            found[key] = value
    return found
