"""The source (S1-S4): who made the capture, on whose behalf, from where and with what."""

from __future__ import annotations

from verifier.checks.context import Context, Outcome, Skip
from verifier.checks.environment import check_capture_environment
from verifier.checks.network import check_network_facts
from verifier.errors import InvalidInput
from verifier.package import NOT_CAPTURED_KINDS
from verifier.qualifications import UNVERIFIABLE, Qualifications, describe, parse_qualifications
from verifier.signature import decode_public_key, parse_signature, verify_signature
from verifier.verdict import Status


def check_signature(ctx: Context) -> Outcome:
    """S1: manifest.sig verifies with the operator key, and that key is trusted."""
    package = ctx.package
    operator = package.manifest.operator
    if package.signature is None:
        return Status.FAIL, "the package has no evidence/manifest.sig"
    signature = parse_signature(package.signature)
    try:
        public_key = decode_public_key(operator.public_key)
    except InvalidInput as exc:
        return Status.FAIL, f"manifest operator.public_key: {exc}"
    verify_signature(signature, package.manifest_bytes, public_key)
    trusted = ctx.trust.operator(signature.key_id)
    if trusted is None:
        # A valid signature by a key we were not told about: the package may be fine, we cannot say.
        raise ctx.lack_trust("S1", f"the operator key {signature.key_id[:16]}… (signed as '{operator.name}')")
    if trusted.development:
        ctx.flag_development(f"operator key '{trusted.name}' is a development key")
    ctx.facts["operator"] = {"name": trusted.name, "key_id": signature.key_id}
    return Status.PASS, f"manifest signed by trusted operator '{trusted.name}' (key {signature.key_id[:16]}…)"


def _qualifications_note(ctx: Context, declared: Qualifications) -> str:
    """How S2 states the operator's declared qualifications, beside what the trust file declares."""
    trusted = ctx.trust.operator(ctx.package.manifest.operator.key_id)
    published = trusted.qualifications if trusted is not None else ()
    if not declared:
        return ("the operator declares no qualifications (filings, certifications)"
                + (f"; its trust file declares {describe(published)}" if published else ""))
    if trusted is None or not published:
        beside = "the trust file declares none for this key"
    elif published == declared:
        beside = "the same as its trust file"
    else:
        beside = f"its trust file now declares {describe(published)}"
    return f"operator qualifications: {describe(declared)} ({UNVERIFIABLE}; {beside})"


def check_neutral(ctx: Context) -> Outcome:
    """S2: requester and operator are recorded and differ; the operator's declared qualifications shown."""
    manifest = ctx.package.manifest
    operator, requester = manifest.operator, manifest.requester
    if not operator.name.strip() or not requester.tenant.strip():
        return Status.FAIL, "operator or requester is not recorded"
    if operator.name.strip().casefold() in (requester.tenant.strip().casefold(),
                                             requester.identity.strip().casefold()):
        return Status.FAIL, f"the requester '{requester.tenant}' is the operator itself: not a neutral third party"
    ctx.facts["requester"] = {"tenant": requester.tenant, "identity": requester.identity}
    raw = manifest.data["operator"].get("qualifications")
    try:
        declared = parse_qualifications(raw)
    except ValueError as exc:
        return Status.FAIL, f"manifest operator.qualifications is malformed: {exc}"
    ctx.facts["operator_qualifications"] = {"declared": dict(declared), "note": UNVERIFIABLE}
    return Status.PASS, (f"operator '{operator.name}' acted for requester '{requester.tenant}' ({requester.identity}); "
                         + _qualifications_note(ctx, declared))


def check_network(ctx: Context) -> Outcome:
    """S3: the server IP is among the DNS answers; the TLS chain covers the host."""
    if ctx.package.manifest.kind == "upload":
        raise Skip("upload: no network facts; the platform received the files, it did not fetch them")
    if ctx.package.manifest.kind == "stream":
        raise Skip("stream: no separate network facts are recorded; every segment's WARC record names the server "
                   "address it came from (WARC-IP-Address)")
    if ctx.package.manifest.kind == "log-export":
        raise Skip("log-export: events sent to the log by the requester's systems, not fetched: no network facts")
    if ctx.package.manifest.kind in NOT_CAPTURED_KINDS:
        raise Skip(f"{ctx.package.manifest.kind}: an e-mail, not a fetched page: no network facts (the SMTP "
                   "transcript or the DKIM key record stands for them)")
    return check_network_facts(ctx)


def check_environment(ctx: Context) -> Outcome:
    """S4: the capture environment is recorded."""
    return check_capture_environment(ctx)
