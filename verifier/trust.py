"""Trust configuration: whose keys, which TSA roots and which chains the verifier accepts.

Trust fails closed. A missing, unreadable or empty file is a ``TrustError``, never "trust
everything". Development material (the embedded TSA, the devnet, a local operator key) is trusted
only when a file names it, and every report flags it.

Format (TOML)::

    [[operators]]           name, public_key (base64 raw Ed25519), development = false
    (operators) verify_url   optional: the operator's service, linked from certificates' QR codes
    [operators.qualifications]  the operator's declared filings and certifications (key = "text")
    [[tsa]]                 name, roots (PEM text) or roots_file (relative to this file), development
    [[chains]]              chain_id, name, rpc_urls = [...], confirmations, development
    [policy]                prechain_window_hours = 24, time_tolerance_seconds = 300,
                            min_chains = 1 (anchors on distinct trusted chains that must hold)
"""

from __future__ import annotations

import hashlib
import pkgutil
import tomllib
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from verifier.errors import InvalidInput, TrustError
from verifier.qualifications import Qualifications, parse_qualifications
from verifier.signature import decode_public_key, key_id
from verifier.tsa_chain import MAX_ROOT_FILE_BYTES, MAX_ROOTS, load_certificates

MAX_TRUST_BYTES = 1 << 20
DEFAULT_PRECHAIN_WINDOW = timedelta(hours=24)
DEFAULT_TIME_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class TrustedOperator:
    name: str
    public_key: bytes
    development: bool = False
    #: What the operator declares about itself in this trust file (not verifiable by software).
    qualifications: Qualifications = ()
    #: The operator's service, e.g. ``https://evidence.example``: certificates link to its /verify page.
    verify_url: str | None = None

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)


@dataclass(frozen=True)
class TrustedTSA:
    name: str
    roots: tuple[x509.Certificate, ...]
    development: bool = False


@dataclass(frozen=True)
class TrustedChain:
    chain_id: int
    name: str
    rpc_urls: tuple[str, ...] = ()
    confirmations: int = 1
    development: bool = False


@dataclass(frozen=True)
class Policy:
    prechain_window: timedelta = DEFAULT_PRECHAIN_WINDOW
    time_tolerance: timedelta = DEFAULT_TIME_TOLERANCE
    #: How many anchors, each on a different trusted chain, must hold for H5 to hold.
    min_chains: int = 1


@dataclass(frozen=True)
class Trust:
    operators: tuple[TrustedOperator, ...] = ()
    tsas: tuple[TrustedTSA, ...] = ()
    chains: tuple[TrustedChain, ...] = ()
    policy: Policy = field(default_factory=Policy)
    sources: tuple[str, ...] = ()
    #: (source, SHA-256 hex of the bytes it was parsed from), so a report can name the trust it used.
    digests: tuple[tuple[str, str], ...] = ()

    def operator(self, key_id_hex: str) -> TrustedOperator | None:
        return next((op for op in self.operators if op.key_id == key_id_hex), None)

    def chain(self, chain_id: int) -> TrustedChain | None:
        return next((c for c in self.chains if c.chain_id == chain_id), None)

    def merged(self, other: Trust) -> Trust:
        """Return the union of two trust sets; ``other``'s policy wins."""
        return replace(self, operators=self.operators + other.operators, tsas=self.tsas + other.tsas,
                       chains=self.chains + other.chains, policy=other.policy,
                       sources=self.sources + other.sources, digests=self.digests + other.digests)


def _load_pem_certificates(data: bytes, where: str) -> tuple[x509.Certificate, ...]:
    # A TSA's roots may be a whole system CA bundle; the same loader and limits as --roots.
    try:
        certs = load_certificates(data, max_bytes=MAX_ROOT_FILE_BYTES, max_certificates=MAX_ROOTS)
    except InvalidInput as exc:
        raise TrustError(f"{where}: no PEM certificate could be read ({exc})") from exc
    return tuple(certs)


def _table_list(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = document.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise TrustError(f"trust: [[{key}]] must be a list of tables")
    return value


def _min_chains(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"policy min_chains must be an integer of at least 1, not {value!r}")
    return value


def parse_trust(text: str, *, base_dir: Path | None = None, source: str = "<trust>",
                sha256: str | None = None) -> Trust:
    """Parse trust TOML. Raises TrustError for anything malformed or empty.

    ``sha256`` is the digest of the file's bytes when they differ from ``text`` UTF-8 encoded.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TrustError(f"{source}: not valid TOML: {exc}") from exc
    try:
        operators = tuple(
            TrustedOperator(name=str(item["name"]), public_key=decode_public_key(str(item["public_key"])),
                            development=bool(item.get("development", False)),
                            qualifications=parse_qualifications(item.get("qualifications")),
                            verify_url=_web_url(item.get("verify_url")))
            for item in _table_list(document, "operators"))
        tsas = []
        for item in _table_list(document, "tsa"):
            if "roots_file" in item:
                root_path = (base_dir or Path.cwd()) / str(item["roots_file"])
                try:
                    pem = root_path.read_bytes()
                except OSError as exc:
                    raise TrustError(f"{source}: cannot read {root_path}: {exc.strerror}") from exc
            else:
                pem = str(item["roots"]).encode()
            tsas.append(TrustedTSA(name=str(item["name"]), roots=_load_pem_certificates(pem, source),
                                   development=bool(item.get("development", False))))
        chains = tuple(
            TrustedChain(chain_id=int(item["chain_id"]), name=str(item.get("name", item["chain_id"])),
                         rpc_urls=tuple(str(u) for u in item.get("rpc_urls", [])),
                         confirmations=int(item.get("confirmations", 1)),
                         development=bool(item.get("development", False)))
            for item in _table_list(document, "chains"))
        policy_table = document.get("policy", {})
        policy = Policy(
            prechain_window=timedelta(hours=float(policy_table.get("prechain_window_hours", 24))),
            time_tolerance=timedelta(seconds=float(policy_table.get("time_tolerance_seconds", 300))),
            min_chains=_min_chains(policy_table.get("min_chains", 1)),
        )
    except (KeyError, TypeError, ValueError, InvalidInput) as exc:
        raise TrustError(f"{source}: malformed entry: {exc}") from exc
    if not (operators or tsas or chains):
        raise TrustError(f"{source}: trusts nothing (no operators, TSAs or chains); refusing to go on")
    digest = sha256 or hashlib.sha256(text.encode()).hexdigest()
    return Trust(operators=operators, tsas=tuple(tsas), chains=chains, policy=policy, sources=(source,),
                 digests=((source, digest),))


def _web_url(value: object) -> str | None:
    """An operator's verify_url: a plain http(s) URL (no credentials), or ValueError."""
    if value is None or value == "":
        return None
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise ValueError(f"verify_url {str(value)!r} is not an http(s) URL without user name or password")
    return str(value)


def load_trust(path: Path | str) -> Trust:
    """Read a trust file. Raises TrustError when it is missing, unreadable, too big or empty."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_TRUST_BYTES:
            raise TrustError(f"{path}: over {MAX_TRUST_BYTES} bytes")
        data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustError(f"cannot read trust file {path}: {exc}") from exc
    # The digest is of the bytes, as `sha256sum FILE` shows it, so counsel can compare the two.
    return parse_trust(text, base_dir=path.parent, source=str(path), sha256=hashlib.sha256(data).hexdigest())


def default_trust() -> Trust:
    """The trust that ships with the verifier: public chains and the public TSAs we document."""
    # pkgutil, not importlib.resources: the same loader underneath, ~10 ms fewer imports on every run.
    data = pkgutil.get_data("verifier", "default_trust.toml")
    if data is None:
        raise TrustError("the default trust (verifier/default_trust.toml) is missing from this installation")
    text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it
    return parse_trust(text, source="default trust")
