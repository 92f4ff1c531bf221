"""Settings: one place, from the environment (``TIEZHENG_*``) or a settings file, with embedded defaults.

With nothing configured, Tiezheng runs on embedded development services: the dev TSA, an anvil
devnet and SQLite, all inside the data dir. Production names real TSAs, an RPC URL and a key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("~/.tiezheng")
#: Largest upload request body (all files together). Bigger bodies get 413 before a byte is kept.
DEFAULT_UPLOAD_MAX_BYTES = 64 << 20
#: Largest package accepted by POST /v1/verify; verify_package applies its own limits inside.
DEFAULT_VERIFY_MAX_BYTES = 256 << 20
#: POST /v1/verify needs no key: how many verifications run at once (more get 503 with Retry-After)...
DEFAULT_VERIFY_CONCURRENCY = 2
#: ...and how long one may run before its worker process is stopped (503 verification_timeout).
DEFAULT_VERIFY_TIMEOUT_SECONDS = 60.0
#: Per-key token bucket: sustained rate and burst. In memory, per process (the embedded default).
DEFAULT_RATE_PER_SECOND = 20.0
DEFAULT_RATE_BURST = 100


class TSAConfig(BaseModel):
    name: str
    url: str
    #: PEM file with the TSA's trusted root(s) (and, optionally, its chain to embed beside tokens).
    roots_file: Path


class ChainConfig(BaseModel):
    """One chain the sealer anchors on (an item of ``TIEZHENG_CHAINS``)."""

    rpc_url: str
    chain_id: int
    #: The anchoring key on this chain. From the environment only; never logged.
    key: SecretStr
    #: Blocks on top of the anchor's before it counts; default 12 on a real chain.
    confirmations: int | None = None
    name: str | None = None


class Qualifications(BaseModel):
    """Filings and certifications the operator declares. Every manifest and the trust file carry them;
    the verifier shows them as declarations it cannot check. ``TIEZHENG_QUALIFICATIONS`` is JSON, e.g.
    ``{"icp_filing": "京ICP备…号", "cac_blockchain_filing": "京网信备…号",
    "security_certification": "…", "data_centre": "…"}``."""

    model_config = ConfigDict(extra="forbid")

    icp_filing: str | None = None
    cac_blockchain_filing: str | None = None
    security_certification: str | None = None
    data_centre: str | None = None

    def declared(self) -> dict[str, str]:
        return {key: value for key, value in self.model_dump().items() if value}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIEZHENG_", env_file=None, extra="ignore")

    data_dir: Path = DEFAULT_DATA_DIR
    #: SQLAlchemy URL; default SQLite in the data dir. PostgreSQL: postgresql+psycopg://...
    database_url: str | None = None
    #: JSON list of {"name", "url", "roots_file"}; empty means the embedded development TSA.
    tsa: list[TSAConfig] = []
    min_tsa: int = 1
    #: Any EVM JSON-RPC URL; empty means the embedded anvil devnet.
    rpc_url: str | None = None
    chain_id: int | None = None
    #: The anchoring key for a real chain. From the environment only; never logged.
    chain_key: SecretStr | None = None
    confirmations: int | None = None
    #: Several chains, each anchoring every batch on its own: JSON list of {"rpc_url", "chain_id",
    #: "key", "confirmations", "name"}. Overrides the single-chain settings above, which mean a
    #: one-element list. Empty (and no RPC URL): the embedded devnet(s).
    chains: list[ChainConfig] = []
    #: Confirmed anchors a batch needs to count as sealed; the other chains' are attached later.
    min_chains: int = 1
    #: Where package bytes live: ``s3://bucket/prefix`` for an S3-compatible store; empty means files in
    #: the data dir. S3 credentials come from the standard AWS environment only, never from here.
    blob_url: str | None = None
    #: An S3-compatible server other than AWS (MinIO, Ceph, s3rver, …); empty means AWS itself.
    s3_endpoint_url: str | None = None
    batch_max_items: int = 100_000
    batch_max_age_seconds: float = 60.0
    #: An event log publishes a checkpoint when this many events wait, or the oldest waited this long.
    log_checkpoint_events: int = 1000
    log_checkpoint_seconds: float = 10.0
    operator_name: str = "Tiezheng local operator"
    #: Who signs manifests: ``file`` (keys/operator.key in the data dir, the embedded default) or ``pkcs11``
    #: (an Ed25519 key inside a token or HSM, named by the four settings below).
    signer: Literal["file", "pkcs11"] = "file"
    #: The token vendor's PKCS#11 module (a .so), e.g. /usr/lib/softhsm/libsofthsm2.so.
    pkcs11_module: Path | None = None
    #: The token's label, and the label of the Ed25519 key pair in it.
    pkcs11_token: str | None = None
    pkcs11_key_label: str | None = None
    #: The token's user PIN. From the environment only; never logged.
    pkcs11_pin: SecretStr | None = None
    #: The operator's filings and certifications (JSON; see Qualifications).
    qualifications: Qualifications = Qualifications()
    #: ``host`` or ``host:port`` of an NTP server the pre-capture clean check compares the clock with.
    ntp_server: str | None = None

    # -- the service (api/) --
    host: str = "127.0.0.1"
    port: int = 8000
    #: Where readers reach this service, e.g. ``https://evidence.example``: the trust file then names
    #: ``<public_url>/verify`` as the operator's verify_url, and certificates' QR codes link to it.
    public_url: str | None = None
    upload_max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES
    verify_max_bytes: int = DEFAULT_VERIFY_MAX_BYTES
    verify_concurrency: int = DEFAULT_VERIFY_CONCURRENCY
    verify_timeout_seconds: float = DEFAULT_VERIFY_TIMEOUT_SECONDS
    rate_per_second: float = DEFAULT_RATE_PER_SECOND
    rate_burst: int = DEFAULT_RATE_BURST
    #: Threads running capture jobs in the service process.
    workers: int = 2
    #: Web processes of ``tiezheng serve`` (``--workers``); unset means min(2, CPUs).
    web_workers: int | None = None
    #: Secret keying the API-key HMAC. Several servers on one database must share it; by default one
    #: is made in the data dir (keys/api-key-secret). From the environment only; never logged.
    api_key_secret: SecretStr | None = None
    #: Web capture on or off (off: capture requests are accepted and fail with the reason; uploads only).
    capture_enabled: bool = True
    #: Let captures reach loopback and private addresses (SSRF guard off): for local test sites only.
    capture_allow_private: bool = False
    #: Redis for the capture queue (Dramatiq). Unset: captures run in the service's own threads.
    redis_url: str | None = None
    #: A capture's lease: a worker holds it while it runs (renewed every third of it); once it lapses
    #: (the worker died) the sweeper queues the capture again.
    capture_lease_seconds: float = 60.0
    #: How often the API's relay looks for lapsed leases and captures queued but never run.
    sweep_seconds: float = 10.0
    #: How often the service removes temp files that no live process owns (api/service/scratch.py).
    sweep_interval_seconds: float = 600.0
    #: The shortest interval a watch may have (each run is a full capture of someone else's site).
    watch_min_seconds: int = 600
    #: The service's own scheduler thread (api/service/scheduler.py). Off when `tiezheng worker schedule` runs it.
    scheduler_enabled: bool = True

    # -- notices (api/service/notices.py): the SMTP relay, the operator's DKIM key, the DNS resolver --
    #: The SMTP server notices go out through; ``mx``: straight to the recipient's own mail servers (the
    #: sealed 250 is then the platform's); unset: sending is refused with the reason.
    smtp_host: str | None = None
    smtp_port: int = 25
    #: ``auto`` (STARTTLS when offered), ``require`` (refuse a server without it) or ``off``.
    smtp_starttls: Literal["auto", "require", "off"] = "auto"
    smtp_user: str | None = None
    #: From the environment only; never logged.
    smtp_password: SecretStr | None = None
    #: PEM file of CA certificates to trust for the relay instead of the system's.
    smtp_ca_file: Path | None = None
    #: The notices' From address; its domain is the DKIM signing domain unless ``dkim_domain`` says otherwise.
    smtp_from: str | None = None
    dkim_domain: str | None = None
    #: The key is keys/dkim/<selector>.pem in the data dir, made on first use; publish its TXT record.
    dkim_selector: str = "tiezheng"
    #: ``host`` or ``host:port`` of the DNS resolver that fetches a reply's DKIM key; unset: the system's.
    dns_resolver: str | None = None
    #: The mailbox replies arrive in (``tiezheng notice poll``); unset: replies are imported by hand only.
    imap_host: str | None = None
    imap_port: int = 993
    #: ``ssl`` (implicit TLS, port 993), ``starttls`` or ``off``.
    imap_security: Literal["ssl", "starttls", "off"] = "ssl"
    imap_user: str | None = None
    #: From the environment only; never logged.
    imap_password: SecretStr | None = None
    imap_mailbox: str = "INBOX"
    imap_ca_file: Path | None = None

    @field_validator("public_url")
    @classmethod
    def _plain_web_url(cls, value: str | None) -> str | None:
        """A QR code must send a reader to this service only: http(s), a host, no credentials."""
        if not value:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
            raise ValueError("public_url must be an http(s) URL without user name or password, "
                             "such as https://evidence.example")
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"

    @property
    def verify_url(self) -> str | None:
        """The service's /verify page, as the trust file and the certificates name it."""
        return f"{self.public_url}/verify" if self.public_url else None

    @property
    def root(self) -> Path:
        return self.data_dir.expanduser()

    @property
    def packages_dir(self) -> Path:
        return self.root / "packages"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def blobs_dir(self) -> Path:
        return self.root / "blobs"

    @property
    def tmp_dir(self) -> Path:
        """Incoming request bodies; on the data dir's file system so blobs can be linked, not copied."""
        return self.root / "tmp"

    @property
    def operator_key_path(self) -> Path:
        return self.root / "keys" / "operator.key"

    @property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        self.root.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.root / 'tiezheng.db'}"

    @property
    def uses_devnet(self) -> bool:
        return not self.rpc_url and not self.chains

    def anchor_chains(self) -> list[ChainConfig]:
        """The configured real chains: ``chains``, or the single-chain settings as one. [] means devnet.

        Raises ValueError when the single-chain form lacks its chain id or key.
        """
        if self.chains:
            return list(self.chains)
        if not self.rpc_url:
            return []
        if self.chain_key is None or self.chain_id is None:
            raise ValueError("TIEZHENG_RPC_URL needs TIEZHENG_CHAIN_ID and TIEZHENG_CHAIN_KEY in the environment")
        return [ChainConfig(rpc_url=self.rpc_url, chain_id=self.chain_id, key=self.chain_key,
                            confirmations=self.confirmations)]

    def redacted(self) -> str:
        """The settings as JSON with secrets masked, for logs and `doctor`."""
        secrets = ("chain_key", "api_key_secret", "pkcs11_pin")
        chains = [chain.model_dump(mode="json", exclude={"key"}) | {"key": "***"} for chain in self.chains]
        return json.dumps(self.model_dump(mode="json", exclude={*secrets, "chains"}) | {
            name: "***" if getattr(self, name) else None for name in secrets} | {"chains": chains}, indent=2)


def load_settings(data_dir: Path | None = None) -> Settings:
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings
