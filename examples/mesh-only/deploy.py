"""Two plain web servers (ours to manage) kept in sync by pyinfra-wordpress-lb's mesh."""

from deploys.site import site

from pyinfra_wordpress_lb.deploys.sync import sync

site()
sync()
