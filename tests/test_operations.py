"""pyinfra-testing fixtures for our operations: tests/operations/<module>.<op>/*.json"""

from pathlib import Path

from pyinfra_testing.operations import make_operation_tests

TESTS_BASE = Path(__file__).parent / "operations"

for _op in sorted(d.name for d in TESTS_BASE.iterdir() if d.is_dir()):
    locals()[_op] = make_operation_tests("pyinfra_wordpress_lb.operations", _op, TESTS_BASE / _op)
