"""Local stand-ins for the alert receivers, so the stack's alerts can be seen: one process, three files.

- SMTP (aiosmtpd, AUTH PLAIN with the stack's secret password): ``sinks/mail.jsonl``
- PagerDuty Events API v2 (``POST /v2/enqueue``, validated as PagerDuty does): ``sinks/pagerduty.jsonl``
- the Watchdog heartbeat webhook (``POST /heartbeat``): ``sinks/heartbeat.jsonl``

    python -m otelkit.devstack.sinks --state-dir DIR --smtp-port 1025 --http-port 8025
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from otelkit.devstack.pagerduty_events import NOT_JSON, decode, response_for, send_json


class JsonLines:
    """Append-only JSON lines, one writer lock for the SMTP and HTTP threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps({"received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record})
        with self._lock, self.path.open("a") as out:
            out.write(line + "\n")


def _http_handler(pagerduty: JsonLines, heartbeat: JsonLines) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            send_json(self, 200, {"status": "ok"})  # the stack's health check

        def do_POST(self) -> None:
            body = decode(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if self.path == "/heartbeat":
                heartbeat.append({"body": None if body is NOT_JSON else body})
                send_json(self, 200, {"status": "ok"})
            elif self.path == "/v2/enqueue":
                status, reply = response_for(body)
                pagerduty.append({"event": None if body is NOT_JSON else body, "errors": reply.get("errors", [])})
                send_json(self, status, reply)
            else:
                send_json(self, 404, {"status": "not found"})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class MailHandler:
    def __init__(self, mail: JsonLines) -> None:
        self.mail = mail

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        self.mail.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "subject": str(message["Subject"] or ""),
                "text": text.get_content() if text is not None else "",  # type: ignore[attr-defined]
            }
        )
        return "250 Message accepted for delivery"


def serve(state_dir: Path, smtp_port: int, http_port: int) -> None:
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
    except ImportError as error:
        raise SystemExit("the SMTP sink needs aiosmtpd: pip install -e '.[dev]' (./dev stack does)") from error
    sinks = state_dir / "sinks"
    sinks.mkdir(parents=True, exist_ok=True)
    password = (state_dir / "secrets" / "smtp_password").read_text()

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and data.password.decode() == password:
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
    smtp = Controller(
        MailHandler(JsonLines(sinks / "mail.jsonl")),
        hostname="127.0.0.1",
        port=smtp_port,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,  # loopback only; Go allows PLAIN auth to 127.0.0.1 without TLS
        auth_exclude_mechanism=["LOGIN"],  # Go clients (Alertmanager) use PLAIN
    )
    smtp.start()
    handler = _http_handler(JsonLines(sinks / "pagerduty.jsonl"), JsonLines(sinks / "heartbeat.jsonl"))
    http = ThreadingHTTPServer(("127.0.0.1", http_port), handler)
    print(f"sinks: SMTP 127.0.0.1:{smtp_port}, HTTP 127.0.0.1:{http_port}, files in {sinks}", flush=True)
    try:
        http.serve_forever()
    finally:
        smtp.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="local e-mail, PagerDuty and heartbeat sinks")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.state_dir, args.smtp_port, args.http_port)


if __name__ == "__main__":
    main()
