"""The whole stack, in order. Run: pyinfra inventory.py deploy.py"""

from pyinfra import host

from deploys.balancer import balancer
from deploys.common import common
from deploys.database import database
from deploys.sync import sync
from deploys.verify import verify
from deploys.web import install, web

common()
if "db" in host.groups:
    database()
if "web" in host.groups:
    web()
    sync()
    install()
if "lb" in host.groups:
    balancer()
if "lb" in host.groups or not host.inventory.get_group("lb", []):
    verify()
