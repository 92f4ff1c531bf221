"""Who signs manifests: one small interface with two backends, a local key file and a PKCS#11 token.

Every manifest signature, the trust export and `tiezheng doctor` go through ``ManifestSigner``, so
where the private key lives is a deployment choice:

- ``FileSigner``: an Ed25519 key in a PEM file (``keys/operator.key`` in the data dir), created on
  first use. The embedded default.
- ``Pkcs11Signer``: an Ed25519 key (CKK_EC_EDWARDS) inside a PKCS#11 token or HSM, used through
  CKM_EDDSA (PKCS#11 3.0). The private key never leaves the token; only its public half is read.

Errors are ``SignerError``: one line for the user, never the PIN.
"""

from __future__ import annotations

import hmac
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from verifier.errors import TiezhengError
from verifier.signature import PUBLIC_KEY_BYTES, key_id

#: DER of the OID id-Ed25519 (1.3.101.112): the EC_PARAMS of an Ed25519 key in PKCS#11 3.0.
ED25519_EC_PARAMS = bytes.fromhex("06032b6570")
#: A DER OCTET STRING header for a 32-byte EC_POINT (tokens differ: some wrap the point, some do not).
_OCTET_STRING_32 = bytes((0x04, PUBLIC_KEY_BYTES))
HSM_EXTRA_HINT = "install the hsm extra: pip install 'tiezheng[hsm]'"


class SignerError(TiezhengError):
    """The operator key cannot be loaded or cannot sign; the message says which and why."""


class ManifestSigner(Protocol):
    """What signs manifests. Implementations are thread-safe."""

    @property
    def backend(self) -> str:
        """``"file"`` or ``"pkcs11"``."""
        ...

    @property
    def location(self) -> str:
        """Where the key lives, for people (a path, or token and label); never a secret."""
        ...

    @property
    def key_id(self) -> str:
        """sha256 of the raw public key, hex: what ``manifest.sig`` names."""
        ...

    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key. Raises SignerError."""
        ...

    def sign(self, data: bytes) -> bytes:
        """The raw 64-byte Ed25519 signature of ``data``. Raises SignerError."""
        ...


class FileSigner:
    """An Ed25519 key in a PEM (PKCS#8) file, readable only by its owner."""

    backend = "file"

    def __init__(self, path: Path, private_key: Ed25519PrivateKey) -> None:
        self.path = path
        self._private_key = private_key
        self._public = private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                             serialization.PublicFormat.Raw)

    @classmethod
    def load_or_create(cls, path: Path) -> FileSigner:
        """Load the key at ``path``, creating it with mode 0600 on first use. Raises OSError, ValueError."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} does not hold an Ed25519 key")
            return cls(path, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        # O_EXCL: two processes starting at once must not each write a different key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls.load_or_create(path)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        return cls(path, key)

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def key_id(self) -> str:
        return key_id(self._public)

    def public_key(self) -> bytes:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._private_key.sign(data)


@dataclass(frozen=True)
class Pkcs11Config:
    """Where the token's key is: the vendor's PKCS#11 module, the token's label, the key's label."""

    module: Path
    token_label: str
    key_label: str
    pin: str = field(repr=False)

    @property
    def location(self) -> str:
        return f"PKCS#11 token {self.token_label!r}, key {self.key_label!r} ({self.module})"


class Pkcs11Signer:
    """An Ed25519 key inside a PKCS#11 token, used through the process's one login to that token."""

    backend = "pkcs11"

    def __init__(self, config: Pkcs11Config) -> None:
        self.config = config
        self._pid: int | None = None
        self._login: _Login | None = None
        self._private: Any = None
        self._public: bytes | None = None
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return self.config.location

    @property
    def key_id(self) -> str:
        return key_id(self.public_key())

    def public_key(self) -> bytes:
        with self._lock:
            self._open()
            assert self._public is not None
            return self._public

    def sign(self, data: bytes) -> bytes:
        pkcs11 = _pkcs11()
        errors = pkcs11.exceptions
        with self._lock:
            self._open()
            try:
                signature = self._sign(data)
            except (errors.SessionHandleInvalid, errors.SessionClosed, errors.DeviceRemoved, errors.TokenNotPresent,
                    errors.UserNotLoggedIn, errors.ObjectHandleInvalid, errors.KeyHandleInvalid):
                # The token restarted or dropped the session: log in again once, then give up.
                _forget(self.config)
                self._pid = None
                self._open()
                try:
                    signature = self._sign(data)
                except errors.PKCS11Error as exc:
                    raise SignerError(f"{self.location} refused to sign: {_name(exc)}") from exc
            except errors.MechanismInvalid as exc:
                raise SignerError(f"{self.location} does not offer CKM_EDDSA (PKCS#11 3.0 Ed25519)") from exc
            except errors.PKCS11Error as exc:
                raise SignerError(f"{self.location} refused to sign: {_name(exc)}") from exc
            public = self._public
        assert public is not None
        # A signature that does not verify would make unverifiable evidence: refuse it here instead.
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
        except (InvalidSignature, ValueError) as exc:
            raise SignerError(f"{self.location}: the signature does not verify with the token's public key "
                              f"(the private and public objects labelled {self.config.key_label!r} "
                              "are not one pair?)") from exc
        return signature

    def _sign(self, data: bytes) -> bytes:
        assert self._login is not None
        with self._login.lock:  # one session: its operations must not interleave
            return bytes(self._private.sign(data, mechanism=_pkcs11().Mechanism.EDDSA))

    def _open(self) -> None:
        """Find the key pair through the process's login, once per process."""
        if self._pid == os.getpid():
            return
        pkcs11 = _pkcs11()
        login = _login(self.config)
        with login.lock:
            private = _find(login.session, pkcs11.ObjectClass.PRIVATE_KEY, self.config)
            public_object = _find(login.session, pkcs11.ObjectClass.PUBLIC_KEY, self.config)
            public = _raw_point(bytes(public_object[pkcs11.Attribute.EC_POINT]))
        self._login, self._private, self._public, self._pid = login, private, public, os.getpid()


@dataclass
class _Login:
    """A logged-in session. PKCS#11 logs in a process, not a session, so there is one per token and process."""

    pid: int
    pin: str = field(repr=False)
    session: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


_logins: dict[tuple[str, str], _Login] = {}
_logins_lock = threading.Lock()


def _login(config: Pkcs11Config) -> _Login:
    """The process's session on ``config``'s token, logging in on first use. Raises SignerError."""
    pkcs11 = _pkcs11()
    errors = pkcs11.exceptions
    where = (str(config.module), config.token_label)
    with _logins_lock:
        forked = any(login.pid != os.getpid() for login in _logins.values())
        if forked:
            _logins.clear()  # a forked child inherits its parent's handles, which are not its own
        login = _logins.get(where)
        if login is not None:
            if not hmac.compare_digest(login.pin.encode(), config.pin.encode()):
                raise SignerError(f"PKCS#11 token {config.token_label!r} is logged in with another PIN "
                                  "in this process")
            return login
        try:
            library = pkcs11.lib(str(config.module))
        except Exception as exc:  # the binding raises RuntimeError or OSError by platform
            raise SignerError(f"cannot load the PKCS#11 module {config.module}: {_name(exc)}") from exc
        if forked:
            library.reinitialize()
        try:
            token = _token(library, config.token_label)
            try:
                session = token.open(user_pin=config.pin)
            except errors.UserAlreadyLoggedIn:
                # Logged in by code of this process that is not a signer (key generation, a test): reuse it.
                session = token.open()
        except errors.NoSuchToken as exc:
            raise SignerError(f"no PKCS#11 token labelled {config.token_label!r} in {config.module}") from exc
        except (errors.PinIncorrect, errors.PinInvalid, errors.PinLenRange) as exc:
            raise SignerError(f"PKCS#11 token {config.token_label!r} refused the PIN "
                              "(TIEZHENG_PKCS11_PIN)") from exc
        except errors.PinLocked as exc:
            raise SignerError(f"PKCS#11 token {config.token_label!r} has locked its user PIN") from exc
        except errors.PKCS11Error as exc:
            raise SignerError(f"cannot log in to PKCS#11 token {config.token_label!r}: {_name(exc)}") from exc
        login = _logins[where] = _Login(pid=os.getpid(), pin=config.pin, session=session)
        return login


def _token(library: Any, label: str) -> Any:
    """The token labelled ``label``. Called with ``_logins_lock`` held.

    Many modules (SoftHSM2 among them) fix their slot list, and read their configuration, when the
    library is initialised: a token made or plugged in since is found only after initialising it
    again. That ends every session of this process, so their logins are dropped and made afresh on
    next use.
    """
    errors = _pkcs11().exceptions
    try:
        return library.get_token(token_label=label)
    except errors.NoSuchToken:
        _logins.clear()
        library.reinitialize()
        return library.get_token(token_label=label)


def _forget(config: Pkcs11Config) -> None:
    """Drop a login the token no longer honours, so the next use logs in afresh."""
    with _logins_lock:
        _logins.pop((str(config.module), config.token_label), None)


def generate_token_key(config: Pkcs11Config) -> bytes:
    """Make an Ed25519 key pair inside the token, labelled ``config.key_label``: the private half sensitive
    and never extractable. Returns the raw public key. Raises SignerError (also when the label is taken)."""
    pkcs11 = _pkcs11()
    attribute = pkcs11.Attribute
    login = _login(config)
    try:
        with login.lock:
            _find(login.session, pkcs11.ObjectClass.PRIVATE_KEY, config)
    except SignerError as exc:
        if "has no" not in str(exc):
            raise
    else:
        raise SignerError(f"{config.location} already exists; a second key under one label would be ambiguous")
    try:
        token = pkcs11.lib(str(config.module)).get_token(token_label=config.token_label)
        # The process is logged in (above), so a new read-write session is too.
        with token.open(rw=True) as session:
            public, _private = session.generate_keypair(
                pkcs11.KeyType.EC_EDWARDS, store=True, label=config.key_label,
                mechanism=pkcs11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                public_template={attribute.EC_PARAMS: ED25519_EC_PARAMS, attribute.VERIFY: True},
                private_template={attribute.SENSITIVE: True, attribute.EXTRACTABLE: False,
                                  attribute.SIGN: True, attribute.PRIVATE: True})
            return _raw_point(bytes(public[attribute.EC_POINT]))
    except pkcs11.exceptions.PKCS11Error as exc:
        raise SignerError(f"cannot make a key in {config.location}: {_name(exc)}") from exc


def _find(session: Any, object_class: Any, config: Pkcs11Config) -> Any:
    pkcs11 = _pkcs11()
    half = "private" if object_class == pkcs11.ObjectClass.PRIVATE_KEY else "public"
    try:
        return session.get_key(object_class=object_class, key_type=pkcs11.KeyType.EC_EDWARDS,
                               label=config.key_label)
    except pkcs11.exceptions.NoSuchKey as exc:
        raise SignerError(f"PKCS#11 token {config.token_label!r} has no Ed25519 {half} key labelled "
                          f"{config.key_label!r}") from exc
    except pkcs11.exceptions.MultipleObjectsReturned as exc:
        raise SignerError(f"PKCS#11 token {config.token_label!r} has several Ed25519 {half} keys labelled "
                          f"{config.key_label!r}") from exc


def _raw_point(ec_point: bytes) -> bytes:
    """The raw public key from a CKA_EC_POINT: PKCS#11 3.0 says DER OCTET STRING, some tokens give it bare."""
    if len(ec_point) == PUBLIC_KEY_BYTES + 2 and ec_point[:2] == _OCTET_STRING_32:
        return ec_point[2:]
    if len(ec_point) == PUBLIC_KEY_BYTES:
        return ec_point
    raise SignerError(f"the token's public key is not an Ed25519 point ({len(ec_point)} bytes)")


def _name(exc: BaseException) -> str:
    """A PKCS#11 error in words: python-pkcs11 errors often have no message, only a class name."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError as exc:
        raise SignerError(f"the pkcs11 signer needs python-pkcs11: {HSM_EXTRA_HINT}") from exc
    return pkcs11
