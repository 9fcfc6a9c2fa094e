"""A deploy for test_failures: status.py with another exit handler registered first."""
import atexit

atexit.register(lambda: print("PWLB-OTHER-HANDLER-RAN"))

from pyinfra_wordpress_lb.deploys.status import status  # noqa: E402

status()
