"""RFC 3161 client: ask a Time-Stamp Authority to stamp a Merkle root.

The digest handed in is already a hash (a batch root), so it goes into the request's message
imprint as it is; nothing here hashes it again. The answer is checked only as far as it tells us
whether the TSA did what we asked (status, nonce, imprint). Whether the token is *valid* — signature,
certificate chain, critical timeStamping EKU — is decided by ``verifier.timestamp``, which is the
code that courts run. Keeping that judgement in one place means the sealer can never accept a token
the verifier would reject for a reason the sealer checked differently.
"""

from __future__ import annotations

import logging
import secrets
import time
import urllib.error
import urllib.request
from http.client import HTTPException

from asn1crypto import cms, core, tsp

from verifier.errors import TiezhengError

log = logging.getLogger(__name__)

#: Digest sizes in bytes of the hash algorithms we ask for and accept. The imprint algorithm is
#: chosen from the digest length alone, because the caller passes a bare root.
DIGEST_ALGORITHMS: dict[int, str] = {32: "sha256", 48: "sha384", 64: "sha512"}

QUERY_MEDIA_TYPE = "application/timestamp-query"
REPLY_MEDIA_TYPE = "application/timestamp-reply"

#: A token with a few certificates is a few KiB; anything far larger is not a time-stamp reply.
MAX_RESPONSE_BYTES = 1 << 20
#: Nonces are random 64-bit integers: enough that a replayed old reply cannot match.
NONCE_BITS = 64
DEFAULT_ATTEMPTS = 4
#: Backoff before retry n (0-based) is ``BACKOFF_BASE_SECONDS * 2**n``, capped.
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0
#: HTTP statuses worth retrying: the TSA is overloaded or briefly broken, not refusing us.
RETRYABLE_HTTP_STATUS = frozenset({429, 500, 502, 503, 504})

#: PKIStatus values that carry a token (RFC 3161 §2.4.2).
_GRANTED = frozenset({"granted", "granted_with_mods"})


class TSAError(TiezhengError):
    """Base of the errors raised while asking a TSA for a token."""


class TSAUnavailable(TSAError):
    """The TSA could not be reached, or kept failing, after every retry. Items stay pending."""


class TSARejected(TSAError):
    """The TSA answered, but not with a token for our request: a rejection, garbage, or a mismatch."""


class TimeStampResp(tsp.TimeStampResp):  # type: ignore[misc]  # asn1crypto is untyped
    """RFC 3161 TimeStampResp with the token optional, as the RFC has it.

    asn1crypto marks ``timeStampToken`` as required, so it can neither parse nor build a rejection.
    """

    _fields = [  # noqa: RUF012 - asn1crypto's own declaration style
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def digest_algorithm(digest: bytes) -> str:
    """Return the hash algorithm name implied by the digest length. Raises ValueError otherwise."""
    try:
        return DIGEST_ALGORITHMS[len(digest)]
    except KeyError:
        raise ValueError(
            f"a digest of {len(digest)} bytes matches none of sha256/384/512 (32, 48 or 64 bytes)"
        ) from None


def build_request(digest: bytes, nonce: int, *, cert_req: bool = True) -> bytes:
    """Return the DER TimeStampReq (version 1) carrying ``digest`` as its hashed message.

    Raises ValueError for a digest of an unsupported length or a negative nonce.
    """
    if nonce < 0:
        raise ValueError("the nonce must be a non-negative integer")
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": digest_algorithm(digest)},
                "hashed_message": digest,
            },
            "nonce": nonce,
            "cert_req": cert_req,
        }
    )
    return bytes(request.dump())


def request_timestamp(
    url: str,
    digest: bytes,
    *,
    timeout: float = 10,
    nonce: int | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = BACKOFF_BASE_SECONDS,
) -> bytes:
    """Ask the TSA at ``url`` to time-stamp ``digest`` and return its DER TimeStampResp.

    ``digest`` is the Merkle root itself (32, 48 or 64 bytes); the algorithm follows from its
    length. A random 64-bit nonce is used unless one is given. Connection failures, timeouts and
    5xx/429 answers are retried ``attempts`` times in all, waiting ``backoff * 2**n`` seconds between
    tries.

    Raises ValueError for a bad digest, TSAUnavailable when every attempt failed to get an answer,
    and TSARejected when the TSA refused, or answered with something that is not a granted token
    for this very request (status, nonce and imprint are checked; the signature is not).
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    if nonce is None:
        nonce = secrets.randbits(NONCE_BITS)
    body = build_request(digest, nonce)
    answer = _post_with_retries(url, body, timeout=timeout, attempts=attempts, backoff=backoff)
    check_response(answer, digest, nonce)
    return answer


def _post_with_retries(url: str, body: bytes, *, timeout: float, attempts: int, backoff: float) -> bytes:
    last_problem = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            delay = min(backoff * 2 ** (attempt - 1), BACKOFF_MAX_SECONDS)
            log.info("TSA %s: %s; retrying in %.2f s", url, last_problem, delay)
            time.sleep(delay)
        try:
            return _post(url, body, timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRYABLE_HTTP_STATUS:
                raise TSARejected(f"TSA {url} refused the request with HTTP {exc.code} {exc.reason}") from exc
            last_problem = f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            last_problem = f"cannot connect: {exc.reason}"
        except (TimeoutError, ConnectionError, HTTPException) as exc:
            last_problem = f"connection failed: {exc!r}"
    raise TSAUnavailable(f"TSA {url} unavailable after {attempts} attempt(s): {last_problem}")


def _post(url: str, body: bytes, *, timeout: float) -> bytes:
    if not url.startswith(("http://", "https://")):
        # urllib would also open file:// and ftp:// URLs; a TSA URL is only ever HTTP(S).
        raise ValueError(f"TSA URL must be http:// or https://, not {url!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=body,
        method="POST",
        headers={"Content-Type": QUERY_MEDIA_TYPE, "Accept": REPLY_MEDIA_TYPE},
    )
    with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 - scheme checked above
        data: bytes = reply.read(MAX_RESPONSE_BYTES + 1)
    if len(data) > MAX_RESPONSE_BYTES:
        raise TSARejected(f"TSA {url} sent more than {MAX_RESPONSE_BYTES} bytes")
    return data


def check_response(answer: bytes, digest: bytes, nonce: int | None) -> tsp.TSTInfo:
    """Check that ``answer`` is a granted TimeStampResp for ``digest`` (and ``nonce``, if given).

    Returns the parsed TSTInfo. This checks the protocol, not the cryptography: use
    ``verifier.timestamp.verify_timestamp`` for that. Raises TSARejected on any problem.
    """
    try:
        response = TimeStampResp.load(answer, strict=True)
        status = response["status"]
        status_name = status["status"].native
        if status_name not in _GRANTED:
            texts = status["status_string"].native or []
            fail_info = sorted(status["fail_info"].native or ())
            raise TSARejected(
                f"TSA answered {status_name}"
                + (f" ({', '.join(fail_info)})" if fail_info else "")
                + (f": {'; '.join(texts)}" if texts else "")
            )
        token = response["time_stamp_token"]
        if isinstance(token, core.Void) or token["content_type"].native != "signed_data":
            raise TSARejected("granted TSA answer holds no SignedData token")
        encap = token["content"]["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise TSARejected(f"token content type is {encap['content_type'].native}, not TSTInfo")
        tst_info = encap["content"].parsed
        if not isinstance(tst_info, tsp.TSTInfo):
            raise TSARejected("token content is not a TSTInfo")
        # Force a full parse now, so a malformed field fails here and not in the caller.
        tst_info.native  # noqa: B018
        imprint = tst_info["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        hashed = imprint["hashed_message"].native
        echoed_nonce = tst_info["nonce"].native
    except TSARejected:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        # asn1crypto parses lazily and signals every kind of malformed input with these.
        raise TSARejected(f"TSA answer is not a valid TimeStampResp: {exc}") from exc
    if algorithm != digest_algorithm(digest) or hashed != digest:
        raise TSARejected(
            f"token imprint {algorithm}:{bytes(hashed).hex()} does not match the request "
            f"{digest_algorithm(digest)}:{digest.hex()}"
        )
    if nonce is not None and echoed_nonce != nonce:
        raise TSARejected(f"nonce mismatch: sent {nonce}, token carries {echoed_nonce}")
    return tst_info
