"""docs/reference.md is generated from the docstrings and must not drift; every custom
operation and fact documents its arguments and gives an example."""

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
reference = importlib.import_module("reference")


def test_reference_matches_the_docstrings():
    assert (ROOT / "docs/reference.md").read_text() == reference.reference(), (
        "docs/reference.md is stale: run `make docs`")


def test_every_operation_and_fact_is_documented_with_an_example():
    text = reference.reference()
    ops = text.split("## Facts")[0].split("\n#### ")[1:]
    facts = text.split("## Facts")[1].split("\n#### ")[1:]
    assert len(ops) >= 10 and len(facts) >= 10
    for entry in ops:
        assert "**Example:**" in entry and "```python" in entry, entry.splitlines()[0]
    for entry in facts:
        assert "```python" in entry, entry.splitlines()[0]


def test_the_examples_run(tmp_path):
    """The import lines and every operation's example, as one deploy file, planned with
    `pyinfra @fake <file> --dry` as a reader would try them."""
    import re
    import subprocess

    text = reference.reference()
    lines = [re.search(r"```python\n(.*?)```", text, re.S).group(1)]
    operations = text.split("## Operations")[1].split("## Facts")[0]
    for section in operations.split("\n### `operations.")[1:]:
        module = section.split("`", 1)[0]
        lines.append(f"from pyinfra_wordpress_lb.operations import {module}")
        lines += re.findall(r"\*\*Example:\*\*\n\n```python\n(.*?)```", section, re.S)
    deploy = tmp_path / "examples.py"
    deploy.write_text("\n".join(lines))
    pyinfra = str(Path(sys.executable).with_name("pyinfra"))
    done = subprocess.run([pyinfra, "-y", "--dry", "@fake", str(deploy)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "PYINFRA_FAKE_DELAY": "0",
                               "PYINFRA_FAKE_DELAY_JITTER": "0", "HOME": str(tmp_path)})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Traceback" not in output
    assert output.count("Starting operation") == 0  # --dry: planned, nothing run
    examples = sum(1 for line in lines[1:] if not line.startswith("from "))
    assert examples == operations.count("\n#### `") >= 25
