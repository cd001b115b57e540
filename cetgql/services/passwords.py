"""Passwords (A3): the strength policy and Argon2id hashing.

Hashing is deliberately slow and memory-hungry (that is what makes a leaked hash expensive to
crack), so every hash and verify runs in a worker thread: a rush of sign-ins then costs CPU but
does not stall the event loop that serves everybody else's requests.
"""

from __future__ import annotations

import asyncio
import unicodedata
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cetgql.services.errors import DomainError, ErrorCode

MIN_LENGTH = 8
MAX_LENGTH = 128  # Argon2 accepts more, but nobody types more, and it bounds the work per try.

# Argon2id at OWASP's baseline (19 MiB, 2 passes, 1 lane): about 30 ms a hash on one core of
# the 2-core reference machine, where argon2-cffi's default profile (64 MiB, 3 passes, 4 lanes)
# takes 0.3-0.4 s and would cap a sign-in rush at a few per second. Hashes made with other
# parameters still verify and are upgraded at the next sign-in (``needs_rehash``).
TIME_COST = 2
MEMORY_COST_KIB = 19 * 1024
PARALLELISM = 1
_hasher = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM)


def _normalise(password: str) -> str:
    """NFC, so the same password typed on two keyboards (composed or not) hashes the same."""
    return unicodedata.normalize("NFC", password)


def check_policy(password: str, *, field: str = "password") -> None:
    """Refuse a password that is empty, too long, or lacks a letter, a digit or a symbol.

    Letters and digits are the ASCII ones; a symbol is any other visible character. Control
    characters are refused: they cannot be typed back reliably.
    """
    if not password:
        raise DomainError.of(ErrorCode.REQUIRED, field)
    if len(password) > MAX_LENGTH:
        raise DomainError.of(ErrorCode.TOO_LONG, field)
    has_letter = any(c.isascii() and c.isalpha() for c in password)
    has_digit = any(c.isascii() and c.isdigit() for c in password)
    has_symbol = any(not c.isalnum() and not c.isspace() and c.isprintable() for c in password)
    printable = all(c.isprintable() for c in password)
    if len(password) < MIN_LENGTH or not (has_letter and has_digit and has_symbol and printable):
        raise DomainError.of(ErrorCode.WEAK_PASSWORD, field)


async def hash_password(password: str) -> str:
    """The Argon2id hash (PHC string, parameters and salt included), computed off the loop."""
    return await asyncio.to_thread(_hasher.hash, _normalise(password))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, _normalise(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches; a malformed stored hash simply does not match."""
    if len(password) > MAX_LENGTH:
        return False
    return await asyncio.to_thread(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's (rehash at sign-in)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def _dummy_hash() -> str:
    return _hasher.hash("cetgql-dummy-password-0!")


async def verify_dummy(password: str) -> None:
    """Spend the time of one verification for a login that matches no account, so the answer
    time does not reveal whether an account exists."""
    await asyncio.to_thread(_verify, await asyncio.to_thread(_dummy_hash), password[:MAX_LENGTH])
