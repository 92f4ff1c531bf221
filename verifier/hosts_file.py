"""The hosts file as the clean-environment record carries it: what a stock file holds, and what is beyond it.

The capture tool (evidence/environment_check.py) and the verifier's S4 both judge a hosts file with
this module, so they cannot disagree on what counts as a default entry. The record carries the
file's text, and the verifier recomputes the entries beyond the defaults from it instead of taking
the tool's list.

Stock entries are the localhost and ip6 names at their stock addresses (Debian's, Red Hat's and
Alpine's files) and the machine's own names at any address. A stock name at another address, or a
stock line with one more name on it, is not stock: that is exactly how a hosts file poisons a capture.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass

#: Largest hosts file whose text the record carries; a bigger one is recorded by hash and list only.
MAX_HOSTS_TEXT_BYTES = 64 << 10
#: Names a stock hosts file maps, with the addresses they may map to (None: any loopback address).
DEFAULT_HOST_NAMES: dict[str, frozenset[str] | None] = {
    **dict.fromkeys(("localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4",
                     "localhost6", "localhost6.localdomain6", "ip6-localhost", "ip6-loopback"), None),
    "ip6-localnet": frozenset({"fe00::"}), "ip6-mcastprefix": frozenset({"ff00::"}),
    "ip6-allnodes": frozenset({"ff02::1"}), "ip6-allrouters": frozenset({"ff02::2"}),
    "ip6-allhosts": frozenset({"ff02::3"}),
}


@dataclass(frozen=True)
class HostsEntry:
    address: str
    names: tuple[str, ...]

    def record(self) -> dict[str, object]:
        return {"address": self.address, "names": list(self.names)}


def parse_hosts(text: str) -> list[HostsEntry]:
    """Every entry (address and names, lower-case) of a hosts file; comments and blank lines skipped."""
    entries = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2:
            entries.append(HostsEntry(fields[0], tuple(n.lower() for n in fields[1:])))
    return entries


def is_default(entry: HostsEntry, own_names: Collection[str]) -> bool:
    """Whether a stock hosts file holds this entry on a machine called ``own_names``."""
    try:
        ip = ipaddress.ip_address(entry.address.split("%", 1)[0])
    except ValueError:
        return False
    for name in entry.names:
        if name not in DEFAULT_HOST_NAMES:
            if name in own_names:
                continue  # the machine's own name may map to any of its addresses
            return False
        # A stock name counts only at its stock address, even where it is also the machine's own
        # name (getfqdn often answers "localhost"): "localhost" elsewhere is poisoning.
        allowed = DEFAULT_HOST_NAMES[name]
        if allowed is None and not ip.is_loopback:
            return False
        if allowed is not None and ip not in {ipaddress.ip_address(a) for a in allowed}:
            return False
    return True


def non_default_entries(text: str, own_names: Collection[str]) -> list[HostsEntry]:
    """The entries of ``text`` beyond a stock hosts file's."""
    return [entry for entry in parse_hosts(text) if not is_default(entry, own_names)]
