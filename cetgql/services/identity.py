"""Identity documents and names (A1, A2): validation and the normal forms used for matching."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from cetgql.models import IdType
from cetgql.services.errors import DomainError, ErrorCode

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_RESIDENT_ID = re.compile(r"^\d{17}[\dX]$")

# Patterns of the other documents as issued; loose where issuers vary, strict on the charset.
_OTHER_ID_PATTERNS: dict[IdType, re.Pattern[str]] = {
    IdType.HK_MACAO_PERMIT: re.compile(r"^[HM]\d{8}(\d{2})?$"),
    IdType.TAIWAN_PERMIT: re.compile(r"^\d{8}(\d{2})?$"),
    IdType.HK_MACAO_RESIDENCE: re.compile(r"^8[12]0000\d{11}[\dX]$"),
    IdType.TAIWAN_RESIDENCE: re.compile(r"^830000\d{11}[\dX]$"),
    IdType.PASSPORT: re.compile(r"^[A-Z0-9]{5,17}$"),
    IdType.STAFF: re.compile(r"^[A-Z0-9-]{1,32}$"),
}

# The middle dot of minority names (e.g. 阿依古丽·买买提) arrives as any of these.
_MIDDLE_DOTS = str.maketrans({"\u2022": "\u00b7", "\u30fb": "\u00b7", "\uff0e": "\u00b7"})
_NAME_MAX = 64


def resident_id_check_char(first17: str) -> str:
    """GB 11643 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def _resident_id_is_valid(number: str) -> bool:
    if not _RESIDENT_ID.match(number):
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if born.year < 1900 or born > date.today():
        return False
    return resident_id_check_char(number[:17]) == number[17]


def normalise_id_number(value: str) -> str:
    """Trim, drop inner spaces and upper-case (the check character X is often typed as x)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", value)).upper()


def validate_id(id_type: IdType, id_number: str, *, field: str = "idNumber") -> str:
    """The normalised ID number, or a coded error naming the input field."""
    number = normalise_id_number(id_number)
    if not number:
        raise DomainError.of(ErrorCode.REQUIRED, field)
    if len(number) > 32:
        raise DomainError.of(ErrorCode.TOO_LONG, field)
    valid = (
        _resident_id_is_valid(number)
        if id_type == IdType.RESIDENT_ID
        else bool(_OTHER_ID_PATTERNS[id_type].match(number))
    )
    if not valid:
        raise DomainError.of(ErrorCode.INVALID_ID_NUMBER, field)
    return number


def name_key(name: str) -> str:
    """The form names are compared in: NFC, trimmed, inner whitespace folded, one middle dot."""
    text = unicodedata.normalize("NFC", name).translate(_MIDDLE_DOTS)
    return " ".join(text.split())


def validate_name(name: str, *, field: str = "name") -> str:
    """The name as it will be stored (NFC, trimmed, one middle dot), rare characters kept."""
    cleaned = name_key(name)
    if not cleaned:
        raise DomainError.of(ErrorCode.REQUIRED, field)
    if len(cleaned) > _NAME_MAX:
        raise DomainError.of(ErrorCode.TOO_LONG, field)
    for char in cleaned:
        category = unicodedata.category(char)
        if (category[0] in {"C", "N", "S"} and char != "\u00b7") or char in "<>\"'&;":
            raise DomainError.of(ErrorCode.INVALID_NAME, field)
    return cleaned


def mask_id_number(number: str) -> str:
    """Show the first 4 and last 4 characters: 1101**********002X."""
    if len(number) <= 8:
        return number[:1] + "*" * max(len(number) - 2, 0) + number[-1:]
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 11 else phone[:2] + "****"


def mask_email(email: str | None) -> str | None:
    if not email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
