"""verifier.timestamp against public RFC 3161 vectors, OpenSSL-made tokens and forged tokens.

OpenSSL tokens are made here, in a temporary folder, by the real ``openssl ts`` CLI; OpenSSL's own
``ts -verify`` then judges the same tokens, and both verdicts must agree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc3161_client
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verifier.errors import InvalidInput, TimestampError
from verifier.timestamp import UnreadableToken, parse_timestamp_response, verify_timestamp
from verifier.tsa_chain import load_certificates

OPENSSL = shutil.which("openssl")
HELLO = b"hello"
POLICY = "1.2.3.4.1"
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


# --- public vectors (tests/vectors/README.md, "Expected outcomes for rfc3161/") -----------------------

def _chain(vectors: Path, folder: str) -> list[x509.Certificate]:
    """The folder's ts_chain.pem: TSA certificate first, trusted root last."""
    return load_certificates((vectors / "rfc3161" / folder / "ts_chain.pem").read_bytes())


def _tsr(vectors: Path, name: str) -> bytes:
    return (vectors / "rfc3161" / name).read_bytes()


@pytest.mark.parametrize("alg", ["sha256", "sha384", "sha512"])
def test_sigstage_valid(vectors: Path, alg: str) -> None:
    chain = _chain(vectors, "sigstage")
    info = verify_timestamp(_tsr(vectors, f"sigstage/response-{alg}.tsr"), hashlib.new(alg, HELLO).digest(),
                            [chain[-1]])
    assert info.hash_algorithm == alg
    assert info.tsa_name == "CN=sigstore-tsa,O=sigstore.dev"
    assert info.signer == chain[0]
    assert info.gen_time.tzinfo is dt.UTC
    assert info.accuracy == dt.timedelta(seconds=1)
    assert info.rfc3161_client_checked


def test_sigstage_no_embedded_cert(vectors: Path) -> None:
    chain = _chain(vectors, "sigstage")
    tsr = _tsr(vectors, "sigstage/response-no-embedded-cert.tsr")
    digest = hashlib.sha256(HELLO).digest()
    info = verify_timestamp(tsr, digest, [chain[-1]], certificates=[chain[0]])
    assert info.signer == chain[0]
    with pytest.raises(TimestampError, match="signing certificate not found"):
        verify_timestamp(tsr, digest, [chain[-1]])


def test_sigstage_invalid_signature(vectors: Path) -> None:
    chain = _chain(vectors, "sigstage")
    with pytest.raises(TimestampError, match="signature"):
        verify_timestamp(_tsr(vectors, "sigstage/response-invalid-signature.tsr"),
                         hashlib.sha256(HELLO).digest(), [chain[-1]])


def test_identrust_issue_104(vectors: Path) -> None:
    # ts_chain.pem is DER despite its name; load_certificates takes either.
    chain = _chain(vectors, "identrust")
    info = verify_timestamp(_tsr(vectors, "identrust/issue-104.tsr"), hashlib.sha512(HELLO).digest(),
                            [chain[-1]])
    assert info.tsa_name == "CN=TrustID Timestamp Authority,O=IdenTrust,C=US"
    assert info.hash_algorithm == "sha512"


def test_test_tsa_response(vectors: Path) -> None:
    chain = _chain(vectors, "test_tsa")
    request = tsp.TimeStampReq.load((vectors / "rfc3161" / "test_tsa" / "request.der").read_bytes())
    digest = request["message_imprint"]["hashed_message"].native
    assert digest == hashlib.sha512(HELLO).digest()
    info = verify_timestamp(_tsr(vectors, "test_tsa/response.tsr"), digest, [chain[-1]],
                            certificates=chain[1:-1], nonce=request["nonce"].native)
    assert info.signer == chain[0]


def test_test_tsa_trusting_the_intermediate(vectors: Path) -> None:
    chain = _chain(vectors, "test_tsa")
    info = verify_timestamp(_tsr(vectors, "test_tsa/response.tsr"), hashlib.sha512(HELLO).digest(),
                            [chain[1]])
    assert info.signer == chain[0]
    # rfc3161-client's OpenSSL store wants a self-signed anchor, so only our checks judge this one.
    assert not info.rfc3161_client_checked


def test_test_tsa_injected_certs(vectors: Path) -> None:
    chain = _chain(vectors, "test_tsa")
    tsr = _tsr(vectors, "test_tsa/response-injected-certs.tsr")
    digest = hashlib.sha512(HELLO).digest()
    # A "Spoofed TSA" and a self-signed look-alike come first in the bag; sid picks the real one.
    info = verify_timestamp(tsr, digest, [chain[-1]], certificates=chain[1:-1])
    assert info.signer == chain[0]
    assert verify_timestamp(tsr, digest, [chain[-1]], certificates=chain[1:-1],
                            tsa_common_name="Test TSA Timestamping").signer == chain[0]
    with pytest.raises(TimestampError, match="name pin mismatch"):
        verify_timestamp(tsr, digest, [chain[-1]], certificates=chain[1:-1], tsa_common_name="Spoofed TSA")


def test_test_tsa_other_instance_is_not_trusted(vectors: Path) -> None:
    # other_response.tsr comes from another run of the test TSA, with its own intermediate.
    chain = _chain(vectors, "test_tsa")
    with pytest.raises(TimestampError, match="trusted root"):
        verify_timestamp(_tsr(vectors, "test_tsa/other_response.tsr"), hashlib.sha512(HELLO).digest(),
                         [chain[-1]], certificates=chain[1:-1])


def test_sigstore_mock_expired(vectors: Path) -> None:
    chain = _chain(vectors, "sigstore.mock")
    tsr = _tsr(vectors, "sigstore.mock/response-expired.tsr")
    digest = hashlib.sha256((vectors / "rfc3161" / "sigstore.mock" / "payload").read_bytes()).digest()
    info = verify_timestamp(tsr, digest, [chain[-1]], certificates=[chain[0]])
    assert info.gen_time == dt.datetime(2023, 2, 1, tzinfo=dt.UTC)
    assert info.nonce == 1234567890
    for outside in (chain[0].not_valid_after_utc + dt.timedelta(seconds=1),
                    chain[0].not_valid_before_utc - dt.timedelta(seconds=1)):
        with pytest.raises(TimestampError, match="not valid at"):
            verify_timestamp(tsr, digest, [chain[-1]], certificates=[chain[0]], validation_time=outside)


# --- OpenSSL-made tokens ---------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tiezheng tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _sign_alg(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384:
    return hashes.SHA384() if isinstance(key, ec.EllipticCurvePrivateKey) else hashes.SHA256()


def _ca(cn: str, key: PrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                           critical=True)
            .sign(key, _sign_alg(key)))


def _tsa_cert(cn: str, key: PrivateKey | ed25519.Ed25519PrivateKey, ca: x509.Certificate, ca_key: PrivateKey,
              eku: list[x509.ObjectIdentifier] | None = None, eku_critical: bool = True) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=7))
               .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                              critical=True)
               # A SAN makes the TSA certificate longer than its CA's, so a bag of [TSA, CA] (OpenSSL's
               # order) breaks DER SET ordering: the case rfc3161-client cannot parse.
               .add_extension(x509.SubjectAlternativeName([
                   x509.DNSName("tsa.tiezheng.invalid"),
                   x509.UniformResourceIdentifier("https://tsa.tiezheng.invalid/policies/time-stamping")]),
                   critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if eku is None:
        eku = [ExtendedKeyUsageOID.TIME_STAMPING]
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=eku_critical)
    return builder.sign(ca_key, _sign_alg(ca_key))


def _openssl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, text=True, check=check, timeout=30)


@dataclass
class Tsa:
    """A CA and a TSA certificate on disk, driven through ``openssl ts``."""

    folder: Path
    ca: x509.Certificate
    ca_key: PrivateKey
    cert: x509.Certificate
    key: PrivateKey
    signer_digest: str

    @classmethod
    def create(cls, folder: Path, make_key: Callable[[], PrivateKey], signer_digest: str) -> Tsa:
        folder.mkdir()
        ca_key, key = make_key(), make_key()
        ca = _ca(f"{folder.name} Root CA", ca_key)
        tsa = cls(folder, ca, ca_key, _tsa_cert(f"{folder.name} TSA", key, ca, ca_key), key, signer_digest)
        (folder / "ca.pem").write_bytes(ca.public_bytes(PEM))
        (folder / "tsa.pem").write_bytes(tsa.cert.public_bytes(PEM))
        (folder / "tsa+ca.pem").write_bytes(tsa.cert.public_bytes(PEM) + ca.public_bytes(PEM))
        (folder / "tsa.key").write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
        (folder / "serial").write_text("01\n")
        for certs in ("tsa", "tsa+ca"):
            (folder / f"{certs}.cnf").write_text(tsa._config(folder / f"{certs}.pem"))
        return tsa

    def _config(self, certs: Path) -> str:
        # accuracy + clock_precision_digits = 6 make OpenSSL write microseconds into genTime.
        return f"""[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = {self.folder / "serial"}
crypto_device = builtin
signer_cert = {self.folder / "tsa.pem"}
certs = {certs}
signer_key = {self.folder / "tsa.key"}
signer_digest = {self.signer_digest}
default_policy = {POLICY}
other_policies = 1.2.3.4.5
digests = sha1, sha256, sha384, sha512
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 6
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""

    def stamp(self, digest: bytes, certs: str = "tsa") -> Path:
        """Return the path of a TimeStampResp over the raw ``digest``, embedding ``certs``."""
        alg = {20: "-sha1", 32: "-sha256", 48: "-sha384", 64: "-sha512"}[len(digest)]
        stem = digest.hex()[:16]
        query, reply = self.folder / f"{stem}.tsq", self.folder / f"{stem}-{certs}.tsr"
        _openssl("ts", "-query", "-digest", digest.hex(), alg, "-cert", "-out", query)
        _openssl("ts", "-reply", "-config", self.folder / f"{certs}.cnf", "-queryfile", query, "-out", reply)
        return reply

    def openssl_verify(self, tsr: Path, digest: bytes, untrusted: Path | None = None) -> bool:
        """Return OpenSSL's verdict on ``tsr``, trusting only this TSA's CA."""
        result = _openssl("ts", "-verify", "-digest", digest.hex(), "-in", tsr,
                          "-CAfile", self.folder / "ca.pem",
                          "-untrusted", untrusted or self.folder / "tsa.pem",
                          check=False)
        return result.returncode == 0 and "Verification: OK" in result.stdout


@dataclass
class Pki:
    rsa: Tsa
    ec: Tsa
    evil: Tsa


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if OPENSSL is None:
        pytest.skip("the openssl CLI is not on PATH")
    root = tmp_path_factory.mktemp("tsa")
    return Pki(
        rsa=Tsa.create(root / "rsa", lambda: rsa.generate_private_key(65537, 2048), "sha256"),
        ec=Tsa.create(root / "ec", lambda: ec.generate_private_key(ec.SECP384R1()), "sha384"),
        evil=Tsa.create(root / "evil", lambda: ec.generate_private_key(ec.SECP256R1()), "sha256"),
    )


def _digest(label: str, size: int = 32) -> bytes:
    return hashlib.new({32: "sha256", 48: "sha384", 64: "sha512"}[size], label.encode()).digest()


def _raw_gen_time(tsr: bytes) -> str:
    token = tsp.TimeStampResp.load(tsr)["time_stamp_token"]["content"]
    return str(token["encap_content_info"]["content"].parsed["gen_time"].contents.decode())


@pytest.mark.parametrize("certs", ["tsa", "tsa+ca"])
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_openssl_token(pki: Pki, kind: str, certs: str) -> None:
    tsa: Tsa = getattr(pki, kind)
    digest = _digest(f"{kind}-{certs}")
    path = tsa.stamp(digest, certs)
    tsr = path.read_bytes()
    info = verify_timestamp(tsr, digest, [tsa.ca])
    assert tsa.openssl_verify(path, digest)
    assert info.signer == tsa.cert
    assert info.tsa_name == tsa.cert.subject.rfc4514_string()
    assert (info.policy, info.hash_algorithm) == (POLICY, "sha256")
    assert info.accuracy == dt.timedelta(seconds=1, milliseconds=500, microseconds=100)
    assert info.nonce is not None
    pinned = verify_timestamp(tsr, digest, [tsa.ca], nonce=info.nonce, tsa_common_name=f"{kind} TSA")
    assert pinned.nonce == info.nonce
    # genTime keeps its microseconds (OpenSSL drops trailing zeros, so compare with the raw string).
    raw = _raw_gen_time(tsr)
    fraction = raw[raw.index(".") + 1:-1] if "." in raw else ""
    assert info.gen_time.microsecond == int(fraction.ljust(6, "0") or 0)
    assert abs(info.gen_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    if certs == "tsa":
        assert info.rfc3161_client_checked
        # ... which rfc3161-client drops.
        client_time = rfc3161_client.decode_timestamp_response(tsr).tst_info.gen_time
        assert client_time.microsecond == 0
        assert client_time.replace(tzinfo=dt.UTC) == info.gen_time.replace(microsecond=0)
    else:
        # The CA breaks DER SET ordering; only our own checks can judge this token.
        with pytest.raises(ValueError, match="InvalidSetOrdering"):
            rfc3161_client.decode_timestamp_response(tsr)
        assert not info.rfc3161_client_checked


@pytest.mark.parametrize("size", [48, 64])
def test_openssl_longer_digests(pki: Pki, size: int) -> None:
    digest = _digest("longer", size)
    path = pki.ec.stamp(digest, "tsa+ca")
    info = verify_timestamp(path.read_bytes(), digest, [pki.ec.ca])
    assert info.hash_algorithm == {48: "sha384", 64: "sha512"}[size]
    assert pki.ec.openssl_verify(path, digest)


@pytest.mark.parametrize("certs", ["tsa", "tsa+ca"])
def test_evil_tsa_is_rejected(pki: Pki, certs: str) -> None:
    digest = _digest("evil")
    path = pki.evil.stamp(digest, certs)
    # Handing over the evil CA as a helper certificate must not make it trusted.
    with pytest.raises(TimestampError, match="trusted root"):
        verify_timestamp(path.read_bytes(), digest, [pki.rsa.ca, pki.ec.ca], certificates=[pki.evil.ca])
    assert not pki.rsa.openssl_verify(path, digest, untrusted=pki.evil.folder / "tsa+ca.pem")
    assert pki.evil.openssl_verify(path, digest)  # the token itself is sound; only trust is missing
    if certs == "tsa":
        # Why our own chain walk runs first: rfc3161-client alone trusts the helper it is given.
        verifier = (rfc3161_client.VerifierBuilder().add_root_certificate(pki.rsa.ca)
                    .add_intermediate_certificate(pki.evil.ca).build())
        assert verifier.verify(rfc3161_client.decode_timestamp_response(path.read_bytes()), digest)


def test_wrong_root(pki: Pki) -> None:
    digest = _digest("wrong root")
    with pytest.raises(TimestampError, match="trusted root"):
        verify_timestamp(pki.rsa.stamp(digest).read_bytes(), digest, [pki.ec.ca])


def test_wrong_digest(pki: Pki) -> None:
    tsr = pki.rsa.stamp(_digest("right")).read_bytes()
    with pytest.raises(TimestampError, match="message imprint mismatch"):
        verify_timestamp(tsr, _digest("wrong"), [pki.rsa.ca])
    with pytest.raises(TimestampError, match="imprint algorithm"):
        verify_timestamp(tsr, _digest("right", 48), [pki.rsa.ca])
    # A SHA-1 length is a valid digest now (legacy tokens); the imprint's algorithm still decides.
    with pytest.raises(TimestampError, match=r"imprint algorithm is sha256 \(32 bytes\), but the digest given has 20"):
        verify_timestamp(tsr, hashlib.sha1(b"right").digest(), [pki.rsa.ca], allow_sha1=True)
    with pytest.raises(InvalidInput, match="digest of 16 bytes: expected 20 \\(SHA-1\\), 32, 48 or 64"):
        verify_timestamp(tsr, hashlib.md5(b"right").digest(), [pki.rsa.ca])


def test_nonce_mismatch(pki: Pki) -> None:
    digest = _digest("nonce")
    tsr = pki.rsa.stamp(digest).read_bytes()
    nonce = parse_timestamp_response(tsr).nonce
    assert nonce is not None
    verify_timestamp(tsr, digest, [pki.rsa.ca], nonce=nonce)
    with pytest.raises(TimestampError, match="nonce mismatch"):
        verify_timestamp(tsr, digest, [pki.rsa.ca], nonce=nonce + 1)


def test_empty_roots_fail_closed(pki: Pki) -> None:
    digest = _digest("no roots")
    with pytest.raises(TimestampError, match="no trusted roots"):
        verify_timestamp(pki.rsa.stamp(digest).read_bytes(), digest, [])


def test_tampered_imprint(pki: Pki) -> None:
    digest = _digest("tamper")
    tsr = pki.rsa.stamp(digest).read_bytes()
    other = _digest("other")
    assert tsr.count(digest) == 1
    with pytest.raises(TimestampError, match="signature invalid"):
        verify_timestamp(tsr.replace(digest, other), other, [pki.rsa.ca])


# --- forged tokens: a TSA key signing under a certificate OpenSSL would not sign with ---------------

def _forge(tsr: bytes, cert: x509.Certificate, key: PrivateKey | ed25519.Ed25519PrivateKey,
           ess_cert: x509.Certificate | None = None, pss: bool = False) -> bytes:
    """Return ``tsr`` re-signed by ``key`` as ``cert``: bag, sid and ESS v2 rewritten.

    OpenSSL refuses to sign with a certificate lacking a critical timeStamping EKU ("invalid signer
    certificate purpose"), so such tokens are made here, the way a careless TSA would.
    """
    resp = tsp.TimeStampResp.load(tsr)
    signed = resp["time_stamp_token"]["content"]
    si: Any = signed["signer_infos"][0]
    a_cert = asn1_x509.Certificate.load(cert.public_bytes(DER))
    signed["certificates"] = [cms.CertificateChoices(name="certificate", value=a_cert)]
    si["sid"] = cms.SignerIdentifier(name="issuer_and_serial_number", value={
        "issuer": a_cert.issuer, "serial_number": a_cert.serial_number})
    ess = hashlib.sha256((ess_cert or cert).public_bytes(DER)).digest()
    attrs = [a for a in si["signed_attrs"] if a["type"].native != "signing_certificate_v2"]
    attrs.append(cms.CMSAttribute({"type": "signing_certificate_v2",
                                   "values": [{"certs": [{"cert_hash": ess}]}]}))
    si["signed_attrs"] = cms.CMSAttributes(attrs)
    tagged = si["signed_attrs"].dump()
    assert tagged[0] == 0xA0
    to_sign = b"\x31" + tagged[1:]
    hash_alg: hashes.HashAlgorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}[
        si["digest_algorithm"]["algorithm"].native]
    if isinstance(key, rsa.RSAPrivateKey) and pss:
        si["signature_algorithm"] = {"algorithm": "rsassa_pss", "parameters": {
            "hash_algorithm": {"algorithm": hash_alg.name},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": hash_alg.name}},
            "salt_length": hash_alg.digest_size}}
        pss_padding = padding.PSS(padding.MGF1(hash_alg), hash_alg.digest_size)
        si["signature"] = key.sign(to_sign, pss_padding, hash_alg)
    elif isinstance(key, rsa.RSAPrivateKey):
        si["signature"] = key.sign(to_sign, padding.PKCS1v15(), hash_alg)
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        si["signature_algorithm"] = {"algorithm": "ed25519"}
        si["signature"] = key.sign(to_sign)
    else:
        si["signature"] = key.sign(to_sign, ec.ECDSA(hash_alg))
    return bytes(resp.dump())


def test_openssl_refuses_a_non_critical_eku(pki: Pki) -> None:
    tsa = pki.rsa
    bad = _tsa_cert("rsa TSA", tsa.key, tsa.ca, tsa.ca_key, eku_critical=False)
    (tsa.folder / "bad.pem").write_bytes(bad.public_bytes(PEM))
    config = (tsa.folder / "tsa.cnf").read_text()
    config = config.replace(str(tsa.folder / "tsa.pem"), str(tsa.folder / "bad.pem"))
    (tsa.folder / "bad.cnf").write_text(config)
    query = tsa.folder / "bad.tsq"
    _openssl("ts", "-query", "-digest", _digest("bad").hex(), "-sha256", "-cert", "-out", query)
    result = _openssl("ts", "-reply", "-config", tsa.folder / "bad.cnf", "-queryfile", query,
                      "-out", tsa.folder / "bad.tsr", check=False)
    assert result.returncode != 0
    assert "invalid signer certificate purpose" in result.stderr


@pytest.mark.parametrize(("eku", "critical", "error"), [
    (None, True, None),  # control: the forging itself yields a valid token
    ([ExtendedKeyUsageOID.TIME_STAMPING], False, "timeStamping EKU missing or not critical"),
    ([], True, "timeStamping EKU missing or not critical"),
    ([ExtendedKeyUsageOID.CODE_SIGNING], True, "timeStamping EKU missing or not critical"),
    ([ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.CODE_SIGNING], True, "timeStamping only"),
], ids=["control", "non-critical", "missing", "other-purpose", "extra-purpose"])
def test_forged_eku(pki: Pki, eku: list[x509.ObjectIdentifier] | None, critical: bool,
                    error: str | None) -> None:
    tsa = pki.rsa
    digest = _digest("forged eku")
    cert = _tsa_cert("rsa TSA", tsa.key, tsa.ca, tsa.ca_key, eku=eku, eku_critical=critical)
    forged = tsa.folder / f"forged-{error is None}-{critical}-{len(eku or [])}.tsr"
    forged.write_bytes(_forge(tsa.stamp(digest).read_bytes(), cert, tsa.key))
    untrusted = tsa.folder / f"{forged.stem}.pem"
    untrusted.write_bytes(cert.public_bytes(PEM))
    if error is None:
        assert verify_timestamp(forged.read_bytes(), digest, [tsa.ca]).signer == cert
        assert tsa.openssl_verify(forged, digest, untrusted=untrusted)
    else:
        with pytest.raises(TimestampError, match=error):
            verify_timestamp(forged.read_bytes(), digest, [tsa.ca])
        assert not tsa.openssl_verify(forged, digest, untrusted=untrusted)


@pytest.mark.parametrize("scheme", ["rsa-pss", "ed25519"])
def test_other_signature_schemes(pki: Pki, scheme: str) -> None:
    tsa = pki.rsa
    digest = _digest(scheme)
    key = tsa.key if scheme == "rsa-pss" else ed25519.Ed25519PrivateKey.generate()
    cert = tsa.cert if scheme == "rsa-pss" else _tsa_cert("rsa TSA", key, tsa.ca, tsa.ca_key)
    tsr = _forge(tsa.stamp(digest).read_bytes(), cert, key, pss=scheme == "rsa-pss")
    info = verify_timestamp(tsr, digest, [tsa.ca])
    assert info.signer == cert
    # OpenSSL's PKCS7 code, under rfc3161-client, checks neither scheme.
    assert not info.rfc3161_client_checked
    with pytest.raises(TimestampError, match="signature invalid"):
        verify_timestamp(tsr[:-1] + bytes([tsr[-1] ^ 1]), digest, [tsa.ca])


def test_forged_ess_mismatch(pki: Pki) -> None:
    tsa = pki.ec
    digest = _digest("ess")
    # Signed by the right key and naming the right sid, but the ESS hash names another certificate.
    tsr = _forge(tsa.stamp(digest).read_bytes(), tsa.cert, tsa.key, ess_cert=tsa.ca)
    with pytest.raises(TimestampError, match="ESS signing certificate does not match"):
        verify_timestamp(tsr, digest, [tsa.ca])


# --- malformed input -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fallback_token(pki: Pki) -> tuple[bytes, bytes]:
    """A token only the fallback path can parse, and its digest."""
    digest = _digest("mutations")
    return pki.rsa.stamp(digest, "tsa+ca").read_bytes(), digest


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_single_byte_changes(pki: Pki, fallback_token: tuple[bytes, bytes], data: st.DataObject) -> None:
    # Any one changed byte either leaves what the token says intact (unsigned parts, such as the CA
    # copy in the bag) or is refused with a TimestampError; it never escapes as another exception.
    tsr, digest = fallback_token
    original = verify_timestamp(tsr, digest, [pki.rsa.ca])
    index = data.draw(st.integers(0, len(tsr) - 1))
    flip = data.draw(st.integers(1, 255))
    mutated = tsr[:index] + bytes([tsr[index] ^ flip]) + tsr[index + 1:]
    try:
        info = verify_timestamp(mutated, digest, [pki.rsa.ca])
    except TimestampError:
        return
    assert (info.gen_time, info.serial, info.nonce, info.signer) == (
        original.gen_time, original.serial, original.nonce, original.signer)


def test_not_a_response() -> None:
    roots = [_ca("any", ec.generate_private_key(ec.SECP256R1()))]
    for junk, why in ((b"", "not DER-encoded"), (b"not a response" * 10, "not DER-encoded"),
                      (b"\x30\x03\x02\x01\x00", "DER, but neither a TimeStampResp nor a TimeStampToken")):
        with pytest.raises(UnreadableToken, match=f"not an RFC 3161 time-stamp token or response: {why}"):
            verify_timestamp(junk, bytes(32), roots)
    with pytest.raises(UnreadableToken, match=r"not an RFC 3161 time-stamp token or response: \d+ bytes exceed"):
        verify_timestamp(b"\x30" * (2 << 20), bytes(32), roots)
    # A refusal holds only PKIStatusInfo (asn1crypto cannot build one with its TimeStampResp).
    status = tsp.PKIStatusInfo({"status": "rejection", "status_string": ["bad request"]}).dump()
    rejected = bytes([0x30, len(status)]) + status
    with pytest.raises(TimestampError, match="not granted: status rejection: bad request"):
        verify_timestamp(rejected, bytes(32), roots)


def test_load_certificates(pki: Pki, vectors: Path) -> None:
    pem = (pki.rsa.folder / "tsa+ca.pem").read_bytes()
    assert load_certificates(pem) == [pki.rsa.cert, pki.rsa.ca]
    ders = pki.rsa.cert.public_bytes(DER) + pki.rsa.ca.public_bytes(DER)
    assert load_certificates(ders) == [pki.rsa.cert, pki.rsa.ca]
    assert len(_chain(vectors, "test_tsa")) == 3
    for bad in (b"", b"junk", (pki.rsa.folder / "tsa.key").read_bytes(), ders[:-1], ders + b"\x30"):
        with pytest.raises(InvalidInput):
            load_certificates(bad)


def test_sha1_signer_digest_is_a_named_policy(tmp_path: Path) -> None:
    """A TSA that signs with SHA-1 (legacy, still common): refused by default, accepted with a named warning."""
    if OPENSSL is None:
        pytest.skip("the openssl CLI is not on PATH")
    legacy = Tsa.create(tmp_path / "legacy", lambda: rsa.generate_private_key(65537, 2048), "sha1")
    digest = _digest("legacy")
    path = legacy.stamp(digest)
    assert legacy.openssl_verify(path, digest)
    with pytest.raises(TimestampError, match=r"legacy-sha1-signature refused: the TSA signed a SHA-1 digest"):
        verify_timestamp(path.read_bytes(), digest, [legacy.ca])
    info = verify_timestamp(path.read_bytes(), digest, [legacy.ca], allow_sha1=True)
    assert info.hash_algorithm == "sha256"
    assert [w.split(":")[0] for w in info.warnings] == ["legacy-sha1-signature"]
    # The policy covers SHA-1 only: the CMS digest check itself still runs and still catches a change.
    with pytest.raises(TimestampError, match="message imprint mismatch"):
        verify_timestamp(path.read_bytes(), _digest("other"), [legacy.ca], allow_sha1=True)
    # A SHA-1 imprint too: both warnings, and rfc3161-client (which reads SHA-1 imprints) agrees.
    sha1 = hashlib.sha1(b"legacy").digest()
    both = legacy.stamp(sha1)
    assert legacy.openssl_verify(both, sha1)
    with pytest.raises(TimestampError, match="legacy-sha1-imprint refused"):
        verify_timestamp(both.read_bytes(), sha1, [legacy.ca])
    info = verify_timestamp(both.read_bytes(), sha1, [legacy.ca], allow_sha1=True)
    assert (info.hash_algorithm, info.rfc3161_client_checked) == ("sha1", True)
    assert [w.split(":")[0] for w in info.warnings] == ["legacy-sha1-imprint", "legacy-sha1-signature"]


def test_hostile_certificate_names_cannot_steer_the_terminal(pki: Pki, tmp_path: Path) -> None:
    """A TSA certificate whose CN carries ESC/CSI sequences and a bidi override: the CLI shows escapes."""
    tsa = pki.rsa
    hostile = "evil\x1b[2K\x1b[1A\x1b[32mVALID\u202e"
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(hostile)).issuer_name(tsa.ca.subject)
            .public_key(tsa.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=2)).not_valid_after(now - dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(tsa.ca_key, _sign_alg(tsa.ca_key)))
    digest = _digest("hostile name")
    path = tmp_path / "hostile.tsr"
    path.write_bytes(_forge(tsa.stamp(digest).read_bytes(), cert, tsa.key))
    with pytest.raises(TimestampError, match=r"TSA certificate .*evil.* is not valid at"):
        verify_timestamp(path.read_bytes(), digest, [tsa.ca])
    cli = str(Path(sys.executable).parent / "tiezheng-verify")
    for extra in ((), ("--json",)):
        result = subprocess.run([cli, "timestamp", str(path), "--digest", digest.hex(), "--roots",
                                 str(tsa.folder / "ca.pem"), *extra], capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
        assert "evil\\x1b[2K\\x1b[1A\\x1b[32mVALID\\u202e" in result.stdout.replace("\\\\", "\\")
