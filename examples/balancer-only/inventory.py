"""Your balancer. The backends are not managed here: see `lb_backends` in group_data."""

lb = [
    ("lb1.example.com", {"ssh_user": "debian", "_sudo": True}),
]
