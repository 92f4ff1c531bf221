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
from sqlmodel import Session

from anchor.devnet import DEV_OPERATOR_KEY, DEVNET_CHAIN_ID, Devnet
from anchor.sealer import ChainEndpoint, Sealer, SealerConfig, TSAEndpoint
from anchor.store import make_engine, pending_item
from anchor.tsa_server import DevTSA
from api.settings import Settings
from evidence.clock_probe import ClockReferences
from evidence.operator_key import OperatorKey
from evidence.signer import FileSigner, ManifestSigner, Pkcs11Config, Pkcs11Signer, SignerError
from verifier.trust import Policy, Trust, TrustedChain, TrustedOperator, TrustedTSA

DEV_TSA_NAME = "Tiezheng development TSA"
DEVNET_NAME = "Tiezheng anvil devnet"


def engine_for(settings: Settings) -> Engine:
    return make_engine(settings.database)


def queue_for_sealing(settings: Settings, evidence_id: str, fingerprint: bytes, package: Path) -> None:
    """Record a package as pending; committed (durable) when this returns."""
    with Session(engine_for(settings)) as session:
        session.add(pending_item(evidence_id, fingerprint, package))
        session.commit()


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
    """The TSA endpoints and chain a sealer uses, with embedded ones started for the duration."""

    tsas: tuple[TSAEndpoint, ...]
    chain: ChainEndpoint


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
        if settings.uses_devnet:
            devnet = Devnet(settings.root)
            rpc_url = devnet.start(owner_pid=None if keep_devnet else os.getpid())
            # Stopped on exit when this process started it, or took it over from a killed starter.
            if not keep_devnet and devnet.owner_pid() == os.getpid():
                stack.callback(devnet.stop)
            chain = ChainEndpoint(rpc_url=rpc_url, chain_id=DEVNET_CHAIN_ID, private_key=DEV_OPERATOR_KEY,
                                  confirmations=settings.confirmations or 1)
        else:
            if settings.chain_key is None or settings.chain_id is None:
                raise ValueError("TIEZHENG_RPC_URL needs TIEZHENG_CHAIN_ID and TIEZHENG_CHAIN_KEY in the environment")
            chain = ChainEndpoint(rpc_url=str(settings.rpc_url), chain_id=settings.chain_id,
                                  private_key=settings.chain_key.get_secret_value(),
                                  confirmations=settings.confirmations or 12)
        yield Running(tsas=tsas, chain=chain)


def make_sealer(settings: Settings, engine: Engine, running: Running) -> Sealer:
    config = SealerConfig(tsas=running.tsas, chain=running.chain, min_tsa=settings.min_tsa,
                          batch_max_items=settings.batch_max_items,
                          batch_max_age=timedelta(seconds=settings.batch_max_age_seconds))
    return Sealer(engine, config)


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
    chains = [TrustedChain(chain_id=DEVNET_CHAIN_ID, name=DEVNET_NAME, development=True, confirmations=1,
                           rpc_urls=(Devnet(settings.root).status().rpc_url or "",))]
    if settings.chain_id is not None:
        chains.append(TrustedChain(chain_id=settings.chain_id, name=f"chain {settings.chain_id}",
                                   rpc_urls=(settings.rpc_url,) if settings.rpc_url else (),
                                   confirmations=settings.confirmations or 12))
    return Trust(operators=(TrustedOperator(name=operator.name, public_key=operator.public_key_raw,
                                            development=True, qualifications=operator.qualifications,
                                            verify_url=settings.verify_url),),
                 tsas=tuple(tsas), chains=tuple(chains), policy=Policy(), sources=(f"data dir {settings.root}",))


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
              f"time_tolerance_seconds = {trust.policy.time_tolerance.total_seconds():g}", ""]
    return "\n".join(lines)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
