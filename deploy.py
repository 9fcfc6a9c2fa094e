"""The whole stack, in order. Run: pyinfra inventory.py deploy.py

pyinfra 3 runs each host's operations in order but does not wait for other hosts
between them; the barriers are the points where every host waits for all others.
"""

from pyinfra import host

from pyinfra_wordpress_lb.deploys.balancer import balancer
from pyinfra_wordpress_lb.deploys.common import common
from pyinfra_wordpress_lb.deploys.database import database
from pyinfra_wordpress_lb.deploys.ha import shared_address
from pyinfra_wordpress_lb.deploys.sync import sync
from pyinfra_wordpress_lb.deploys.tls import acme, trust
from pyinfra_wordpress_lb.deploys.validate import validate
from pyinfra_wordpress_lb.deploys.verify import verify
from pyinfra_wordpress_lb.deploys.web import install, web
from pyinfra_wordpress_lb.operations import cluster

validate()  # a wrong inventory or setting stops here, before any change
common()
if "db" in host.groups:
    database()
if "web" in host.groups:
    web()
    sync()
if "lb" in host.groups or "web" in host.groups:
    trust()

cluster.barrier(name="Wait until every host has its tiers", reason="database, web, mesh")

if "web" in host.groups:
    install()
if "lb" in host.groups:
    balancer()
    shared_address()

cluster.barrier(name="Wait until every balancer serves", reason="balancers, shared address")

if "lb" in host.groups:
    acme()

cluster.barrier(name="Wait until the site is deployed", reason="install, certificates")

verify()
