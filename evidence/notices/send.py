"""Send a notice and seal what went out: gate, PDF, DKIM-signed message, SMTP, package of kind ``notice``.

Order matters: the gate runs before anything is rendered, and the package is built only from the
bytes handed to the SMTP server after it accepted them, so the sealed message is the sent message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from evidence.notices.dns_lookup import Nameserver
from evidence.notices.gate import gate
from evidence.notices.message import DkimKey, signed_message
from evidence.notices.model import Notice
from evidence.notices.packaging import build_notice_package
from evidence.notices.pdf import render_notice_pdf
from evidence.notices.smtp_send import DIRECT, Delivery, SmtpConfig, deliver_direct, send_message
from evidence.operator_key import OperatorKey
from evidence.upload import BuiltPackage
from verifier.package import Requester


@dataclass(frozen=True)
class SentNotice:
    built: BuiltPackage
    delivery: Delivery
    message: bytes


def send_notice(notice: Notice, *, to: str, sender: str, smtp: SmtpConfig, dkim_key: DkimKey,
                packages_dir: Path, operator: OperatorKey, requester: Requester,
                allow_incomplete: bool = False, nameserver: Nameserver | None = None) -> SentNotice:
    """Gate, render, sign, send and seal ``notice``. Raises IncompleteNotice (nothing sent) or SendError.

    ``smtp.host`` ``mx`` delivers to the recipient's own mail servers, found through ``nameserver``.
    """
    results = gate(notice, allow_incomplete=allow_incomplete)
    pdf = render_notice_pdf(notice, results)
    sent_at = datetime.now(UTC)
    message = signed_message(notice, pdf, sender=sender, to=to, key=dkim_key, now=sent_at)
    if smtp.host == DIRECT:
        delivery = deliver_direct(smtp, message, sender=sender, to=to, nameserver=nameserver)
    else:
        delivery = send_message(smtp, message, sender=sender, to=to)
    built = build_notice_package(
        message=message, pdf=pdf, record=notice.to_json(), completeness=[r.to_json() for r in results],
        delivery={**delivery.summary(), "to": to, "from": sender,
                  "dkim": {"domain": dkim_key.domain, "selector": dkim_key.selector}},
        transcript=delivery.transcript, recipient=to, sent_at=sent_at, packages_dir=packages_dir,
        operator=operator, requester=requester)
    return SentNotice(built=built, delivery=delivery, message=message)
