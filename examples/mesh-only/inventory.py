"""Your web servers: every host of the `web` group mirrors the others. Replace these."""

web = [
    ("web1.example.com", {"ssh_user": "debian", "_sudo": True, "private_address": "10.0.0.11"}),
    ("web2.example.com", {"ssh_user": "debian", "_sudo": True, "private_address": "10.0.0.12"}),
]
