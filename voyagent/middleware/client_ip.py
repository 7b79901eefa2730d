"""The client IP (operations.md §4, ``VOYAGENT_TRUSTED_PROXY_HOPS``): the TCP peer, or the X-Forwarded-For entry
appended by the outermost trusted proxy. Entries further left were written by the client and could be forged."""

from __future__ import annotations

import ipaddress

from aiohttp import hdrs, web

# The longest textual IP address: ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255. Longer entries are not parsed.
_MAX_ADDRESS_CHARS = 45


def canonical_ip(text: str) -> str | None:
    """``text`` as a canonical address (IPv4-mapped IPv6 as its IPv4 address), or None when it is not one.

    Zone indexes (``fe80::1%eth0``) are refused: in a header they are client text, not an address.
    """
    if len(text) > _MAX_ADDRESS_CHARS or "%" in text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _peer(remote: str | None) -> str:
    if not remote:
        return "unknown"
    return canonical_ip(remote) or remote


def forwarded_for(request: web.BaseRequest) -> list[str] | None:
    """Every X-Forwarded-For field joined in order as one list, entries trimmed; None when the header is absent."""
    fields = request.headers.getall(hdrs.X_FORWARDED_FOR, None)
    if fields is None:
        return None
    return [entry.strip() for field in fields for entry in field.split(",")]


def client_ip(request: web.BaseRequest, trusted_proxy_hops: int) -> str:
    """The N-th X-Forwarded-For address from the right (the left-most when fewer), else the TCP peer."""
    if trusted_proxy_hops > 0:
        entries = forwarded_for(request)
        if entries:
            chosen = entries[max(0, len(entries) - trusted_proxy_hops)]
            address = canonical_ip(chosen)
            if address is not None:
                return address
    remote = request.remote
    if remote and ":" not in remote:  # IPv4 from the kernel: already canonical (the common case, inline)
        return remote
    return _peer(remote)
