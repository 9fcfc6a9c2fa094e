"""The WordPress facts' PHP run: its compiled scripts kept where only the site's user
(and root) can write them."""

from __future__ import annotations

from pyinfra_wordpress_lb.facts.wordpress import DatabaseVersion, Installed


def test_the_php_run_keeps_its_compiled_scripts_in_the_users_own_home():
    command = Installed().command("/var/www/shop/current", "wp-shop")
    assert command == DatabaseVersion().command("/var/www/shop/current", "wp-shop")
    assert "c=~wp-shop/.cache/wordpress-lb-php;" in command
    assert 'runuser -u wp-shop -- mkdir -p -m 700 "$c"' in command
    assert '-d opcache.file_cache="$c" -d opcache.file_cache_only=1' in command
    # A name the shell would read as more than a user name: no cache, never unquoted.
    odd = Installed().command("/var/www/x/current", "x;touch /tmp/y")
    assert "opcache" not in odd and "~x" not in odd
    assert "runuser -u 'x;touch /tmp/y' --" in odd
