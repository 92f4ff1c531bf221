"""The address policy: what a capture may connect to, with and without allow_private."""

from __future__ import annotations

import ipaddress

import pytest

from evidence.capture_errors import BlockedAddress, CaptureError
from evidence.ssrf import AddressPolicy, address_class, normalise_url, split_url


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "a loopback address"), ("::1", "a loopback address"), ("10.1.2.3", "a private address"),
    ("172.16.0.1", "a private address"), ("192.168.1.1", "a private address"), ("fd00::1", "a private address"),
    ("169.254.169.254", "a link-local address"), ("fe80::1", "a link-local address"),
    ("224.0.0.1", "a multicast address"), ("ff02::1", "a multicast address"), ("0.0.0.0", "an unspecified address"),
    ("::ffff:127.0.0.1", "a loopback address"), ("100.64.0.1", "a private address"),
    ("240.0.0.1", "a private address"), ("8.8.8.8", None), ("2606:4700:4700::1111", None),
])
def test_address_classes(address: str, kind: str | None) -> None:
    found = address_class(ipaddress.ip_address(address))
    assert found == kind or (kind == "a private address" and found is not None)


def test_default_policy_refuses_every_address_of_a_host() -> None:
    policy = AddressPolicy()
    policy.check("example.test", ["93.184.216.34"])
    with pytest.raises(BlockedAddress, match=r"example\.test resolves to 10\.0\.0\.1, which is a private address"):
        policy.check("example.test", ["93.184.216.34", "10.0.0.1"])  # one bad answer is enough (rebinding)


def test_allow_private_still_refuses_unspecified_and_multicast() -> None:
    policy = AddressPolicy(allow_private=True)
    policy.check("localhost", ["127.0.0.1", "::1"])
    for address in ("0.0.0.0", "224.0.0.1"):
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
