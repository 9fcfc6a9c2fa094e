"""deploys/_speed.py: pyinfra's call-site helpers, cheap, with the same answers."""

from __future__ import annotations

import inspect
import sys


def test_where_an_operation_is_called_from_reads_the_same():
    import pyinfra.api.util as util

    from pyinfra_wordpress_lb.deploys import _speed

    _speed.install()
    frame = sys._getframe()
    fast, slow = util.getframeinfo(frame), inspect.getframeinfo(frame)
    assert (fast.filename, fast.lineno, fast.function) == (
        slow.filename, slow.lineno, slow.function)
    frames = util.stack()
    assert [f[0] for f in frames[:5]] == [f.frame for f in inspect.stack()[:5]]
    _speed.install()  # twice: the same
    assert util.pwlb_fast
