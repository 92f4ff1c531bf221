"""Import a reply (or a delivery-status notification) to a notice, with the proof of where it came from.

At import the reply's DKIM signature is verified (dkimpy), and the signing key's DNS TXT record is
fetched once (dnspython, against the configured resolver) and kept exactly as fetched: name, the
record's strings, the resolver asked, the time and the TTL. Both go into the sealed package, so the
verifier's N1 can check the signature again later, offline, against the record as it was, even after
the platform rotates its key.

A reply without a signature, or whose signature fails, is still sealed (it is what was received);
the package records the result at import, and N1 reports it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evidence.notices.dns_lookup import DNS_TIMEOUT_SECONDS, NO_ANSWER, Nameserver, resolver_for, resolver_name
from evidence.notices.model import NoticeError
from evidence.notices.packaging import build_reply_package
from evidence.operator_key import OperatorKey
from evidence.upload import BuiltPackage
from verifier.manifest_writer import utc_iso
from verifier.package import Requester

__all__ = ["DkimImport", "FetchedRecords", "Nameserver", "check_reply", "import_reply"]
#: A reply is an e-mail, not an archive: anything bigger is not what this command is for.
MAX_REPLY_BYTES = 32 << 20


@dataclass
class FetchedRecords:
    """Every TXT record the DKIM check asked for, as the resolver answered."""

    nameserver: Nameserver | None
    records: list[dict[str, Any]] = field(default_factory=list)

    def fetch(self, name: bytes, timeout: float = DNS_TIMEOUT_SECONDS) -> bytes | None:
        """dkimpy's ``dnsfunc``: the TXT record's strings joined, or None; each answer recorded."""
        qname = name.decode("ascii").rstrip(".")
        resolver = resolver_for(self.nameserver)
        entry: dict[str, Any] = {"name": qname, "type": "TXT", "fetched_at": utc_iso(datetime.now(UTC)),
                                 "resolver": resolver_name(resolver)}
        try:
            answer = resolver.resolve(qname, "TXT", lifetime=timeout)
        except NO_ANSWER as exc:
            entry["error"] = type(exc).__name__
            self.records.append(entry)
            return None
        rrset = answer.rrset
        assert rrset is not None  # resolve() raises NoAnswer rather than return an empty answer
        strings = [[s.decode("ascii", "replace") for s in rdata.strings] for rdata in rrset]
        entry.update({"ttl": rrset.ttl, "rdata": strings, "value": "".join(strings[0]) if strings else ""})
        self.records.append(entry)
        return b"".join(rrset[0].strings) if len(rrset) else None


@dataclass(frozen=True)
class DkimImport:
    """The DKIM result at import and the DNS record it used."""

    result: dict[str, Any]
    dns_record: dict[str, Any]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.messages.append(record.getMessage())


def check_reply(eml: bytes, nameserver: Nameserver | None) -> DkimImport:
    """Verify ``eml``'s first DKIM signature, fetching its key from DNS; never raises for a bad signature."""
    import dkim

    if len(eml) > MAX_REPLY_BYTES:
        raise NoticeError(f"the reply is {len(eml)} bytes, over the limit of {MAX_REPLY_BYTES}")
    fetched = FetchedRecords(nameserver)
    collected = _Collect()
    logger = logging.getLogger("tiezheng.notice.dkim")
    logger.propagate = False
    logger.addHandler(collected)
    try:
        checker = dkim.DKIM(eml, logger=logger)
        try:
            valid = bool(checker.verify(dnsfunc=fetched.fetch))
            problem = None if valid else ("; ".join(collected.messages) or "the signature does not verify")
        except dkim.DKIMException as exc:
            valid, problem = False, str(exc)
    finally:
        logger.removeHandler(collected)
    signed = any(name.lower() == b"dkim-signature" for name, _ in checker.headers)
    result: dict[str, Any] = {
        "status": "pass" if valid else ("fail" if signed else "none"),
        "domain": _text(getattr(checker, "domain", None)) if signed else None,
        "selector": _text(getattr(checker, "selector", None)) if signed else None,
        "checked_at": utc_iso(datetime.now(UTC)), "tool": f"dkimpy {_dkimpy_version()}",
    }
    if not signed:
        result["reason"] = "the reply carries no DKIM-Signature"
    elif problem:
        result["reason"] = problem
    record = fetched.records[-1] if fetched.records else {}
    return DkimImport(result=result, dns_record={"format": "tiezheng-dns-txt/1", **record})


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return value if isinstance(value, str) and value else None


def _dkimpy_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dkimpy")
    except PackageNotFoundError:
        return "unknown"


def import_reply(eml: bytes, *, notice_id: str, notice_fingerprint: str, nameserver: Nameserver | None,
                 packages_dir: Path, operator: OperatorKey, requester: Requester) -> tuple[BuiltPackage, DkimImport]:
    """Check ``eml``'s DKIM signature and seal it, with the key record as fetched, as a ``notice-reply``."""
    received_at = datetime.now(UTC)
    checked = check_reply(eml, nameserver)
    built = build_reply_package(eml=eml, dns_record=checked.dns_record, dkim_result=checked.result,
                                notice_id=notice_id, notice_fingerprint=notice_fingerprint,
                                received_at=received_at, packages_dir=packages_dir, operator=operator,
                                requester=requester)
    return built, checked
