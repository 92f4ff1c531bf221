"""The operator's declared qualifications: filings and certifications, as the manifest and trust file state them.

A Chinese court weighs the platform's own standing (Huatai v. Daotong; Online Litigation Rules Art. 17):
its ICP filing, its CAC blockchain information service filing, its security certification and where
its data centre is. The operator declares them in its settings; every manifest carries them under
``operator.qualifications`` and the published trust file under each ``[operators.qualifications]``.
They are declarations: no software can check a filing number against the regulator's register
offline, and the verifier says so instead of passing on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: The qualifications the settings name, with how a report labels them. Other keys are shown as given.
LABELS = {
    "icp_filing": "ICP filing",
    "cac_blockchain_filing": "CAC blockchain-service filing",
    "security_certification": "security certification",
    "data_centre": "data centre",
}
MAX_QUALIFICATIONS = 20
MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 300
UNVERIFIABLE = "declared by the operator; software cannot verify them against the regulators' registers"

Qualifications = tuple[tuple[str, str], ...]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def parse_qualifications(value: object) -> Qualifications:
    """Declared qualifications from JSON or TOML (``{key: text}``), sorted; ValueError if malformed or too big."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ValueError("qualifications must be a table of names and texts")
    if len(value) > MAX_QUALIFICATIONS:
        raise ValueError(f"more than {MAX_QUALIFICATIONS} qualifications")
    items = []
    for key, text in value.items():
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
            raise ValueError(f"a qualification name must be 1 to {MAX_KEY_CHARS} characters")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_VALUE_CHARS:
            raise ValueError(f"qualification {key} must be a text of 1 to {MAX_VALUE_CHARS} characters")
        if _CONTROL.search(key) or _CONTROL.search(text):
            # One line each: they are printed in reports and written into TOML.
            raise ValueError(f"qualification {key!r} holds a control character")
        items.append((key, text.strip()))
    return tuple(sorted(items))


def describe(qualifications: Qualifications) -> str:
    """``ICP filing 京ICP备…; data centre …`` for a report line."""
    return "; ".join(f"{LABELS.get(key, key)} {text}" for key, text in qualifications)
