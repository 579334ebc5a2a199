"""IP_ADDRESS: IPv4 (with CIDR) and IPv6 validated by ipaddress; versions, times, MACs are not."""

from __future__ import annotations

import pytest

from tests.boundary.conftest import Detect


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server 10.0.3.4:8080;", ["10.0.3.4"]),
        ("from 203.0.113.45.", ["203.0.113.45"]),
        ("allow 10.20.0.0/16;", ["10.20.0.0/16"]),
        ("peer 2001:db8::ff00:42:8329", ["2001:db8::ff00:42:8329"]),
        ("fe80::1ff:fe23:4567:890a,", ["fe80::1ff:fe23:4567:890a"]),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", ["2001:0db8:85a3:0000:0000:8a2e:0370:7334"]),
        ("loopback ::1", ["::1"]),
        # look-alikes
        ("version 3.11.7", []),
        ("firmware v10.2.0.17", []),
        ("appVersion 2.14.3.1, build 4.0.3.2", []),
        ("OID 1.3.6.1.4.1.311", []),
        ("at 10:30:00", []),
        ("MAC 00:1A:2B:3C:4D:5E", []),
        ("999.1.1.1", []),
        ("nginx:1.25.3", []),
    ],
)
def test_ip(detect: Detect, text: str, expected: list[str]) -> None:
    assert detect("IP_ADDRESS", text) == expected
