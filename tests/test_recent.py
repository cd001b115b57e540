"""The per-text caches stay bounded, whatever texts clients send, and keep what is in use."""

from __future__ import annotations

from cetgql.graphql.recent import RecentlyUsed


def test_forgets_the_least_recently_used_and_makes_each_value_once():
    made: list[str] = []

    def make(key: str) -> str:
        made.append(key)
        return key.upper()

    cache: RecentlyUsed[str, str] = RecentlyUsed(2)
    assert cache.get_or_make("a", lambda: make("a")) == "A"
    assert cache.get_or_make("b", lambda: make("b")) == "B"
    assert cache.get_or_make("a", lambda: make("a")) == "A"  # kept, and now the most recent
    assert cache.get_or_make("c", lambda: make("c")) == "C"  # "b" goes: used longest ago
    assert cache.get_or_make("a", lambda: make("a")) == "A"
    assert cache.get_or_make("b", lambda: make("b")) == "B"
    assert made == ["a", "b", "c", "b"]


def test_an_empty_value_is_kept_too():
    """Validation of a valid query gives no errors, an empty list: it must count as known."""
    made = []
    cache: RecentlyUsed[str, list[str]] = RecentlyUsed(4)
    for _ in range(3):
        cache.get_or_make("valid", lambda: made.append(1) or [])
    assert made == [1]
