"""Readiness: before a deployment starts, check that everything its settings name answers (`tiezheng doctor`).

Each check returns a ``Check``: ok, fail or skip, a reason in plain words and a hint saying what to
do. A check never raises; any error becomes its failure. Nothing secret is printed: URLs are shown
with passwords masked (RPC URLs with their path too, where providers put API keys), the chain key
only as its address, S3 credentials and the PKCS#11 PIN not at all; and as a last guard every
secret value found in the settings or the AWS environment is scrubbed from the output.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from api.service.settings import Settings, load_settings

if TYPE_CHECKING:
    from api.service.state import ServiceState

#: Network probes give up after this long: a doctor that hangs is no help.
PROBE_TIMEOUT_SECONDS = 5.0
TSA_TIMEOUT_SECONDS = 10.0
#: What one anchor transaction costs (measured: 22,580-22,610 gas whatever the batch size), for an estimate.
ANCHOR_GAS = 23_000
WEI_PER_ETH = 10**18
#: Environment variables whose values must never be printed.
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "TIEZHENG_CHAIN_KEY", "TIEZHENG_API_KEY_SECRET",
              "TIEZHENG_PKCS11_PIN")

Status = Literal["ok", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    reason: str
    hint: str = ""


def mask_password(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def mask_rpc_url(url: str) -> str:
    """An RPC URL as scheme://host[:port] only: hosted nodes put their API key in the path or query."""
    parts = urlsplit(url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    hidden = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{hidden}"


def _problem(exc: BaseException) -> str:
    """One line saying what went wrong: the driver's own error, not its wrapper's."""
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error with a link to its docs
    if isinstance(cause, urllib.error.URLError) and not isinstance(cause, urllib.error.HTTPError):
        cause = cause.reason if isinstance(cause.reason, BaseException) else cause
    text = " ".join(str(cause).split()) or type(cause).__name__
    return text if len(text) <= 300 else text[:300] + "…"


def _writable(folder: Path) -> None:
    """Raise OSError unless a file can be made, synced and removed in ``folder`` (made if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor.") as probe:
        probe.write(b"tiezheng doctor")
        probe.flush()
        os.fsync(probe.fileno())


# -- the checks -------------------------------------------------------------------------------------


def check_data_dir(settings: Settings) -> Check:
    root = settings.root
    try:
        _writable(root)
    except OSError as exc:
        return Check("data_dir", "fail", f"cannot write to {root}: {_problem(exc)}",
                     "create the folder and give this user write access, or set TIEZHENG_DATA_DIR")
    free = shutil.disk_usage(root).free / (1 << 30)
    return Check("data_dir", "ok", f"{root} is writable ({free:.1f} GiB free)")


def check_database(settings: Settings) -> Check:
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from api.service.db import alembic_config

    hint = ("check TIEZHENG_DATABASE_URL (PostgreSQL: postgresql+psycopg://user:password@host:5432/name): "
            "host, port, user, password, database name, and that the server accepts this host")
    try:
        url = make_url(settings.database)
    except Exception as exc:  # ArgumentError, or the data dir cannot be made for SQLite
        return Check("database", "fail", f"the database URL is unusable: {_problem(exc)}", hint)
    shown = url.render_as_string(hide_password=True)
    connect_args = {"connect_timeout": int(PROBE_TIMEOUT_SECONDS)} if url.get_backend_name() == "postgresql" else {}
    try:
        engine = create_engine(url, connect_args=connect_args, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                migrated = inspect(connection).has_table("alembic_version")
                revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar() \
                    if migrated else None
        finally:
            engine.dispose()
    except ImportError as exc:
        return Check("database", "fail", f"no driver for {shown}: {_problem(exc)}",
                     "name an installed driver: postgresql+psycopg://… (psycopg 3 comes with tiezheng[api])")
    except Exception as exc:  # a driver error of any kind means "cannot connect"
        return Check("database", "fail", f"cannot connect to {shown}: {_problem(exc)}", hint)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    schema = ("schema current" if revision == head else
              "no tables yet (made on first start)" if revision is None else
              f"schema at {revision}, migrated to {head} on next start")
    return Check("database", "ok", f"{url.get_backend_name()} at {shown} answers; {schema}")


def check_redis(settings: Settings) -> Check:
    url = settings.redis_url
    if not url:
        return Check("redis", "skip", "TIEZHENG_REDIS_URL is not set: captures run in the API server's own threads",
                     "at scale, set TIEZHENG_REDIS_URL on every API server and capture worker")
    import redis

    shown = mask_password(url)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
                                      socket_timeout=PROBE_TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # redis.RedisError, or a malformed URL (ValueError)
        return Check("redis", "fail", f"Redis at {shown} does not answer PING: {_problem(exc)}",
                     "start Redis or fix TIEZHENG_REDIS_URL (redis://[:password@]host:6379/0); every API server "
                     "and capture worker must name the same one")
    return Check("redis", "ok", f"Redis at {shown} answers PING")


def check_tsas(settings: Settings) -> list[Check]:
    """One check per configured TSA (a real time-stamp over a random digest), or the embedded one."""
    from cryptography import x509

    from anchor.tsa_client import build_request, request_timestamp
    from verifier.timestamp import verify_timestamp

    if not settings.tsa:
        from anchor.tsa_server import DevTSA

        try:
            dev = DevTSA(settings.root)
            roots = x509.load_pem_x509_certificates(dev.ca_certificate_pem())
            digest, nonce = secrets.token_bytes(32), secrets.randbits(63)
            verify_timestamp(dev.respond(build_request(digest, nonce)), digest, roots, nonce=nonce)
        except Exception as exc:  # unreadable or broken key material in the data dir
            return [Check("tsa", "fail", f"the embedded development TSA's CA does not load: {_problem(exc)}",
                          f"move {settings.root / 'tsa'} aside to make a new development CA (old tokens then "
                          "verify only against the old CA), or configure TIEZHENG_TSA")]
        return [Check("tsa", "ok", "embedded development TSA (started on demand); its CA loads and a test token "
                                   "verifies. Development trust only",
                      "in production, set TIEZHENG_TSA to public TSAs")]
    checks = []
    for tsa in settings.tsa:
        name, shown = f"tsa {tsa.name}", mask_password(tsa.url)
        try:
            roots = x509.load_pem_x509_certificates(tsa.roots_file.read_bytes())
        except (OSError, ValueError) as exc:
            checks.append(Check(name, "fail", f"cannot load the roots of {tsa.name} from {tsa.roots_file}: "
                                              f"{_problem(exc)}", "roots_file must be a PEM file of the TSA's CA"))
            continue
        digest, nonce = secrets.token_bytes(32), secrets.randbits(63)
        try:
            answer = request_timestamp(tsa.url, digest, nonce=nonce, timeout=TSA_TIMEOUT_SECONDS, attempts=1)
            info = verify_timestamp(answer, digest, roots, nonce=nonce)
        except Exception as exc:  # TSAError, TimestampError or a bad URL: all mean no usable token
            checks.append(Check(name, "fail", f"{tsa.name} at {shown} gave no valid token: {_problem(exc)}",
                                "check the URL, that this host may reach it, and that roots_file is the CA that "
                                "signs its tokens"))
            continue
        checks.append(Check(name, "ok", f"{tsa.name} at {shown} stamped a random digest; the token verifies "
                                        f"(signed by {info.tsa_name}, {info.gen_time:%Y-%m-%d %H:%M:%S} UTC)"))
    usable = sum(c.status == "ok" for c in checks)
    if usable < settings.min_tsa:
        checks.append(Check("tsa_quorum", "fail", f"{usable} usable TSA(s), TIEZHENG_MIN_TSA needs "
                                                  f"{settings.min_tsa}: batches would stay pending",
                            "fix the failing TSAs, add TSAs, or lower TIEZHENG_MIN_TSA"))
    return checks


def check_chain(settings: Settings) -> Check:
    from anchor.devnet import DEVNET_CHAIN_ID, AnvilNotFound, Devnet, find_anvil, rpc_call

    if settings.uses_devnet:
        state = Devnet(settings.root).status()
        if not state.running:
            try:
                anvil = find_anvil()
            except AnvilNotFound as exc:
                return Check("chain", "fail", f"devnet not running, and it cannot start: {_problem(exc)}",
                             "install anvil (`make setup`), or set TIEZHENG_RPC_URL to a real chain")
            return Check("chain", "ok", f"devnet not running, started on demand (anvil at {anvil})",
                         "in production, set TIEZHENG_RPC_URL, TIEZHENG_CHAIN_ID and TIEZHENG_CHAIN_KEY")
        if state.block is None or state.rpc_url is None:
            return Check("chain", "fail", f"the devnet process {state.pid} runs but does not answer RPC",
                         "restart it: `tiezheng chain down` then `tiezheng chain up`")
        chain_id = int(rpc_call(state.rpc_url, "eth_chainId", timeout=PROBE_TIMEOUT_SECONDS), 16)
        if chain_id != DEVNET_CHAIN_ID:
            return Check("chain", "fail", f"the devnet at {state.rpc_url} says chain {chain_id}, not {DEVNET_CHAIN_ID}",
                         "restart it: `tiezheng chain down` then `tiezheng chain up`")
        return Check("chain", "ok", f"devnet runs at {state.rpc_url}: chain {chain_id}, block {state.block}")
    url = str(settings.rpc_url)
    shown = mask_rpc_url(url)
    try:
        chain_id = int(rpc_call(url, "eth_chainId", timeout=PROBE_TIMEOUT_SECONDS), 16)
        block = int(rpc_call(url, "eth_blockNumber", timeout=PROBE_TIMEOUT_SECONDS), 16)
    except Exception as exc:  # URLError, a JSON-RPC error, or an answer that is not a number
        return Check("chain", "fail", f"the RPC at {shown} does not answer eth_chainId: {_problem(exc)}",
                     "check TIEZHENG_RPC_URL (an http(s) JSON-RPC endpoint) and that this host may reach it")
    if settings.chain_id is None:
        return Check("chain", "fail", f"TIEZHENG_CHAIN_ID is not set; the RPC at {shown} is chain {chain_id}",
                     f"set TIEZHENG_CHAIN_ID={chain_id} if that is the chain you mean to anchor on")
    if chain_id != settings.chain_id:
        return Check("chain", "fail", f"the RPC at {shown} is chain {chain_id}, but TIEZHENG_CHAIN_ID is "
                                      f"{settings.chain_id}", "point TIEZHENG_RPC_URL at the chain you configured")
    return Check("chain", "ok", f"the RPC at {shown} answers: chain {chain_id} as configured, block {block}")


def check_chain_key(settings: Settings, *, seal: bool = True) -> Check:
    """Only the sealer signs anchors: on a host that does not seal (``seal=False``) a missing key is fine."""
    from anchor.devnet import DEV_OPERATOR_ADDRESS, rpc_call

    if settings.uses_devnet:
        return Check("chain_key", "ok", f"devnet: anvil's published development account {DEV_OPERATOR_ADDRESS} "
                                        "(worthless on any real chain)")
    hint = "set TIEZHENG_CHAIN_KEY in the environment (or from a secrets manager) to a funded key, never in a file"
    if settings.chain_key is None and not seal:
        return Check("chain_key", "skip", "TIEZHENG_CHAIN_KEY is not set, and this host does not seal (--no-seal)",
                     "set it on the one host that runs `tiezheng worker seal`")
    if settings.chain_key is None:
        return Check("chain_key", "fail", "TIEZHENG_CHAIN_KEY is not set: the sealer cannot sign anchor transactions",
                     hint)
    from anchor.ethereum import operator_address

    try:
        address = operator_address(settings.chain_key.get_secret_value())
    except Exception:  # the library's message may quote the key: say only that it is not one
        return Check("chain_key", "fail", "TIEZHENG_CHAIN_KEY is not a secp256k1 private key (32 bytes, hex)", hint)
    url = str(settings.rpc_url)
    try:
        balance = int(rpc_call(url, "eth_getBalance", [address, "latest"], timeout=PROBE_TIMEOUT_SECONDS), 16)
    except Exception as exc:  # unreachable RPC: the key is set, but its funds are unknown
        return Check("chain_key", "fail", f"cannot read the balance of {address} at {mask_rpc_url(url)}: "
                                          f"{_problem(exc)}", "fix the chain check first")
    if balance == 0:
        return Check("chain_key", "fail", f"the anchoring address {address} has no funds",
                     "send it some ether (Sepolia: from a faucet); each anchor costs ~23,000 gas")
    estimate = ""
    try:
        gas_price = int(rpc_call(url, "eth_gasPrice", timeout=PROBE_TIMEOUT_SECONDS), 16)
        if gas_price:
            estimate = f", enough for ~{balance // (gas_price * ANCHOR_GAS):,} anchors at today's gas price"
    except Exception:  # noqa: S110 - the estimate is a courtesy; the balance is what counts
        pass
    return Check("chain_key", "ok", f"anchoring from {address}: balance {balance / WEI_PER_ETH:.6f} ETH{estimate}")


def check_blob_store(settings: Settings) -> Check:
    if not settings.blob_url:
        folder = settings.blobs_dir
        try:
            _writable(folder)
        except OSError as exc:
            return Check("blob_store", "fail", f"cannot write to {folder}: {_problem(exc)}",
                         "give this user write access to the data dir")
        return Check("blob_store", "ok", f"files under {folder} (writable)",
                     "at scale, set TIEZHENG_BLOB_URL=s3://bucket/prefix so every host sees the same packages")
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from api.service.blobs_s3 import S3BlobStore

    where = settings.s3_endpoint_url or "AWS"
    try:
        config = Config(connect_timeout=PROBE_TIMEOUT_SECONDS, read_timeout=PROBE_TIMEOUT_SECONDS,
                        retries={"max_attempts": 1})
        store = S3BlobStore(settings.blob_url, client=boto3.client("s3", endpoint_url=settings.s3_endpoint_url,
                                                                   config=config))
    except ValueError as exc:
        return Check("blob_store", "fail", str(exc), "set TIEZHENG_BLOB_URL=s3://bucket/prefix")
    try:
        store.client.head_bucket(Bucket=store.bucket)
    except NoCredentialsError:
        return Check("blob_store", "fail", f"no S3 credentials for bucket {store.bucket} at {where}",
                     "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment of every process")
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        reason = {"404": "does not exist", "NoSuchBucket": "does not exist", "403": "refuses these credentials",
                  "AccessDenied": "refuses these credentials"}.get(code, f"answered {_problem(exc)}")
        return Check("blob_store", "fail", f"bucket {store.bucket} at {where} {reason}",
                     "create the bucket, or give the credentials s3:ListBucket, s3:GetObject and s3:PutObject on it")
    except (BotoCoreError, OSError) as exc:
        return Check("blob_store", "fail", f"cannot reach S3 at {where}: {_problem(exc)}",
                     "check TIEZHENG_S3_ENDPOINT_URL (unset for AWS) and that this host may reach it")
    credentials = boto3.Session().get_credentials()
    source = f"credentials from {credentials.method}" if credentials is not None else "credentials found"
    return Check("blob_store", "ok", f"bucket {store.bucket} at {where} answers (prefix "
                                     f"{store.prefix or '(none)'}; {source})")


def check_operator_key(settings: Settings) -> Check:
    if settings.signer == "pkcs11":
        return _check_token_key(settings)
    from evidence.operator_key import load_or_create

    path = settings.operator_key_path
    share = ("every API server and capture worker must sign with the same key: copy this file to each (mode 0600), "
             "or keep the key in an HSM (TIEZHENG_SIGNER=pkcs11)")
    if not path.exists():
        return Check("operator_key", "ok", f"file signer: none yet, the first capture or upload makes one at {path}",
                     share)
    try:
        key = load_or_create(path, settings.operator_name)
    except (OSError, ValueError) as exc:
        return Check("operator_key", "fail", f"the operator key at {path} does not load: {_problem(exc)}",
                     "restore the key file from a backup; a new key cannot sign as the old one")
    if path.stat().st_mode & 0o077:
        return Check("operator_key", "fail", f"the operator key at {path} is readable by other users",
                     f"chmod 600 {path}")
    return Check("operator_key", "ok", f"file signer: key {key.key_id} loads from {path}", share)


def _check_token_key(settings: Settings) -> Check:
    """Log in, read the public key and sign a probe that must verify: what every manifest will need."""
    from api.service.runtime import signer_for
    from evidence.signer import SignerError

    hint = ("set TIEZHENG_PKCS11_MODULE, TIEZHENG_PKCS11_TOKEN, TIEZHENG_PKCS11_KEY_LABEL and TIEZHENG_PKCS11_PIN "
            "to an Ed25519 key pair (CKK_EC_EDWARDS) in the token")
    try:
        signer = signer_for(settings)
        signer.sign(secrets.token_bytes(32))
        key_id = signer.key_id
    except SignerError as exc:
        return Check("operator_key", "fail", f"pkcs11 signer: {_problem(exc)}", hint)
    return Check("operator_key", "ok", f"pkcs11 signer: key {key_id} in {signer.location} signs and verifies")


def _each_chain(check: Callable[[Settings], Check]) -> Callable[[Settings], Check | list[Check]]:
    """Run a one-chain check on each chain of TIEZHENG_CHAINS (named in its result), or once."""
    def run(settings: Settings) -> Check | list[Check]:
        if not settings.chains:
            return check(settings)
        results = []
        for chain in settings.chains:
            one = settings.model_copy(update={"chains": [], "rpc_url": chain.rpc_url, "chain_id": chain.chain_id,
                                              "chain_key": chain.key, "confirmations": chain.confirmations})
            found = check(one)
            results.append(Check(f"{found.name} {chain.name or chain.chain_id}", found.status, found.reason,
                                 found.hint))
        return results
    return run


def run_checks(settings: Settings, *, seal: bool = True) -> list[Check]:
    """Every check, in the order a deployment depends on them. Never raises."""
    steps: list[tuple[str, Callable[[Settings], Check | list[Check]]]] = [
        ("data_dir", check_data_dir), ("database", check_database), ("redis", check_redis), ("tsa", check_tsas),
        ("chain", _each_chain(check_chain)), ("chain_key", _each_chain(lambda s: check_chain_key(s, seal=seal))),
        ("blob_store", check_blob_store), ("operator_key", check_operator_key)]
    checks: list[Check] = []
    for name, step in steps:
        try:
            found = step(settings)
        except Exception as exc:  # a check that breaks is a failed check, never a traceback
            found = Check(name, "fail", f"the check itself failed: {type(exc).__name__}: {_problem(exc)}")
        checks += found if isinstance(found, list) else [found]
    return checks


def _redactions(settings: Settings | None) -> list[tuple[str, str]]:
    """(secret, shown instead) pairs: every secret value, longest first."""
    pairs = [(os.environ[name], "***") for name in SECRET_ENV if os.environ.get(name)]
    if settings is not None:
        for secret in (settings.chain_key, settings.api_key_secret, settings.pkcs11_pin):
            if secret is not None and secret.get_secret_value():
                pairs.append((secret.get_secret_value(), "***"))
        if settings.rpc_url:
            pairs.append((settings.rpc_url, mask_rpc_url(settings.rpc_url)))
        for url in (settings.database_url, settings.redis_url):
            password = urlsplit(url).password if url else None
            if password:
                pairs.append((password, "***"))
    more = [(value.removeprefix("0x"), shown) for value, shown in pairs if value.startswith("0x")]
    return sorted((p for p in pairs + more if len(p[0]) >= 4), key=lambda p: -len(p[0]))


def _scrub(check: Check, redactions: list[tuple[str, str]]) -> Check:
    reason, hint = check.reason, check.hint
    for secret, shown in redactions:
        reason, hint = reason.replace(secret, shown), hint.replace(secret, shown)
    return Check(check.name, check.status, reason, hint)


def _settings_problem(exc: Exception) -> Check:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        # Only where and what, never the input: the bad value may be a secret.
        what = "; ".join(f"TIEZHENG_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors())
    else:
        what = _problem(exc)
    return Check("settings", "fail", f"the settings do not load: {what}",
                 "fix the TIEZHENG_* environment variables named here")


def diagnose(data_dir: Path | None, *, seal: bool = True) -> tuple[Settings | None, list[Check]]:
    """Every check for the settings of ``data_dir``, with every secret scrubbed from what they say."""
    settings: Settings | None = None
    try:
        settings = load_settings(data_dir)
    except Exception as exc:  # ValidationError for a malformed TIEZHENG_* value
        checks = [_settings_problem(exc)]
    else:
        checks = run_checks(settings, seal=seal)
    redactions = _redactions(settings)
    return settings, [_scrub(c, redactions) for c in checks]


# -- a running service's readiness (/readyz) -------------------------------------------------------

#: /readyz answers fast: each of its probes gives up after this.
READY_PROBE_SECONDS = 2.0


def _tcp(url: str) -> None:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname or "", port), timeout=READY_PROBE_SECONDS):
        pass


def _probe(name: str, check: Any) -> dict[str, Any]:
    try:
        detail = check()
    except Exception as exc:  # any failure means "not ready", reported by kind, never raised
        return {"name": name, "ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {"name": name, "ok": True, **({"detail": detail} if detail else {})}


#: Set by `serve --workers` for its web processes: the URLs of the TSA(s) its sealer runs.
SEALER_TSA_ENV = "TIEZHENG_SERVE_SEALER_TSAS"


def sealer_tsa_urls() -> list[str]:
    """In a web process of `serve --workers`: the TSA URLs its supervisor's sealer uses; else none."""
    return os.environ.get(SEALER_TSA_ENV, "").split()


def service_readiness(state: ServiceState) -> list[dict[str, Any]]:
    """/readyz: the database, the TSA(s) and the chain(s) of a running service, each as ``{name, ok, …}``."""
    from anchor.devnet import Devnet, rpc_call
    from api.service.db import ping

    settings = state.settings
    running = state.pool.running
    checks = [_probe("database", lambda: ping(state.engine))]
    # A web process under `serve --workers` has no sealer of its own: probe the TSA its supervisor's uses.
    tsa_urls = [t.url for t in running.tsas] if running else [t.url for t in settings.tsa] or sealer_tsa_urls()
    if not tsa_urls:
        checks.append({"name": "tsa", "ok": False, "error": "no TSA running or configured (sealing is off here)"})
    for url in tsa_urls:
        checks.append(_probe(f"tsa {urlsplit(url).netloc}", lambda u=url: _tcp(u)))
    if running:
        rpcs: list[str | None] = [c.rpc_url for c in running.chains]
    else:
        configured: list[str | None] = [c.rpc_url for c in settings.chains] or [settings.rpc_url]
        rpcs = [url or Devnet(settings.root).status().rpc_url for url in configured]

    def chain(rpc: str | None) -> str:
        if not rpc:
            raise ConnectionError("no chain RPC running or configured")
        return f"chain {int(rpc_call(rpc, 'eth_chainId', timeout=READY_PROBE_SECONDS), 16)}, block " \
               f"{int(rpc_call(rpc, 'eth_blockNumber', timeout=READY_PROBE_SECONDS), 16)}"

    # The first chain keeps the probe's old name; each further chain (several anchors per batch) adds one.
    for number, rpc in enumerate(rpcs):
        checks.append(_probe("chain" if number == 0 else f"chain {number + 1}", lambda u=rpc: chain(u)))
    return checks
