"""The whole stack, in order. Run: pyinfra inventory.py deploy.py

pyinfra 3 runs each host's operations in order but does not wait for other hosts
between them; the barriers are the points where every host waits for all others.
"""

from pyinfra import host

from pyinfra_wordpress_lb.deploys import database as db_tier
from pyinfra_wordpress_lb.deploys.backup import backups
from pyinfra_wordpress_lb.deploys.cron import cron
from pyinfra_wordpress_lb.deploys import firewall as firewall_tier
from pyinfra_wordpress_lb.deploys import sync as sync_tier
from pyinfra_wordpress_lb.deploys.balancer import admit_new_web_hosts, backups_first, balancer
from pyinfra_wordpress_lb.deploys.common import common, packages
from pyinfra_wordpress_lb.deploys.database import arbitrator as db_arbitrator
from pyinfra_wordpress_lb.deploys.database import database
from pyinfra_wordpress_lb.deploys.database import proxy as db_proxy
from pyinfra_wordpress_lb.deploys.firewall import firewall
from pyinfra_wordpress_lb.deploys.retire import retire_sites
from pyinfra_wordpress_lb.deploys.ha import shared_address
from pyinfra_wordpress_lb.deploys.sync import sync
from pyinfra_wordpress_lb.deploys.tls import acme, trust
from pyinfra_wordpress_lb.deploys.validate import validate
from pyinfra_wordpress_lb.deploys.verify import verify
from pyinfra_wordpress_lb.deploys.web import web
from pyinfra_wordpress_lb.deploys.wordpress import install_site, serve_release
from pyinfra_wordpress_lb.operations import cluster

validate()  # a wrong inventory or setting stops here, before any change
if "lb" in host.groups:
    backups_first()  # an earlier version's balancer: no backend change empties its pool
common()
firewall()  # before any service listens: each host admits only what its roles need
packages()  # what every host's roles need, installed by all hosts at once
if "db" in host.groups:
    database()  # with three or more db hosts, a Galera cluster
    backups()
if "web" in host.groups:
    db_proxy()  # with a Galera cluster: WordPress's way to the node taking writes
    serve_release()  # beside the served one, then one atomic switch
    web()
    sync()  # a web host new to the cluster waits here until it holds every upload
    cron()
if "lb" in host.groups or "web" in host.groups:
    trust()

cluster.barrier(name="Wait until every host has its tiers", reason="database, web, mesh")

db_arbitrator()  # on `db_arbitrator` only: Galera's vote without data, once the cluster runs

if "web" in host.groups:
    install_site()  # and the database upgrade a new release needs: once, every host switched
if "lb" in host.groups:
    balancer()  # new web hosts held back until verified
    shared_address()

cluster.barrier(name="Wait until every balancer serves", reason="balancers, shared address")

if "lb" in host.groups:
    acme()
    admit_new_web_hosts()  # new web hosts, verified, join the pool
# Web hosts that left the inventory: no balancer sends to them now.
retire_sites()  # sites listed `absent`: the balancers no longer send them anything
if "db" in host.groups:
    db_tier.drop_departed_accounts()
if "web" in host.groups:
    sync_tier.unshare_departed_hosts()
firewall_tier.close_to_departed_hosts()

cluster.barrier(name="Wait until the site is deployed", reason="install, certificates")

verify()
