"""The cluster's health, read-only. Run: pyinfra -y inventory.py status.py

One table, a row per host and role with a verdict, and a summary; exit status 0 all
well, 1 something needs attention (each such row says what and how to fix it), 2 a host
cannot be reached. `--data status_format=json` prints JSON instead. See README, Status.
"""

from pyinfra_wordpress_lb.deploys.status import status

status()
