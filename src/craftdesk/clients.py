"""Who the client is: the address a request came from.

The client is the TCP peer, unless the peer is one of ``CRAFTDESK_TRUSTED_PROXIES``: then
``X-Forwarded-For`` is read from the right (each proxy appends the address it got the
request from), past every trusted proxy, and the first address that is not one is the
client. An address a client writes into the header itself is never believed unless a trusted
proxy put it there. (The server must run without uvicorn's own forwarded-header handling,
which would believe any header from 127.0.0.1: ``craftdesk serve`` does.)
"""

import functools
import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=4096)  # every request parses its peer: once per address
def parse_address(text: str) -> Address | None:
    """An address as a client or a proxy writes it; IPv4 given as IPv6 (``::ffff:a.b.c.d``)
    is the IPv4 address, so that one address has one spelling."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_network(text: str) -> Network:
    """A CIDR range (``10.0.0.0/8``, ``2001:db8::/32``, or one address); host bits are
    dropped (``10.1.2.3/8`` is ``10.0.0.0/8``). Raises ``ValueError``."""
    network = ipaddress.ip_network(text.strip(), strict=False)
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
        raise ValueError(f"{text}: write IPv4 ranges as IPv4")
    return network


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The client's address (as text), from the TCP ``peer`` and the ``X-Forwarded-For``
    headers, in order."""
    address = parse_address(peer) if peer is not None else None
    if address is None or not _within(address, trusted):
        return None if address is None else str(address)
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        forwarded = parse_address(hop)
        if forwarded is None:  # not an address: believe no further
            break
        address = forwarded
        if not _within(address, trusted):
            break
    return str(address)


def _within(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)
