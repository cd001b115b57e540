"""The ticket PDF (T5) read back with poppler, its cache, unprintable characters, oral tickets
(T2), batches for admins, and verifying a ticket by its QR code."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from cetgql import models
from cetgql.models import Role, SubjectKind
from cetgql.services import clock, documents, pdf
from cetgql.services.errors import DomainError, ErrorCode
from tests.registration_setup import build_world, qualified_candidate
from tests.tickets_support import (
    ALLOCATE,
    MY_TICKETS,
    PRINT_BATCH,
    PUBLISH,
    SET_PRINT_WINDOW,
    SET_ROOMS,
    VERIFY,
    admin_token,
    close_registration,
    codes,
    oral_center_id,
    paid_candidate,
    pdf_fonts,
    pdf_pages,
    pdf_text,
    photo_bytes,
    rename,
    rooms_input,
    unit,
)

UNPRINTABLE = "\ue000"  # a private-use character: no font has a glyph for it


async def _school_flow(gql, world, *, window=True):
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    await gql.data(SET_ROOMS, {"input": rooms_input((1, 30, "逸夫楼 101"))}, token=school)
    await close_registration(world)
    allocated = await gql.data(ALLOCATE, {"input": unit()}, token=school)
    assert allocated["allocateSeats"]["userErrors"] == []
    if window:
        now = clock.now()
        result = await gql.data(
            SET_PRINT_WINDOW,
            {
                "input": unit(
                    opensAt=(now - timedelta(hours=1)).isoformat(),
                    closesAt=(now + timedelta(days=5)).isoformat(),
                )
            },
            token=school,
        )
        assert result["setTicketPrintWindow"]["userErrors"] == []
    return school


async def _ticket(gql, candidate):
    data = await gql.data(MY_TICKETS, {"s": "2026H1"}, token=candidate.token)
    return data["viewer"]["tickets"]


async def test_rare_characters_print_with_the_fallback_font(gql):
    world = await build_world()
    rare = await paid_candidate(gql, world, name="王𠀀𪚥", photo=photo_bytes())
    school = await _school_flow(gql, world)
    published = await gql.data(PUBLISH, {"input": unit()}, token=school)
    assert published["publishTickets"]["userErrors"] == []
    (ticket,) = await _ticket(gql, rare)
    content = (await gql.http.get(ticket["pdfUrl"])).content
    assert "王𠀀𪚥" in pdf_text(content)
    names = [f["name"] for f in pdf_fonts(content) if f["emb"] == "yes"]
    assert any("CET-Sans" in n for n in names) and any("CET-Rare" in n for n in names), names


async def test_a_character_no_font_has_is_refused_loudly(gql):
    world = await build_world()
    odd = await paid_candidate(gql, world, name=f"李{UNPRINTABLE}")
    school = await _school_flow(gql, world)
    refused = await gql.data(PUBLISH, {"input": unit()}, token=school)
    (error,) = refused["publishTickets"]["userErrors"]
    number = (await models.Ticket.get(account_id=odd.account.id)).number
    assert error["code"] == "MISSING_GLYPH" and error["field"] == ["tickets", number]
    assert "U+E000" in error["message"]
    assert await models.Ticket.filter(published_at__isnull=False).count() == 0

    english = await gql.execute(
        PUBLISH, {"input": unit()}, token=school, headers={"Accept-Language": "en"}
    )
    assert "no font has them" in english["data"]["publishTickets"]["userErrors"][0]["message"]

    await rename(odd, "李明")  # the school corrects the roster
    published = await gql.data(PUBLISH, {"input": unit()}, token=school)
    assert published["publishTickets"]["published"] == 1
    (ticket,) = await _ticket(gql, odd)
    link = ticket["pdfUrl"]
    assert link is not None and ticket["printError"] is None

    # A later roster change to an unprintable name: no link, a coded reason, and a link handed
    # out before now answers with the reason instead of a PDF with an empty box in it.
    await rename(odd, f"李{UNPRINTABLE}明")
    (ticket,) = await _ticket(gql, odd)
    assert ticket["pdfUrl"] is None
    assert ticket["printError"]["code"] == "MISSING_GLYPH"
    assert "U+E000" in ticket["printError"]["message"]
    response = await gql.http.get(link)
    assert response.status_code == 409 and "MISSING_GLYPH" in response.text


async def test_the_pdf_is_rendered_once_and_again_when_its_data_changes(gql):
    world = await build_world()
    lilei = await paid_candidate(gql, world, photo=photo_bytes())
    school = await _school_flow(gql, world)
    await gql.data(PUBLISH, {"input": unit()}, token=school)
    (ticket,) = await _ticket(gql, lilei)

    first = (await gql.http.get(ticket["pdfUrl"])).content
    cached = await models.TicketPdf.get(ticket__number=ticket["number"])
    second = (await gql.http.get(ticket["pdfUrl"])).content
    assert second == first
    again = await models.TicketPdf.get(ticket__number=ticket["number"])
    assert (again.rendered_at, again.fingerprint) == (cached.rendered_at, cached.fingerprint)

    await rename(lilei, "李雷雷")
    (ticket,) = await _ticket(gql, lilei)
    third = (await gql.http.get(ticket["pdfUrl"])).content
    assert "李雷雷" in pdf_text(third)
    changed = await models.TicketPdf.get(ticket__number=ticket["number"])
    assert changed.fingerprint != cached.fingerprint
    assert await models.TicketPdf.all().count() == 1

    # A new photo is new data too.
    from tests.tickets_support import set_photo

    await set_photo(lilei, photo_bytes((200, 30, 30)))
    await gql.http.get(ticket["pdfUrl"])
    assert (await models.TicketPdf.get(ticket__number=ticket["number"])).fingerprint != (
        changed.fingerprint
    )


async def test_oral_tickets_are_the_provinces(gql):
    world = await build_world()
    centre = world.centers[0]
    candidate = await paid_candidate(gql, world, subjects=("CET4", "CET-SET4"), name="陈静")
    province = await admin_token(Role.PROVINCE_ADMIN, province="44")
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    denied = await gql.data(
        SET_ROOMS,
        {"input": rooms_input((1, 10, ""), oralCenterId=oral_center_id(centre))},
        token=school,
    )
    assert codes(denied["setExamRooms"]) == ["FORBIDDEN"]
    rooms = await gql.data(
        SET_ROOMS,
        {"input": rooms_input((1, 10, "语音室 1"), oralCenterId=oral_center_id(centre))},
        token=province,
    )
    assert rooms["setExamRooms"]["userErrors"] == []
    too_big = await gql.data(
        SET_ROOMS,
        {"input": rooms_input((100, 10, ""), oralCenterId=oral_center_id(centre))},
        token=province,
    )
    assert codes(too_big["setExamRooms"]) == ["ROOM_NUMBER_INVALID"]  # 2 room digits (oral)
    await close_registration(world, SubjectKind.ORAL)
    allocated = await gql.data(ALLOCATE, {"input": unit("ORAL")}, token=province)
    assert allocated["allocateSeats"]["userErrors"] == [], allocated
    assert allocated["allocateSeats"]["created"] == 1
    await gql.data(PUBLISH, {"input": unit("ORAL")}, token=province)
    now = clock.now()
    window = await gql.data(
        SET_PRINT_WINDOW,
        {
            "input": unit(
                "ORAL",
                opensAt=(now - timedelta(minutes=5)).isoformat(),
                closesAt=(now + timedelta(days=2)).isoformat(),
            )
        },
        token=province,
    )
    assert window["setTicketPrintWindow"]["userErrors"] == []
    handed = await gql.data(
        SET_PRINT_WINDOW, {"input": unit("ORAL", handedOutBySchool=True)}, token=province
    )
    assert codes(handed["setTicketPrintWindow"]) == ["SCHOOL_TICKETS_WRITTEN_ONLY"]

    (oral,) = await _ticket(gql, candidate)  # the written one is not published yet
    assert oral["kind"] == "ORAL" and oral["centerName"] == "广州口试考点1"
    assert re.fullmatch(r"440001" r"26" r"1" r"0" r"4" r"01" r"01", oral["number"])
    assert oral["room"] == "01"
    text = pdf_text((await gql.http.get(oral["pdfUrl"])).content)
    assert "陈静" in text and oral["number"] in text and "英语四级口语（口试）" in text


async def test_admins_print_batches(gql):
    world = await build_world()
    people = [
        await paid_candidate(gql, world, name=f"考生{'甲乙丙丁戊'[i]}", photo=photo_bytes())
        for i in range(5)
    ]
    school = await _school_flow(gql, world, window=False)
    unpublished = await gql.data(
        PRINT_BATCH, {"input": {"sessionCode": "2026H1", "schoolCode": "10558"}}, token=school
    )
    assert codes(unpublished["printTicketBatch"]) == ["NOTHING_TO_PRINT"]
    await gql.data(PUBLISH, {"input": unit()}, token=school)
    batch = await gql.data(
        PRINT_BATCH, {"input": {"sessionCode": "2026H1", "schoolCode": "10558"}}, token=school
    )
    payload = batch["printTicketBatch"]
    assert payload["userErrors"] == [] and payload["pages"] == 5
    response = await gql.http.get(payload["url"])
    assert response.status_code == 200
    assert pdf_pages(response.content) == 5
    text = pdf_text(response.content)
    numbers = sorted(await models.Ticket.all().values_list("number", flat=True))
    assert all(n in text for n in numbers)
    printed = [m for m in re.findall(r"\d{15}", text) if m in numbers]
    assert list(dict.fromkeys(printed)) == numbers  # room and seat order
    assert len(people) == 5

    tampered = payload["url"].replace("/S", "/S9")
    assert (await gql.http.get(tampered)).status_code == 403
    other = await gql.data(
        PRINT_BATCH,
        {"input": {"sessionCode": "2026H1", "schoolCode": "10558", "subjectCode": "CET6"}},
        token=school,
    )
    assert codes(other["printTicketBatch"]) == ["NOTHING_TO_PRINT"]
    await models.Province.create(code="11", name="北京市")
    province = await admin_token(Role.PROVINCE_ADMIN, province="11", tag="x")
    outside = await gql.data(
        PRINT_BATCH, {"input": {"sessionCode": "2026H1", "schoolCode": "10558"}}, token=province
    )
    assert codes(outside["printTicketBatch"]) == ["OUT_OF_SCOPE"]


async def test_a_ticket_verifies_by_its_code_and_a_forged_one_does_not(gql):
    world = await build_world()
    lilei = await paid_candidate(gql, world)
    school = await _school_flow(gql, world)
    unpublished = await models.Ticket.get(account_id=lilei.account.id)
    early = await gql.data(VERIFY, {"code": documents.issue_code("TICKET", unpublished.number)})
    assert early["verifyDocument"]["valid"] is False  # not out yet
    await gql.data(PUBLISH, {"input": unit()}, token=school)
    (ticket,) = await _ticket(gql, lilei)
    code = ticket["verificationCode"]
    assert code.startswith(f"T-{ticket['number']}-")

    found = (await gql.data(VERIFY, {"code": code}))["verifyDocument"]  # public: no token
    assert found["valid"] is True and found["kind"] == "TICKET"
    assert found["holderName"] == "李雷"
    assert re.fullmatch(r"4401\*{10}\d{3}[\dX]", found["idNumberMasked"])
    facts = {f["key"]: f["value"] for f in found["facts"]}
    assert facts["number"] == ticket["number"]
    assert facts["room"] == "001" and facts["seat"] == ticket["seat"]
    assert facts["centre"] == "中山大学（南校园）"
    assert found["issuedAt"] is not None
    english = await gql.data(VERIFY, {"code": code.lower()}, headers={"Accept-Language": "en"})
    labels = {f["key"]: f["label"] for f in english["verifyDocument"]["facts"]}
    assert labels["number"] == "Ticket number"

    kind, number, mac = code.split("-")
    other_number = number[:-1] + ("2" if number[-1] != "2" else "3")
    for forged in (
        f"{kind}-{number}-{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        f"{kind}-{other_number}-{mac}",
        f"R-{number}-{mac}",
        "T-123",
        "x" * 500,
    ):
        result = (await gql.data(VERIFY, {"code": forged}))["verifyDocument"]
        assert result["valid"] is False and result["holderName"] is None, forged

    page = await gql.http.get(f"/verify/{code}")
    assert page.status_code == 200 and "真实有效" in page.text
    assert "李雷" in page.text and ticket["number"] in page.text
    assert lilei.account.id_number not in page.text
    forged_page = await gql.http.get(f"/verify/{kind}-{other_number}-{mac}")
    assert forged_page.status_code == 404 and "未能核验" in forged_page.text

    # The code is the candidate's (or a national admin's) to see, not any signed-in user's.
    other = await qualified_candidate(world, name="韩梅梅")
    node = await gql.data(
        "query($id: ID!) { node(id: $id) { ... on Ticket { verificationCode } } }",
        {"id": ticket["id"]},
        token=other.token,
    )
    assert node["node"] is None


# --- the PDF service itself ------------------------------------------------------------------


def test_glyph_check_names_what_cannot_be_printed():
    pdf.check_glyphs("张三 Zhang San 阿依古丽·买买提 𠀀 Nguyễn Ñ\n\t")
    with pytest.raises(DomainError) as raised:
        pdf.check_glyphs(f"李{UNPRINTABLE}\U000f0000", "name")
    (problem,) = raised.value.problems
    assert problem.code == ErrorCode.MISSING_GLYPH and problem.field == ("name",)
    assert problem.detail == f"{UNPRINTABLE} (U+E000), \U000f0000 (U+F0000)"


async def test_rendering_reads_no_local_file_and_refuses_boxes():
    document = pdf.html_document('<img src="file:///etc/passwd"><p>准考证</p>', title="t")
    with pytest.raises(pdf.RenderError, match="passwd"):
        await pdf.render_pdf(document)
    with pytest.raises(DomainError) as raised:
        await pdf.render_pdf(pdf.html_document(f"<p>姓名 李{UNPRINTABLE}</p>", title="t"))
    assert raised.value.problems[0].code == ErrorCode.MISSING_GLYPH
    content = await pdf.render_pdf(
        pdf.html_document(f"<p>准考证</p>{pdf.qr_svg('https://example.cn/v/T-1-X')}", title="t")
    )
    assert content.startswith(b"%PDF") and "准考证" in pdf_text(content)
    batch = await pdf.render_pdf_pages(["<p>第一页</p>", "<p>第二页</p>"], title="t")
    assert pdf_pages(batch) == 2
