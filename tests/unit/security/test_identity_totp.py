"""TOTP (RFC 6238) for the user pool: the RFC's test vectors, HOTP (RFC 4226) vectors, the window,
recovery codes, enrolment with a QR code, and sign-in with a second factor where each code works once."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from joserfc import jws

from summit.errors import Conflict, Invalid, Unauthorized
from summit.security.identity import KeySet, MfaChallenge, PoolConfig, Session, UserPool, migrations, totp
from summit.security.passwords import PasswordHasher
from summit.wiring import open_port

# ---- RFC 6238 Appendix B: 8-digit codes, secrets are ASCII "1234567890..." of the hash's size -----

SECRETS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
RFC6238 = [  # (T, mode, TOTP)
    (59, "sha1", "94287082"), (59, "sha256", "46119246"), (59, "sha512", "90693936"),
    (1111111109, "sha1", "07081804"), (1111111109, "sha256", "68084774"), (1111111109, "sha512", "25091201"),
    (1111111111, "sha1", "14050471"), (1111111111, "sha256", "67062674"), (1111111111, "sha512", "99943326"),
    (1234567890, "sha1", "89005924"), (1234567890, "sha256", "91819424"), (1234567890, "sha512", "93441116"),
    (2000000000, "sha1", "69279037"), (2000000000, "sha256", "90698825"), (2000000000, "sha512", "38618901"),
    (20000000000, "sha1", "65353130"), (20000000000, "sha256", "77737706"), (20000000000, "sha512", "47863826"),
]
# the RFC's table gives T (the step) in hex as well
STEPS = {59: 0x1, 1111111109: 0x23523EC, 1111111111: 0x23523ED, 1234567890: 0x273EF07, 2000000000: 0x3F940AA, 20000000000: 0x27BC86AA}

# RFC 4226 Appendix D: HOTP values for counts 0..9 with the secret "12345678901234567890"
RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]


def b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode()


@pytest.mark.parametrize(("when", "mode", "code"), RFC6238)
def test_rfc6238_vectors(when: int, mode: str, code: str) -> None:
    secret = b32(SECRETS[mode])
    assert totp.matching_step(secret, code, now=when, digest=DIGESTS[mode], digits=8) == STEPS[when] == when // 30
    # the same secret and time, through pyotp directly
    assert pyotp.TOTP(secret, digits=8, digest=DIGESTS[mode]).at(when) == code


@pytest.mark.parametrize(("count", "code"), list(enumerate(RFC4226)))
def test_rfc4226_hotp_vectors(count: int, code: str) -> None:
    assert pyotp.HOTP(b32(b"12345678901234567890")).at(count) == code


def test_rfc4226_values_are_the_totp_codes_of_their_step() -> None:
    """TOTP is HOTP of the step: at T = 30 * count, the 6-digit code is RFC 4226's value."""
    secret = b32(b"12345678901234567890")
    for count, code in enumerate(RFC4226):
        if count == 0:
            continue  # step 0's window reaches step -1, which has no code (pyotp refuses it)
        assert totp.matching_step(secret, code, now=30 * count + 15, digest=hashlib.sha1, digits=6) == count


def test_the_window_accepts_one_step_either_side_and_no_more() -> None:
    secret = totp.new_secret()
    otp = pyotp.TOTP(secret)
    now = 1_700_000_015.0
    step = int(now // 30)
    for offset in (-1, 0, 1):
        assert totp.matching_step(secret, otp.at(now + 30 * offset), now=now) == step + offset
    for offset in (-3, -2, 2, 3):
        code = otp.at(now + 30 * offset)
        if code not in {otp.at(now + 30 * o) for o in (-1, 0, 1)}:  # a chance collision would match
            assert totp.matching_step(secret, code, now=now) is None


def test_the_wrong_secret_or_digest_does_not_match() -> None:
    code = RFC6238[0][2]
    assert totp.matching_step(b32(SECRETS["sha1"]), code, now=59, digest=hashlib.sha256, digits=8) is None
    assert totp.matching_step(b32(b"another secret of 20"), code, now=59, digest=hashlib.sha1, digits=8) is None
    assert totp.matching_step(b32(SECRETS["sha1"]), code, now=59 + 90, digest=hashlib.sha1, digits=8) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12345a", "abcdef", "12 345", " 12345", "12345 ", "+12345", "-12345",
                                  "1234.5", "0x1234", None, 123456, 12345.0, b"123456", ["123456"]])
def test_codes_of_the_wrong_length_or_with_non_digits_are_none(code: object) -> None:
    secret = totp.new_secret()
    assert totp.matching_step(secret, code) is None


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "１２３４５６", "²²²²²²", "۱۲۳۴۵۶"])
def test_non_ascii_digits_are_not_a_code(code: str) -> None:
    """str.isdigit() is True for Arabic-Indic, fullwidth and superscript digits: matching_step then
    hands them to hmac.compare_digest, which raises TypeError on non-ASCII str (a 500 at
    /api/v1/sessions/mfa and /api/v1/me/mfa/totp/verify) instead of answering None."""
    assert code.isdigit() and len(code) == 6
    assert totp.matching_step(totp.new_secret(), code) is None


def test_secrets_are_160_bits_of_base32() -> None:
    secret = totp.new_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert len(base64.b32decode(secret)) == 20
    assert len({totp.new_secret() for _ in range(50)}) == 50


def test_recovery_codes_are_ten_distinct_unambiguous_codes() -> None:
    codes = totp.new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(r"[2-9a-z]{4}-[2-9a-z]{4}-[2-9a-z]{4}", code)
        assert not set(code) & set("01ilo")  # no look-alikes
    assert totp.hash_code(codes[0]) == totp.hash_code(f"  {codes[0].upper()} ")
    assert totp.hash_code(codes[0]) != totp.hash_code(codes[1])


def test_provisioning_uri_and_qr_code() -> None:
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, account="alice", issuer="Summit Photos")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Summit Photos:alice"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["secret"] == secret and query["issuer"] == "Summit Photos"
    assert pyotp.parse_uri(uri).now() == pyotp.TOTP(secret).now()
    svg = totp.qr_svg(uri)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and not svg.startswith("<?xml")


# ---- with the pool --------------------------------------------------------------------------------

PASSWORD = "correct horse battery"
ISSUER = "http://testserver"


@pytest.fixture
async def pool(tmp_path: Path, migrated: Path):  # noqa: ANN201
    shutil.copyfile(migrated, tmp_path / "app.db")
    db = open_port("sql", f"sqlite:///{tmp_path}/app.db")
    await asyncio.to_thread(migrations.upgrade, db.sync_url)
    cache = open_port("cache", "memory://?max_items=1000")
    mailer = open_port("mail", f"outbox://{tmp_path}/outbox")
    yield UserPool(db=db, cache=cache, mailer=mailer, keys=KeySet(tmp_path / "keys"),
                   hasher=PasswordHasher(time_cost=1, memory_cost=1024), config=PoolConfig(issuer=ISSUER))
    await mailer.close()
    await cache.close()
    await db.close()


async def new_user(pool: UserPool, username: str = "alice"):  # noqa: ANN201
    user = await pool.sign_up(username, f"{username}@example.com", PASSWORD)
    mail = (await pool.mailer.list(to=user.email))[0]
    return await pool.confirm(username, re.search(r"\b(\d{6})\b", mail.subject).group(1))


async def challenge_for(pool: UserPool, login: str = "alice") -> str:
    result = await pool.sign_in(login, PASSWORD)
    assert isinstance(result, MfaChallenge), result
    assert result.expires_in == 300 and result.as_json()["mfa_required"] is True
    return result.challenge


async def enrolled(pool: UserPool, username: str = "alice") -> tuple[object, str, str, list[str]]:
    """(user, secret, the code used to enrol, recovery codes)."""
    user = await new_user(pool, username)
    secret = (await pool.enrol_totp(user.id))["secret"]
    code = pyotp.TOTP(secret).now()
    return user, secret, code, await pool.verify_totp(user.id, code)


def next_code(secret: str) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30)


def a_wrong_code(secret: str) -> str:
    otp = pyotp.TOTP(secret)
    near = {otp.at(time.time() + 30 * k) for k in range(-2, 3)}
    while (code := f"{secrets.randbelow(10**6):06d}") in near:
        pass
    return code


def signed(pool: UserPool, claims: dict, key_set: KeySet | None = None) -> str:
    key = (key_set or pool.keys).signing_key
    return jws.serialize_compact({"alg": "Ed25519", "typ": "JWT", "kid": key.kid}, json.dumps(claims).encode(), key, algorithms=["Ed25519"])


def challenge_claims(user_id: int, *, issued: float) -> dict:
    issued = int(issued)
    return {"iss": ISSUER, "aud": "summit-photos", "sub": str(user_id), "token_use": "mfa_challenge", "iat": issued,
            "nbf": issued, "exp": issued + 300, "auth_time": issued, "jti": secrets.token_urlsafe(12), "device": ""}


async def test_enrolment_gives_a_secret_an_otpauth_uri_with_the_issuer_and_a_qr_code(pool: UserPool) -> None:
    user = await new_user(pool)
    enrolment = await pool.enrol_totp(user.id)
    secret = enrolment["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    uri = pyotp.parse_uri(enrolment["otpauth_uri"])
    assert (uri.secret, uri.issuer, uri.name) == (secret, pool.config.app_name, "alice")
    assert ET.fromstring(enrolment["qr_svg"]).tag.endswith("svg")
    # not on until verified: sign-in still gives a session
    assert not (await pool.get_user(user.id)).mfa_enabled
    assert isinstance(await pool.sign_in("alice", PASSWORD), Session)


async def test_verifying_with_the_current_code_turns_totp_on_and_gives_ten_recovery_codes(pool: UserPool) -> None:
    user = await new_user(pool)
    with pytest.raises(Invalid):
        await pool.verify_totp(user.id, "123456")  # enrolment not started
    secret = (await pool.enrol_totp(user.id))["secret"]
    with pytest.raises(Invalid) as caught:
        await pool.verify_totp(user.id, a_wrong_code(secret))
    assert caught.value.field == "code"
    codes = await pool.verify_totp(user.id, pyotp.TOTP(secret).now())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert (await pool.get_user(user.id)).mfa_enabled
    with pytest.raises(Conflict):
        await pool.enrol_totp(user.id)
    with pytest.raises(Conflict):
        await pool.verify_totp(user.id, next_code(secret))


async def test_sign_in_answers_a_challenge_and_each_code_works_once(pool: UserPool) -> None:
    user, secret, enrol_code, _ = await enrolled(pool)
    challenge = await challenge_for(pool)
    with pytest.raises(Unauthorized):  # the code used at enrolment: a replay
        await pool.answer_mfa(challenge, enrol_code)
    code = next_code(secret)
    session = await pool.answer_mfa(challenge, code)
    assert isinstance(session, Session) and session.user.id == user.id and session.user.mfa_enabled
    principal = await pool.authenticate(session.access_token)
    assert principal.user_id == user.id
    with pytest.raises(Unauthorized):  # the same code again, on a new challenge
        await pool.answer_mfa(await challenge_for(pool), code)
    with pytest.raises(Unauthorized):  # an earlier code is no better
        await pool.answer_mfa(await challenge_for(pool), enrol_code)


async def test_a_recovery_code_works_once(pool: UserPool) -> None:
    _, _, _, recovery = await enrolled(pool)
    session = await pool.answer_mfa(await challenge_for(pool), recovery[0])
    await pool.authenticate(session.access_token)
    with pytest.raises(Unauthorized):
        await pool.answer_mfa(await challenge_for(pool), recovery[0])
    # the others still work, typed in capitals with spaces around
    await pool.answer_mfa(await challenge_for(pool), f" {recovery[1].upper()} ")
    with pytest.raises(Unauthorized):
        await pool.answer_mfa(await challenge_for(pool), "abcd-efgh-jkmn")


async def test_recovery_codes_of_one_user_do_not_work_for_another(pool: UserPool) -> None:
    _, _, _, alice_codes = await enrolled(pool, "alice")
    await enrolled(pool, "bob")
    with pytest.raises(Unauthorized):
        await pool.answer_mfa(await challenge_for(pool, "bob"), alice_codes[0])


async def test_forged_or_expired_challenges_are_unauthorized(pool: UserPool, tmp_path: Path) -> None:
    user, secret, _, recovery = await enrolled(pool)
    other_keys = KeySet(tmp_path / "other-keys")
    session_token = (await pool.answer_mfa(await challenge_for(pool), recovery[0])).access_token
    now = time.time()
    forged = [
        signed(pool, challenge_claims(user.id, issued=now), other_keys),  # another key
        signed(pool, challenge_claims(user.id, issued=now - 1000)),  # expired
        signed(pool, {**challenge_claims(user.id, issued=now), "token_use": "access"}),  # not a challenge
        signed(pool, {**challenge_claims(user.id, issued=now), "iss": "http://evil.example"}),
        session_token,  # an access token is not a challenge
        "",
        "not.a.token",
        None,
        42,
    ]
    for challenge in forged:
        with pytest.raises(Unauthorized):
            await pool.answer_mfa(challenge, recovery[1])
    # the same claims, freshly issued and signed by the pool's key, are accepted (so each refusal
    # above is for the reason it names)
    await pool.answer_mfa(signed(pool, challenge_claims(user.id, issued=now)), recovery[1])


async def test_a_challenge_is_not_an_access_token(pool: UserPool) -> None:
    await enrolled(pool)
    with pytest.raises(Unauthorized):
        await pool.authenticate(await challenge_for(pool))


async def test_a_challenge_for_an_account_without_totp_is_unauthorized(pool: UserPool) -> None:
    user = await new_user(pool)
    with pytest.raises(Unauthorized):
        await pool.answer_mfa(signed(pool, challenge_claims(user.id, issued=time.time())), "123456")


@pytest.mark.parametrize("code", [None, 123456, "", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "１２３４５６"])
async def test_malformed_codes_are_refused_with_a_clear_error(pool: UserPool, code: object) -> None:
    user, secret, _, _ = await enrolled(pool)
    with pytest.raises(Unauthorized):
        await pool.answer_mfa(await challenge_for(pool), code)
    other = await new_user(pool, "bob")
    await pool.enrol_totp(other.id)
    with pytest.raises(Invalid):
        await pool.verify_totp(other.id, code)
