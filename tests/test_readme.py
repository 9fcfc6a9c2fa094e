"""The README's settings table is the declared settings, nothing more or less."""

import re
from pathlib import Path

from pyinfra_wordpress_lb.deploys.settings import all_settings, markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_settings_table_matches_declarations():
    text = README.read_text()
    block = re.search(r"<!-- settings:begin -->\n(.*?)\n<!-- settings:end -->", text, re.S)
    assert block, "README lacks the settings block"
    assert block.group(1).strip() == markdown_table(), "run `make settings` to regenerate it"


def test_every_setting_is_declared_once():
    names = [s.name for _, s in all_settings()]
    assert len(names) == len(set(names))
