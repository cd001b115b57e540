"""Properties that must hold for every input, checked with generated examples (Hypothesis):
GB 11643 ID numbers (A1), money in fen and yuan at every edge (P5, provider wire formats) and
name normalisation (A2)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal

import pytest
from cetgql_alipay import protocol as alipay
from cetgql_boc import protocol as boc
from cetgql_cmb import provider as cmb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cetgql.graphql.scalars import Money
from cetgql.models import IdType
from cetgql.services import identity, registration_setup
from cetgql.services.errors import DomainError, ErrorCode

settings.register_profile(
    "cetgql", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("cetgql")

# ------------------------------------------------------------------------------ ID numbers


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    """A valid mainland resident ID: region, a real birth date from 1900 to today, sequence,
    and the GB 11643 check character."""
    region = draw(st.from_regex(r"[1-8][0-9]{5}", fullmatch=True))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date.today()))
    sequence = draw(st.integers(0, 999))
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + identity.resident_id_check_char(first17)


def refused(number: str) -> bool:
    try:
        identity.validate_id(IdType.RESIDENT_ID, number)
    except DomainError as error:
        return [p.code for p in error.problems] == [ErrorCode.INVALID_ID_NUMBER]
    return False


def test_the_published_example_is_valid() -> None:
    assert identity.validate_id(IdType.RESIDENT_ID, "11010519491231002X") == "11010519491231002X"


@given(resident_ids())
def test_every_valid_id_number_is_accepted(number: str) -> None:
    assert identity.validate_id(IdType.RESIDENT_ID, number) == number
    typed = f" {number[:6]} {number[6:14]} {number[14:].lower()} "  # spaces, a lower-case x
    assert identity.validate_id(IdType.RESIDENT_ID, typed) == number


@given(resident_ids(), st.integers(0, 17), st.data())
def test_every_single_character_change_is_refused(
    number: str, position: int, data: st.DataObject
) -> None:
    alphabet = "0123456789X" if position == 17 else "0123456789"
    replacement = data.draw(st.sampled_from([c for c in alphabet if c != number[position]]))
    changed = number[:position] + replacement + number[position + 1 :]
    assert refused(changed), changed


@given(resident_ids(), st.integers(0, 15))
def test_every_swap_of_neighbouring_digits_is_refused(number: str, position: int) -> None:
    a, b = number[position], number[position + 1]
    if a == b:
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    assert refused(swapped), swapped


@given(st.text(alphabet="0123456789Xx", min_size=0, max_size=20))
def test_nothing_else_passes_as_an_id_number(text: str) -> None:
    number = text.upper()
    valid = (
        len(number) == 18
        and re.fullmatch(r"\d{17}[\dX]", number) is not None
        and identity.resident_id_check_char(number[:17]) == number[17]
    )
    if not valid:
        with pytest.raises(DomainError):
            identity.validate_id(IdType.RESIDENT_ID, text)


# ----------------------------------------------------------------------------------- money

FEN = st.integers(min_value=1, max_value=100_000_000_00)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_money_yuan_is_exactly_the_fen(fen: int) -> None:
    text = Money(fen=fen).yuan
    assert re.fullmatch(r"-?(0|[1-9]\d*)\.\d\d", text)
    assert Decimal(text) * 100 == fen


@given(FEN)
def test_alipay_amounts_round_trip(fen: int) -> None:
    assert alipay.yuan_to_fen(alipay.fen_to_yuan(fen)) == fen


@given(st.integers(min_value=0, max_value=10**13))
def test_boc_amounts_round_trip(fen: int) -> None:
    assert boc.fen(boc.yuan(fen)) == fen


@given(FEN)
def test_cmb_amounts_round_trip(fen: int) -> None:
    assert cmb.yuan_to_fen(cmb.fen_to_yuan(fen)) == fen


@given(st.text(alphabet="0123456789.-+e ,", max_size=14))
def test_malformed_provider_amounts_never_pass_as_another_sum(text: str) -> None:
    """Whatever a provider sends, it is read as exactly the decimal it writes, or refused."""
    for parse, error in ((alipay.yuan_to_fen, alipay.ProtocolError), (boc.fen, ValueError)):
        try:
            fen = parse(text)
        except error:
            continue
        assert Decimal(text) * 100 == fen and re.fullmatch(r"\d+(\.\d{1,2})?", text)


@given(st.integers(min_value=1, max_value=100_000))
def test_fee_cells_in_yuan_or_fen_read_back_exactly(fen: int) -> None:
    yuan = f"{fen // 100}.{fen % 100:02d}"
    assert registration_setup.parse_fee(yuan, in_fen=False) == fen
    assert registration_setup.parse_fee(f"¥{yuan}元", in_fen=False) == fen
    assert registration_setup.parse_fee(str(fen), in_fen=True) == fen


# ----------------------------------------------------------------------------------- names

MIDDLE_DOTS = ("\u00b7", "\u2022", "\u30fb", "\uff0e")
HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
HAN_EXT_B = st.characters(min_codepoint=0x20000, max_codepoint=0x2A6DF)  # 4-byte UTF-8
NAME_PART = st.text(alphabet=st.one_of(HAN, HAN_EXT_B), min_size=1, max_size=6)


@given(st.text())
def test_name_keys_are_idempotent_and_blind_to_normal_forms(text: str) -> None:
    key = identity.name_key(text)
    assert identity.name_key(key) == key
    for form in ("NFC", "NFD", "NFKC"):
        if form != "NFKC":
            assert identity.name_key(unicodedata.normalize(form, text)) == key
    assert key == key.strip() and "  " not in key
    assert not any(dot in key for dot in MIDDLE_DOTS[1:])


@given(
    st.lists(NAME_PART, min_size=2, max_size=3),
    st.lists(st.sampled_from(MIDDLE_DOTS), min_size=2, max_size=2),
)
def test_every_middle_dot_spelling_is_one_name(parts: list[str], dots: list[str]) -> None:
    first = dots[0].join(parts)
    second = dots[1].join(parts)
    assert identity.name_key(first) == identity.name_key(second)
    assert identity.validate_name(f"  {first} ") == identity.validate_name(second)


@given(st.lists(NAME_PART, min_size=1, max_size=3), st.sampled_from(MIDDLE_DOTS))
def test_valid_names_are_stable_and_keep_rare_characters(parts: list[str], dot: str) -> None:
    name = dot.join(parts)
    if len(name) > 64:
        return
    cleaned = identity.validate_name(name)
    assert identity.validate_name(cleaned) == cleaned  # idempotent
    assert cleaned == "\u00b7".join(unicodedata.normalize("NFC", p) for p in parts)
    rare = [c for c in name if ord(c) >= 0x20000]
    assert all(c in cleaned for c in rare)  # 生僻字 beyond the BMP survive
    assert unicodedata.is_normalized("NFC", cleaned)
