"""The whole stack, in order. Run: pyinfra inventory.py deploy.py"""

from deploys.common import common

common()
