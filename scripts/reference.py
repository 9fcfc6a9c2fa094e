"""Reference documentation for every custom operation and fact, from their docstrings.

    python scripts/reference.py            # print it
    python scripts/reference.py --write    # rewrite docs/reference.md (`make docs`)

tests/test_reference.py fails when docs/reference.md differs from what this prints, so
the reference never drifts from the code.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
import textwrap
from pathlib import Path

from pyinfra.api import FactBase

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "reference.md"
PACKAGE = "pyinfra_wordpress_lb"

HEADER = """\
# Reference: custom operations and facts

Generated from the docstrings by `make docs` (`scripts/reference.py`); a test fails when
this file and the code disagree. pyinfra's own operations and facts (`apt`, `files`,
`systemd`, `mysql`, ...) are used wherever they fit; these cover what pyinfra lacks.

Import them under the package's own name:

```python
from pyinfra.api import HiddenValue  # secrets, as the examples pass them
from pyinfra_wordpress_lb.operations import mariadb, wordpress
from pyinfra_wordpress_lb.facts.wordpress import Releases
```

Every operation's example below runs (`tests/test_reference.py` plans them all with
`pyinfra @fake --dry`).
"""


def _modules(kind: str):
    package = importlib.import_module(f"{PACKAGE}.{kind}")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{PACKAGE}.{kind}.{info.name}")


def _rst_to_markdown(doc: str) -> str:
    """Our docstrings' small reST subset: `+ arg: text` lists and `.. code:: python`."""
    lines, out, i = inspect.cleandoc(doc).splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith(".. code::"):
            lang = line.split("::", 1)[1].strip() or "text"
            i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                block.append(lines[i])
                i += 1
            out += [f"```{lang}", textwrap.dedent("\n".join(block)).strip("\n"), "```"]
            continue
        if match := re.match(r"^\+ ([\w, ]+): (.*)$", line):
            names = ", ".join(f"`{n.strip()}`" for n in match.group(1).split(","))
            out.append(f"- {names}: {match.group(2)}")
        elif line.startswith("  ") and out and out[-1].startswith("- "):
            out[-1] += " " + line.strip()  # a wrapped argument line
        else:
            out.append(line)
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def _signature(func) -> str:
    sig = inspect.signature(func)
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()
              if p.name != "self"]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def operations_section() -> list[str]:
    out = ["## Operations", ""]
    for module in _modules("operations"):
        short = module.__name__.rsplit(".", 1)[1]
        ops = [(name, obj) for name, obj in vars(module).items()
               if callable(obj) and hasattr(obj, "_inner") and obj.__module__ == module.__name__]
        if not ops:
            continue
        out += [f"### `operations.{short}`", "", inspect.cleandoc(module.__doc__ or ""), ""]
        for name, op in sorted(ops):
            out += [f"#### `{short}.{name}{_signature(op._inner)}`", "",
                    _rst_to_markdown(op._inner.__doc__ or "(undocumented)"), ""]
    return out


def facts_section() -> list[str]:
    out = ["## Facts", ""]
    for module in _modules("facts"):
        short = module.__name__.rsplit(".", 1)[1]
        facts = [(name, obj) for name, obj in vars(module).items()
                 if inspect.isclass(obj) and issubclass(obj, FactBase)
                 and obj.__module__ == module.__name__]
        if not facts:
            continue
        out += [f"### `facts.{short}`", "", inspect.cleandoc(module.__doc__ or ""), ""]
        for name, fact in sorted(facts):
            args = _signature(fact.command) if callable(fact.command) else "()"
            out += [f"#### `{short}.{name}{args}`", "",
                    _rst_to_markdown(fact.__doc__ or "(undocumented)"), ""]
    return out


def reference() -> str:
    return "\n".join([HEADER, *operations_section(), *facts_section()]).rstrip() + "\n"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        OUTPUT.parent.mkdir(exist_ok=True)
        OUTPUT.write_text(reference())
    else:
        sys.stdout.write(reference())
