"""Email through Django's email backends (SMTP in production), one connection per thread.

Every message carries a Message-ID derived from its delivery, the same on a resend, so a
resend after a crash is recognisable as the same message by the receiving side.
"""

from __future__ import annotations

import contextlib
import smtplib
import threading

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend

from . import Backend, Message, PermanentFailure, Session, TransientFailure, register


def message_id(key: str) -> str:
    return f"<{key}@{settings.NOTIFICATIONS_EMAIL['MESSAGE_ID_DOMAIN']}>"


class _EmailSession(Session):
    def __init__(self, config: dict) -> None:
        self.config = config
        self.local = threading.local()
        self.lock = threading.Lock()
        self.connections: list[BaseEmailBackend] = []

    def _connection(self) -> BaseEmailBackend:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = get_connection(
                self.config["BACKEND"],
                fail_silently=False,
                host=self.config["HOST"],
                port=self.config["PORT"],
                username=self.config["USER"] or None,
                password=self.config["PASSWORD"] or None,
                use_tls=self.config["USE_TLS"],
                use_ssl=self.config["USE_SSL"],
                timeout=self.config["TIMEOUT"],
            )
            connection.open()
            self.local.connection = connection
            with self.lock:
                self.connections.append(connection)
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self.local, "connection", None)
        self.local.connection = None
        if connection is not None:
            # Already broken: that is why it is being dropped.
            with contextlib.suppress(OSError, smtplib.SMTPException):
                connection.close()

    def send(self, message: Message) -> str:
        msgid = message_id(message.idempotency_key)
        email = EmailMessage(
            subject=message.subject,
            body=message.body,
            from_email=self.config["FROM"],
            to=[message.address],
            headers={"Message-ID": msgid, "X-Gambit-Delivery": message.idempotency_key},
        )
        try:
            connection = self._connection()
            connection.send_messages([email])
        except (ValueError, smtplib.SMTPRecipientsRefused) as error:
            raise PermanentFailure("invalid_address", str(error)) from error
        except smtplib.SMTPResponseException as error:
            self._drop_connection()
            if 400 <= error.smtp_code < 500:
                raise TransientFailure(f"smtp_{error.smtp_code}", str(error)) from error
            raise PermanentFailure(
                f"smtp_{error.smtp_code}", str(error), provider_fault=error.smtp_code != 550
            ) from error
        except (OSError, smtplib.SMTPException) as error:
            self._drop_connection()
            raise TransientFailure("smtp_unavailable", str(error)) from error
        return msgid

    def close(self) -> None:
        for connection in self.connections:
            # The batch is over; a broken connection has nothing left to flush.
            with contextlib.suppress(OSError, smtplib.SMTPException):
                connection.close()


@register
class EmailBackend(Backend):
    key = "email"
    address_field = "email"
    consent_field = "email_consent"

    def __init__(self) -> None:
        self.config = settings.NOTIFICATIONS_EMAIL

    def problems(self) -> list[str]:
        return [] if self.config["BACKEND"] else ["NOTIFICATIONS_EMAIL_BACKEND is not set"]

    def session(self) -> Session:
        return _EmailSession(self.config)
