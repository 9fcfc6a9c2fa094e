# The directory to mirror, and who owns it (the mesh runs as that user, never root).
wordpress_user = "site"
wordpress_home = "/srv/site"
docroot = "/srv/site/htdocs"
mesh_root = "/srv/site/htdocs"
# This project's secrets (the mesh's identities derive from one), created on the first run
# with mode 0600.
secrets_file = "mesh.secrets.json"
