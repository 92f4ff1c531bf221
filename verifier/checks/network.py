"""S3, network facts: the servers were the ones DNS named, and TLS covered the host at capture time.

Checked from network.json and the WARC alone, offline:
1. every raw-fetch hop's server address is among the recorded DNS answers for its host;
2. so is every browser exchange's, and every WARC request and response record's ``WARC-IP-Address``;
3. for https, the final hop's leaf certificate (DER) hashes to its recorded fingerprint, names the
   host (RFC 6125 matching of its SAN), and was inside its validity period when the capture started;
4. the capture host's verification of the chain is reported: trusted passes, untrusted warns, and
   plain http warns (nothing protected the content in transit).
The verifier holds no root store of its own, so "the chain was trusted" is the capture host's
statement (signed in the package), not something re-derived here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from verifier.checks.capture_material import (
    capture_times,
    mapping,
    read_network,
    require_capture,
    sequence,
    text,
    warc_records,
)
from verifier.checks.context import Context, Outcome
from verifier.court_time import plural
from verifier.errors import VerificationError
from verifier.verdict import Status

MAX_LISTED = 3


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        return value


def _answers(network: Mapping[str, Any]) -> dict[str, set[str]]:
    answers: dict[str, set[str]] = {}
    for i, item in enumerate(sequence(network.get("dns"), "network.json dns")):
        record = mapping(item, f"network.json dns[{i}]")
        host = text(record.get("host"), f"network.json dns[{i}].host").lower()
        found = answers.setdefault(host, set())
        for kind, values in mapping(record.get("answers"), f"network.json dns[{i}].answers").items():
            found.update(_address(v) for v in sequence(values, f"network.json dns[{i}].answers.{kind}")
                         if isinstance(v, str))
    return answers


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().rstrip(".")


def _mismatch(answers: dict[str, set[str]], url: str, ip: str) -> str | None:
    host = _host(url)
    known = answers.get(host)
    if known is None:
        return f"{host} has no recorded DNS answer (server {ip})"
    if _address(ip) not in known:
        return f"server {ip} for {host} is not among its DNS answers {sorted(known)}"
    return None


def _covers(cert: x509.Certificate, host: str) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        return ip in san.get_values_for_type(x509.IPAddress)
    for name in san.get_values_for_type(x509.DNSName):
        name = name.lower().rstrip(".")
        if name == host:
            return True
        # RFC 6125 §6.4.3: a wildcard stands for exactly one left-most label.
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def _tls_outcome(ctx: Context, hop: Mapping[str, Any], host: str) -> tuple[Status, str]:
    tls = mapping(hop.get("tls"), "network.json: the final https hop's tls")
    try:
        der = base64.b64decode(text(tls.get("leaf_der_b64"), "tls.leaf_der_b64"), validate=True)
    except binascii.Error as exc:
        raise VerificationError("network.json: the leaf certificate is not valid base64") from exc
    fingerprint = hashlib.sha256(der).hexdigest()
    if fingerprint != tls.get("leaf_sha256"):
        return Status.FAIL, f"the recorded leaf certificate hashes to {fingerprint[:16]}…, not its stated fingerprint"
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise VerificationError(f"network.json: the leaf certificate cannot be parsed: {exc}") from exc
    if not _covers(cert, host):
        return Status.FAIL, f"the server's certificate does not name {host}"
    started, _ = capture_times(ctx)
    if started is None:
        raise VerificationError("the manifest has no valid capture.started_at")
    if not cert.not_valid_before_utc <= started <= cert.not_valid_after_utc:
        return Status.FAIL, (f"the server's certificate was not valid when the capture started "
                             f"({cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d})")
    summary = f"TLS {tls.get('protocol')} {tls.get('cipher')}, leaf {fingerprint[:16]}… names {host} and was valid"
    if tls.get("verified") is not True:
        return Status.WARN, (f"{summary}, but the capture host did not trust its chain: "
                             f"{tls.get('verify_error') or 'not verified'}")
    return Status.PASS, f"{summary}; the capture host verified the chain"


def check_network_facts(ctx: Context) -> Outcome:
    """S3: server IPs are among the DNS answers; TLS covered the host and was valid at capture time."""
    require_capture(ctx, "no network facts; the platform received files, it did not fetch them")
    network = read_network(ctx)
    answers = _answers(network)
    fetch = mapping(network.get("fetch"), "network.json fetch")
    hops = [mapping(h, "network.json fetch.hops[]") for h in sequence(fetch.get("hops"), "network.json fetch.hops")]
    if not hops:
        raise VerificationError("network.json records no raw-fetch hop")
    problems: list[str] = []
    checked = 0
    traffic = mapping(network.get("traffic"), "network.json traffic")
    for item in [*hops, *(mapping(e, "traffic.exchanges[]") for e in sequence(traffic.get("exchanges"),
                                                                              "traffic.exchanges"))]:
        server = mapping(item.get("server"), "a recorded exchange's server")
        problem = _mismatch(answers, text(item.get("url"), "an exchange's url"), text(server.get("ip"), "server.ip"))
        checked += 1
        if problem:
            problems.append(problem)
    for record in warc_records(ctx, lambda _h: False):
        if record.type in ("request", "response") and record.target_uri.startswith(("http://", "https://")):
            checked += 1
            problem = _mismatch(answers, record.target_uri, record.ip_address or "(none)")
            if problem:
                problems.append(f"WARC: {problem}")
    if problems:
        more = len(problems) - MAX_LISTED
        return Status.FAIL, "; ".join(problems[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")
    final = hops[-1]
    url = text(final.get("url"), "final hop url")
    host = _host(url)
    server = mapping(final.get("server"), "final hop server")
    where = f"server {server.get('ip')}:{server.get('port')} is among the DNS answers for {host}"
    ctx.facts["network"] = {"final_url": url, "server": f"{server.get('ip')}:{server.get('port')}",
                            "hosts": sorted(answers)}
    if urlsplit(url).scheme != "https":
        return Status.WARN, (f"{where} ({plural(checked, 'connection')} checked), but plain http: no TLS protected "
                             "the content")
    status, reason = _tls_outcome(ctx, final, host)
    return status, f"{where} ({plural(checked, 'connection')} checked); {reason}"
