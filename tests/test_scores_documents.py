"""Electronic reports (R5) and score certificates (R8): the PDFs carry the candidate's name,
scores and an embedded CJK font; their QR codes verify through verifyDocument; only the owner
gets the links, and only when the rules allow."""

from __future__ import annotations

from datetime import timedelta

import httpx
from strawberry.relay import to_base64

from cetgql import models
from cetgql.services import clock, documents
from cetgql.services.documents import DocumentKind
from tests.scores_support import (
    USER_ERRORS,
    VERIFY,
    beijing,
    by_ticket,
    history,
    move_to,
    oral_ticket,
    person,
    released_session,
    row,
    session,
    token,
    written,
    written_ticket,
)
from tests.scores_support import admin as make_admin
from tests.tickets_support import pdf_fonts, pdf_text

ISSUE = f"""
mutation($input: IssueScoreCertificateInput!) {{ issueScoreCertificate(input: $input) {{
  certificate {{ id number verificationCode pdfUrl issuedAt }} {USER_ERRORS} }} }}"""


async def _get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.get(url.removeprefix("http://testserver"))


async def test_the_electronic_report_pdf_and_its_qr_code(gql, client) -> None:
    national = await make_admin()
    alice = await person("欧阳𠀀")  # a rare character of CJK Extension B
    written_no, oral_no = written_ticket("2024H1"), oral_ticket("2024H1")
    move_to(beijing("2024-08-01 09:00"))
    await released_session(
        gql,
        national,
        "2024H1",
        [written(written_no, alice, 588.5), row(oral_no, alice, oral="优秀")],
        at=beijing("2024-08-20 10:00"),
    )
    move_to(beijing("2024-09-10 10:00"))
    score = by_ticket(await history(gql, alice))[written_no]
    response = await _get(client, score["electronicReportUrl"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    text = pdf_text(response.content)
    for expected in ("成绩报告单", "欧阳𠀀", "588.5", "优秀", score["reportNumber"], written_no):
        assert expected in text, expected
    assert "1101*" in text and alice.id_number not in text  # the ID is masked
    assert "签发日期：2024年8月20日" in text  # issued at the release, not at the import
    # Embedded and subset: the CJK face (Noto Sans CJK under its CSS family name) and, for
    # the Extension B character of the name, the rare-character face.
    embedded = [f["name"] for f in pdf_fonts(response.content) if f["emb"] == "yes"]
    assert any("CET-Sans" in n for n in embedded) and any("CET-Rare" in n for n in embedded)

    code = score["reportVerificationCode"]
    assert code in text
    found = (await gql.data(VERIFY, {"code": code}))["verifyDocument"]
    assert (found["valid"], found["kind"], found["holderName"]) == (True, "REPORT", "欧阳𠀀")
    assert "成绩报告单" in found["title"]
    facts = {f["key"]: f["value"] for f in found["facts"]}
    assert facts["total"] == "588.5" and facts["oralGrade"] == "优秀"
    assert found["idNumberMasked"].startswith("1101") and "*" in found["idNumberMasked"]

    # A tampered link is refused; so is a forged code.
    assert (await _get(client, score["electronicReportUrl"] + "0")).status_code == 403
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert (await gql.data(VERIFY, {"code": forged}))["verifyDocument"]["valid"] is False


async def test_no_code_verifies_before_the_release(gql) -> None:
    national = await make_admin()
    alice = await person("杜牧")
    at = clock.now() + timedelta(days=1)
    await released_session(
        gql, national, "2025H1", [written(written_ticket("2025H1"), alice, 500)], at=at
    )
    report = await models.ScoreReport.get()
    code = documents.issue_code(DocumentKind.REPORT, f"{report.number}V{report.version}")
    assert (await gql.data(VERIFY, {"code": code}))["verifyDocument"]["valid"] is False
    move_to(at)
    assert (await gql.data(VERIFY, {"code": code}))["verifyDocument"]["valid"] is True


async def test_other_languages_get_an_electronic_certificate(gql, client) -> None:
    national = await make_admin()
    alice = await person("紫式部")
    ticket = written_ticket("2024H1", level=3)  # CJT4, Japanese
    move_to(beijing("2024-08-01 09:00"))
    await released_session(
        gql, national, "2024H1", [written(ticket, alice, 400)], at=beijing("2024-08-20 10:00")
    )
    move_to(beijing("2024-09-10 10:00"))
    score = by_ticket(await history(gql, alice))[ticket]
    assert score["subject"]["code"] == "CJT4"
    text = pdf_text((await _get(client, score["electronicReportUrl"])).content)
    assert "证书" in text and "成绩报告单" not in text and "日语四级" in text
    found = (await gql.data(VERIFY, {"code": score["reportVerificationCode"]}))["verifyDocument"]
    assert "证书" in found["title"]


async def test_certificates_for_any_session_since_june_2005(gql, client) -> None:
    national = await make_admin()
    alice, bob = await person("王昭君"), await person("貂蝉")
    old, low = written_ticket("2006H1"), written_ticket("2006H1", seat=2)
    await released_session(
        gql, national, "2006H1", [written(old, alice, 455), written(low, bob, 210)]
    )
    score = by_ticket(await history(gql, alice))[old]
    assert score["electronicReportUrl"] is None and score["electronicReportFrom"] is None
    score_id = score["id"]
    data = await gql.data(ISSUE, {"input": {"scoreId": score_id}}, token=await token(alice))
    payload = data["issueScoreCertificate"]
    assert payload["userErrors"] == []
    certificate = payload["certificate"]
    assert len(certificate["number"]) == 18

    response = await _get(client, certificate["pdfUrl"])
    assert response.status_code == 200
    text = pdf_text(response.content)
    for expected in ("成绩证明", "王昭君", "455", certificate["number"], score["reportNumber"]):
        assert expected in text, expected
    assert any("CET-Sans" in f["name"] and f["emb"] == "yes" for f in pdf_fonts(response.content))

    found = (await gql.data(VERIFY, {"code": certificate["verificationCode"]}))["verifyDocument"]
    assert (found["valid"], found["kind"], found["holderName"]) == (True, "CERTIFICATE", "王昭君")
    facts = {f["key"]: f["value"] for f in found["facts"]}
    assert facts["certificate"] == certificate["number"] and facts["total"] == "455.0"

    # Again for the same report: the same certificate.
    again = await gql.data(ISSUE, {"input": {"scoreId": score_id}}, token=await token(alice))
    assert again["issueScoreCertificate"]["certificate"]["number"] == certificate["number"]
    mine = await gql.data(
        "query { viewer { scoreCertificates { number } } }", token=await token(alice)
    )
    assert mine["viewer"]["scoreCertificates"] == [{"number": certificate["number"]}]

    # No report, no certificate (R4); someone else's score is not found.
    bob_score = by_ticket(await history(gql, bob))[low]
    data = await gql.data(ISSUE, {"input": {"scoreId": bob_score["id"]}}, token=await token(bob))
    assert [e["code"] for e in data["issueScoreCertificate"]["userErrors"]] == ["NO_SCORE_REPORT"]
    data = await gql.data(ISSUE, {"input": {"scoreId": score_id}}, token=await token(bob))
    assert [e["code"] for e in data["issueScoreCertificate"]["userErrors"]] == ["NOT_FOUND"]
    assert await models.ScoreCertificate.all().count() == 1


async def test_a_score_of_an_unreleased_session_cannot_be_certified(gql) -> None:
    national = await make_admin()
    alice = await person("西施")
    ticket = written_ticket("2025H2")
    await released_session(
        gql, national, "2025H2", [written(ticket, alice, 500)], at=clock.now() + timedelta(days=1)
    )
    record = await models.ScoreRecord.get(ticket_number=ticket)
    data = await gql.data(
        ISSUE, {"input": {"scoreId": to_base64("Score", record.id)}}, token=await token(alice)
    )
    assert [e["code"] for e in data["issueScoreCertificate"]["userErrors"]] == ["NOT_FOUND"]
    await session("2025H2")
