"""Facts about the site's backups on the database host."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from pyinfra_wordpress_lb.facts._lines import TO_UTC, key_values


class Backups(FactBase[list]):
    """
    Returns the backups in a directory, oldest first: each one's name (its UTC time),
    whether it is complete (a `.partial` one is not), its size in bytes, and the state of
    its off-cluster copy (``OFFSITE``: ``"ok ..."``, ``"failed ..."`` or ``None``).

    .. code:: python

        [{"name": "20261130T040000Z", "complete": True, "bytes": 5242880,
          "offsite": "ok 2026-11-30T04:00:09Z backup@vault:/srv/backups"}]
    """

    default = list

    def command(self, directory: str = "/var/backups/wordpress") -> str:
        root = shlex.quote(directory)
        return (
            f"cd {root} 2>/dev/null || exit 0; for b in $(ls -1d 2*Z 2*Z.partial 2>/dev/null | sort); do "
            "echo \"backup=$b $(du -sb \"$b\" | cut -f1) $(head -n 1 \"$b/OFFSITE\" 2>/dev/null)\"; "
            "done; true"
        )

    def process(self, output: list[str]) -> list[dict]:
        found = []
        for line in output:
            if not line.startswith("backup="):
                continue
            name, _, rest = line[len("backup="):].partition(" ")
            size, _, offsite = rest.partition(" ")
            complete = not name.endswith(".partial")
            found.append({"name": name.removesuffix(".partial"), "complete": complete,
                          "bytes": int(size) if size.isdigit() else None,
                          "offsite": offsite.strip() or None})
        return sorted(found, key=lambda b: b["name"])


class Verified(FactBase[dict]):
    """
    Checks one backup through and through before anything is restored from it: there,
    complete, every checksum right, both archives whole, the database dump finished.
    Returns ``ok`` and, when not, the ``problem``.

    .. code:: python

        {"ok": False, "problem": "wp-content.tar.gz: FAILED (checksum)"}
    """

    default = dict

    def command(self, backup: str, directory: str = "/var/backups/wordpress") -> str:
        name = backup
        path = shlex.quote(f"{directory}/{name}")
        partial = shlex.quote(f"{directory}/{name}.partial")
        return (
            f"if [ ! -d {path} ]; then "
            f"if [ -d {partial} ]; then echo "
            f"{shlex.quote(f'problem=it never finished (only {name}.partial is there)')}; "
            "else echo 'problem=there is no such backup'; fi; exit 0; fi; "
            f"cd {path} || exit 0; "
            "[ -f SHA256SUMS ] || { echo 'problem=SHA256SUMS is missing'; exit 0; }; "
            "for f in database.sql.gz wp-content.tar.gz backup.json; do "
            "[ -f \"$f\" ] || { echo \"problem=$f is missing\"; exit 0; }; done; "
            "bad=$(sha256sum -c SHA256SUMS 2>/dev/null | grep -v ': OK$' | head -n 1); "
            "[ -z \"$bad\" ] || { echo \"problem=$bad (checksum)\"; exit 0; }; "
            "gzip -t database.sql.gz 2>/dev/null || { echo 'problem=database.sql.gz is not whole'; exit 0; }; "
            "gzip -t wp-content.tar.gz 2>/dev/null || { echo 'problem=wp-content.tar.gz is not whole'; exit 0; }; "
            "zcat database.sql.gz | tail -n 1 | grep -q '^-- Dump completed' "
            "|| { echo 'problem=the database dump did not finish'; exit 0; }; "
            "echo ok"
        )

    def process(self, output: list[str]) -> dict:
        for line in output:
            line = line.strip()
            if line == "ok":
                return {"ok": True, "problem": None}
            if line.startswith("problem="):
                return {"ok": False, "problem": line.split("=", 1)[1]}
        return {"ok": False, "problem": "it could not be checked"}


class Timer(FactBase[dict]):
    """
    Returns the backup schedule's state: whether ``wordpress-backup.timer`` is active,
    since when (UTC) and when it fires next (UTC; ``None`` when not scheduled).

    .. code:: python

        {"active": True, "since": "2026-11-30T07:45:12+00:00",
         "next": "2026-12-01T00:00:00+00:00"}
    """

    default = dict

    def command(self, unit: str = "wordpress-backup.timer") -> str:
        q_unit = shlex.quote(unit)
        return (
            f"echo active=$(systemctl is-active {q_unit}); "
            f"echo since=$(systemctl show -p ActiveEnterTimestamp --value {q_unit} | {TO_UTC}); "
            f"echo next=$(systemctl show -p NextElapseUSecRealtime --value {q_unit} | {TO_UTC})"
        )

    def process(self, output: list[str]) -> dict:
        found = key_values(output)
        return {"active": found.get("active") == "active", "since": found.get("since") or None,
                "next": found.get("next") or None}
