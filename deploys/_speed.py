"""pyinfra's pure helpers, made cheap (the same answers).

Each operation call asks where it was called from: pyinfra walks the stack with
`inspect.stack()` and `inspect.getframeinfo()`, which read each frame's source lines
(`findsource`, `getmodule`) only to be given the file name and the line number; and it
computes the global arguments' type hints, the same for every operation, each time. A
no-op with 20 sites spent ~8 s of its 22 s there. Installed once per process, by
`validate()` (and by the tests' fake runs).
"""

from __future__ import annotations

import inspect
import shlex
import sys
from functools import cache
from types import SimpleNamespace


def install() -> None:
    import pyinfra.api.arguments as arguments
    import pyinfra.api.command as command
    import pyinfra.api.facts as facts
    import pyinfra.api.util as util

    if getattr(util, "pwlb_fast", False):
        return

    def stack():  # inspect.stack() without its source lookups: only the frames
        frames, frame = [], sys._getframe(1)
        while frame is not None:
            frames.append((frame,))
            frame = frame.f_back
        return frames

    def getframeinfo(frame):  # what pyinfra reads: the file name and the line number
        code = frame.f_code
        return inspect.Traceback(code.co_filename, frame.f_lineno, code.co_name, None, None)

    util.stack = stack
    util.getframeinfo = getframeinfo
    arguments.all_global_arguments = facts.all_global_arguments = cache(
        arguments.all_global_arguments)
    # pyinfra's file facts build their command from one long template, split with shlex
    # (~0.2 ms) at every ask: the same few templates, split once.
    split = cache(lambda string: tuple(shlex.split(string)))
    command.shlex = SimpleNamespace(split=split, quote=shlex.quote)
    util.pwlb_fast = True
