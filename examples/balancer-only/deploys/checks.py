"""Before the balancer sends them traffic: does every backend answer the balancer?"""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt

from pyinfra_wordpress_lb.operations import http


@deploy("Backend checks")
def backends_answer() -> None:
    apt.update(name="Refresh the apt cache (once a day)", cache_time=86400)
    apt.packages(name="Install curl for the checks", packages=["curl"], no_recommends=True)
    for backend in host.data.lb_backends:
        # Checked when the deploy runs; a backend that does not answer 200 stops it here.
        http.responds(name=f"Backend {backend} answers the balancer",
                      url=f"http://{backend}/", what=f"the backend {backend}")
