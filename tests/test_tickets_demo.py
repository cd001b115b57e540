"""The ticket journey on the demo data (``cetgql demo``), as its people would go through it:
the demo candidate 张三 qualifies, chooses CET4 and pays; 北京大学 sets up its rooms; the
province closes registration; the school allocates, publishes and opens printing; 张三 prints
the ticket, and a phone scanning its QR code sees it is genuine."""

from __future__ import annotations

from datetime import timedelta

from strawberry.relay import GlobalID

from cetgql.services import clock, demo, registration
from tests.tickets_support import (
    ALLOCATE,
    MY_TICKETS,
    PUBLISH,
    SELECT,
    SET_PRINT_WINDOW,
    SET_ROOMS,
    pdf_fonts,
    pdf_text,
    rooms_input,
)

SIGN_IN = """
mutation($input: SignInInput!) { signIn(input: $input) { token userErrors { code } } }"""
VERIFY_QUALIFICATION = """
mutation($input: VerifyQualificationInput!) { verifyQualification(input: $input) {
  qualification { id } userErrors { code } } }"""
CONFIRM = """
mutation($input: ConfirmQualificationInput!) { confirmQualification(input: $input) {
  qualification { confirmed } userErrors { code } } }"""
SET_WINDOW = """
mutation($input: SetRegistrationWindowInput!) { setRegistrationWindow(input: $input) {
  registrationWindow { isOpen } userErrors { code } } }"""


async def _sign_in(gql, login: str, password: str) -> str:
    data = await gql.data(SIGN_IN, {"input": {"login": login, "password": password}})
    assert data["signIn"]["userErrors"] == []
    return data["signIn"]["token"]


async def test_the_demo_candidate_prints_a_ticket(gql):
    await demo.seed()
    candidate = demo.CANDIDATE
    me = await _sign_in(gql, candidate["email"], candidate["password"])
    verified = await gql.data(
        VERIFY_QUALIFICATION,
        {
            "input": {
                "sessionCode": "2026H1",
                "name": candidate["name"],
                "idType": "RESIDENT_ID",
                "idNumber": candidate["id_number"],
            }
        },
        token=me,
    )
    assert verified["verifyQualification"]["userErrors"] == []
    confirmed = await gql.data(CONFIRM, {"input": {"sessionCode": "2026H1"}}, token=me)
    assert confirmed["confirmQualification"]["qualification"]["confirmed"] is True
    chosen = await gql.data(
        SELECT, {"input": {"sessionCode": "2026H1", "items": [{"subjectCode": "CET4"}]}}, token=me
    )
    assert chosen["selectSubjects"]["userErrors"] == []
    order = int(GlobalID.from_id(chosen["selectSubjects"]["order"]["id"]).node_id)
    await registration.mark_order_paid(order, clock.now())  # the bank's notification (tested apart)

    school = await _sign_in(gql, "pku@cet.example.cn", demo.ADMIN_PASSWORD)
    province = await _sign_in(gql, "beijing@cet.example.cn", demo.ADMIN_PASSWORD)
    rooms = await gql.data(
        SET_ROOMS,
        {"input": rooms_input((1, 30, "理科教学楼 101"), (2, 30, "理科教学楼 102"),
                              schoolCode="10001", campusCode="1")},
        token=school,
    )  # fmt: skip
    assert rooms["setExamRooms"]["userErrors"] == []
    now = clock.now()
    for kind in ("WRITTEN", "ORAL"):
        closed = await gql.data(
            SET_WINDOW,
            {
                "input": {
                    "sessionCode": "2026H1",
                    "provinceCode": "11",
                    "kind": kind,
                    "opensAt": (now - timedelta(days=2)).isoformat(),
                    "closesAt": (now - timedelta(minutes=1)).isoformat(),
                }
            },
            token=province,
        )
        assert closed["setRegistrationWindow"]["registrationWindow"]["isOpen"] is False

    unit = {"sessionCode": "2026H1", "kind": "WRITTEN", "schoolCode": "10001"}
    allocated = await gql.data(ALLOCATE, {"input": unit}, token=school)
    assert allocated["allocateSeats"]["userErrors"] == []
    assert allocated["allocateSeats"]["created"] == 1
    published = await gql.data(PUBLISH, {"input": unit}, token=school)
    assert published["publishTickets"]["published"] == 1

    (ticket,) = (await gql.data(MY_TICKETS, {"s": "2026H1"}, token=me))["viewer"]["tickets"]
    assert ticket["pdfUrl"] is None  # before the school's print window
    window = {
        **unit,
        "opensAt": (now - timedelta(minutes=5)).isoformat(),
        "closesAt": (now + timedelta(days=7)).isoformat(),
    }
    await gql.data(SET_PRINT_WINDOW, {"input": window}, token=school)
    (ticket,) = (await gql.data(MY_TICKETS, {"s": "2026H1"}, token=me))["viewer"]["tickets"]
    assert ticket["number"].startswith("1000112611")
    assert ticket["centerName"] == "北京大学（本部）"

    content = (await gql.http.get(ticket["pdfUrl"])).content
    text = pdf_text(content)
    assert "张三" in text and ticket["number"] in text and "北京大学（本部）" in text
    assert any("CET-Sans" in f["name"] and f["emb"] == "yes" for f in pdf_fonts(content))

    page = await gql.http.get(f"/verify/{ticket['verificationCode']}")
    assert page.status_code == 200 and "张三" in page.text and ticket["number"] in page.text
