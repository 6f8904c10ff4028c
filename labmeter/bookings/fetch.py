"""Fetching a feed, a calendar's URL the server asks for by itself, as hostile input.

A feed that redirected to an internal address would turn the API into a reader of internal
pages, and one that never ends would hold a thread and fill memory. So:

- redirects are followed by hand, only to ``https`` or to the feed's own origin, at most
  ``MAX_REDIRECTS``;
- no hop goes to a loopback, link-local, private or otherwise non-global address (as the
  name resolves, and as the connection actually reached) unless the sources file names that
  host in ``allow_hosts``;
- the reply is read up to ``max_bytes``, and the whole fetch (redirects, connections, body)
  must end within ``timeout_s`` (checked between reads; each read is bounded by what is left);
- an error names the status and its standard reason, or the kind of failure: never the
  reply's text, nor the server's own reason phrase. Feed URLs are shown with their query
  string, user and fragment redacted (``shown_url``): they often carry a secret token.

Proxies from the environment are not used: the address checked must be the server's.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from labmeter.errors import LabmeterError

MAX_REDIRECTS: Final = 5
REDACTED: Final = "[redacted]"
# The bytes counted are the bytes that arrive: a compressed reply could expand a
# thousandfold in memory before any count saw it.
_PLAIN: Final = {"Accept-Encoding": "identity"}


class FeedError(LabmeterError):
    """A feed could not be fetched (the reason is the message)."""


def shown_url(url: str) -> str:
    """``url`` as it may be shown, logged or archived: no user, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@dataclass(frozen=True)
class Policy:
    """How a feed may be fetched."""

    timeout_s: float
    max_bytes: int
    allow_hosts: Collection[str] = ()  # host names (lower case) allowed at any address


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _inside(address: str) -> bool:
    """An address that is not on the public internet (or names nothing at all)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _check_host(url: str, policy: Policy) -> None:
    """Refuse a URL whose host resolves to an address inside, unless the host is allowed."""
    scheme, host, port = _origin(url)
    if scheme not in ("http", "https") or not host:
        raise FeedError(f"{shown_url(url)}: not an http(s) URL")
    if host in policy.allow_hosts:
        return
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError) as exc:
        raise FeedError(f"unreachable: {shown_url(url)}: the name does not resolve") from exc
    inside = sorted(a for a in found if _inside(str(a)))
    if inside:
        raise FeedError(
            f"{shown_url(url)}: {host} is at {inside[0]}, a loopback, link-local or private "
            "address: refused (allow_hosts in the sources file allows a host explicitly)"
        )


def _check_peer(response: httpx.Response, url: str, policy: Policy) -> None:
    """The address the connection reached: a name that resolved outside a moment ago may
    resolve inside now (DNS rebinding)."""
    if _origin(url)[1] in policy.allow_hosts:
        return
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if peer and _inside(str(peer[0])):
        raise FeedError(
            f"{shown_url(url)}: connected to {peer[0]}, a loopback, link-local or private "
            "address: refused"
        )


def _check_redirect(first: str, target: str) -> None:
    if urlsplit(target).scheme != "https" and _origin(target) != _origin(first):
        raise FeedError(
            f"a redirect to {shown_url(target)} refused: only to https or to the feed's own origin"
        )


def _status(response: httpx.Response) -> str:
    """The status and its standard reason, never the server's own words."""
    return f"HTTP {response.status_code} {httpx.codes.get_reason_phrase(response.status_code)}"


def fetch(url: str, policy: Policy) -> str:
    """The feed's text; ``FeedError`` with the reason when it cannot be had safely."""
    deadline = time.monotonic() + policy.timeout_s
    current = url
    try:
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                _check_host(current, policy)
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                with client.stream("GET", current, headers=_PLAIN, timeout=left) as response:
                    _check_peer(response, current, policy)
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise FeedError(f"{_status(response)} without a Location")
                        target = urljoin(current, location)
                        _check_redirect(url, target)
                        current = target
                        continue
                    if response.status_code != 200:
                        raise FeedError(_status(response))
                    return _read(response, policy, deadline)
            else:
                raise FeedError(f"more than {MAX_REDIRECTS} redirects")
    except httpx.TimeoutException as exc:
        raise FeedError(f"no complete answer within {policy.timeout_s:g} s") from exc
    except httpx.ConnectError as exc:
        raise FeedError(f"unreachable: ConnectError: {str(exc)[:200]}") from exc
    except httpx.HTTPError as exc:
        # Never the exception's text: a protocol error can quote what the server sent.
        raise FeedError(f"unreachable: {type(exc).__name__}") from exc
    raise FeedError(f"no complete answer within {policy.timeout_s:g} s")


def _read(response: httpx.Response, policy: Policy, deadline: float) -> str:
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        raise FeedError("a compressed reply, which was not asked for: refused")
    body = bytearray()
    for chunk in response.iter_raw():
        body += chunk
        if len(body) > policy.max_bytes:
            raise FeedError(f"the reply is larger than {policy.max_bytes:,} bytes: refused")
        if time.monotonic() > deadline:
            raise FeedError(f"no complete answer within {policy.timeout_s:g} s")
    return bytes(body).decode(response.encoding or "utf-8", errors="replace")
