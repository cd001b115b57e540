"""Real local message sinks for the notifier: an SMTP server (aiosmtpd) and an SMS webhook
(a stdlib HTTP server), each on a free port in a thread of its own, recording what arrives."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

CODE = re.compile(r"\b(\d{6})\b")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mail:
    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.sink.lock:
            self.sink.mails.append(Mail(list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@dataclass
class SmtpSink:
    """A running SMTP server; ``mails`` is what it received."""

    port: int = field(default_factory=free_port)
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None

    def start(self) -> SmtpSink:
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.mails if address in m.recipients]

    def code_for(self, address: str) -> str:
        """The code in the newest mail to this address."""
        mails = self.to(address)
        assert mails, f"no mail to {address}"
        found = CODE.search(mails[-1].text)
        assert found, mails[-1].text
        return found.group(1)


@dataclass
class WebhookSink:
    """A running HTTP server playing an SMS gateway adapter: it records every JSON POST and
    answers ``status`` (set it to 500 to play a broken gateway)."""

    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"

    def start(self) -> WebhookSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                sink.received.append(json.loads(self.rfile.read(length)))
                self.send_response(sink.status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def code_for(self, phone: str) -> str:
        texts = [m["text"] for m in self.received if m.get("to") == phone]
        assert texts, f"no SMS to {phone}: {self.received}"
        found = CODE.search(texts[-1])
        assert found, texts[-1]
        return found.group(1)
