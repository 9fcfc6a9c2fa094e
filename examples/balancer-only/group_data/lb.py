# The servers to balance over (address:port), reachable from the balancer.
lb_backends = ["10.0.0.21:80", "10.0.0.22:80"]
# Plain HTTP here; see the main README for HTTPS at the balancer.
site_url = "http://www.example.com"
secrets_file = "balancer.secrets.json"
