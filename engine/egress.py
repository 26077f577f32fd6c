"""Outgoing HTTP to addresses that users gave us (webhooks): never inside our own network.

A store admin chooses the URL, so without a rule a webhook is a way to reach (and, through the delivery log,
to map) whatever the workers can reach: Redis on 127.0.0.1:6379, the database, the cloud's metadata service
at 169.254.169.254. `check_host` is the one rule: every address a host resolves to must be a public one,
unless the host (or its address) is listed in WEBHOOK_ALLOWED_HOSTS. It runs when a URL is registered and
again, inside the connection itself, each time one is opened (`client`): the connection goes to the very
address that was checked, so a name that resolves elsewhere later (DNS rebinding) is checked again and cannot
slip in between the check and the connect. TLS still names the host (SNI, certificate) and so does the Host
header: only the TCP connect is pinned.
"""
import ipaddress
import os
import socket
from collections.abc import Iterable

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The host is, or resolves to, an address inside the network (or does not resolve at all)."""


class Unresolvable(Refused):
    """The host does not resolve (now)."""


def allowed_list(setting: str | Iterable[str]) -> tuple[str, ...]:
    """WEBHOOK_ALLOWED_HOSTS as a tuple of lower-case entries (host names or CIDRs; a comma-separated string
    is split)."""
    items = setting.split(",") if isinstance(setting, str) else setting
    return tuple(s.strip().lower().rstrip(".") for s in items if s and s.strip())


def _networks(allowed: tuple[str, ...]) -> list:
    nets = []
    for entry in allowed:
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:  # a host name
            pass
    return nets


def is_public(ip: Address) -> bool:
    """Whether `ip` is an ordinary address on the internet (an IPv6 address that carries an IPv4 one is
    judged by the IPv4 one: ::ffff:127.0.0.1 is loopback)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


def resolve(host: str, port: int) -> list[Address]:
    """The addresses `host` resolves to (a literal address is itself). Raises Refused if there are none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as e:
        raise Unresolvable(f"{host} does not resolve ({e})") from None
    addresses = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise Unresolvable(f"{host} does not resolve")
    return addresses


def check_host(host: str, port: int, allowed: tuple[str, ...] = ()) -> list[Address]:
    """The addresses to connect to for `host`: all of them public, or the host or each address listed in
    `allowed`. Raises Refused otherwise — if ANY address is internal, since a client may pick any of them."""
    name = host.lower().rstrip(".").strip("[]")
    addresses = resolve(name, port)
    if name in allowed:
        return addresses
    nets = _networks(allowed)
    inside = [ip for ip in addresses if not is_public(ip) and not any(ip in n for n in nets if n.version == ip.version)]
    if inside:
        raise Refused(f"{host} resolves to an internal address ({inside[0]})")
    return addresses


class _CheckedBackend(httpcore.SyncBackend):
    """Opens each TCP connection to an address `check_host` has just approved, never by the name again."""

    def __init__(self, allowed: tuple[str, ...]):
        self.allowed = allowed

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = check_host(host, port, self.allowed)
        except Refused as e:
            raise httpcore.ConnectError(str(e)) from None
        error = None
        for ip in addresses:
            try:
                return super().connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                error = e
        raise error


class CheckedTransport(httpx.HTTPTransport):
    """httpx's transport with the connection pool built on `_CheckedBackend` (httpx has no parameter for a
    network backend, so the pool it built is replaced by the same one with ours)."""

    def __init__(self, allowed: tuple[str, ...], limits: httpx.Limits = httpx.Limits(max_connections=20)):
        super().__init__(trust_env=False, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedBackend(allowed))


_clients: dict = {}


def client(allowed: tuple[str, ...], timeout: float) -> httpx.Client:
    """The process's client for these settings (connections are kept between deliveries). Never follows
    redirects (a 3xx is an answer, not a delivery), never uses a proxy from the environment (the proxy would
    resolve the name, past the rule). `timeout` bounds each phase: connect, each read and write, the pool."""
    key = (os.getpid(), allowed, timeout)  # a forked process must not share its parent's sockets
    if key not in _clients:
        _clients.clear()
        _clients[key] = httpx.Client(transport=CheckedTransport(allowed), follow_redirects=False, trust_env=False,
                                     timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))
    return _clients[key]
