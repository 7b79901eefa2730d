"""The texts of the e-mails (auth.md, E-mails): subject, plain-text body and the one action link (if any)."""

from __future__ import annotations

import dataclasses

from voyagent.config import Settings

VERIFICATION_SUBJECT = "Confirm your e-mail address for Voyagent"
PASSWORD_RESET_SUBJECT = "Reset your Voyagent password"
EMAIL_CHANGED_SUBJECT = "Your Voyagent e-mail address was changed"


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One e-mail ready for ``Mailer.deliver``: the link appears once in ``body``, alone on its line ("" for none)."""

    kind: str
    subject: str
    body: str
    link: str


def action_link(settings: Settings, path: str, token: str) -> str:
    """``<PUBLIC_URL><path>?token=<token>`` (tokens are URL-safe and not escaped)."""
    return f"{settings.public_url.rstrip('/')}{path}?token={token}"


def header_text(text: str) -> str:
    """A header value: each CR or LF becomes a space."""
    return text.replace("\r", " ").replace("\n", " ")


def describe_duration(seconds: int) -> str:
    """A lifetime in words: ``24 hours``, ``1 hour``, ``7 days``, ``90 seconds``."""
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0 and not (unit == "day" and seconds < 2 * 86_400):
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def verification_message(settings: Settings, token: str) -> Message:
    """The ``verification`` e-mail for a freshly minted verification token."""
    link = action_link(settings, "/verify-email", token)
    body = (
        "Hello,\n"
        "\n"
        "Please confirm your e-mail address for Voyagent by opening this link:\n"
        "\n"
        f"{link}\n"
        "\n"
        f"The link is valid for {describe_duration(settings.verification_ttl)} and can be used once.\n"
        "If you did not sign up for Voyagent or change your e-mail address, you can ignore this message.\n"
    )
    return Message("verification", VERIFICATION_SUBJECT, body, link)


def password_reset_message(settings: Settings, token: str) -> Message:
    """The ``password_reset`` e-mail for a freshly minted reset token."""
    link = action_link(settings, "/reset-password", token)
    body = (
        "Hello,\n"
        "\n"
        "Someone asked to reset the password of your Voyagent account. To choose a new password, open this link:\n"
        "\n"
        f"{link}\n"
        "\n"
        f"The link is valid for {describe_duration(settings.password_reset_ttl)} and can be used once.\n"
        "If you did not ask for a new password, you can ignore this message; your password stays unchanged.\n"
    )
    return Message("password_reset", PASSWORD_RESET_SUBJECT, body, link)


def email_changed_message(new_email: str) -> Message:
    """The ``email_changed`` notice to the old address: no link, names the new address, says what to do."""
    body = (
        "Hello,\n"
        "\n"
        f"The e-mail address of your Voyagent account was just changed to {new_email}.\n"
        "This address no longer receives the account's e-mails.\n"
        "\n"
        "If you made this change, you can ignore this message.\n"
        "If you did not, contact your agency admin at once: a password reset would now be sent to the new\n"
        "address, not to this one, so whoever changed it could take over your account.\n"
    )
    return Message("email_changed", EMAIL_CHANGED_SUBJECT, body, "")
