"""Wiring for the CLI and the service: the store, the sealer, embedded services and local trust."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from sqlalchemy.engine import Engine

from anchor.devnet import DEV_OPERATOR_KEY, Devnet
from anchor.sealer import ChainEndpoint, Sealer, SealerConfig, TSAEndpoint
from anchor.store import make_engine
from anchor.tsa_server import DevTSA
from api.service.blobs import BlobBackend, BlobStore
from api.service.settings import Settings
from evidence.clock_probe import ClockReferences
from evidence.operator_key import OperatorKey
from evidence.signer import FileSigner, ManifestSigner, Pkcs11Config, Pkcs11Signer, SignerError
from verifier.trust import Policy, Trust, TrustedChain, TrustedOperator, TrustedTSA

DEV_TSA_NAME = "Tiezheng development TSA"
DEVNET_NAME = "Tiezheng anvil devnet"
SECOND_DEVNET_NAME = "Tiezheng second anvil devnet"
#: A real chain's default confirmations when the configuration names none.
REAL_CHAIN_CONFIRMATIONS = 12


_remote_stores: dict[tuple[str, str | None], BlobBackend] = {}
_remote_lock = threading.Lock()


def blob_store(settings: Settings) -> BlobBackend:
    """The blob store the settings name: S3 for ``blob_url``, else files under the data dir.

    S3 stores are made once per process and URL (a boto3 client is costly to make and thread-safe to
    share). Raises ValueError for a ``blob_url`` that is not ``s3://bucket[/prefix]``.
    """
    if not settings.blob_url:
        return BlobStore(settings.blobs_dir)
    key = (settings.blob_url, settings.s3_endpoint_url)
    with _remote_lock:
        store = _remote_stores.get(key)
        if store is None:
            from api.service.blobs_s3 import S3BlobStore  # boto3 loads only when S3 is configured

            store = _remote_stores[key] = S3BlobStore(settings.blob_url, endpoint_url=settings.s3_endpoint_url)
        return store


def engine_for(settings: Settings) -> Engine:
    return make_engine(settings.database)


def operator_for(settings: Settings) -> OperatorKey:
    """The operator that signs this host's manifests. Raises SignerError, OSError or ValueError."""
    key = OperatorKey(settings.operator_name, signer_for(settings))
    return key.with_qualifications(settings.qualifications.declared())


_token_signers: dict[Pkcs11Config, Pkcs11Signer] = {}
_token_signer_lock = threading.Lock()


def signer_for(settings: Settings) -> ManifestSigner:
    """The configured signer: the data dir's key file, or the PKCS#11 token (one logged-in signer per
    configuration and process, since a login costs far more than a signature). Raises SignerError."""
    if settings.signer == "file":
        return FileSigner.load_or_create(settings.operator_key_path)
    config = pkcs11_config(settings)
    with _token_signer_lock:
        signer = _token_signers.setdefault(config, Pkcs11Signer(config))
    signer.public_key()  # log in now: a wrong PIN or label stops a server at start, not at its first upload
    return signer


def pkcs11_config(settings: Settings) -> Pkcs11Config:
    """The token settings, all four required. Raises SignerError naming what is missing."""
    named = {"TIEZHENG_PKCS11_MODULE": settings.pkcs11_module, "TIEZHENG_PKCS11_TOKEN": settings.pkcs11_token,
             "TIEZHENG_PKCS11_KEY_LABEL": settings.pkcs11_key_label, "TIEZHENG_PKCS11_PIN": settings.pkcs11_pin}
    missing = [name for name, value in named.items() if not value]
    if missing:
        raise SignerError(f"TIEZHENG_SIGNER=pkcs11 needs {', '.join(missing)}")
    assert settings.pkcs11_module and settings.pkcs11_token and settings.pkcs11_key_label and settings.pkcs11_pin
    return Pkcs11Config(module=settings.pkcs11_module, token_label=settings.pkcs11_token,
                        key_label=settings.pkcs11_key_label, pin=settings.pkcs11_pin.get_secret_value())


@contextlib.contextmanager
def clock_references(settings: Settings) -> Iterator[ClockReferences]:
    """What the pre-capture clean check measures the clock against, for the duration of a capture run.

    The first configured TSA, else the embedded development TSA, served over HTTP on loopback while
    the block runs (a real RFC 3161 round trip, like sealing makes); and the configured NTP server.
    """
    if settings.tsa:
        first = settings.tsa[0]
        yield ClockReferences(tsa_url=first.url, tsa_name=first.name, ntp_server=settings.ntp_server)
        return
    with DevTSA(settings.root).serve() as server:
        yield ClockReferences(tsa_url=server.url, tsa_name=DEV_TSA_NAME, ntp_server=settings.ntp_server)


_service_clocks: dict[tuple[str, str, str], tuple[ClockReferences, contextlib.ExitStack]] = {}
_service_clock_lock = threading.Lock()


def service_clock_references(settings: Settings) -> ClockReferences:
    """``clock_references`` kept open for the life of a service process (its capture workers)."""
    key = (str(settings.root), settings.tsa[0].url if settings.tsa else "", settings.ntp_server or "")
    with _service_clock_lock:
        if key not in _service_clocks:
            stack = contextlib.ExitStack()
            _service_clocks[key] = (stack.enter_context(clock_references(settings)), stack)
        return _service_clocks[key][0]


@dataclass
class Running:
    """The TSA endpoints and chains a sealer uses, with embedded ones started for the duration."""

    tsas: tuple[TSAEndpoint, ...]
    chains: tuple[ChainEndpoint, ...]

    @property
    def chain(self) -> ChainEndpoint:
        """The first chain: the one whose anchor is each package's proof/anchor.json."""
        return self.chains[0]


def embedded_devnets(settings: Settings) -> list[Devnet]:
    """The data dir's devnets: the first always, the second once `tiezheng chain up --second` made it."""
    second = Devnet.second(settings.root)
    return [Devnet(settings.root)] + ([second] if second.chain_dir.exists() else [])


@contextlib.contextmanager
def sealing_services(settings: Settings, *, keep_devnet: bool = True) -> Iterator[Running]:
    """Start what the settings leave embedded (dev TSA over HTTP, anvil devnet) and yield endpoints.

    The devnet keeps running afterwards when ``keep_devnet`` (it persists its state either way).
    """
    with contextlib.ExitStack() as stack:
        if settings.tsa:
            tsas = tuple(TSAEndpoint(name=t.name, url=t.url, roots=tuple(_pem_certs(t.roots_file)),
                                     chain_pem=t.roots_file.read_bytes()) for t in settings.tsa)
        else:
            dev_tsa = DevTSA(settings.root)
            server = stack.enter_context(dev_tsa.serve())
            tsas = (TSAEndpoint(name=DEV_TSA_NAME, url=server.url,
                                roots=tuple(x509.load_pem_x509_certificates(dev_tsa.ca_certificate_pem())),
                                chain_pem=dev_tsa.chain_pem()),)
        chains: list[ChainEndpoint] = []
        if settings.uses_devnet:
            for devnet, name in zip(embedded_devnets(settings), (DEVNET_NAME, SECOND_DEVNET_NAME), strict=False):
                rpc_url = devnet.start(owner_pid=None if keep_devnet else os.getpid())
                # Stopped on exit when this process started it, or took it over from a killed starter.
                if not keep_devnet and devnet.owner_pid() == os.getpid():
                    stack.callback(devnet.stop)
                chains.append(ChainEndpoint(rpc_url=rpc_url, chain_id=devnet.chain_id, private_key=DEV_OPERATOR_KEY,
                                            confirmations=settings.confirmations or 1, name=name))
        else:
            chains = [ChainEndpoint(rpc_url=c.rpc_url, chain_id=c.chain_id, private_key=c.key.get_secret_value(),
                                    confirmations=c.confirmations or REAL_CHAIN_CONFIRMATIONS,
                                    name=c.name or f"chain {c.chain_id}")
                      for c in settings.anchor_chains()]
        yield Running(tsas=tsas, chains=tuple(chains))


def make_sealer(settings: Settings, engine: Engine, running: Running) -> Sealer:
    config = SealerConfig(tsas=running.tsas, chains=running.chains, min_chains=settings.min_chains,
                          min_tsa=settings.min_tsa,
                          batch_max_items=settings.batch_max_items,
                          batch_max_age=timedelta(seconds=settings.batch_max_age_seconds))
    # Proof files go to the blob store, beside the immutable packages (anchor/attach.py).
    return Sealer(engine, config, proofs=blob_store(settings))


def _pem_certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def local_trust(settings: Settings) -> Trust:
    """What this data dir vouches for: its operator key, its TSAs and its chain, development flagged."""
    operator = operator_for(settings)
    tsas: list[TrustedTSA] = []
    if settings.tsa:
        tsas += [TrustedTSA(name=t.name, roots=tuple(_pem_certs(t.roots_file))) for t in settings.tsa]
    dev_tsa = DevTSA(settings.root)
    tsas.append(TrustedTSA(name=DEV_TSA_NAME, development=True,
                           roots=tuple(x509.load_pem_x509_certificates(dev_tsa.ca_certificate_pem()))))
    chains = [TrustedChain(chain_id=devnet.chain_id, name=name, development=True, confirmations=1,
                           rpc_urls=(devnet.status().rpc_url or "",))
              for devnet, name in zip(embedded_devnets(settings), (DEVNET_NAME, SECOND_DEVNET_NAME), strict=False)]
    try:
        configured = settings.anchor_chains()
    except ValueError:
        configured = []  # sealing says what is missing; trust still names the devnet
    chains += [TrustedChain(chain_id=c.chain_id, name=c.name or f"chain {c.chain_id}", rpc_urls=(c.rpc_url,),
                            confirmations=c.confirmations or REAL_CHAIN_CONFIRMATIONS) for c in configured]
    # The operator's own rule (TIEZHENG_MIN_CHAINS) is the policy it publishes with its trust.
    policy = Policy(min_chains=settings.min_chains)
    return Trust(operators=(TrustedOperator(name=operator.name, public_key=operator.public_key_raw,
                                            development=True, qualifications=operator.qualifications,
                                            verify_url=settings.verify_url),),
                 tsas=tuple(tsas), chains=tuple(chains), policy=policy, sources=(f"data dir {settings.root}",))


def trust_toml(trust: Trust) -> str:
    """Render trust as the TOML that `tiezheng-verify --trust` reads."""
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding

    lines = ["# Trust exported by `tiezheng trust export`. Entries marked development are for testing only.", ""]
    for op in trust.operators:
        lines += ["[[operators]]", f"name = {_q(op.name)}",
                  f"public_key = {_q(base64.b64encode(op.public_key).decode())}",
                  f"development = {str(op.development).lower()}", ""]
        if op.verify_url:  # certificates judged with this trust link their QR code to it
            lines.insert(len(lines) - 1, f"verify_url = {_q(op.verify_url)}")
        if op.qualifications:
            # Declared by the operator, as in every manifest; verifiers show them and cannot check them.
            lines += ["[operators.qualifications]", *(f"{_q(key)} = {_q(text)}" for key, text in op.qualifications), ""]
    for tsa in trust.tsas:
        pem = "".join(root.public_bytes(Encoding.PEM).decode() for root in tsa.roots)
        lines += ["[[tsa]]", f"name = {_q(tsa.name)}", f'roots = """\n{pem}"""',
                  f"development = {str(tsa.development).lower()}", ""]
    for chain in trust.chains:
        urls = ", ".join(_q(u) for u in chain.rpc_urls if u)
        lines += ["[[chains]]", f"chain_id = {chain.chain_id}", f"name = {_q(chain.name)}", f"rpc_urls = [{urls}]",
                  f"confirmations = {chain.confirmations}", f"development = {str(chain.development).lower()}", ""]
    lines += ["[policy]", f"prechain_window_hours = {trust.policy.prechain_window.total_seconds() / 3600:g}",
              f"time_tolerance_seconds = {trust.policy.time_tolerance.total_seconds():g}",
              f"min_chains = {trust.policy.min_chains}", ""]
    return "\n".join(lines)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dev_tsa(settings: Settings) -> DevTSA:
    """The embedded development TSA of this data dir (its key and certificates are kept there)."""
    return DevTSA(settings.root)
