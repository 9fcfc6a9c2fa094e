"""A PHP-FPM pool PHP-FPM refuses, written with php.fpm (tests/integration/test_web.py):
the previous configuration must stay and PHP-FPM keep serving."""

from pyinfra_wordpress_lb.operations import php

php.fpm(
    name="Write a pool PHP-FPM refuses",
    pool="wordpress",
    pool_config="[wordpress]\nuser = wordpress\npm = no-such-process-manager\n",
    ini="opcache.enable = 1\n",
)
