"""Read replies from the operator's notice mailbox over IMAP, byte for byte, and tell which notice each answers.

The poller fetches unseen messages with ``BODY.PEEK[]`` (the message exactly as stored, not marked
read by fetching), so the importer seals the bytes the platform's server delivered. A message is
marked ``\\Seen`` only once it is imported (``MailboxReader.mark_seen``): a crash in between
fetches it again, and the importer knows it by its SHA-256.

Which notice a message answers: every notice id it names (our subject carries ``[nt-…]``, our
Message-ID holds the id, and a reply's In-Reply-To/References or a bounce's returned headers repeat
them). A message naming no known notice, or several, is left unseen for a person to file.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from evidence.notices.model import NoticeError

NOTICE_ID = re.compile(rb"nt-\d{8}T\d{6}-[0-9a-f]{12}")
#: Messages fetched in one poll; the rest wait for the next.
MAX_MESSAGES_PER_POLL = 200
MAX_MESSAGE_BYTES = 32 << 20
ImapSecurity = Literal["ssl", "starttls", "off"]


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int = 993
    security: ImapSecurity = "ssl"
    username: str = ""
    password: str = field(default="", repr=False)
    mailbox: str = "INBOX"
    ca_file: Path | None = None


def notice_ids(message: bytes) -> list[str]:
    """Every distinct notice id the message names, in order of first mention."""
    return list(dict.fromkeys(m.decode() for m in NOTICE_ID.findall(message[:MAX_MESSAGE_BYTES])))


class MailboxReader:
    """One IMAP session on the notice mailbox. Raises NoticeError for a server that refuses us."""

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        try:
            if config.security == "ssl":
                self.client: imaplib.IMAP4 = imaplib.IMAP4_SSL(config.host, config.port, ssl_context=context)
            else:
                self.client = imaplib.IMAP4(config.host, config.port)
                if config.security == "starttls":
                    self.client.starttls(ssl_context=context)
            self.client.login(config.username, config.password)
            status, _ = self.client.select(config.mailbox)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise NoticeError(f"IMAP {config.host}:{config.port}: {exc}") from exc
        if status != "OK":
            raise NoticeError(f"IMAP {config.host}:{config.port}: cannot open mailbox {config.mailbox!r}")

    def __enter__(self) -> MailboxReader:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self.client.logout()

    def unseen(self) -> Iterator[tuple[bytes, bytes]]:
        """(uid, the message's bytes as stored) of each unseen message, oldest first."""
        try:
            status, data = self.client.uid("SEARCH", None, "UNSEEN")  # type: ignore[arg-type]
            if status != "OK" or not data or not data[0]:
                return
            for uid in data[0].split()[:MAX_MESSAGES_PER_POLL]:
                status, parts = self.client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
                body = next((p[1] for p in parts if isinstance(p, tuple) and isinstance(p[1], bytes)), None)
                if status == "OK" and body is not None:
                    yield uid, body
        except (imaplib.IMAP4.error, OSError) as exc:
            raise NoticeError(f"IMAP {self.config.host}:{self.config.port}: {exc}") from exc

    def mark_seen(self, uid: bytes) -> None:
        try:
            self.client.uid("STORE", uid.decode(), "+FLAGS", "(\\Seen)")
        except (imaplib.IMAP4.error, OSError) as exc:
            raise NoticeError(f"IMAP {self.config.host}:{self.config.port}: {exc}") from exc
