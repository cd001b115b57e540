"""Download routes of score documents: the electronic report and the score certificate, behind
signed, expiring URLs handed out by ``Score.electronicReportUrl`` and
``ScoreCertificate.pdfUrl`` to the owner only. A missing, wrong or expired signature is 403
whether or not the document exists."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cetgql.services import score_documents, signed_urls
from cetgql.services.errors import DomainError, message_for

_FORBIDDEN = "Forbidden: the link is invalid or has expired."
_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _signed(request: Request, path: str) -> bool:
    query = request.query_params
    return signed_urls.verify(path, query.get("expires"), query.get("signature"))


def _pdf(content: bytes, filename: str) -> Response:
    return Response(
        content,
        media_type="application/pdf",
        headers={**_HEADERS, "Content-Disposition": f'inline; filename="{filename}"'},
    )


def _unprintable(error: DomainError) -> Response:
    problem = error.problems[0]
    text = f"{problem.code.value}: {message_for(problem.code)} {problem.detail or ''}\n"
    return Response(text, status_code=409, media_type="text/plain; charset=utf-8", headers=_HEADERS)


async def report_pdf(request: Request) -> Response:
    report_id: int = request.path_params["report_id"]
    if not _signed(request, score_documents.report_path(report_id)):
        return Response(_FORBIDDEN, status_code=403)
    try:
        content, filename = await score_documents.download_report(report_id)
    except score_documents.DownloadRefused:
        return Response("Forbidden: the report is not available.", status_code=403)
    except DomainError as error:
        return _unprintable(error)
    return _pdf(content, filename)


async def certificate_pdf(request: Request) -> Response:
    certificate_id: int = request.path_params["certificate_id"]
    if not _signed(request, score_documents.certificate_path(certificate_id)):
        return Response(_FORBIDDEN, status_code=403)
    try:
        content, filename = await score_documents.download_certificate(certificate_id)
    except score_documents.DownloadRefused:
        return Response("Forbidden: the certificate is not available.", status_code=403)
    except DomainError as error:
        return _unprintable(error)
    return _pdf(content, filename)


def routes() -> list[Any]:
    return [
        Route("/files/score-reports/{report_id:int}", report_pdf, methods=["GET"]),
        Route("/files/score-certificates/{certificate_id:int}", certificate_pdf, methods=["GET"]),
    ]
