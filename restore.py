"""Restore the site from a backup. Run: pyinfra inventory.py restore.py [--data backup=NAME]

The newest complete backup on the database host (or the one named), checked before
anything changes; see deploys/restore.py.
"""

from pyinfra_wordpress_lb.deploys.restore import (
    afterwards, chosen, maintenance, pause, replace, resume,
)
from pyinfra_wordpress_lb.deploys.validate import validate
from pyinfra_wordpress_lb.deploys.verify import verify
from pyinfra_wordpress_lb.operations import cluster

validate()  # the inventory and settings, as for a deploy
chosen()  # a missing, partial or corrupt backup stops here, before any change

pause()  # backups, the mesh, WP-Cron: nothing saves or spreads a half-restored site
maintenance(on=True)
cluster.barrier(name="Wait until every web host shows the maintenance page", reason="maintenance")
replace()
cluster.barrier(name="Wait until the database and every wp-content are restored", reason="restore")
maintenance(on=False)
afterwards()
resume()
cluster.barrier(name="Wait until the site serves again", reason="maintenance off, caches emptied")
verify()
