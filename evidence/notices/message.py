"""The notice as an RFC 5322 message, DKIM-signed with the operator's key.

The bytes returned by ``signed_message`` are exactly what goes to the SMTP server and exactly what is
sealed: lines end in CRLF already, so nothing between signing, sending and sealing rewrites them.

The DKIM key is the operator's: an RSA key file in the data dir (``dkim/<selector>.pem``), made on
first use. ``dns_record`` is the TXT record the operator publishes at
``<selector>._domainkey.<domain>`` so receivers (and, later, a court) can check the signature.
"""

from __future__ import annotations

import base64
import email.policy
import json
import os
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from evidence.notices.model import Notice, NoticeError

DKIM_KEY_BITS = 2048
#: Signed headers: everything a reader relies on to tell what was said, to whom, by whom and when.
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type")
SUBJECTS = {"notice": "侵权通知 / Notice of infringement", "correction": "更正通知 / Corrected notice",
            "withdrawal": "撤回通知 / Withdrawal of notice"}


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    private_pem: bytes

    @property
    def public_b64(self) -> str:
        private = serialization.load_pem_private_key(self.private_pem, password=None)
        der = private.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def dns_record(self) -> str:
        """The TXT record to publish, as a zone file line."""
        return f'{self.record_name}. IN TXT "v=DKIM1; k=rsa; p={self.public_b64}"'


def load_or_create_dkim_key(folder: Path, *, domain: str, selector: str) -> DkimKey:
    """The DKIM key ``folder/<selector>.pem`` (mode 0600, made on first use) for ``domain``."""
    if not domain or not selector or "/" in selector or selector.startswith("."):
        raise NoticeError("a DKIM key needs a domain and a plain selector name")
    path = folder / f"{selector}.pem"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=DKIM_KEY_BITS)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    return DkimKey(domain=domain, selector=selector, private_pem=path.read_bytes())


def _body_text(notice: Notice) -> str:
    lines = [f"{SUBJECTS[notice.action]}: {notice.notice_id} (version {notice.version})", "",
             f"权利人 Right owner: {notice.owner.name}", ""]
    lines += ["侵权网络地址 Infringing addresses:"] + [f"  {item.url}" for item in notice.infringing]
    lines += ["", "理由 Grounds:", notice.grounds, "",
              "详见所附通知（PDF）及其记录（JSON）。The attached PDF is the notice; the JSON is its record.", ""]
    return "\n".join(lines)


def signed_message(notice: Notice, pdf: bytes, *, sender: str, to: str, key: DkimKey, now: datetime) -> bytes:
    """The DKIM-signed RFC 5322 bytes of the notice mail: a bilingual text body, the PDF and the record."""
    import dkim

    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = f"{SUBJECTS[notice.action]} [{notice.notice_id}]"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(idstring=notice.notice_id, domain=key.domain)
    message.set_content(_body_text(notice), charset="utf-8", cte="base64")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"{notice.notice_id}.pdf")
    record = json.dumps(notice.to_json(), ensure_ascii=False, indent=2, sort_keys=True).encode()
    message.add_attachment(record, maintype="application", subtype="json", filename=f"{notice.notice_id}.json")
    body = message.as_bytes()
    signature: bytes = dkim.sign(body, key.selector.encode(), key.domain.encode(), key.private_pem,
                          include_headers=list(SIGNED_HEADERS))
    return signature + body
