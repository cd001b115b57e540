"""HTTP routes of printed documents: ticket PDFs and batches behind signed, expiring URLs
(``services/signed_urls``), and the public page a document's QR code opens.

A signed file URL is its own permission, handed out by a GraphQL field that already checked
who may have it: a missing, wrong or expired signature is 403 whether or not the document
exists, so the route reveals nothing. ``/verify/{code}`` is public by design: the code is
printed on the document and cannot be forged (``services/documents``).
"""

from __future__ import annotations

import html
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from cetgql.services import clock, documents, signed_urls, tickets
from cetgql.services.documents import DocumentKind, Verification
from cetgql.services.errors import DomainError, ErrorCode, message_for

logger = logging.getLogger("cetgql.documents")

_FORBIDDEN = "Forbidden: the link is invalid or has expired."
_PRIVATE_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _signed(request: Request, path: str) -> bool:
    """Checked against the path we would have signed, not the one received, so a proxy
    prefix or an odd encoding cannot make a difference."""
    query = request.query_params
    return signed_urls.verify(path, query.get("expires"), query.get("signature"))


def _pdf(content: bytes, filename: str) -> Response:
    return Response(
        content,
        media_type="application/pdf",
        headers={**_PRIVATE_HEADERS, "Content-Disposition": f'inline; filename="{filename}"'},
    )


def _unprintable(error: DomainError) -> Response:
    """A ticket whose data cannot be printed: say so plainly instead of a broken PDF."""
    detail = "; ".join(p.detail or "" for p in error.problems)
    code = ErrorCode.MISSING_GLYPH
    text = f"{code.value}: {message_for(code)} {detail}\n{message_for(code, 'en')} {detail}\n"
    return Response(
        text, status_code=409, media_type="text/plain; charset=utf-8", headers=_PRIVATE_HEADERS
    )


async def ticket_pdf(request: Request) -> Response:
    ticket_id: int = request.path_params["ticket_id"]
    if not _signed(request, tickets.ticket_path(ticket_id)):
        return Response(_FORBIDDEN, status_code=403)
    try:
        content, filename = await tickets.download(ticket_id)
    except tickets.DownloadRefused:
        return Response("Forbidden: the ticket cannot be printed now.", status_code=403)
    except DomainError as error:
        return _unprintable(error)
    return _pdf(content, filename)


async def ticket_batch(request: Request) -> Response:
    params = request.path_params
    batch = await tickets.batch_from_path(params["session"], params["key"], params["subject"])
    if batch is None or not _signed(request, batch.path):
        return Response(_FORBIDDEN, status_code=403)
    try:
        content = await tickets.render_batch(await tickets.batch_tickets(batch))
    except DomainError as error:
        if error.problems[0].code == ErrorCode.MISSING_GLYPH:
            return _unprintable(error)
        return Response(message_for(error.problems[0].code, "en"), status_code=404)
    return _pdf(content, f"tickets-{batch.session.code}-{batch.key}.pdf")


# --- the page a QR code opens --------------------------------------------------------------

_KIND_NAMES = {
    DocumentKind.TICKET: "准考证",
    DocumentKind.REPORT: "成绩报告单",
    DocumentKind.CERTIFICATE: "成绩证明",
}
_PAGE_CSS = """
body { font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif;
  margin: 0; padding: 16px; background: #f4f5f7; color: #222; }
main { max-width: 560px; margin: 0 auto; background: #fff; border-radius: 8px;
  padding: 20px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.verdict { font-size: 22px; margin: 0 0 4px; }
.ok { color: #137333; } .bad { color: #b3261e; }
h2 { font-size: 16px; font-weight: normal; margin: 0 0 16px; color: #444; }
table { width: 100%; border-collapse: collapse; }
th { text-align: left; font-weight: normal; color: #666; width: 7em; vertical-align: top; }
th, td { padding: 6px 0; border-top: 1px solid #eee; }
p.note { color: #666; font-size: 13px; }
"""


def _page(title: str, content: str, status: int = 200) -> HTMLResponse:
    page = (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title><style>{_PAGE_CSS}</style></head>"
        f"<body><main>{content}</main></body></html>"
    )
    return HTMLResponse(
        page,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "X-Robots-Tag": "noindex",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


def _rows(found: Verification) -> str:
    e = html.escape
    rows: list[tuple[str, str]] = [
        ("姓名", found.holder_name),
        ("证件号码", found.id_number_masked),
        *((fact.label_zh, fact.value) for fact in found.facts),
    ]
    if found.issued_at is not None:
        issued = found.issued_at.astimezone(clock.SHANGHAI).strftime("%Y-%m-%d %H:%M")
        rows.append(("签发时间", issued))
    return "".join(f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>" for label, value in rows)


async def verify_page(request: Request) -> Response:
    code: str = request.path_params["code"]
    found = await documents.verify(code)
    if found is None:
        return _page(
            "核验失败",
            '<p class="verdict bad">✗ 未能核验</p>'
            "<h2>该核验码无效：证件可能是伪造的，或核验码有误。</h2>"
            '<p class="note">This code does not verify: the document may be forged, or the '
            "code mistyped.</p>",
            status=404,
        )
    kind = _KIND_NAMES.get(found.kind, found.kind.value)
    verdict = (
        f'<p class="verdict ok">✓ 真实有效的{html.escape(kind)}</p>'
        if found.valid
        else f'<p class="verdict bad">✗ 该{html.escape(kind)}已失效</p>'
    )
    note = f'<p class="note">{html.escape(found.note)}</p>' if found.note else ""
    return _page(
        f"{kind}核验",
        f"{verdict}<h2>{html.escape(found.title)}</h2><table>{_rows(found)}</table>{note}",
    )


def routes() -> list[Any]:
    return [
        Route("/files/tickets/{ticket_id:int}", ticket_pdf, methods=["GET"]),
        Route("/files/ticket-batches/{session}/{key}/{subject}", ticket_batch, methods=["GET"]),
        Route("/verify/{code}", verify_page, methods=["GET"]),
    ]
