"""pyinfra-testing fixtures for our facts: tests/facts/<module>.<Fact>/*.json"""

from pathlib import Path

from pyinfra_testing.facts import make_fact_tests

TESTS_BASE = Path(__file__).parent / "facts"

for _fact in sorted(d.name for d in TESTS_BASE.iterdir() if d.is_dir()):
    locals()[_fact] = make_fact_tests("pyinfra_wordpress_lb.facts", _fact, TESTS_BASE / _fact)
