"""Shared helper for operations that write a file from content rendered on the controller.

Unlike `files.put`/`files.template`, nothing of the content is ever shown: not in
`--diff`, not at any verbosity. The file changes only when its SHA-256 differs.
"""

from __future__ import annotations

import hashlib
from io import BytesIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, HiddenValue, QuoteString, StringCommand

from pyinfra_wordpress_lb.facts.files import Content

# Root's own directory (mode 711): files with secrets in them (SQL, PHP scripts) pass
# through here, each readable by root or its one user only, and removed after use.
PRIVATE_DIR = "/var/lib/wordpress-lb"
MAKE_PRIVATE_DIR = f"install -d -m 711 -o root -g root {PRIVATE_DIR}"


def unmasked(value: str | HiddenValue) -> str:
    """The real value of a secret argument, given as a HiddenValue or a plain string."""
    return value.unmask() if isinstance(value, HiddenValue) else value


def upload_secret(path: str, data: bytes, user: str, group: str, mode: int):
    """Upload `data` so that no one but `user` (and root) can read it at any moment.

    The content goes into a new file that already has its final owner and mode, which
    then replaces the old one at once (readers never see a partial file); a sudo upload
    passes through a temporary file in the SSH user's home (private), not /tmp.
    """
    new = f"{path}.pwlb-new"
    yield StringCommand("install", "-m", str(mode), "-o", user, "-g", group, "/dev/null",
                        QuoteString(new))
    name = host.get_temp_filename(path).rsplit("/", 1)[-1]
    yield FileUploadCommand(BytesIO(data), new, remote_temp_filename=f".{name}")
    yield StringCommand("mv", "-f", QuoteString(new), QuoteString(path))


def put_content(path: str, content: str, user: str = "root", group: str = "root",
                mode: int = 644, secret: bool = False, force: bool = False):
    """Yield the commands that make `path` hold `content` with this owner and mode
    (`force`: write it even if the content looks the same, e.g. through a link)."""
    data = content.encode()
    quoted = QuoteString(path)
    info = None if force else host.get_fact(Content, path=path)  # digest and owner at once
    if not info or info["sha256"] != hashlib.sha256(data).hexdigest():
        if secret:
            yield from upload_secret(path, data, user, group, mode)
            return
        yield FileUploadCommand(BytesIO(data), path,
                                remote_temp_filename=host.get_temp_filename(path))
        yield StringCommand("chown", f"{user}:{group}", quoted, "&&", "chmod", str(mode), quoted)
        return
    if (info["user"], info["group"], info["mode"]) != (user, group, mode):
        yield StringCommand("chown", f"{user}:{group}", quoted, "&&", "chmod", str(mode), quoted)
