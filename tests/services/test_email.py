"""E-mail: message texts, SMTP URLs, delivery to a real SMTP server, the log fallback, failures never raise."""

import asyncio
import dataclasses
import logging

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.conftest import SmtpSink, _free_port
from voyagent.config import Settings
from voyagent.metrics import Metrics
from voyagent.services.email import Mailer, build_message, parse_smtp_url
from voyagent.services.email_messages import (
    describe_duration,
    email_changed_message,
    password_reset_message,
    verification_message,
)

PUBLIC = "https://app.example.com"


def _settings(**changes) -> Settings:
    return dataclasses.replace(Settings(public_url=PUBLIC), **changes)


def _count(metrics: Metrics, kind: str, result: str) -> float:
    return metrics.emails.labels(kind, result)._value.get()


# --- texts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("build", "subject", "path", "validity"), [
    (verification_message, "Confirm your e-mail address for Voyagent", "/verify-email", "24 hours"),
    (password_reset_message, "Reset your Voyagent password", "/reset-password", "1 hour"),
])
def test_messages_hold_the_link_once_alone_on_its_line(build, subject, path, validity):
    message = build(_settings(), "TOKEN_abc-123")
    assert message.subject == subject
    assert message.link == f"{PUBLIC}{path}?token=TOKEN_abc-123"
    lines = message.body.splitlines()
    assert [line for line in lines if line.startswith(PUBLIC)] == [message.link]
    assert message.body.count("TOKEN_abc-123") == 1
    assert f"valid for {validity}" in message.body


def test_the_email_changed_notice_names_the_new_address_and_has_no_link():
    message = email_changed_message("new-home@example.org")
    assert (message.kind, message.subject, message.link) == (
        "email_changed", "Your Voyagent e-mail address was changed", "")
    assert "new-home@example.org" in message.body
    assert "contact your agency admin at once" in message.body
    assert "password reset would now be sent to the new" in message.body
    assert "://" not in message.body and "token" not in message.body
    assert not any(line.startswith(PUBLIC) for line in message.body.splitlines())


@pytest.mark.parametrize(("seconds", "words"), [
    (86_400, "24 hours"), (3600, "1 hour"), (7200, "2 hours"), (172_800, "2 days"), (604_800, "7 days"),
    (60, "1 minute"), (90, "90 seconds"), (300, "5 minutes"),
])
def test_lifetimes_are_stated_in_words(seconds, words):
    assert describe_duration(seconds) == words


def test_the_configured_lifetime_is_stated():
    message = verification_message(_settings(verification_ttl=3600 * 48), "t")
    assert "valid for 2 days" in message.body


# --- SMTP URLs and MIME --------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://mail.example.com", ("mail.example.com", 25, None, None, False, False)),
    ("smtp://127.0.0.1:1025", ("127.0.0.1", 1025, None, None, False, False)),
    ("smtp+starttls://u:p@mail.example.com", ("mail.example.com", 587, "u", "p", False, True)),
    ("smtps://mail.example.com", ("mail.example.com", 465, None, None, True, False)),
    ("smtps://us%40er:p%3Ass%2Fw%25@mx:2465", ("mx", 2465, "us@er", "p:ss/w%", True, False)),
])
def test_smtp_urls(url, expected):
    target = parse_smtp_url(url)
    assert (target.hostname, target.port, target.username, target.password, target.use_tls,
            target.start_tls) == expected
    assert "password" not in repr(target)


def test_headers_never_carry_cr_or_lf_and_the_link_line_is_not_folded():
    link = f"{PUBLIC}/reset-password?token=" + "x" * 43
    message = build_message("Voyagent <no-reply@example.com>", "ada@example.com",
                            "Hello\r\nBcc: evil@example.com", f"Intro\n\n{link}\n\nÜnïcode bye\n")
    raw = message.as_bytes()
    assert message["Bcc"] is None
    assert message["Subject"] == "Hello  Bcc: evil@example.com"
    assert message["Message-ID"].endswith("@example.com>") and message["Date"]
    assert link.encode() + b"\r\n" in raw or link.encode() + b"\n" in raw
    assert message.get_content_type() == "text/plain" and message.get_content_charset() == "utf-8"


# --- delivery ------------------------------------------------------------------------------------------


async def test_delivery_to_a_real_smtp_server(smtp_sink):
    metrics = Metrics("t", "t")
    mailer = Mailer(_settings(smtp_url=smtp_sink.url, smtp_from="Voyagent <robot@voyagent.test>"), metrics)
    message = password_reset_message(mailer.settings, "tok")
    await mailer.send(kind=message.kind, to="ada@example.com", subject=message.subject, body=message.body)
    mail = await smtp_sink.wait_for("ada@example.com")
    assert mail.mail_from == "robot@voyagent.test"
    assert mail.message["From"] == "Voyagent <robot@voyagent.test>"
    assert mail.link(PUBLIC) == f"{PUBLIC}/reset-password?token=tok"
    assert _count(metrics, "password_reset", "sent") == 1


async def test_percent_encoded_credentials_are_used_for_smtp_auth():
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)

    sink = SmtpSink()
    sink.port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    try:
        url = f"smtp://us%40er:p%3Ass%2Fw@127.0.0.1:{sink.port}"
        mailer = Mailer(_settings(smtp_url=url), Metrics("t", "t"))
        await mailer.send(kind="verification", to="ada@example.com", subject="s", body="b\n")
        await sink.wait_for("ada@example.com")
    finally:
        controller.stop()
    assert seen == [("us@er", "p:ss/w")]


async def test_a_refused_connection_is_logged_and_counted_never_raised(caplog):
    metrics = Metrics("t", "t")
    mailer = Mailer(_settings(smtp_url=f"smtp://127.0.0.1:{_free_port()}"), metrics)
    with caplog.at_level(logging.WARNING, logger="voyagent.email"):
        await mailer.send(kind="verification", to="ada@example.com", subject="s", body="b\n")
    assert _count(metrics, "verification", "failed") == 1
    assert any(r.levelno == logging.WARNING and "kind=verification" in r.getMessage() for r in caplog.records)


async def test_a_silent_server_is_cut_off_at_the_timeout(caplog):
    hang_up = asyncio.Event()

    async def silent(reader, writer):
        await hang_up.wait()  # never greets: only our timeout ends the wait (its duration: bench/timing_bench.py)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    metrics = Metrics("t", "t")
    mailer = Mailer(_settings(smtp_url=f"smtp://127.0.0.1:{port}", smtp_timeout=1), metrics)
    try:
        with caplog.at_level(logging.WARNING, logger="voyagent.email"):
            await mailer.send(kind="invite", to="ada@example.com", subject="s", body="b\n")
    finally:
        hang_up.set()
        server.close()
    assert _count(metrics, "invite", "failed") == 1
    [warning] = [r.getMessage() for r in caplog.records if r.name == "voyagent.email"]
    assert "kind=invite" in warning and "Timeout" in warning.rpartition("error=")[2]


async def test_without_smtp_one_info_line_is_logged(caplog):
    metrics = Metrics("t", "t")
    mailer = Mailer(_settings(), metrics)
    message = verification_message(mailer.settings, "abc")
    with caplog.at_level(logging.INFO, logger="voyagent.email"):
        await mailer.send(kind=message.kind, to="ada@example.com", subject=message.subject, body=message.body)
    assert [r.getMessage() for r in caplog.records if r.name == "voyagent.email"] == [
        f'email kind=verification to=ada@example.com subject="Confirm your e-mail address for Voyagent" '
        f"link={PUBLIC}/verify-email?token=abc"]
    assert _count(metrics, "verification", "logged") == 1


async def test_imitate_takes_as_long_as_recent_real_deliveries():
    waits = []

    async def record(seconds):  # the wait itself is measured by bench/timing_bench.py
        waits.append(seconds)

    mailer = Mailer(_settings(), sleep=record)
    await mailer.imitate("password_reset")  # nothing recorded yet: no wait
    assert waits == []
    mailer.record_duration("password_reset", 0.2)
    await mailer.imitate("password_reset")
    assert waits == [0.2]
    mailer.record_duration("password_reset", 0.4)
    for _ in range(20):
        await mailer.imitate("password_reset")
    assert set(waits) <= {0.2, 0.4} and len(waits) == 21  # a recent real duration, every time
    await mailer.imitate("invite")  # durations are per kind
    assert len(waits) == 21


async def test_the_email_changed_notice_is_delivered_to_a_real_smtp_server(smtp_sink):
    metrics = Metrics("t", "t")
    mailer = Mailer(_settings(smtp_url=smtp_sink.url), metrics)
    message = email_changed_message("new-home@example.org")
    await mailer.send(kind=message.kind, to="old-home@example.com", subject=message.subject, body=message.body,
                      link=message.link)
    mail = await smtp_sink.wait_for("old-home@example.com")
    assert mail.message["Subject"] == "Your Voyagent e-mail address was changed"
    assert "new-home@example.org" in mail.text
    assert not any(line.startswith(PUBLIC) for line in mail.text.splitlines())
    assert _count(metrics, "email_changed", "sent") == 1


async def test_without_smtp_a_message_without_a_link_logs_an_empty_link(caplog):
    metrics = Metrics("t", "t")
    mailer = Mailer(_settings(), metrics)
    message = email_changed_message("new-home@example.org")
    with caplog.at_level(logging.INFO, logger="voyagent.email"):
        await mailer.send(kind=message.kind, to="old-home@example.com", subject=message.subject, body=message.body,
                          link=message.link)
    assert [r.getMessage() for r in caplog.records if r.name == "voyagent.email"] == [
        'email kind=email_changed to=old-home@example.com subject="Your Voyagent e-mail address was changed" link=']
    assert _count(metrics, "email_changed", "logged") == 1
