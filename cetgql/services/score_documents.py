"""Score documents: the electronic report (成绩报告单, for the other languages the certificate
证书, R5) and the score certificate (成绩证明, R8) as PDFs, and what their QR codes verify.

- Both are rendered from the report version's frozen content (``ScoreReport.content``), so a
  document shows exactly what that version said and verifies as such. Rendering uses the
  shared ``services/pdf`` (embedded CJK fonts, refusal of unprintable characters).
- Codes (``services/documents``): a report version's reference is its number, ``V`` and the
  version (``261110558100001V1``); a certificate's is its number. A superseded version (a
  correction after a score check, or a re-import) still verifies as genuine but not valid,
  naming the version that replaced it; a withdrawn report says so. Before the session's
  release no code verifies: the scores do not exist yet as far as anyone outside can tell.
- The download routes take signed, expiring URLs (``services/signed_urls``), handed out only
  to the owner; the route checks again that the report is current and available.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from cetgql.models import IdType, ScoreCertificate, ScoreReport
from cetgql.services import clock, documents, identity, pdf, score_release, score_rules, signed_urls
from cetgql.services.documents import DocumentKind, Fact, Verification

_ID_TYPES = {
    IdType.RESIDENT_ID: "居民身份证",
    IdType.HK_MACAO_PERMIT: "港澳居民来往内地通行证",
    IdType.TAIWAN_PERMIT: "台湾居民来往大陆通行证",
    IdType.HK_MACAO_RESIDENCE: "港澳居民居住证",
    IdType.TAIWAN_RESIDENCE: "台湾居民居住证",
    IdType.PASSPORT: "护照",
    IdType.STAFF: "工作证件",
}


def report_reference(report: ScoreReport) -> str:
    return f"{report.number}V{report.version}"


def report_code(report: ScoreReport) -> str:
    return documents.issue_code(DocumentKind.REPORT, report_reference(report))


def certificate_code(certificate: ScoreCertificate) -> str:
    return documents.issue_code(DocumentKind.CERTIFICATE, certificate.number)


def document_name(content: dict[str, Any]) -> str:
    """成绩报告单 for English, 证书 for the other languages (FAQ 十.4, 十四)."""
    return "成绩报告单" if content.get("language", "ENGLISH") == "ENGLISH" else "证书"


def report_title(content: dict[str, Any]) -> str:
    return f"{content['sessionName']} {content['subjectName']} {document_name(content)}"


def _facts(report: ScoreReport) -> list[Fact]:
    content = report.content
    facts = [
        Fact("number", "成绩报告单编号", "Report number", report.number),
        Fact("version", "版本", "Version", str(report.version)),
        Fact("session", "考次", "Session", content["session"]),
    ]
    written = content.get("written")
    if written:
        facts.append(Fact("subject", "笔试科目", "Written subject", written["subjectName"]))
        facts.append(Fact("ticket", "笔试准考证号", "Written ticket", written["ticket"]))
        facts.append(Fact("total", "总分", "Total", written["total"]))
        for key, zh, en in (
            ("listening", "听力", "Listening"),
            ("reading", "阅读", "Reading"),
            ("writingTranslation", "写作和翻译", "Writing and translation"),
        ):
            if written.get(key) is not None:
                facts.append(Fact(key, zh, en, written[key]))
    oral = content.get("oral")
    if oral:
        facts.append(Fact("oralSubject", "口试科目", "Oral subject", oral["subjectName"]))
        facts.append(Fact("oralTicket", "口试准考证号", "Oral ticket", oral["ticket"]))
        facts.append(Fact("oralGrade", "口试等级", "Oral grade", oral["grade"]))
    return facts


async def _successor(report: ScoreReport) -> ScoreReport | None:
    return (
        await ScoreReport.filter(number=report.number, version__gt=report.version)
        .order_by("version")
        .first()
    )


async def _released(report: ScoreReport) -> bool:
    return (await score_release.info(report.session_id)).released(clock.now())


async def issued_at(report: ScoreReport) -> datetime:
    """When the version took effect: a report made before its session's release is issued
    by the release."""
    release_at = (await score_release.info(report.session_id)).release_at
    return max(report.issued_at, release_at) if release_at else report.issued_at


async def _standing(report: ScoreReport) -> tuple[bool, str | None]:
    """Whether the version still counts, and if not, why."""
    if report.superseded_at is None:
        return True, None
    successor = await _successor(report)
    if successor is not None:
        return False, (
            f"该版本已于更正后作废，以第 {successor.version} 版为准。"
            f" Superseded by version {successor.version} after a correction."
        )
    return False, "该成绩报告单已撤销。 This report has been withdrawn."


async def verify_report(reference: str) -> Verification | None:
    number, _, version = reference.partition("V")
    if not version.isdigit():
        return None
    report = await ScoreReport.get_or_none(number=number, version=int(version))
    if report is None or not await _released(report):
        return None
    valid, note = await _standing(report)
    return Verification(
        kind=DocumentKind.REPORT,
        reference=reference,
        title=report_title(report.content),
        holder_name=report.name,
        id_number_masked=identity.mask_id_number(report.id_number),
        issued_at=await issued_at(report),
        facts=tuple(_facts(report)),
        valid=valid,
        note=note,
    )


async def verify_certificate(reference: str) -> Verification | None:
    certificate = await ScoreCertificate.filter(number=reference).select_related("report").first()
    if certificate is None or not await _released(certificate.report):
        return None
    report = certificate.report
    valid, note = await _standing(report)
    return Verification(
        kind=DocumentKind.CERTIFICATE,
        reference=reference,
        title=f"{report.content['sessionName']} {report.content['subjectName']} 成绩证明",
        holder_name=report.name,
        id_number_masked=identity.mask_id_number(report.id_number),
        issued_at=certificate.issued_at,
        facts=(
            Fact("certificate", "成绩证明编号", "Certificate number", certificate.number),
            *_facts(report),
        ),
        valid=valid,
        note=note,
    )


documents.register_verifier(DocumentKind.REPORT, verify_report)
documents.register_verifier(DocumentKind.CERTIFICATE, verify_certificate)


# --- the PDFs -------------------------------------------------------------------------------

DOCUMENT_CSS = """
.sheet { border: 0.6mm double #000; padding: 9mm 11mm 8mm; }
.head { text-align: center; border-bottom: 0.3mm solid #000; padding-bottom: 3mm; }
.head .exam { font-size: 13pt; }
.head h1 { font-size: 24pt; font-weight: bold; letter-spacing: 3mm; margin: 2mm 0 0; }
.head .sub { font-size: 10pt; color: #333; }
table { border-collapse: collapse; }
.who { width: 100%; margin-top: 5mm; }
.who th { width: 28mm; text-align: left; font-weight: normal; color: #333; padding: 1.4mm 0; }
.who td { font-size: 12pt; padding: 1.4mm 0; }
.scores { width: 100%; margin-top: 5mm; }
.scores th, .scores td { border: 0.25mm solid #000; padding: 2mm 3mm; text-align: center; }
.scores th { font-weight: normal; background: #f0f0f0; }
.scores .total { font-size: 16pt; font-weight: bold; }
.statement { margin-top: 5mm; font-size: 10pt; }
.verify { margin-top: 7mm; width: 100%; }
.verify td { vertical-align: middle; }
.verify .qr { width: 32mm; }
.verify .code { font-size: 9pt; color: #333; }
.number { letter-spacing: 0.4mm; }
"""


def _date(moment: datetime) -> str:
    local = moment.astimezone(clock.SHANGHAI)
    return f"{local.year}年{local.month}月{local.day}日"


def _sitting(content: dict[str, Any]) -> str:
    code = content["session"]
    year, half = int(code[:4]), int(code[-1])
    return f"{year}年{6 if half == 1 else 12}月"


def document_body(
    report: ScoreReport,
    *,
    heading: str,
    code: str,
    number_label: str,
    number: str,
    note: str,
    issued: datetime,
) -> str:
    """One A4 page of a report or certificate; every piece of data escaped."""
    e = html.escape
    content = report.content
    written = content.get("written")
    oral = content.get("oral")
    who = [
        ("姓名", e(report.name)),
        ("证件类型", e(_ID_TYPES.get(IdType(report.id_type), "证件"))),
        ("证件号码", e(identity.mask_id_number(report.id_number))),
        ("考试时间", e(_sitting(content))),
        ("考试科目", e(content["subjectName"])),
        (number_label, f'<span class="number">{e(number)}</span>'),
    ]
    if written:
        who.append(("笔试准考证号", e(written["ticket"])))
    if oral:
        who.append(("口试准考证号", e(oral["ticket"])))
    rows = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in who)
    score_rows = ""
    if written:

        def cell(value: str | None) -> str:
            return e(value) if value is not None else "—"

        score_rows += (
            "<tr><th>笔试总分</th><th>听力</th><th>阅读</th><th>写作和翻译</th></tr>"
            f'<tr><td class="total">{cell(written["total"])}</td>'
            f"<td>{cell(written.get('listening'))}</td><td>{cell(written.get('reading'))}</td>"
            f"<td>{cell(written.get('writingTranslation'))}</td></tr>"
        )
    if oral:
        score_rows += (
            f"<tr><th>口试（{e(oral['subjectName'])}）</th>"
            f'<td colspan="3" class="total">{e(oral["grade"])}</td></tr>'
        )
    verify = documents.verify_url(code)
    return (
        '<div class="sheet"><div class="head">'
        f'<div class="exam">{e(content["sessionName"])}</div>'
        f"<h1>{e(heading)}</h1>"
        f'<div class="sub">{e(content["subjectName"])}</div></div>'
        f'<table class="who">{rows}</table>'
        f'<table class="scores">{score_rows}</table>'
        f'<p class="statement">{e(note)}</p>'
        '<table class="verify"><tr>'
        f'<td class="qr">{pdf.qr_svg(verify)}</td>'
        f'<td class="code">扫描二维码或访问 {e(verify)} 核验真伪<br>'
        f"核验码：{e(code)}<br>签发日期：{e(_date(issued))}</td>"
        "</tr></table></div>"
    )


async def report_pdf(report: ScoreReport) -> bytes:
    name = document_name(report.content)
    body = document_body(
        report,
        heading=name,
        code=report_code(report),
        number_label="成绩报告单编号" if name == "成绩报告单" else "证书编号",
        number=report.number,
        note=f"本电子{name}与纸质{name}具有同等效力。"
        + (f"（第 {report.version} 版）" if report.version > 1 else ""),
        issued=await issued_at(report),
    )
    return await pdf.render_pdf(
        pdf.html_document(body, title=report_title(report.content), css=DOCUMENT_CSS)
    )


async def certificate_pdf(certificate: ScoreCertificate, report: ScoreReport) -> bytes:
    body = document_body(
        report,
        heading="成绩证明",
        code=certificate_code(certificate),
        number_label="成绩证明编号",
        number=certificate.number,
        note=f"兹证明该考生参加{report.content['sessionName']}，成绩如上，"
        f"对应成绩报告单编号 {report.number}。本成绩证明与成绩报告单具有同等效力。",
        issued=certificate.issued_at,
    )
    title = f"{report.content['subjectName']} 成绩证明 {certificate.number}"
    return await pdf.render_pdf(pdf.html_document(body, title=title, css=DOCUMENT_CSS))


# --- downloads ------------------------------------------------------------------------------


def report_path(report_id: int) -> str:
    return f"/files/score-reports/{report_id}"


def certificate_path(certificate_id: int) -> str:
    return f"/files/score-certificates/{certificate_id}"


def report_url(report_id: int) -> str:
    return signed_urls.sign(report_path(report_id))


def certificate_url(certificate_id: int) -> str:
    return signed_urls.sign(certificate_path(certificate_id))


class DownloadRefused(Exception):
    """The document is no longer current, or not available (yet)."""


async def download_report(report_id: int) -> tuple[bytes, str]:
    """The electronic report behind a signed link; checked again: still the current version,
    a session from 2021 H1, and 10 working days after release."""
    report = await ScoreReport.get_or_none(id=report_id, superseded_at__isnull=True)
    if report is None:
        raise DownloadRefused
    info = await score_release.info(report.session_id)
    if not (
        score_rules.electronic_reports(info.year, info.half)
        and info.electronic_available(clock.now())
    ):
        raise DownloadRefused
    return await report_pdf(report), f"{report.number}.pdf"


async def download_certificate(certificate_id: int) -> tuple[bytes, str]:
    certificate = await ScoreCertificate.filter(id=certificate_id).select_related("report").first()
    if certificate is None or not await _released(certificate.report):
        raise DownloadRefused
    return await certificate_pdf(certificate, certificate.report), f"{certificate.number}.pdf"
