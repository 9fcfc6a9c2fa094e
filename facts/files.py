"""Facts about the files our operations write from rendered content."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase


class Content(FactBase):
    """
    Returns what a regular file (or the file a link points to) holds and who owns it,
    in one round trip (pyinfra's ``Sha256File`` and ``File`` take two): ``None`` when
    nothing is there; ``sha256`` ``None`` when something other than a file is.

    .. code:: python

        {"sha256": "9f86d08...", "user": "root", "group": "wordpress", "mode": 640}
    """

    def command(self, path: str) -> str:
        quoted = shlex.quote(path)
        return (f"if [ -f {quoted} ]; then "
                f"stat -L -c 'owner=%U %G %a' {quoted} && sha256sum {quoted}; "
                f"elif [ -e {quoted} ] || [ -L {quoted} ]; then echo other; fi")

    def process(self, output: list[str]) -> dict | None:
        lines = [line.strip() for line in output if line.strip()]
        if not lines:
            return None
        if lines[0] == "other" or not lines[0].startswith("owner="):
            return {"sha256": None, "user": None, "group": None, "mode": None}
        user, group, mode = lines[0].removeprefix("owner=").split()
        digest = lines[1].split()[0] if len(lines) > 1 else None
        return {"sha256": digest, "user": user, "group": group, "mode": int(mode)}
