"""pyinfra-wordpress-lb: pyinfra deploys for a load-balanced WordPress site on Debian.

Everything is imported under this one name, so it never collides with a project's own
`deploys/`, `operations/`, `facts/` or `templates/` packages:

    from pyinfra_wordpress_lb.deploys.sync import sync
    from pyinfra_wordpress_lb.operations import mariadb
    from pyinfra_wordpress_lb.facts.network import PrivateAddress

Installed, the subpackages live inside this package (pyproject.toml maps them). In a
checkout they stay at the repository's top (deploys/, facts/, operations/, templates/),
and this directory holds a link to each: every `pyinfra_wordpress_lb.*` module is one
file of the checkout, under one name, for Python and for an editor alike.
"""
