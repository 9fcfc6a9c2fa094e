"""pyinfra-wordpress-lb's balancer in front of backends this project does not manage."""

from deploys.checks import backends_answer

from pyinfra_wordpress_lb.deploys.balancer import balancer

backends_answer()
balancer()
