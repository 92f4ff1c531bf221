"""Real RFC 3161 tokens from public TSAs (tests/vectors/rfc3161-public, sources in tests/vectors/README.md).

Each token is judged three ways and the verdicts must agree: by ``verify_timestamp``, by the real
``tiezheng-verify timestamp`` process, and by OpenSSL's ``ts -verify`` at the token's genTime.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import rfc3161_client
from asn1crypto import cms, core, tsp
from cryptography.hazmat.primitives.serialization import Encoding

from verifier.errors import TimestampError
from verifier.timestamp import (
    LEGACY_SHA1_IMPRINT,
    UnreadableToken,
    parse_timestamp_token,
    verify_timestamp,
)
from verifier.tsa_chain import RootStore, load_certificates, load_roots

CLI = str(Path(sys.executable).parent / "tiezheng-verify")
OPENSSL = shutil.which("openssl")
_LONG_NUMBER = re.compile(r"\d{16,}")


@dataclass(frozen=True)
class PublicToken:
    folder: str
    file: str
    tsa_cn: str
    gen_time: str  # ISO 8601, as the token says
    hash_algorithm: str
    stamped: str  # the file whose hash is the imprint, or "" when only the digest is published
    published_digest: str = ""  # hex, from the upstream test, when the stamped data is not public
    in_system_bundle: bool = True  # the root ships in Debian's and certifi's CA bundles
    der_ordered_set: bool = False  # False: rfc3161-client refuses it with InvalidSetOrdering
    openssl: str = "Verification: OK"  # what OpenSSL 3.0's ts -verify says

    @property
    def path(self) -> Path:
        return Path(__file__).parents[1] / "vectors" / "rfc3161-public" / self.folder / self.file

    @property
    def root(self) -> Path:
        return self.path.parent / "root.pem"

    @property
    def digest(self) -> bytes:
        if self.published_digest:
            return bytes.fromhex(self.published_digest)
        return hashlib.new(self.hash_algorithm, (self.path.parent / self.stamped).read_bytes()).digest()

    @property
    def bare(self) -> bool:
        return self.file.endswith(".tst")


TOKENS = [
    PublicToken("digicert", "response.tsr", "DigiCert Timestamp 2024", "2025-03-24T11:17:47+00:00", "sha512",
                "message.txt"),
    PublicToken("identrust", "response.tsr", "TrustID Timestamp Authority", "2025-03-11T10:43:58+00:00", "sha512",
                "message.txt", der_ordered_set=True),
    PublicToken("identrust", "token.tst", "TrustID Timestamp Authority", "2025-03-11T10:43:58+00:00", "sha512",
                "message.txt", der_ordered_set=True),
    PublicToken("globalsign-aatl", "token.tst", "Globalsign TSA for AATL - SHA256 - G2", "2017-02-01T15:39:50+00:00",
                "sha256", "", "2da82c1572ff020524e05069219975c9ba90723f1a4dd5b9722aee8ec547a2ff"),
    PublicToken("digicert-authenticode-sha1", "token.tst", "DigiCert Timestamp 2022 - 2", "2022-06-08T06:53:49+00:00",
                "sha1", "signature.bin"),
    # OpenSSL's PKCS7 parser rejects the attribute certificate Microsoft puts in the certificate set.
    PublicToken("microsoft-authenticode", "token.tst", "Microsoft Time-Stamp Service",
                "2025-07-15T23:47:21.042000+00:00", "sha256", "signature.bin", in_system_bundle=False,
                openssl="Field=d.sign, Type=PKCS7"),
    # OpenSSL 3.0's ts code cannot verify RSASSA-PSS signatures; it reports a signature failure.
    PublicToken("d-trust", "token.tst", "D-TRUST TSU 12 2017", "2018-05-23T13:18:29+00:00", "sha256", "",
                "d9b5f58f0b38198293971865a14074f59eba3e82595becbe86ae51f1d9f1f65e", in_system_bundle=False,
                openssl="signature failure"),
]
IDS = [f"{t.folder}/{t.file}" for t in TOKENS]
BY_NAME = dict(zip(IDS, TOKENS, strict=True))


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CLI, "timestamp", *map(str, args)], capture_output=True, text=True, timeout=60,
                            env={"PATH": str(Path(CLI).parent), "COLUMNS": "200"})
    assert "Traceback" not in result.stdout + result.stderr
    return result


def openssl_verify(token: PublicToken, digest: bytes, roots: Path) -> str:
    """OpenSSL's verdict on the token at its own genTime: its last line(s) of output."""
    assert OPENSSL is not None
    at = int(datetime.fromisoformat(token.gen_time).timestamp())
    args = [OPENSSL, "ts", "-verify", "-in", str(token.path), "-digest", digest.hex(), "-CAfile", str(roots),
            "-attime", str(at)]
    if token.bare:
        args.append("-token_in")
    done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def system_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the machine's CA bundle (Debian's, else certifi's): about 120-150 roots, not committed."""
    candidates = [Path("/etc/ssl/certs/ca-certificates.crt")]
    try:
        import certifi

        candidates.append(Path(certifi.where()))
    except ImportError:
        pass
    source = next((p for p in candidates if p.is_file()), None)
    assert source is not None, "no system CA bundle: install ca-certificates"
    copy = tmp_path_factory.mktemp("bundle") / "ca-bundle.pem"
    shutil.copyfile(source, copy)
    return copy


# --- the library ------------------------------------------------------------------------------------

@pytest.mark.parametrize("token", TOKENS, ids=IDS)
def test_public_token_verifies(token: PublicToken) -> None:
    root = load_certificates(token.root.read_bytes())
    info = verify_timestamp(token.path.read_bytes(), token.digest, root, allow_sha1=True)
    assert token.tsa_cn in info.tsa_name
    assert info.gen_time == datetime.fromisoformat(token.gen_time)
    assert info.hash_algorithm == token.hash_algorithm
    assert info.bare_token is token.bare
    assert info.chain[0] == info.signer and info.chain[-1] == root[0]
    assert [w.split(":")[0] for w in info.warnings] == ([LEGACY_SHA1_IMPRINT] if token.hash_algorithm == "sha1" else [])
    assert info.rfc3161_client_checked is token.der_ordered_set


@pytest.mark.parametrize("token", TOKENS, ids=IDS)
def test_public_token_other_digest_fails(token: PublicToken) -> None:
    root = load_certificates(token.root.read_bytes())
    wrong = hashlib.new(token.hash_algorithm, b"another document").digest()
    with pytest.raises(TimestampError, match="message imprint mismatch"):
        verify_timestamp(token.path.read_bytes(), wrong, root, allow_sha1=True)


@pytest.mark.parametrize("token", [t for t in TOKENS if not t.der_ordered_set], ids=lambda t: t.folder)
def test_sets_out_of_der_order_are_ours_to_judge(token: PublicToken) -> None:
    """Tokens rfc3161-client cannot read (a certificate SET out of DER order, or Microsoft's attribute
    certificate): our own path carries them."""
    parsed = parse_timestamp_token(token.path.read_bytes())
    with pytest.raises(ValueError, match=r"InvalidSetOrdering|UnexpectedTag"):
        rfc3161_client.decode_timestamp_response(parsed.response)
    info = verify_timestamp(parsed, token.digest, load_certificates(token.root.read_bytes()), allow_sha1=True)
    assert not info.rfc3161_client_checked


def test_any_order_of_the_certificate_set_verifies() -> None:
    """The certificate bag is unsigned: swapping its two certificates (out of DER order, as DigiCert,
    GlobalSign and Sectigo ship theirs) leaves a token that verifies the same; rfc3161-client refuses it."""
    token = BY_NAME["identrust/token.tst"]
    data = token.path.read_bytes()
    first, second = (c.chosen.dump() for c in cms.ContentInfo.load(data)["content"]["certificates"])
    assert data.count(first + second) == 1
    swapped = data.replace(first + second, second + first)
    with pytest.raises(ValueError, match="InvalidSetOrdering"):
        rfc3161_client.decode_timestamp_response(parse_timestamp_token(swapped).response)
    root = load_certificates(token.root.read_bytes())
    ours = [verify_timestamp(d, token.digest, root) for d in (data, swapped)]
    assert ours[0].rfc3161_client_checked and not ours[1].rfc3161_client_checked
    assert ours[0].signer == ours[1].signer and ours[0].chain == ours[1].chain
    # Either order, a changed certificate is still caught: the ESS attribute binds the signer.
    forged = swapped.replace(first, first[:-40] + bytes(40))
    with pytest.raises(TimestampError):
        verify_timestamp(forged, token.digest, root)


def test_sha1_is_a_named_policy() -> None:
    token = BY_NAME["digicert-authenticode-sha1/token.tst"]
    root = load_certificates(token.root.read_bytes())
    with pytest.raises(TimestampError, match=r"legacy-sha1-imprint refused: the message imprint is SHA-1"):
        verify_timestamp(token.path.read_bytes(), token.digest, root)
    # The same bytes with a SHA-256 digest: the imprint's algorithm decides, so the length is wrong.
    with pytest.raises(TimestampError, match=r"imprint algorithm is sha1 \(20 bytes\), but the digest given has 32"):
        verify_timestamp(token.path.read_bytes(), hashlib.sha256(b"x").digest(), root, allow_sha1=True)


def test_bare_token_equals_its_response() -> None:
    response = parse_timestamp_token(BY_NAME["identrust/response.tsr"].path.read_bytes())
    bare = parse_timestamp_token(BY_NAME["identrust/token.tst"].path.read_bytes())
    assert bare.bare and not response.bare
    assert (bare.tst_info, bare.signature, bare.certificates) == (response.tst_info, response.signature,
                                                                 response.certificates)
    # The wrapped form is a real TimeStampResp with status granted around the same token bytes.
    wrapped = tsp.TimeStampResp.load(bare.response)
    assert wrapped["status"]["status"].native == "granted"
    assert wrapped["time_stamp_token"].dump() == BY_NAME["identrust/token.tst"].path.read_bytes()


def test_system_bundle_is_fast_and_enough(system_bundle: Path) -> None:
    roots = load_roots(system_bundle.read_bytes())
    assert len(roots) >= 100
    for token in TOKENS:
        data = token.path.read_bytes()
        if token.in_system_bundle:
            info = verify_timestamp(data, token.digest, roots, allow_sha1=True)
            assert info.chain[-1] in roots
        else:
            with pytest.raises(TimestampError, match="certificate chain does not lead to a trusted root"):
                verify_timestamp(data, token.digest, roots, allow_sha1=True)
    token = BY_NAME["digicert/response.tsr"]
    parsed, single = parse_timestamp_token(token.path.read_bytes()), load_certificates(token.root.read_bytes())
    timings = {}
    verify_timestamp(parsed, token.digest, roots)  # warm-up: first use loads OpenSSL state
    for label, trust in (("one root", RootStore(single)), ("bundle", roots)):
        start = time.perf_counter()
        for _ in range(5):
            verify_timestamp(parsed, token.digest, trust)
        timings[label] = (time.perf_counter() - start) / 5
    print(f"verify with one root {timings['one root'] * 1000:.1f} ms, with {len(roots)} roots "
          f"{timings['bundle'] * 1000:.1f} ms")
    # Indexed by subject, the bundle adds a dictionary look-up, not 150 signature checks.
    assert timings["bundle"] < timings["one root"] * 3 + 0.05


# --- OpenSSL's verdict --------------------------------------------------------------------------------

@pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is needed for the cross-check")
@pytest.mark.parametrize("token", TOKENS, ids=IDS)
def test_openssl_agrees(token: PublicToken) -> None:
    ours = verify_timestamp(token.path.read_bytes(), token.digest, load_certificates(token.root.read_bytes()),
                            allow_sha1=True)
    assert ours.gen_time == datetime.fromisoformat(token.gen_time)
    theirs = openssl_verify(token, token.digest, token.root)
    assert token.openssl in theirs, theirs
    if token.openssl == "Verification: OK":
        # Both refuse another digest too: agreement on the negative, not only on the positive.
        wrong = hashlib.new(token.hash_algorithm, b"another document").digest()
        assert "Verification: FAILED" in openssl_verify(token, wrong, token.root)
        assert "message imprint" in openssl_verify(token, wrong, token.root)


# --- the real CLI process ------------------------------------------------------------------------------

@pytest.mark.parametrize("token", TOKENS, ids=IDS)
def test_cli_verifies_public_token(token: PublicToken) -> None:
    result = run_cli(token.path, "--digest", token.digest.hex(), "--roots", token.root, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    body = json.loads(result.stdout)
    assert body["valid"] is True and body["verdict"] == "verified"
    assert token.tsa_cn in body["tsa"]
    assert body["hash_algorithm"] == token.hash_algorithm and body["bare_token"] is token.bare
    assert datetime.fromisoformat(body["gen_time"]) == datetime.fromisoformat(token.gen_time)
    wrong = run_cli(token.path, "--digest", hashlib.new(token.hash_algorithm, b"x").hexdigest(), "--roots", token.root)
    assert wrong.returncode == 1
    assert "INVALID message imprint mismatch" in wrong.stdout


def test_cli_sha1_warning_is_named() -> None:
    token = BY_NAME["digicert-authenticode-sha1/token.tst"]
    result = run_cli(token.path, "--digest", token.digest.hex(), "--roots", token.root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VALID CN=DigiCert Timestamp 2022 - 2" in result.stdout
    assert "warning: legacy-sha1-imprint: the message imprint is SHA-1" in result.stdout
    body = json.loads(run_cli(token.path, "--digest", token.digest.hex(), "--roots", token.root, "--json").stdout)
    assert [w.split(":")[0] for w in body["warnings"]] == ["legacy-sha1-imprint"]


def test_cli_with_a_system_bundle(system_bundle: Path) -> None:
    for token in TOKENS:
        result = run_cli(token.path, "--digest", token.digest.hex(), "--roots", system_bundle)
        if token.in_system_bundle:
            assert result.returncode == 0, result.stdout + result.stderr
            assert result.stdout.startswith("VALID ")
        else:
            assert result.returncode == 1
            assert "INVALID certificate chain does not lead to a trusted root" in result.stdout
        assert "Warning" not in result.stderr  # old roots with odd serials load silently


def _hostile_inputs() -> dict[str, tuple[bytes, str]]:
    pem_cert = BY_NAME["digicert/response.tsr"].root.read_bytes()
    der_cert = load_certificates(pem_cert)[0].public_bytes(Encoding.DER)
    huge_oid = b"\x06\x82\x01\x2c" + b"\x81" * 299 + b"\x01"  # one arc of about 2100 bits
    return {
        "random bytes": (bytes(range(256)) * 4, "not DER-encoded"),
        "text": (b"this is a text file, not a token\n", "not DER-encoded"),
        "PEM certificate": (pem_cert, "not DER-encoded"),
        "empty": (b"", "not DER-encoded"),
        "DER certificate": (der_cert, "not an RFC 3161 time-stamp token or response"),
        "ContentInfo with a huge OID": (b"\x30\x82\x01\x30" + huge_oid, "not an RFC 3161 time-stamp token or response"),
        "truncated token": (BY_NAME["identrust/token.tst"].path.read_bytes()[:-9], "not DER-encoded"),
    }


def test_cli_not_a_token_is_unusable(tmp_path: Path) -> None:
    root = BY_NAME["digicert/response.tsr"].root
    for label, (data, message) in _hostile_inputs().items():
        path = tmp_path / "input.bin"
        path.write_bytes(data)
        for extra in ((), ("--json",)):
            result = run_cli(path, "--digest", "00" * 32, "--roots", root, *extra)
            assert result.returncode == 2, (label, result.stdout, result.stderr)
            assert message in result.stdout, (label, result.stdout)
            assert len(result.stdout) < 400 and not _LONG_NUMBER.search(result.stdout), (label, result.stdout)
        with pytest.raises(UnreadableToken, match=re.escape(message)):
            parse_timestamp_token(data)


def test_cli_bad_arguments_are_unusable(tmp_path: Path) -> None:
    token = BY_NAME["identrust/token.tst"]
    short = run_cli(token.path, "--digest", "ab" * 16, "--roots", token.root)
    assert short.returncode == 2 and "digest of 16 bytes: expected 20 (SHA-1), 32, 48 or 64" in short.stderr
    missing = run_cli(token.path, "--digest", token.digest.hex(), "--roots", tmp_path / "none.pem")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    (tmp_path / "junk.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n")
    junk = run_cli(token.path, "--digest", token.digest.hex(), "--roots", tmp_path / "junk.pem")
    assert junk.returncode == 2 and "not a certificate" in junk.stderr


def test_hostile_numbers_are_clipped(tmp_path: Path) -> None:
    """A well-formed token whose TSTInfo version is a 301-digit number: refused in one short line."""
    token = BY_NAME["identrust/token.tst"]
    info = cms.ContentInfo.load(token.path.read_bytes())
    econtent = info["content"]["encap_content_info"]
    tst = tsp.TSTInfo.load(econtent["content"].parsed.dump())
    tst["version"] = 10**300
    econtent["content"] = core.ParsableOctetString(tst.dump(force=True))
    path = tmp_path / "hostile.tst"
    path.write_bytes(info.dump(force=True))
    result = run_cli(path, "--digest", token.digest.hex(), "--roots", token.root)
    assert result.returncode == 1
    assert "INVALID TSTInfo version <301-digit number> is not 1" in result.stdout
    assert not _LONG_NUMBER.search(result.stdout)
