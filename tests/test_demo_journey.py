"""The demo data carries a candidate through the whole registration in GraphiQL: sign in,
qualification, subjects, an oral centre, an order, and a payment handed to a sandbox."""

from __future__ import annotations

from cetgql.services import demo

SIGN_IN = """mutation($i: SignInInput!) { signIn(input: $i) { token userErrors { code } } }"""


async def test_the_demo_candidate_can_register_and_start_paying(gql):
    await demo.seed()
    signed = await gql.data(
        SIGN_IN, {"i": {"login": demo.CANDIDATE["id_number"], "password": "Cet@2026demo"}}
    )
    gql.token = signed["signIn"]["token"]
    verified = await gql.data(
        """mutation($i: VerifyQualificationInput!) { verifyQualification(input: $i) {
           userErrors { code } } }""",
        {
            "i": {
                "sessionCode": "2026H1",
                "name": "张三",
                "idType": "RESIDENT_ID",
                "idNumber": demo.CANDIDATE["id_number"],
            }
        },
    )
    assert verified["verifyQualification"]["userErrors"] == []
    confirmed = await gql.data(
        'mutation { confirmQualification(input: {sessionCode: "2026H1"}) { userErrors { code } } }'
    )
    assert confirmed["confirmQualification"]["userErrors"] == []

    options = await gql.data(
        '{ availableSubjects(sessionCode: "2026H1") { subject { code } eligible fee { yuan } } }'
    )
    eligible = {o["subject"]["code"]: o for o in options["availableSubjects"] if o["eligible"]}
    assert "CET4" in eligible and eligible["CET4"]["fee"]["yuan"] == "30.00"
    centres = await gql.data(
        '{ oralCenters(sessionCode: "2026H1", subjectCode: "CET-SET4") { id remainingSeats } }'
    )
    assert centres["oralCenters"] and all(c["remainingSeats"] > 0 for c in centres["oralCenters"])
    providers = await gql.data("{ paymentProviders { name displayName } }")
    assert {p["name"] for p in providers["paymentProviders"]} == {"alipay", "boc", "cmb"}

    chosen = await gql.data(
        """mutation { selectSubjects(input: {sessionCode: "2026H1",
           items: [{subjectCode: "CET4"}]}) { order { id status } userErrors { code } } }"""
    )
    order = chosen["selectSubjects"]["order"]
    assert order["status"] == "PENDING_PAYMENT"
    started = await gql.data(
        """mutation($id: ID!) { startPayment(input: {orderId: $id, provider: "alipay"}) {
           payment { status redirect { url } } userErrors { code } } }""",
        {"id": order["id"]},
    )
    payment = started["startPayment"]["payment"]
    assert payment["status"] == "PENDING"
    assert "/sandbox/alipay/" in payment["redirect"]["url"]
