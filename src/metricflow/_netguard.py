"""Addresses the server never sends a request to on a user's behalf.

Webhook deliveries (alerts) and the endpoints a serve process proxies to (serving)
are URLs that users give. Neither may reach a link-local address, where cloud
metadata services answer (169.254.169.254, fe80::/10, and AWS's fd00:ec2::254), a
multicast or an unspecified address, nor a cloud metadata address outside those
ranges (Alibaba's 100.100.100.200, Oracle's 192.0.0.192). Loopback and private
networks are each caller's own policy.

An IPv6 address can carry an IPv4 one: `::ffff:169.254.169.254` (IPv4-mapped) is
the IPv4 address to the kernel, and IPv4-compatible (`::169.254.169.254`), NAT64
(64:ff9b::/96, 64:ff9b:1::/48), 6to4 and Teredo addresses are routed to theirs.
`ipaddress` judges those as IPv6 (`is_link_local` is False for
`::ffff:169.254.169.254`), so the embedded address is judged too.
"""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal"})
_METADATA_IPS = frozenset(ipaddress.ip_address(a) for a in (
    "fd00:ec2::254",     # AWS (IPv6)
    "100.100.100.200",   # Alibaba Cloud (neither private nor link-local to Python)
    "192.0.0.192",       # Oracle Cloud (legacy)
))
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # ::a.b.c.d (deprecated, still routed)


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4, Teredo), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def never_reach(ip: IPAddress) -> str:
    """Why no request may go to `ip` ("" if one may): "a link-local address", "a
    multicast address", "the unspecified address" or "a cloud metadata address",
    judged on the embedded IPv4 address too."""
    for a in (ip, embedded_ipv4(ip)):
        if a is None:
            continue
        if a.is_link_local:
            return "a link-local address"
        if a.is_multicast:
            return "a multicast address"
        if a.is_unspecified:
            return "the unspecified address"
        if a in _METADATA_IPS:
            return "a cloud metadata address"
    return ""


def private_or_loopback(ip: IPAddress) -> bool:
    """Loopback or a private range, judged on the embedded IPv4 address too."""
    e = embedded_ipv4(ip)
    return ip.is_loopback or ip.is_private or (e is not None and (e.is_loopback or e.is_private))


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host names without DNS, as the resolver reads it: IPv6 in
    brackets, dotted IPv4, and the forms `inet_aton` takes (`2852039166`, `0xa9fea9fe`,
    `0251.0376.0251.0376`, `0`, `127.1`); a trailing dot is ignored. None for a name."""
    h = host.strip("[]").rstrip(".").split("%", 1)[0]
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        pass
    if h and all(c in "0123456789abcdefxABCDEFX." for c in h):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(h))
        except OSError:
            return None
    return None


def metadata_host(host: str) -> bool:
    """A host name of a cloud metadata service (`metadata.google.internal.` too)."""
    return host.rstrip(".").lower() in METADATA_HOSTS


def refused_without_dns(host: str) -> str:
    """Why `host` is refused as written, before any DNS ("" if it is not): "names a cloud
    metadata service", or "is <address>, <never_reach reason>" for a literal address."""
    if metadata_host(host):
        return "names a cloud metadata service"
    ip = literal_address(host)
    why = never_reach(ip) if ip is not None else ""
    return f"is {ip}, {why}" if why else ""


def resolved_addresses(host: str, port: int | None = None) -> list[IPAddress]:
    """The addresses `host` resolves to (a zone id dropped). OSError if it does not."""
    out = []
    for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP):
        try:
            out.append(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        except ValueError:
            continue
    return out
