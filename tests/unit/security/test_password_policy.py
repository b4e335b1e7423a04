"""Password policy per OWASP ASVS 5.0 V6.2: length (8 to 128, counted after NFKC), any characters, no
composition rules, and none of the 20,000 most common passwords (zxcvbn's list, case-insensitive)."""

from __future__ import annotations

import unicodedata

import pytest
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from summit.security.identity import password_policy
from summit.security.identity.password_policy import MAX_LENGTH, MIN_LENGTH, WeakPassword, check, common_passwords, normalize

RANKED = FREQUENCY_LISTS["passwords"]


def refused(password: object, *, username: str | None = None) -> str:
    with pytest.raises(WeakPassword) as caught:
        check(password, username=username)
    return str(caught.value)


def test_the_limits_are_those_of_asvs() -> None:
    assert MIN_LENGTH == 8  # V6.2.1: at least 8
    assert MAX_LENGTH >= 64  # V6.2.9: at least 64 allowed
    assert password_policy.COMMON_COUNT == 20_000


@pytest.mark.parametrize(("length", "ok"), [(0, False), (1, False), (7, False), (8, True), (9, True), (15, True), (64, True),
                                            (65, True), (127, True), (128, True), (129, False), (1000, False)])
def test_length_from_8_to_128(length: int, ok: bool) -> None:
    password = ("Kq7 vmZ2x" * 200)[:length]
    if ok:
        assert check(password) == password
    else:
        message = refused(password)
        assert ("at least 8" in message) if length < 8 else ("at most 128" in message)


def test_length_counts_characters_not_bytes() -> None:
    assert check("ü" * 8) == "ü" * 8  # 16 bytes of UTF-8, 8 characters
    assert check("🦊" * 128) == "🦊" * 128  # 512 bytes
    refused("🦊" * 7)
    refused("🦊" * 129)


@pytest.mark.parametrize("password", ["password1", "iloveyou", "Dragon", "DRAGON12", "IloveYou", "PASSWORD1", "Football", "Sunshine",
                                      "12345678", "qwertyuiop", "baseball", "PrInCeSs", "dragonfly"])
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    message = refused(password)
    if len(password) >= 8:
        assert "common" in message
    assert password.lower() in common_passwords() or len(password) < 8


def test_the_list_is_the_20000_most_common() -> None:
    common = common_passwords()
    assert 19_000 <= len(common) <= 20_000
    assert {"password", "123456", "iloveyou", "dragon", "password1"} <= common
    # the boundary: the last 8+ character entry of the top 20,000 is refused, the first one after is not
    last_inside = next(w for w in reversed(RANKED[:20_000]) if len(w) >= MIN_LENGTH)
    first_outside = next(w for w in RANKED[20_000:] if len(w) >= MIN_LENGTH and w.lower() not in common)
    assert "common" in refused(last_inside.upper())
    assert check(first_outside) == first_outside


@pytest.mark.parametrize(
    "password",
    [
        "all lowercase words here",  # no digit, no capital, no symbol
        "ONLY CAPITALS HERE",
        "8302749561",  # digits only
        "four words with spaces",
        "  leading and trailing spaces  ",
        "🦊🐻🦉🐺🦔🦡🐿🦦",  # emoji only
        "пароль для входа",  # Cyrillic
        "パスワードです。長い",  # Japanese
        "tab\there and done",
        "quote'\"back\\slash`",
    ],
)
def test_no_composition_rules_any_characters(password: str) -> None:
    assert check(password) == unicodedata.normalize("NFKC", password)


def test_spaces_are_kept_not_trimmed_or_collapsed() -> None:
    assert check("  two  spaces  ") == "  two  spaces  "
    assert check("a b c d e") != check("abcde fgh")


def test_nfkc_normalisation() -> None:
    composed = "café crème"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed and len(decomposed) > len(composed)
    assert check(decomposed) == check(composed) == composed
    assert normalize(decomposed) == composed
    assert check("ｆｕｌｌｗｉｄｔｈ ９") == "fullwidth 9"  # compatibility forms
    assert check("ﬁnal ﬂight") == "final flight"  # ligatures
    # the length is that of the normalised form
    assert len("e\u0301" * 4) == 8
    refused("e\u0301" * 4)  # 4 characters once composed
    assert check("e\u0301" * 8) == "é" * 8


def test_normalisation_does_not_let_a_common_password_through() -> None:
    assert "common" in refused("ｐａｓｓｗｏｒｄ１")  # fullwidth "password1"
    assert "common" in refused(unicodedata.normalize("NFD", "password1"))


def test_the_username_is_not_a_password() -> None:
    refused("alice.smith", username="alice.smith")
    refused("ALICE.SMITH", username="alice.smith")
    assert check("alice.smith 2024", username="alice.smith")


@pytest.mark.parametrize("password", [None, 12345678, b"bytes password", ["a" * 8], "nul\x00inside", "lone\ud800surrogate"])
def test_non_text_and_invalid_text_are_refused_with_a_message(password: object) -> None:
    assert refused(password)


def test_weak_password_is_a_value_error() -> None:
    assert issubclass(WeakPassword, ValueError)
