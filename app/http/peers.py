"""The client's real address: the peer's, or the one a trusted proxy (FORWARDED_ALLOW_IPS) forwarded for."""

from __future__ import annotations

import ipaddress
import re

# A host as a URL may carry it: a name or an address, and a port.
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$")


class TrustedProxies:
    """The proxies gunicorn trusts (its `forwarded_allow_ips`: addresses, networks, or `*`)."""

    def __init__(self, entries: tuple[str, ...]):
        self.any = "*" in entries
        self.networks = tuple(ipaddress.ip_network(e, strict=False) for e in entries if e != "*")

    def _listed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str:
        """The peer, unless it is a trusted proxy: then the nearest address in X-Forwarded-For that is not
        a listed proxy. Entries further left are the client's own say, and are never believed; with `*`
        only the proxy that connected is trusted, so its own entry (the last) is the client."""
        address = peer or "unknown"
        if not forwarded_for or not (self.any or self._listed(address)):
            return address
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return address  # garbage: the last address that can be trusted
            if not self._listed(hop):
                return hop
            address = hop
        return address

    def public_host(self, peer: str | None, host: str, forwarded_host: str | None) -> str:
        """The host clients reach the gateway by: the Host header, or a trusted proxy's X-Forwarded-Host
        (the entry it added, the last) when the proxy rewrote Host; a malformed one is not used."""
        if not forwarded_host or not (self.any or self._listed(peer or "")):
            return host
        forwarded = forwarded_host.split(",")[-1].strip()
        return forwarded if _HOST.match(forwarded) else host
