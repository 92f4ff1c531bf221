"""The address policy: what a capture may connect to, with and without allow_private, table-driven."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from evidence.capture_errors import BlockedAddress, CaptureError
from evidence.operator_key import OperatorKey
from evidence.ssrf import AddressPolicy, address_class, normalise_url, split_url
from tests.capture_site import BrowserRunner, Site

#: address -> why it is refused (None: public, allowed). One row per class of the IANA IPv4 and IPv6
#: Special-Purpose Address Registries, and for every IPv6 form that embeds an IPv4 address, one row per
#: embedded verdict. Where a standard gives worked examples they are used as they stand: RFC 6052 §2.4
#: (192.0.2.33 under a /96 and a /48 NAT64 prefix) and the example of Wikipedia's "Teredo tunneling"
#: article (2001:0:4136:e378:8000:63bf:3fff:fdd2: server 65.54.227.120, client 192.0.2.45).
ADDRESS_TABLE = [
    # IPv4
    ("8.8.8.8", None), ("1.1.1.1", None), ("93.184.216.34", None),
    ("0.0.0.0", "an unspecified address"), ("0.1.2.3", 'a reserved address ("this network")'),
    ("10.1.2.3", "a private address"), ("172.16.0.1", "a private address"), ("172.31.255.254", "a private address"),
    ("172.32.0.1", None), ("192.168.1.1", "a private address"),
    ("100.64.0.1", "a shared (carrier-grade NAT) address"), ("100.128.0.1", None),
    ("127.0.0.1", "a loopback address"), ("127.255.255.254", "a loopback address"),
    ("169.254.169.254", "a link-local address"), ("192.0.0.9", "an IETF protocol address"),
    ("192.0.2.1", "a documentation address"), ("198.51.100.7", "a documentation address"),
    ("203.0.113.9", "a documentation address"), ("192.88.99.1", "a deprecated 6to4 relay address"),
    ("198.18.0.1", "a benchmarking address"), ("198.19.255.255", "a benchmarking address"),
    ("224.0.0.1", "a multicast address"), ("239.255.255.250", "a multicast address"),
    ("240.0.0.1", "a reserved address"), ("255.255.255.255", "a broadcast address"),
    # plain IPv6
    ("2606:4700:4700::1111", None), ("2a00:1450:4001:82a::200e", None),
    ("::", "an unspecified address"), ("::1", "a loopback address"),
    ("fd00::1", "a private (unique local) address"), ("fc00::1", "a private (unique local) address"),
    ("fe80::1", "a link-local address"), ("febf::1", "a link-local address"),
    ("fec0::1", "a deprecated site-local address"), ("feff::1", "a deprecated site-local address"),
    ("ff02::1", "a multicast address"), ("ff0e::1", "a multicast address"),
    ("2001:db8::1", "a documentation address"), ("3fff::1", "a documentation address"),
    ("100::1", "a discard-only address"), ("2001:2::1", "a benchmarking address"),
    ("2001:10::1", "a deprecated ORCHID address"), ("2001:20::1", "an IETF protocol address"),
    ("5f00::1", "an SRv6 segment address"), ("4000::1", "an unassigned address"),
    ("::1:0:0:1", "a reserved address"), ("64:ff9b:2::1", "a reserved address"),
    # IPv4-mapped ::ffff:0:0/96
    ("::ffff:8.8.8.8", None), ("::ffff:127.0.0.1", "a loopback address (127.0.0.1 in an IPv4-mapped address)"),
    ("::ffff:10.0.0.1", "a private address (10.0.0.1 in an IPv4-mapped address)"),
    ("::ffff:0.0.0.0", "an unspecified address (0.0.0.0 in an IPv4-mapped address)"),
    # IPv4-translated ::ffff:0:0:0/96 and IPv4-compatible ::/96: deprecated, refused even when public
    ("::ffff:0:a00:1", "a private address (10.0.0.1 in an IPv4-translated address)"),
    ("::ffff:0:808:808", "a deprecated IPv4-translated address"),
    ("::7f00:1", "a loopback address (127.0.0.1 in an IPv4-compatible address)"),
    ("::a9fe:a9fe", "a link-local address (169.254.169.254 in an IPv4-compatible address)"),
    ("::808:808", "a deprecated IPv4-compatible address"),
    # 6to4 2002::/16: the IPv4 address is bits 16-47
    ("2002:808:808::1", None), ("2002:a00:1::1", "a private address (10.0.0.1 in a 6to4 address)"),
    ("2002:7f00:1::", "a loopback address (127.0.0.1 in a 6to4 address)"),
    ("2002:a9fe:a9fe::1", "a link-local address (169.254.169.254 in a 6to4 address)"),
    ("2002:c0a8:101:1::1", "a private address (192.168.1.1 in a 6to4 address)"),
    ("2002:e000:1::", "a multicast address (224.0.0.1 in a 6to4 address)"),
    # NAT64 well-known prefix 64:ff9b::/96: the IPv4 address is the last 32 bits
    ("64:ff9b::808:808", None), ("64:ff9b::7f00:1", "a loopback address (127.0.0.1 in a NAT64 address)"),
    ("64:ff9b::a9fe:a9fe", "a link-local address (169.254.169.254 in a NAT64 address)"),
    ("64:ff9b::c0a8:101", "a private address (192.168.1.1 in a NAT64 address)"),
    ("64:ff9b::c000:221", "a documentation address (192.0.2.33 in a NAT64 address)"),
    # Local-use NAT64 64:ff9b:1::/48 (RFC 8215): never public; its embedded address is named when private
    ("64:ff9b:1::808:808", "a local-use NAT64 address"), ("64:ff9b:1:808:8:800::", "a local-use NAT64 address"),
    ("64:ff9b:1::a00:1", "a private address (10.0.0.1 in a local-use NAT64 address)"),
    ("64:ff9b:1:7f00:0:100::", "a loopback address (127.0.0.1 in a local-use NAT64 address)"),
    ("64:ff9b:1:c000:2:2100::", "a documentation address (192.0.2.33 in a local-use NAT64 address)"),  # /48
    ("64:ff9b:1::c000:221", "a documentation address (192.0.2.33 in a local-use NAT64 address)"),  # /96
    # Teredo 2001::/32: server in bits 32-63, client bit-inverted in the last 32 bits; both must be public
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", None),  # server 65.54.227.120, client 8.8.8.8
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a documentation address (192.0.2.45 in a Teredo address)"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "a private address (10.0.0.1 in a Teredo address)"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "a loopback address (127.0.0.1 in a Teredo address)"),
    ("2001:0:a00:1:8000:63bf:f7f7:f7f7", "a private address (10.0.0.1 in a Teredo address)"),  # the server
]


@pytest.mark.parametrize(("address", "kind"), ADDRESS_TABLE)
def test_address_classes(address: str, kind: str | None) -> None:
    assert address_class(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(("address", "kind"), ADDRESS_TABLE)
def test_policy_follows_the_table(address: str, kind: str | None) -> None:
    ip = ipaddress.ip_address(address)
    assert AddressPolicy().refusal(ip) == kind
    always = kind is not None and kind.startswith(("an unspecified", "a multicast", "a broadcast"))
    assert AddressPolicy(allow_private=True).refusal(ip) == (kind if always else None)


def test_default_policy_refuses_every_address_of_a_host() -> None:
    policy = AddressPolicy()
    policy.check("example.test", ["93.184.216.34"])
    with pytest.raises(BlockedAddress, match=r"example\.test resolves to 10\.0\.0\.1, which is a private address"):
        policy.check("example.test", ["93.184.216.34", "10.0.0.1"])  # one bad answer is enough (rebinding)


def test_allow_private_still_refuses_unspecified_and_multicast() -> None:
    policy = AddressPolicy(allow_private=True)
    policy.check("localhost", ["127.0.0.1", "::1"])
    for address in ("0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "ff02::1", "::ffff:0.0.0.0", "2002:e000:1::"):
        with pytest.raises(BlockedAddress):
            policy.check(address, [address])


@pytest.mark.parametrize(("url", "expected"), [
    ("https://example.test/a?b", ("https", "example.test", 443)),
    ("http://[::1]:8080/", ("http", "::1", 8080)),
    ("HTTP://Example.TEST", ("http", "example.test", 80)),
])
def test_split_url(url: str, expected: tuple[str, str, int]) -> None:
    assert split_url(url) == expected


@pytest.mark.parametrize("url", ["file:///etc/passwd", "javascript:alert(1)", "http://", "http://a:b@c/",
                                 "http://host:99999/", "/relative"])
def test_split_url_refuses(url: str) -> None:
    with pytest.raises(CaptureError):
        split_url(url)


@pytest.mark.parametrize(("url", "expected"), [
    ("HTTP://Example.TEST", "http://example.test/"),
    ("https://example.test:443/a?b=1#frag", "https://example.test/a?b=1"),
    ("http://[::1]:8080", "http://[::1]:8080/"),
    ("http://example.test:80/path", "http://example.test/path"),
])
def test_normalise_url_matches_what_the_browser_sends(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


@pytest.mark.parametrize(("host", "message"), [
    ("2002:7f00:1::", r"2002:7f00:1:: is a loopback address \(127\.0\.0\.1 in a 6to4 address\)"),
    ("64:ff9b::a9fe:a9fe", r"64:ff9b::a9fe:a9fe is a link-local address \(169\.254\.169\.254 in a NAT64 address\)"),
    ("fec0::1", r"fec0::1 is a deprecated site-local address"),
])
def test_capture_refuses_embedded_private_ipv6(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                               packages: Path, host: str, message: str) -> None:
    """Through the real capture path: the URL's IPv6 literal is refused before anything connects."""
    with pytest.raises(BlockedAddress, match=message) as caught:
        runner.capture(f"http://[{host}]:{http_site.port}/dynamic", packages, operator, allow_private=False)
    assert "\n" not in str(caught.value)
    assert not packages.exists() or not list(packages.iterdir())
