"""Checking a site from the hosts that serve it."""

from __future__ import annotations

from html import unescape

from pyinfra import host, logger
from pyinfra.api import operation
from pyinfra.api.state import StateStage
from pyinfra.context import state

from pyinfra_wordpress_lb.facts.http import Response
from pyinfra_wordpress_lb.operations._fail import fail


@operation()
def responds(url: str, host_header: str | None = None, title: str | None = None,
             what: str = "the site", success_message: str | None = None,
             connect_to: str | None = None, status: int = 200, location: str | None = None,
             wait: int = 0):
    """
    Check that a URL answers ``200`` (and shows this page title) when the host itself
    asks, certificates checked; stop the deploy with a clear error otherwise. Changes
    nothing.

    + url: what to ask for (the host's own view: ``http://127.0.0.1/``, a peer's address)
    + host_header: the ``Host`` header to send (the site's name)
    + title: the page title the answer must contain
    + what: how the error message names this check
    + success_message: logged when the check passes (a summary for the operator)
    + connect_to: ``address:port`` to send the request to instead of the URL's (the
      name, ``Host`` and TLS stay the URL's), e.g. the balancer itself
    + status: the status code expected (a ``301`` for a redirect)
    + location: the redirect target expected (with ``status=301``)
    + wait: seconds to keep asking while nothing answers (an address on its way to
      its holder)

    **Example:**

    .. code:: python

        http.responds(
            name="The site answers through the balancer",
            url="http://127.0.0.1/",
            host_header="www.example.com",
            title="My site",
        )
    """
    if getattr(state, "current_stage", None) == StateStage.Prepare:
        # Only the deploy's own result can be checked: ask once operations have run.
        host.noop(f"{what} is checked when the deploy runs")
        return
    ask = {"url": url, "host_header": host_header}
    if connect_to:
        ask["connect_to"] = connect_to
    if wait:
        ask["wait"] = wait
    response = host.get_fact(Response, **ask)
    got_status, got = response.get("status", 0), unescape(response.get("title") or "")
    got_location = response.get("location")
    if got_status != status or (title is not None and got != title) or (
            location is not None and got_location != location):
        answer = f"HTTP {got_status}" if got_status else "no answer"
        if not got_status and response.get("error"):
            answer += f" ({response['error']})"
        yield from fail(
            f"{what} does not answer as expected: GET {url}"
            f"{f' (Host: {host_header})' if host_header else ''}"
            f"{f' at {connect_to}' if connect_to else ''} gave {answer}"
            f"{f', title {got!r}' if got_status == 200 else ''}"
            f"{f', location {got_location!r}' if location is not None else ''}"
            f"{f', expected title {title!r}' if title is not None else ''}"
            f"{f', expected {status} to {location!r}' if location is not None else ''}"
        )
        return
    if success_message:
        logger.info(f"{host.print_prefix}{success_message}")
    host.noop(f"{what} answers at {url}")
    return
    yield  # an operation is a generator, even one that never changes anything
