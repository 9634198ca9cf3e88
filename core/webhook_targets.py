"""Where an operator-configured webhook may go, and a POST that goes exactly there.

A webhook URL is data an operator typed, and the worker that calls it sits inside our network:
unchecked, `http://169.254.169.254/` would read the cloud's instance credentials and
`http://10.0.0.5:6379/` would talk to an internal service. So:

- `url_problem` checks what can be checked without DNS (scheme, host, an address written into
  the URL, `localhost` names) when a step is saved, so the operator gets a field error and a
  definition imports the same on every machine;
- `resolve_target` resolves the host when the call is made and refuses it when any address it
  resolves to is not public: loopback, private, link-local, multicast, reserved or unspecified,
  also when wrapped in IPv6 (IPv4-mapped, 6to4);
- `post_to_target` connects to the address that was checked, not to whatever DNS answers a
  moment later (DNS rebinding), with the URL's own Host header and TLS server name (the
  certificate is verified for the host name), and follows no redirect: one could point anywhere.

`GAMBIT_WEBHOOK_ALLOW_HTTP` admits plain http (development and tests only), and hosts listed in
`GAMBIT_WEBHOOK_ALLOWED_PRIVATE_HOSTS` may resolve to private addresses (a receiver on the
internal network on purpose; the tests' sink on loopback).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# How much of a refusing receiver's answer is kept as the error.
ANSWER_EXCERPT_BYTES = 500

_NOT_PUBLIC = {
    "loopback": _("loopback"),
    "link-local": _("link-local"),
    "multicast": _("multicast"),
    "unspecified": _("unspecified"),
    "reserved": _("reserved"),
    "private": _("private"),
    "non-public": _("non-public"),
}


class TargetRefused(Exception):
    """The URL may not be called; `code` is stable (stored, filtered on), `message` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Target:
    """A URL whose host was resolved and checked, and the address the call connects to."""

    url: httpx.URL
    address: str


@dataclass(frozen=True)
class Answer:
    status: int
    location: str
    excerpt: str


def _not_public(address: IPAddress) -> str | None:
    """Why the address is not a public one, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return _not_public(embedded)
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),
    )
    return next((kind for kind, applies in checks if applies), None)


def _literal_address(host: str) -> IPAddress | None:
    """The address a host written as one stands for, including the legacy IPv4 spellings that
    resolvers accept (`127.1`, `0x7f.0.0.1`, `2130706433`)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _private_hosts() -> set[str]:
    return {host.strip("[]").lower() for host in settings.GAMBIT_WEBHOOK_ALLOWED_PRIVATE_HOSTS}


def _refused_address(host: str, address: str, kind: str) -> TargetRefused:
    return TargetRefused(
        "address_refused",
        gettext("%(host)s is %(address)s, a %(kind)s address; webhooks call public ones only.")
        % {"host": host, "address": address, "kind": _NOT_PUBLIC[kind]},
    )


def _checked_url(url: str) -> tuple[httpx.URL, str]:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise TargetRefused(
            "invalid_url",
            gettext("%(url)s is not an http(s) address with a host.") % {"url": url[:200]},
        )
    if parsed.scheme == "http" and not settings.GAMBIT_WEBHOOK_ALLOW_HTTP:
        raise TargetRefused(
            "https_required",
            gettext("Webhooks must use https: %(url)s.") % {"url": url[:200]},
        )
    return parsed, parsed.raw_host.decode("ascii").lower()


def url_problem(url: str) -> str | None:
    """What is wrong with the URL as written (no DNS lookup), or None."""
    try:
        _, host = _checked_url(url)
    except TargetRefused as refused:
        return refused.message
    if host in _private_hosts():
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return _refused_address(host, "localhost", "loopback").message
    literal = _literal_address(host)
    kind = _not_public(literal) if literal is not None else None
    if literal is not None and kind is not None:
        return _refused_address(host, str(literal), kind).message
    return None


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for the host, in its order."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def resolve_target(url: str) -> Target:
    """Resolve and check the URL's host now. Raises TargetRefused (never callable as it is) or
    OSError (the name does not resolve now; it may later)."""
    parsed, host = _checked_url(url)
    literal = _literal_address(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        addresses = resolve_host(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    if not addresses:
        raise OSError(gettext("%(host)s resolves to no address.") % {"host": host})
    if host not in _private_hosts():
        for address in addresses:
            kind = _not_public(ipaddress.ip_address(address))
            if kind is not None:
                raise _refused_address(host, address, kind)
    return Target(url=parsed, address=addresses[0])


def post_to_target(
    target: Target, *, content: bytes, headers: Mapping[str, str], timeout: float
) -> Answer:
    """POST to the checked address; the answer's status, redirect location and the start of
    its body (a receiver cannot make us read more). Raises httpx.HTTPError on network failure."""
    host = target.url.raw_host.decode("ascii")
    extensions = {"sni_hostname": host} if target.url.scheme == "https" else {}
    with (
        httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
        client.stream(
            "POST",
            target.url.copy_with(host=target.address),
            content=content,
            headers={
                "Host": target.url.netloc.decode("ascii"),
                # Undecoded: a compressed answer cannot expand in our memory.
                "Accept-Encoding": "identity",
                **headers,
            },
            extensions=extensions,
        ) as response,
    ):
        excerpt = next(response.iter_raw(), b"")[:ANSWER_EXCERPT_BYTES]
        return Answer(
            status=response.status_code,
            location=response.headers.get("Location", ""),
            excerpt=excerpt.decode("utf-8", "replace"),
        )
