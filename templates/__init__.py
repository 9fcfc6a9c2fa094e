"""Jinja2 templates, named after the file they become; found the same way installed."""

from __future__ import annotations

from importlib.resources import files

import jinja2

_ROOT = files(__name__)


def php_string(value) -> str:
    """A PHP single-quoted string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"



def _sources(folder, prefix=""):
    for entry in folder.iterdir():
        if entry.is_dir():
            yield from _sources(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".j2"):
            yield f"{prefix}{entry.name}", entry.read_text()


# Read once at import: rendering then needs no file access (operations render inside
# pyinfra-testing's patched file system, too).
_ENV = jinja2.Environment(
    loader=jinja2.DictLoader(dict(_sources(_ROOT))),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["php"] = php_string


def path(name: str) -> str:
    """Path of a template, for pyinfra's `files.template`."""
    return str(_ROOT / name)


def render(name: str, **context) -> str:
    """Render a template on the controller (for content that must never be diffed)."""
    return _ENV.get_template(name).render(**context)
