"""The development TSA over real HTTP, checked by OpenSSL and by rfc3161-client, not by our own code."""

from __future__ import annotations

import hashlib
import shutil
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import rfc3161_client
from asn1crypto import tsp
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from anchor.tsa_client import TimeStampResp, build_request, request_timestamp
from anchor.tsa_server import DEV_POLICY_OID, MAX_REQUEST_BYTES, DevTSA, TSAServer

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _post(url: str, body: bytes, content_type: str = "application/timestamp-query") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def _tst_info(response: bytes) -> tsp.TSTInfo:
    parsed = TimeStampResp.load(response)
    assert parsed["status"]["status"].native == "granted"
    return parsed["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed


def _openssl_verify(
    tmp_path: Path, dev_tsa: DevTSA, response: bytes, digest: bytes
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "resp.tsr").write_bytes(response)
    (tmp_path / "ca.pem").write_bytes(dev_tsa.ca_certificate_pem())
    (tmp_path / "tsa.pem").write_bytes(
        dev_tsa.chain_pem().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    )
    return subprocess.run(
        ["openssl", "ts", "-verify", "-digest", digest.hex(), "-in", str(tmp_path / "resp.tsr"),
         "-CAfile", str(tmp_path / "ca.pem"), "-untrusted", str(tmp_path / "tsa.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


@needs_openssl
@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
def test_token_passes_openssl_verify(tmp_path: Path, dev_tsa: DevTSA, tsa_server: TSAServer, algorithm: str) -> None:
    digest = hashlib.new(algorithm, b"a Merkle root").digest()
    response = request_timestamp(tsa_server.url, digest)
    result = _openssl_verify(tmp_path, dev_tsa, response, digest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification: OK" in result.stdout


@needs_openssl
def test_openssl_rejects_token_for_another_digest(tmp_path: Path, dev_tsa: DevTSA, tsa_server: TSAServer) -> None:
    response = request_timestamp(tsa_server.url, hashlib.sha256(b"one").digest())
    result = _openssl_verify(tmp_path, dev_tsa, response, hashlib.sha256(b"two").digest())
    assert result.returncode != 0


@needs_openssl
def test_openssl_rejects_token_from_another_dev_ca(tmp_path: Path, dev_tsa: DevTSA, tsa_server: TSAServer) -> None:
    digest = hashlib.sha256(b"root").digest()
    response = request_timestamp(tsa_server.url, digest)
    stranger = DevTSA(tmp_path / "other")
    (tmp_path / "resp.tsr").write_bytes(response)
    (tmp_path / "ca.pem").write_bytes(stranger.ca_certificate_pem())
    result = subprocess.run(
        ["openssl", "ts", "-verify", "-digest", digest.hex(), "-in", str(tmp_path / "resp.tsr"),
         "-CAfile", str(tmp_path / "ca.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0


def test_token_passes_rfc3161_client(dev_tsa: DevTSA, tsa_server: TSAServer) -> None:
    """The library the verifier builds on accepts our EC-signed tokens."""
    digest = hashlib.sha256(b"batch root").digest()
    nonce = 0x1234_5678_9ABC_DEF0
    response = rfc3161_client.decode_timestamp_response(request_timestamp(tsa_server.url, digest, nonce=nonce))
    root = x509.load_pem_x509_certificate(dev_tsa.ca_certificate_pem())
    verifier = rfc3161_client.VerifierBuilder().add_root_certificate(root).nonce(nonce).build()
    assert verifier.verify(response, digest)
    with pytest.raises(rfc3161_client.VerificationError):
        verifier.verify(response, hashlib.sha256(b"another root").digest())


def test_token_fields(tsa_server: TSAServer) -> None:
    digest = hashlib.sha256(b"fields").digest()
    tokens = [_tst_info(request_timestamp(tsa_server.url, digest, nonce=1000 + i)) for i in range(3)]
    for i, info in enumerate(tokens):
        assert info["version"].native == "v1"
        assert info["policy"].dotted == DEV_POLICY_OID
        assert info["nonce"].native == 1000 + i
        assert info["message_imprint"]["hashed_message"].native == digest
        assert info["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
        assert info["accuracy"]["seconds"].native == 1
        assert "Tiezheng development TSA" in info["tsa"].chosen.human_friendly
    # GeneralizedTime with fractional seconds: a whole-second genTime would happen 1 in 10**6 times.
    assert any("." in info["gen_time"].contents.decode() for info in tokens)
    assert len({info["serial_number"].native for info in tokens}) == 3


def test_signed_attributes_and_cert_req(tsa_server: TSAServer) -> None:
    digest = hashlib.sha256(b"attrs").digest()
    with_cert = TimeStampResp.load(request_timestamp(tsa_server.url, digest))
    signed_data = with_cert["time_stamp_token"]["content"]
    attributes = {a["type"].native: a["values"] for a in signed_data["signer_infos"][0]["signed_attrs"]}
    assert set(attributes) == {"content_type", "signing_time", "message_digest", "signing_certificate_v2"}
    certificate = signed_data["certificates"][0].chosen
    ess = attributes["signing_certificate_v2"][0]["certs"][0]
    assert ess["cert_hash"].native == hashlib.sha256(certificate.dump()).digest()
    encap = signed_data["encap_content_info"]["content"].contents
    assert attributes["message_digest"][0].native == hashlib.sha256(encap).digest()

    status, _, body = _post(tsa_server.url, build_request(digest, 7, cert_req=False))
    assert status == 200
    without_cert = TimeStampResp.load(body)["time_stamp_token"]["content"]
    assert without_cert["certificates"].native is None


def _rejection(body: bytes) -> tuple[str, set[str]]:
    status = TimeStampResp.load(body)["status"]
    return status["status"].native, set(status["fail_info"].native or ())


def test_malformed_request_gets_a_rejection_not_a_500(tsa_server: TSAServer) -> None:
    for garbage in (b"", b"\x30\x03\x02\x01", b"not DER at all", b"\x30\x00"):
        status, content_type, body = _post(tsa_server.url, garbage)
        assert (status, content_type) == (200, "application/timestamp-reply")
        assert _rejection(body) == ("rejection", {"bad_data_format"})


def test_unsupported_algorithm_gets_bad_alg(tsa_server: TSAServer) -> None:
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha1"}, "hashed_message": hashlib.sha1(b"x").digest()},
            "cert_req": True,
        }
    ).dump()
    status, _, body = _post(tsa_server.url, request)
    assert status == 200
    assert _rejection(body) == ("rejection", {"bad_alg"})


def test_wrong_digest_length_and_foreign_policy_are_rejected(tsa_server: TSAServer) -> None:
    short = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x01" * 31},
        }
    ).dump()
    assert _rejection(_post(tsa_server.url, short)[2]) == ("rejection", {"bad_data_format"})
    foreign = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x01" * 32},
            "req_policy": "1.2.3.4",
        }
    ).dump()
    assert _rejection(_post(tsa_server.url, foreign)[2]) == ("rejection", {"unaccepted_policy"})


def test_http_limits(tsa_server: TSAServer) -> None:
    request = build_request(hashlib.sha256(b"x").digest(), 1)
    assert _post(tsa_server.url, request, content_type="application/octet-stream")[0] == 415
    assert _post(tsa_server.url, b"\x30" * (MAX_REQUEST_BYTES + 1))[0] == 413
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(tsa_server.url, timeout=5)
    assert info.value.code == 405


def test_key_material_is_created_once_with_private_keys(tmp_path: Path) -> None:
    first = DevTSA(tmp_path)
    ca_pem = first.ca_certificate_pem()
    for name in ("ca.key", "tsa.key"):
        assert stat.S_IMODE((tmp_path / "tsa" / name).stat().st_mode) == 0o600
    assert DevTSA(tmp_path).ca_certificate_pem() == ca_pem  # loaded, not regenerated

    ca = x509.load_pem_x509_certificate(ca_pem)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign

    chain = x509.load_pem_x509_certificates(first.chain_pem())
    assert [c.subject for c in chain] == [chain[0].subject, ca.subject]
    tsa = chain[0]
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert "Tiezheng development TSA" in tsa.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert tsa.issuer == ca.subject
    tsa.verify_directly_issued_by(ca)


def test_serve_refuses_non_loopback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        DevTSA(tmp_path).serve(host="0.0.0.0")
