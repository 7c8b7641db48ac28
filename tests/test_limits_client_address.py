"""X-Forwarded-For is honoured only from the proxies the settings list."""

from __future__ import annotations

import pytest

from paramstack.errors import InvalidInput
from paramstack.gateway.client_address import client_address, parse_trusted_proxies

TRUSTED = parse_trusted_proxies(["10.0.0.0/8", "::1", "192.168.1.5"])


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # an untrusted peer cannot claim an address
        ("10.1.2.3", None, "10.1.2.3"),
        ("10.1.2.3", "198.51.100.7", "198.51.100.7"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.7, 10.9.9.9", "198.51.100.7"),  # spoofed left part
        ("192.168.1.5", "10.0.0.1, 10.0.0.2", "10.0.0.1"),  # only proxies: the leftmost
        ("::1", "2001:db8::1", "2001:db8::1"),
        ("10.1.2.3", "not-an-ip, 10.0.0.7", "10.0.0.7"),  # garbage stops the walk
        ("10.1.2.3", "", "10.1.2.3"),
        (None, "1.2.3.4", None),
    ],
)
def test_client_address(peer: str | None, header: str | None, expected: str | None) -> None:
    assert client_address(peer, header, TRUSTED) == expected


def test_no_trusted_proxies_means_the_header_is_ignored() -> None:
    assert client_address("10.1.2.3", "1.2.3.4", ()) == "10.1.2.3"
    with pytest.raises(InvalidInput, match="trusted_proxies"):
        parse_trusted_proxies(["10.0.0.0/33"])
