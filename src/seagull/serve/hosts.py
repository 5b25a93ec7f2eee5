"""The Host allow-list: the server answers only requests whose ``Host`` header names it.

A web page on another site can make a browser send requests to a server on loopback by pointing its
own DNS name at 127.0.0.1 (DNS rebinding). The browser then sends that site's name in ``Host``; a
server that answers any ``Host`` lets the page read the answers. So every request whose ``Host`` is
not on the list gets a 400 before anything else runs: its body (within the server's body limit) is
read and dropped unparsed, so that the client sees the answer and can reuse the connection (a
server that answers and closes while the client is still sending makes the client see a reset).

The list holds host names or addresses without a port: ``example.org``, ``127.0.0.1``, ``::1``;
``*.example.org`` for its subdomains, or ``*`` for any host (which turns the check off).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import ConfigError
from .errors import error_body, send_json

# What a browser on this machine sends for a server on loopback (the bound address is added by the
# command).
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "::1")


def normalise_hosts(hosts: Iterable[str] | str) -> tuple[str, ...]:
    """The allow-list in the form it is matched in (lower case, no brackets); ConfigError if malformed."""
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    out: list[str] = []
    for given in hosts:
        if not isinstance(given, str):
            raise ConfigError(f"allowed hosts: {given!r} is not a host name")
        h = given.strip().lower().rstrip(".")
        if h.startswith("[") and h.endswith("]"):
            h = h[1:-1]
        bad = not h or any(c.isspace() or c in "/@?#[]" for c in h)
        if not bad and h != "*" and "*" in h:
            bad = not h.startswith("*.") or "*" in h[2:]  # only a whole first label
        if not bad and ":" in h and h.count(":") == 1:
            raise ConfigError(
                f"allowed hosts: {given!r} has a port; give the host name alone (every port is allowed)"
            )
        if bad:
            raise ConfigError(
                f"allowed hosts: {given!r} is not a host name; give names or addresses such as "
                "example.org, 127.0.0.1 or ::1, '*.example.org' for subdomains, or '*' for any host"
            )
        out.append(h)
    if not out:
        raise ConfigError("allowed hosts: the list is empty; give at least one host name, or '*' for any")
    return tuple(dict.fromkeys(out))


def host_of(header: str) -> str:
    """The host name of a ``Host`` header without its port, lower case; IPv6 without brackets."""
    h = header.strip().lower()
    if h.startswith("["):  # [::1]:8000
        end = h.find("]")
        return h[1:end] if end > 0 else ""
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    for pattern in allowed:
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


class AllowedHostsMiddleware:
    """400 ``HostNotAllowed`` for a request whose ``Host`` is missing or not on the list."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.allowed = normalise_hosts(allowed_hosts)
        self.any = "*" in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.any:
            await self.app(scope, receive, send)
            return
        header = b""
        for key, value in scope.get("headers") or ():
            if key == b"host":
                header = value
                break
        text = header.decode("latin-1")
        if host_allowed(host_of(text), self.allowed):
            await self.app(scope, receive, send)
            return
        if not await _drain(receive):
            return  # the client went away
        shown = f"{text[:100]!r}" if text else "(none)"
        message = (
            f"Host header {shown} is not one this server answers to; open the server by an address it "
            "allows (http://127.0.0.1:<port>/ on this machine), or start it with "
            "'seagull serve --allowed-hosts <names>' that include this name"
        )
        await send_json(send, 400, error_body(message, "HostNotAllowed"))


async def _drain(receive: Receive) -> bool:
    """Read the request body to its end and drop it; False if the client disconnected."""
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return False
        if msg["type"] == "http.request" and not msg.get("more_body", False):
            return True
