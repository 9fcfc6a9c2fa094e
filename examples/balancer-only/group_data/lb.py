# The servers to balance over (address:port), reachable from the balancer.
lb_backends = ["10.0.0.21:80", "10.0.0.22:80"]
# Plain HTTP here (the default is HTTPS with a CA made for you: see the main README).
tls = "off"
site_url = "http://www.example.com"
secrets_file = "balancer.secrets.json"
