"""The wire details both ends share: amounts, times, signed strings and XML answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cetgql_boc import protocol


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [(0, "0.00"), (1, "0.01"), (10, "0.10"), (3000, "30.00"), (3750, "37.50"), (5001, "50.01")],
)
def test_amounts_round_trip(fen: int, yuan: str) -> None:
    assert protocol.yuan(fen) == yuan
    assert protocol.fen(yuan) == fen


def test_large_amounts_use_integers_only() -> None:
    assert protocol.yuan(123456789012345) == "1234567890123.45"
    assert protocol.fen("1234567890123.45") == 123456789012345


@pytest.mark.parametrize("text", ["30", "30.0", "30.000", " 30.00", "-1.00", "1e3", "030.00", ""])
def test_malformed_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        protocol.fen(text)


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_only_non_negative_integer_fen(value: object) -> None:
    with pytest.raises(ValueError):
        protocol.yuan(value)  # type: ignore[arg-type]


def test_bank_times_are_shanghai_local() -> None:
    assert protocol.bank_time(datetime(2026, 3, 1, 16, 30, 5, tzinfo=UTC)) == "20260302003005"
    assert protocol.bank_time(datetime(2026, 3, 1, 16, 30, 5)) == "20260302003005"  # naive = UTC
    parsed = protocol.parse_bank_time("20260302003005")
    assert parsed == datetime(2026, 3, 1, 16, 30, 5, tzinfo=UTC)
    with pytest.raises(ValueError):
        protocol.parse_bank_time("2026-03-02")


def test_signed_strings() -> None:
    assert (
        protocol.pay_signed("T1", "20260302003005", "001", "30.00", "104110000009999")
        == b"T1|20260302003005|001|30.00|104110000009999"
    )
    assert protocol.query_signed("104110000009999", "T1") == b"104110000009999:T1"
    fields = {
        "merchantNo": "M",
        "orderNo": "T1",
        "orderSeq": "S1",
        "cardTyp": "01",
        "payTime": "20260302003005",
        "orderStatus": "1",
        "payAmount": "30.00",
        "acctNo": "not signed",
    }
    assert protocol.notify_signed(fields) == b"M|T1|S1|01|20260302003005|1|30.00"
    assert protocol.refund_signed("M", "R1", "001", "30.00", "T1") == b"M|R1|001|30.00|T1"
    assert protocol.cancel_signed("M", "T1") == b"M|T1"


def test_answers_round_trip() -> None:
    raw = protocol.build_answer(
        {"hdlSts": "A", "rtnCd": ""},
        [protocol.element("orderTrans", {"orderNo": "T1", "orderStatus": "1"})],
    )
    assert raw.startswith(b"<?xml")
    answer = protocol.parse_answer(raw)
    assert answer.ok
    assert answer.body is not None
    assert protocol.children_text(answer.body.find("orderTrans")) == {
        "orderNo": "T1",
        "orderStatus": "1",
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"not xml",
        b"<other/>",
        b'<?xml version="1.0"?><!DOCTYPE res [<!ENTITY a "b">]><res><header/></res>',
    ],
)
def test_bad_answers_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        protocol.parse_answer(raw)
