"""Verifiable documents: the code printed (and put in a QR code) on every ticket, score report
and certificate, and how anyone holding it checks that the document is genuine.

A code is ``<kind tag>-<reference>-<MAC>``, e.g. ``T-105581261100101-K7QX3M2PZR4V9H8D``:

- the kind tag says which kind of document it is (``T`` ticket, ``R`` report, ``C``
  certificate) and so which verifier answers;
- the reference says which document (a ticket number, a report number, ...): upper-case letters
  and digits, as the owning service chooses;
- the MAC is HMAC-SHA256 over kind and reference, keyed with a key derived from the server's
  secret and truncated to 80 bits (16 base32 characters). Without the secret nobody can make
  a code that verifies, so a forged or altered code is refused before any database lookup, and
  guessing one is hopeless (2^80 tries).

What a checker sees is decided by the owning service's verifier, registered here by kind::

    async def verify_report(reference: str) -> Verification | None: ...
    documents.register_verifier(DocumentKind.REPORT, verify_report)

The verifier answers for a reference whose MAC already checked out: ``None`` when no such
document exists (any more), else a :class:`Verification`; ``valid=False`` with a ``note`` for
a document that exists but no longer counts (a superseded report, say). Verifier modules
register themselves when imported; :data:`VERIFIER_MODULES` lists those imported before the
first verification, so a verifier never depends on which module happened to load first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cetgql.settings import get_settings

logger = logging.getLogger("cetgql.documents")


class DocumentKind(StrEnum):
    TICKET = "TICKET"  # 准考证 (T5)
    REPORT = "REPORT"  # 成绩报告单 (R4, R5)
    CERTIFICATE = "CERTIFICATE"  # 成绩证明 (R8)


_TAGS: dict[DocumentKind, str] = {
    DocumentKind.TICKET: "T",
    DocumentKind.REPORT: "R",
    DocumentKind.CERTIFICATE: "C",
}
_KINDS = {tag: kind for kind, tag in _TAGS.items()}
_REFERENCE = re.compile(r"^[0-9A-Z]{1,40}$")
_MAC_CHARS = 16  # 80 bits in base32
MAX_CODE_LENGTH = 2 + 40 + 1 + _MAC_CHARS

# Modules whose import registers a verifier; imported before the first verification.
VERIFIER_MODULES: list[str] = ["cetgql.services.tickets", "cetgql.services.score_documents"]


@dataclass(frozen=True)
class Fact:
    """One line a checker compares with the paper: a stable key, its label, the value."""

    key: str
    label_zh: str
    label_en: str
    value: str

    def label(self, language: str) -> str:
        return self.label_en if language == "en" else self.label_zh


@dataclass(frozen=True)
class Verification:
    """What a genuine code tells whoever checks it."""

    kind: DocumentKind
    reference: str
    title: str  # what the document is, e.g. "2026年上半年 英语四级（笔试）准考证"
    holder_name: str
    id_number_masked: str
    issued_at: datetime | None
    facts: tuple[Fact, ...] = field(default_factory=tuple)
    valid: bool = True
    note: str | None = None  # why a genuine document no longer counts


Verifier = Callable[[str], Awaitable[Verification | None]]
_verifiers: dict[DocumentKind, Verifier] = {}
_modules_loaded = False


def register_verifier(kind: DocumentKind | str, verifier: Verifier) -> None:
    """Make ``verifier`` answer for codes of ``kind`` (the last registration wins)."""
    _verifiers[DocumentKind(kind)] = verifier


def _key() -> bytes:
    """A key of its own, derived from the secret: a document code can never double as a
    signed URL's signature, or the other way round."""
    secret = get_settings().secret_key.encode()
    return hmac.new(secret, b"cetgql documents v1", hashlib.sha256).digest()


def _mac(kind: DocumentKind, reference: str) -> str:
    digest = hmac.new(_key(), f"{kind.value}\n{reference}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode("ascii")


def issue_code(kind: DocumentKind | str, reference: str) -> str:
    """The verification code of a document; the same kind and reference give the same code."""
    document_kind = DocumentKind(kind)
    if not _REFERENCE.match(reference):
        raise ValueError(
            f"a document reference is 1-40 upper-case letters or digits: {reference!r}"
        )
    return f"{_TAGS[document_kind]}-{reference}-{_mac(document_kind, reference)}"


def verify_url(code: str) -> str:
    """The public page that shows what the code verifies: what the QR code holds."""
    return f"{get_settings().public_url}/verify/{code}"


def parse_code(code: str) -> tuple[DocumentKind, str] | None:
    """Kind and reference of a genuine code; ``None`` for anything we did not issue.
    Case and surrounding spaces do not matter (codes get typed in by hand)."""
    text = code.strip().upper()
    if len(text) > MAX_CODE_LENGTH:
        return None
    parts = text.split("-")
    if len(parts) != 3:
        return None
    tag, reference, mac = parts
    kind = _KINDS.get(tag)
    if kind is None or not _REFERENCE.match(reference) or len(mac) != _MAC_CHARS:
        return None
    if not hmac.compare_digest(_mac(kind, reference), mac):
        return None
    return kind, reference


def _load_verifier_modules() -> None:
    global _modules_loaded
    if _modules_loaded:
        return
    for name in VERIFIER_MODULES:
        importlib.import_module(name)
    _modules_loaded = True


async def verify(code: str) -> Verification | None:
    """What the code verifies, or ``None`` when it is forged, altered or names nothing."""
    parsed = parse_code(code)
    if parsed is None:
        return None
    kind, reference = parsed
    _load_verifier_modules()
    verifier = _verifiers.get(kind)
    if verifier is None:
        logger.warning("no verifier registered for %s documents", kind.value)
        return None
    return await verifier(reference)
