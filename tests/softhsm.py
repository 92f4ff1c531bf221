"""A private SoftHSM2 token for tests: its own token folder and config, an Ed25519 key made inside it.

Used by the signer's tests, and by any test that runs processes signing with a token (they inherit
``SOFTHSM2_CONF`` and the ``TIEZHENG_PKCS11_*`` settings from ``token_env``).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

from evidence.signer import Pkcs11Config, generate_token_key

#: Where Debian's softhsm2 puts its module (multiarch path first, then the compatibility link).
SOFTHSM_MODULES = (Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"), Path("/usr/lib/softhsm/libsofthsm2.so"))


def softhsm_module() -> Path | None:
    """The SoftHSM2 PKCS#11 module, or None when softhsm2 is not installed."""
    if shutil.which("softhsm2-util") is None:
        return None
    return next((path for path in SOFTHSM_MODULES if path.exists()), None)


def softhsm_conf(folder: Path) -> Path:
    """A SoftHSM2 config keeping tokens in ``folder``; point SOFTHSM2_CONF at it before the module loads."""
    (folder / "tokens").mkdir(parents=True, exist_ok=True)
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    return conf


def make_token(module: Path, token_label: str, key_label: str) -> Pkcs11Config:
    """Initialise a token (random SO and user PINs) and make an Ed25519 key pair inside it.
    SOFTHSM2_CONF must already name the config. Raises CalledProcessError, SignerError."""
    pin = secrets.token_hex(8)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", token_label, "--so-pin",
                    secrets.token_hex(8), "--pin", pin], check=True, capture_output=True, timeout=60)
    config = Pkcs11Config(module=module, token_label=token_label, key_label=key_label, pin=pin)
    generate_token_key(config)
    return config


def token_env(config: Pkcs11Config) -> dict[str, str]:
    """The settings that make a Tiezheng process sign with ``config``'s key."""
    return {"TIEZHENG_SIGNER": "pkcs11", "TIEZHENG_PKCS11_MODULE": str(config.module),
            "TIEZHENG_PKCS11_TOKEN": config.token_label, "TIEZHENG_PKCS11_KEY_LABEL": config.key_label,
            "TIEZHENG_PKCS11_PIN": config.pin}
