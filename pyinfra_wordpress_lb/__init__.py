"""pyinfra-wordpress-lb: pyinfra deploys for a load-balanced WordPress site on Debian.

Everything is imported under this one name, so it never collides with a project's own
`deploys/`, `operations/`, `facts/` or `templates/` packages:

    from pyinfra_wordpress_lb.deploys.sync import sync
    from pyinfra_wordpress_lb.operations import lsyncd
    from pyinfra_wordpress_lb.facts.network import PrivateAddress

Installed, the subpackages live inside this package (pyproject.toml maps them). In a
checkout they stay at the repository's top (deploys/, facts/, operations/, templates/),
so the checkout's root is added to this package's search path: `pyinfra inventory.py
deploy.py` works from a clone with nothing installed.
"""

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "deploys" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))  # noqa: F821 - a package's __path__ is a list
