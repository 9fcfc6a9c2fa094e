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
