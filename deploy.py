"""The whole stack, in order. Run: pyinfra inventory.py deploy.py"""

from pyinfra import host

from deploys.common import common
from deploys.database import database
from deploys.sync import sync
from deploys.web import install, web

common()
if "db" in host.groups:
    database()
if "web" in host.groups:
    web()
    sync()
    install()
