"""The embedded development TSA: a real RFC 3161 server with its own CA in the data dir.

It exists so that `tiezheng demo` and the tests seal with genuine RFC 3161 tokens that
``openssl ts -verify`` and the verifier check exactly as they check a public TSA's. Its tokens
carry ``DEV_POLICY_OID`` and a certificate named "Tiezheng development TSA", and its CA is trusted
only as *development* trust: a token from here proves nothing to anyone who does not hold this
data dir's CA.

Files under ``data_dir/tsa``: ``ca.pem``/``ca.key`` (self-signed root) and ``tsa.pem``/``tsa.key``
(the signing certificate, EKU timeStamping critical). Keys are PKCS#8 PEM, mode 0600.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
import secrets
import socket
import socketserver
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from anchor.tsa_client import DIGEST_ALGORITHMS, QUERY_MEDIA_TYPE, REPLY_MEDIA_TYPE, TimeStampResp

log = logging.getLogger(__name__)

#: TSA policy of the development TSA. A UUID-derived OID (ITU-T X.667, arc 2.25) is ours without
#: registration and can never collide with a real TSA's policy. It means "development: no legal weight".
DEV_POLICY_OID = "2.25.111814790057022745488486306730212969452"
TSA_COMMON_NAME = "Tiezheng development TSA"
CA_COMMON_NAME = "Tiezheng development TSA root CA"
ORGANIZATION = "Tiezheng (development only)"

#: A TimeStampReq is ~60-100 bytes; anything much larger is not one.
MAX_REQUEST_BYTES = 16 * 1024
#: Seconds a connection may stay idle; a slow client cannot hold a thread forever.
SOCKET_TIMEOUT_SECONDS = 10.0
#: How often the serving thread checks for close(); the default 0.5 s makes every close slow.
SHUTDOWN_POLL_SECONDS = 0.05
#: The accuracy we claim for genTime (RFC 3161 Accuracy). The host clock is the source.
ACCURACY_SECONDS = 1
CA_VALIDITY = dt.timedelta(days=20 * 365)
TSA_VALIDITY = dt.timedelta(days=10 * 365)
#: Certificates start slightly in the past so a verifier with a lagging clock still accepts them.
BACKDATE = dt.timedelta(hours=1)
#: Serial numbers of tokens are random, so two processes sharing the data dir never reuse one.
SERIAL_BITS = 128
#: RFC 5652 §11.3: signingTime uses UTCTime before 2050.
_UTC_TIME_LIMIT_YEAR = 2050

_TSA_DIR = "tsa"
_KEY_MODE = 0o600


@dataclass(frozen=True)
class _Material:
    """The loaded CA and TSA certificates and the TSA signing key."""

    ca_pem: bytes
    tsa_pem: bytes
    tsa_key: ec.EllipticCurvePrivateKey
    tsa_der: bytes
    #: DER of the parts of every token that depend only on the certificate, built once: rebuilding
    #: them from parsed names made asn1crypto re-encode whole certificates per token (~20 ms).
    tsa_name_der: bytes
    sid_der: bytes
    ess_attribute_der: bytes


class DevTSA:
    """The development TSA rooted at ``data_dir / "tsa"``.

    Key material is created on first use and loaded afterwards; creating it is atomic, so several
    processes sharing one data dir end up with one CA.
    """

    def __init__(self, data_dir: Path) -> None:
        self.directory = Path(data_dir) / _TSA_DIR
        self._lock = threading.Lock()
        self._material: _Material | None = None

    # -- key material -----------------------------------------------------------------------------

    def _loaded(self) -> _Material:
        with self._lock:
            if self._material is None:
                if not (self.directory / "tsa.key").exists():
                    _create_material(self.directory)
                self._material = _load_material(self.directory)
            return self._material

    def ca_certificate_pem(self) -> bytes:
        """Return the development CA certificate (PEM): the trust root for this TSA's tokens."""
        return self._loaded().ca_pem

    def chain_pem(self) -> bytes:
        """Return the TSA certificate followed by the CA certificate (PEM)."""
        material = self._loaded()
        return material.tsa_pem + material.ca_pem

    # -- the protocol -----------------------------------------------------------------------------

    def respond(self, request_der: bytes) -> bytes:
        """Answer one DER TimeStampReq with a DER TimeStampResp.

        Never raises for bad input: a malformed request gets a rejection with failInfo
        badDataFormat, an unsupported hash algorithm badAlg, a foreign policy unacceptedPolicy
        and any request extension unacceptedExtension (we support none).
        """
        if len(request_der) > MAX_REQUEST_BYTES:
            return _rejection("bad_data_format", f"a TimeStampReq is at most {MAX_REQUEST_BYTES} bytes")
        try:
            request = tsp.TimeStampReq.load(request_der, strict=True)
            # asn1crypto parses lazily: touching .native forces every field to be decoded now.
            request.native  # noqa: B018
            version = request["version"].native
            imprint = request["message_imprint"]
            algorithm = imprint["hash_algorithm"]["algorithm"].native
            parameters = imprint["hash_algorithm"]["parameters"]
            hashed = imprint["hashed_message"].native
        except Exception as exc:  # any parse failure means a malformed request
            return _rejection("bad_data_format", f"malformed TimeStampReq: {exc}")
        if version != "v1":
            return _rejection("bad_data_format", f"unsupported TimeStampReq version {version}")
        if algorithm not in DIGEST_ALGORITHMS.values():
            return _rejection("bad_alg", f"unsupported hash algorithm {algorithm}")
        if not isinstance(parameters, (core.Void, core.Null)):
            return _rejection("bad_data_format", "hash algorithm parameters must be absent or NULL")
        if len(hashed) != hashlib.new(algorithm).digest_size:
            return _rejection("bad_data_format", f"a {algorithm} digest cannot be {len(hashed)} bytes long")
        policy = request["req_policy"].native
        if policy is not None and policy != DEV_POLICY_OID:
            return _rejection("unaccepted_policy", f"this TSA only issues under policy {DEV_POLICY_OID}")
        if request["extensions"].native:
            return _rejection("unaccepted_extensions", "this TSA supports no request extensions")
        return self._grant(request)

    def _grant(self, request: tsp.TimeStampReq) -> bytes:
        material = self._loaded()
        gen_time = dt.datetime.now(dt.UTC)
        tst_fields: dict[str, object] = {
            "version": "v1",
            "policy": DEV_POLICY_OID,
            # Copied as sent (including NULL parameters), so the imprint compares byte for byte.
            "message_imprint": tsp.MessageImprint.load(request["message_imprint"].dump()),
            "serial_number": secrets.randbits(SERIAL_BITS) or 1,
            "gen_time": gen_time,
            "accuracy": {"seconds": ACCURACY_SECONDS},
            "tsa": asn1_x509.GeneralName.load(material.tsa_name_der),
        }
        nonce = request["nonce"].native
        if nonce is not None:
            tst_fields["nonce"] = nonce
        tst_info_der = tsp.TSTInfo(tst_fields).dump()

        signing_time = (
            cms.Time({"utc_time": gen_time})
            if gen_time.year < _UTC_TIME_LIMIT_YEAR
            else cms.Time({"generalized_time": gen_time.replace(microsecond=0)})
        )
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "signing_time", "values": [signing_time]},
                {"type": "message_digest", "values": [hashlib.sha256(tst_info_der).digest()]},
                cms.CMSAttribute.load(material.ess_attribute_der),
            ]
        )
        # The signature covers the attributes as a DER SET OF (tag 0x31), not as the [0] field.
        signature = material.tsa_key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier.load(material.sid_der),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": signed_attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
                "signature": signature,
            }
        )
        signed_data: dict[str, object] = {
            # v3 because the encapsulated content is not id-data (RFC 5652 §5.1).
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": core.ParsableOctetString(tst_info_der),
            },
            "signer_infos": [signer_info],
        }
        if request["cert_req"].native:
            signed_data["certificates"] = [asn1_x509.Certificate.load(material.tsa_der)]
        response = TimeStampResp(
            {
                "status": {"status": "granted"},
                "time_stamp_token": {"content_type": "signed_data", "content": cms.SignedData(signed_data)},
            }
        )
        return bytes(response.dump())

    # -- HTTP -------------------------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> TSAServer:
        """Start answering RFC 3161 over HTTP on a loopback address, in a background thread.

        Returns the running server (use ``.url``; ``.close()`` or a ``with`` block stops it).
        Raises ValueError for a non-loopback host: a development TSA must not be reachable from
        the network. Raises OSError when the port cannot be bound.
        """
        if not _is_loopback(host):
            raise ValueError(f"the development TSA binds to loopback only, not {host!r}")
        self._loaded()  # create keys now, not inside the first request
        return TSAServer(self, host, port)


class TSAServer:
    """A running development TSA HTTP server."""

    def __init__(self, tsa: DevTSA, host: str, port: int) -> None:
        handler = type("_BoundHandler", (_TSAHandler,), {"tsa": tsa})
        server_class = _HTTPServerV6 if ":" in host else _HTTPServer
        self._httpd = server_class((host, port), handler)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self._httpd.server_port}/"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="tiezheng-dev-tsa",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port. Idempotent."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> TSAServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS round trip that can stall for
        # seconds on machines without a resolver. A loopback server needs no name.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


class _HTTPServerV6(_HTTPServer):
    address_family = socket.AF_INET6


class _TSAHandler(BaseHTTPRequestHandler):
    tsa: DevTSA
    timeout = SOCKET_TIMEOUT_SECONDS
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~20-40 ms each.
    disable_nagle_algorithm = True
    server_version = "TiezhengDevTSA/1"

    def do_POST(self) -> None:
        media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media_type != QUERY_MEDIA_TYPE:
            self._plain(415, f"Content-Type must be {QUERY_MEDIA_TYPE}")
            return
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            self._plain(411, "Content-Length required")
            return
        length = int(length_header)
        if length > MAX_REQUEST_BYTES:
            # The body stays unread, so the connection must not be reused.
            self.close_connection = True
            self._plain(413, f"a TimeStampReq is at most {MAX_REQUEST_BYTES} bytes")
            return
        body = self.rfile.read(length)
        try:
            answer = self.tsa.respond(body)
        except Exception:  # a bug or a broken key file must not kill the server thread
            log.exception("development TSA failed to answer")
            self._plain(500, "internal error")
            return
        self.send_response(200)
        self.send_header("Content-Type", REPLY_MEDIA_TYPE)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:
        self._plain(405, "POST an application/timestamp-query")

    def _plain(self, status: int, message: str) -> None:
        body = (message + "\n").encode()
        self.send_response(status)
        if status == 405:
            self.send_header("Allow", "POST")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("dev TSA %s: " + format, self.address_string(), *args)


def _rejection(fail_info: str, text: str) -> bytes:
    response = TimeStampResp(
        {"status": {"status": "rejection", "status_string": [text[:200]], "fail_info": {fail_info}}}
    )
    return bytes(response.dump())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- key material on disk ---------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _create_material(directory: Path) -> None:
    """Create CA and TSA keys and certificates in ``directory``, atomically.

    Everything is written to a private temporary directory that is then renamed into place. If
    another process won the race, its material stays and ours is discarded.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(CA_COMMON_NAME)
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(TSA_COMMON_NAME))
        .issuer_name(ca_name)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + TSA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # RFC 3161 §2.3: the TSA certificate carries exactly timeStamping, marked critical.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(tsa_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    staging = Path(tempfile.mkdtemp(prefix=".tsa-", dir=directory.parent))
    try:
        _write_key(staging / "ca.key", ca_key)
        _write_key(staging / "tsa.key", tsa_key)
        (staging / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        (staging / "tsa.pem").write_bytes(tsa_cert.public_bytes(serialization.Encoding.PEM))
        try:
            staging.rename(directory)
        except OSError:
            if not (directory / "tsa.key").exists():
                raise
            log.debug("development TSA material was created concurrently; using that one")
    finally:
        if staging.exists():
            for child in staging.iterdir():
                child.unlink()
            staging.rmdir()


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Created with 0600 from the start: there is no moment at which the key is world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _KEY_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def _load_material(directory: Path) -> _Material:
    """Load the TSA material. Raises ValueError when a file is unreadable or the key is not EC."""
    ca_pem = (directory / "ca.pem").read_bytes()
    tsa_pem = (directory / "tsa.pem").read_bytes()
    key = serialization.load_pem_private_key((directory / "tsa.key").read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / 'tsa.key'} is not an EC private key")
    tsa_der = x509.load_pem_x509_certificate(tsa_pem).public_bytes(serialization.Encoding.DER)
    certificate = asn1_x509.Certificate.load(tsa_der)
    issuer_serial = {"issuer": certificate.issuer, "serial_number": certificate.serial_number}
    ess_attribute = cms.CMSAttribute(
        {
            "type": "signing_certificate_v2",
            "values": [
                {
                    # hashAlgorithm is left out: sha256 is its DER default (RFC 5035 §5.4.1.1).
                    "certs": [
                        {
                            "cert_hash": hashlib.sha256(tsa_der).digest(),
                            "issuer_serial": {
                                "issuer": [asn1_x509.GeneralName({"directory_name": certificate.issuer})],
                                "serial_number": certificate.serial_number,
                            },
                        }
                    ]
                }
            ],
        }
    )
    return _Material(
        ca_pem=ca_pem,
        tsa_pem=tsa_pem,
        tsa_key=key,
        tsa_der=tsa_der,
        tsa_name_der=asn1_x509.GeneralName({"directory_name": certificate.subject}).dump(),
        sid_der=cms.SignerIdentifier({"issuer_and_serial_number": issuer_serial}).dump(),
        ess_attribute_der=ess_attribute.dump(),
    )
