"""The caller's IP address: ``X-Forwarded-For`` is believed only when a listed proxy sent it.

Anyone can send the header, so trusting it blindly lets a client choose the address its limits
and logs are keyed on. The rule (the same as nginx's ``real_ip_recursive``): start from the TCP
peer; while the current address is a trusted proxy, step one hop left in ``X-Forwarded-For``;
the first untrusted address is the client. Garbage in the header stops the walk at the last
address a trusted proxy vouched for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from contextvars import ContextVar

from starlette.types import Scope

from paramstack.errors import InvalidInput

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(entries: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs or single addresses from the settings (``trusted_proxies``), checked at startup."""
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise InvalidInput(
                f"trusted_proxies entry {entry!r} is not an IP address or CIDR",
                param="trusted_proxies",
            ) from exc
    return tuple(networks)


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str | None:
    """The client's address for a request from ``peer`` carrying ``forwarded_for``."""
    if peer is None or not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    current = peer
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return current
        current = hop
        if not _is_trusted(hop, trusted):
            return hop
    return current


# The current request's TCP peer, its X-Forwarded-For and the trusted proxies, set by the
# request's first middleware (one task per request) and resolved only when an address is
# needed: a refused key's log line, a guard block's audit entry.
_PEER: ContextVar[tuple[str | None, str | None, Sequence[Network]]] = ContextVar(
    "paramstack_peer", default=(None, None, ())
)


def remember_peer(scope: Scope, trusted: Sequence[Network]) -> None:
    """Note the request's peer (and, behind trusted proxies, its X-Forwarded-For headers)."""
    client = scope.get("client")
    forwarded = None
    if trusted:  # the header only matters when a proxy may be believed
        hops = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
        forwarded = ",".join(hops) or None
    _PEER.set((client[0] if client else None, forwarded, trusted))


def current_client() -> str | None:
    """The current request's client address (trusted proxies' X-Forwarded-For applied)."""
    return client_address(*_PEER.get())
