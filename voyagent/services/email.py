"""E-mail delivery (operations.md §7): SMTP when ``VOYAGENT_SMTP_URL`` is set, else one INFO log line.

``Mailer.send`` never raises: a failed delivery is logged at WARNING and counted, and the HTTP response that
triggered it stays the same.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import email.policy
import email.utils
import logging
import random
import time
from email.message import EmailMessage
from typing import Any, Awaitable, Callable, Iterator
from urllib.parse import unquote, urlsplit

import aiosmtplib

from voyagent.config import Settings
from voyagent.services.email_messages import Message, header_text

log = logging.getLogger("voyagent.email")

_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
_TIMING_SAMPLES = 64


@dataclasses.dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to hand messages over, parsed once from the URL."""

    hostname: str
    port: int
    username: str | None
    password: str | None = dataclasses.field(repr=False)
    use_tls: bool
    start_tls: bool


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://`` (plain), ``smtp+starttls://`` or ``smtps://`` with percent-encoded ``user:password@``."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("VOYAGENT_SMTP_URL must be smtp://, smtp+starttls:// or smtps:// with a host")
    return SmtpTarget(
        hostname=parts.hostname, port=parts.port or _DEFAULT_PORTS[parts.scheme],
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        use_tls=parts.scheme == "smtps", start_tls=parts.scheme == "smtp+starttls")


def build_message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text UTF-8 message with From, To, Subject, Date and Message-ID; no CR/LF in any header."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = header_text(sender)
    message["To"] = header_text(to)
    message["Subject"] = header_text(subject)
    message["Date"] = email.utils.formatdate(usegmt=True)
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = email.utils.make_msgid(domain=header_text(domain))
    # 7bit/8bit keep every line (the link above all) intact on the wire, where quoted-printable would fold it.
    message.set_content(body, charset="utf-8", cte="7bit" if body.isascii() else "8bit")
    return message


def link_in(body: str, public_url: str) -> str:
    """The action link: the one line of the body that starts with the public URL."""
    for line in body.splitlines():
        if line.startswith(public_url):
            return line.strip()
    return "-"


class Mailer:
    """Sends over SMTP or writes the fallback log line; counts every outcome in ``voyagent_emails_total``."""

    def __init__(self, settings: Settings, metrics: Any = None, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sleep = sleep  # how ``imitate`` waits; tests pass a recorder instead of measuring the wait
        self.target = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None
        self._durations: dict[str, collections.deque[float]] = {}

    def _count(self, kind: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.emails.labels(kind, result).inc()

    async def send(self, *, kind: str, to: str, subject: str, body: str, link: str | None = None) -> None:
        """Deliver one message; never raises. Without ``link`` the log line takes it from the body."""
        try:
            if self.target is None:
                log.info('email kind=%s to=%s subject="%s" link=%s', kind, header_text(to), header_text(subject),
                         link if link is not None else link_in(body, self.settings.public_url))
                self._count(kind, "logged")
                return
            message = build_message(self.settings.smtp_from, to, subject, body)
            target = self.target
            async with asyncio.timeout(self.settings.smtp_timeout):
                await aiosmtplib.send(message, hostname=target.hostname, port=target.port,
                                      username=target.username, password=target.password, use_tls=target.use_tls,
                                      start_tls=target.start_tls, timeout=self.settings.smtp_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("email delivery failed kind=%s to=%s error=%s", kind, header_text(to), type(exc).__name__)
            self._count(kind, "failed")
            return
        self._count(kind, "sent")

    async def deliver(self, to: str, message: Message) -> None:
        """Send one composed message (``voyagent.services.email_messages``); never raises."""
        await self.send(kind=message.kind, to=to, subject=message.subject, body=message.body, link=message.link)

    def record_duration(self, kind: str, seconds: float) -> None:
        """Remember how long producing a message of this kind took (see ``imitate``)."""
        self._durations.setdefault(kind, collections.deque(maxlen=_TIMING_SAMPLES)).append(seconds)

    @contextlib.contextmanager
    def timed(self, kind: str) -> Iterator[None]:
        """Record how long the block took to produce and send a message of ``kind`` (when it ends normally)."""
        started = time.perf_counter()
        yield
        self.record_duration(kind, time.perf_counter() - started)

    async def imitate(self, kind: str) -> None:
        """Take as long as a recent real message of this kind took, when there is deliberately none to send.

        Used where the answer must not reveal whether an address exists (request-password-reset): the
        wait is drawn from the recent real durations, so both paths have the same timing distribution.
        """
        samples = self._durations.get(kind)
        if samples:
            await self.sleep(random.choice(samples))
