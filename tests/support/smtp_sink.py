"""A real SMTP server (aiosmtpd) on loopback that requires AUTH and keeps the messages it receives."""

from __future__ import annotations

import email
import email.policy
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .ports import free_port


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def part(self, content_type: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return str(part.get_content())  # type: ignore[attr-defined]
        return ""


class SmtpSink:
    """``host:port`` is the smarthost; only ``username``/``password`` may log in (AUTH is required)."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self.mails: list[Mail] = []
        self.failed_logins: list[str] = []
        self._changed = threading.Condition()
        self.port = free_port()
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_required=True,
            auth_require_tls=False,  # loopback only; Go's PLAIN auth allows 127.0.0.1 without TLS
            # aiosmtpd's LOGIN challenges ("User Name") differ from the usual "Username:" that Go
            # clients such as Alertmanager expect; PLAIN is what they use.
            auth_exclude_mechanism=["LOGIN"],
        )

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> SmtpSink:
        # Intended here (loopback, test credentials); aiosmtpd warns on every connection otherwise.
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            login, password = data.login.decode(), data.password.decode()
            if login == self.username and password == self.password:
                return AuthResult(success=True)
            self.failed_logins.append(login)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        mail = Mail(envelope.mail_from, list(envelope.rcpt_tos), message)  # type: ignore[arg-type]
        with self._changed:
            self.mails.append(mail)
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    def matching(self, predicate: Callable[[Mail], bool]) -> list[Mail]:
        with self._changed:
            return [mail for mail in self.mails if predicate(mail)]

    def wait_for(self, predicate: Callable[[Mail], bool], timeout: float) -> list[Mail]:
        with self._changed:
            self._changed.wait_for(lambda: any(predicate(m) for m in self.mails), timeout)
            return [mail for mail in self.mails if predicate(mail)]
