"""Outgoing messages: email by SMTP, SMS through an HTTP webhook, every one kept in the outbox.

SMS gateways differ per provider and contract, so the back end speaks one tiny protocol
(``POST {"to": ..., "text": ...}`` as JSON to ``CETGQL_SMS_WEBHOOK_URL``) and an operator puts
their gateway's adapter behind it. Every message is written to the ``OutboxMessage`` table
first: admins can read what was sent, a failed delivery keeps its error next to the text (so a
code is never lost silently), and in demo mode, or when no transport is configured, the outbox
is the only destination, which lets the whole flow run offline.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from enum import StrEnum

import httpx

from cetgql.models import OutboxMessage
from cetgql.settings import Settings, get_settings

logger = logging.getLogger("cetgql.notifier")

SMTP_TIMEOUT_SECONDS = 15.0
WEBHOOK_TIMEOUT_SECONDS = 10.0


class Channel(StrEnum):
    SMS = "SMS"
    EMAIL = "EMAIL"


def _send_email(settings: Settings, destination: str, subject: str, body: str) -> None:
    """Blocking SMTP delivery (run in a worker thread)."""
    assert settings.smtp_host
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = destination
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="cetgql")
    message.set_content(body, charset="utf-8")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(message)


async def _send_sms(settings: Settings, destination: str, body: str) -> None:
    assert settings.sms_webhook_url
    async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
        response = await client.post(
            settings.sms_webhook_url, json={"to": destination, "text": body}
        )
        response.raise_for_status()


def _transport_configured(settings: Settings, channel: Channel) -> bool:
    if settings.demo:
        return False
    if channel == Channel.EMAIL:
        return bool(settings.smtp_host)
    return bool(settings.sms_webhook_url)


async def send(channel: Channel, destination: str, subject: str, body: str) -> OutboxMessage:
    """Record the message, then deliver it if a transport is configured.

    Delivery failures are not raised: the caller has already committed its own work (the code
    exists), so the failure is logged and kept on the outbox row where admins can see it and
    the text can be recovered.
    """
    settings = get_settings()
    message = await OutboxMessage.create(
        channel=channel.value, destination=destination, subject=subject[:255], body=body
    )
    if not _transport_configured(settings, channel):
        return message
    try:
        if channel == Channel.EMAIL:
            await asyncio.to_thread(_send_email, settings, destination, subject, body)
        else:
            await _send_sms(settings, destination, body)
    except Exception as error:  # any transport failure is recorded, never lost
        logger.exception("%s delivery to %s failed (outbox %s)", channel, destination, message.id)
        message.error = f"{type(error).__name__}: {error}"[:2000]
        await message.save(update_fields=["error"])
        return message
    message.delivered = True
    await message.save(update_fields=["delivered"])
    return message
