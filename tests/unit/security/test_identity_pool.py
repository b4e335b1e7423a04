"""The user pool (like Cognito), end to end on real adapters: a SQLite database migrated with the
pool's Alembic history, the in-process cache and the embedded outbox mailer (codes are read from
the mails, as a user would). Lock-outs are in test_identity_throttle.py, TOTP in test_identity_totp.py,
forged tokens in test_identity_tokens.py."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet as JoseKeySet
from sqlalchemy import func, select, text, update

from summit.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from summit.security.identity import KeySet, MfaChallenge, PoolConfig, Session, UserPool, migrations, schema
from summit.security.identity.tokens import InvalidToken, TokenIssuer
from summit.security.passwords import PasswordHasher
from summit.adapters.memory.cache import MemoryCache
from summit.wiring import open_port

PASSWORD = "correct horse battery"
ISSUER = "http://testserver"
CODE_RE = re.compile(r"\b(\d{6})\b")


def fast_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=1024)


@dataclass
class Env:
    tmp: Path
    db: object
    cache: object
    mailer: object
    keys: KeySet

    def pool(self, *, hasher: PasswordHasher | None = None, cache: object | None = None, keys: KeySet | None = None,
             **config: object) -> UserPool:
        return UserPool(db=self.db, cache=cache or self.cache, mailer=self.mailer, keys=keys or self.keys,
                        hasher=hasher or fast_hasher(), config=PoolConfig(issuer=ISSUER, **config))


@pytest.fixture
async def env(tmp_path: Path, migrated: Path):  # noqa: ANN201
    shutil.copyfile(migrated, tmp_path / "app.db")
    db = open_port("sql", f"sqlite:///{tmp_path}/app.db")
    await asyncio.to_thread(migrations.upgrade, db.sync_url)  # already at head: a no-op
    cache = open_port("cache", "memory://?max_items=1000")
    mailer = open_port("mail", f"outbox://{tmp_path}/outbox")
    yield Env(tmp_path, db, cache, mailer, KeySet(tmp_path / "keys"))
    await mailer.close()
    await cache.close()
    await db.close()


@pytest.fixture
def pool(env: Env) -> UserPool:
    return env.pool()


async def mails_to(pool: UserPool, address: str) -> list:
    return await pool.mailer.list(to=address)


async def latest_code(pool: UserPool, address: str) -> str:
    mails = await mails_to(pool, address)
    assert mails, f"no mail was sent to {address}"
    match = CODE_RE.search(mails[0].subject) or CODE_RE.search(mails[0].text)
    assert match, f"no 6-digit code in {mails[0].subject!r} / {mails[0].text!r}"
    assert match.group(1) in mails[0].text
    return match.group(1)


async def new_user(pool: UserPool, username: str = "alice", password: str = PASSWORD, *, confirm: bool = True):  # noqa: ANN201
    user = await pool.sign_up(username, f"{username}@example.com", password)
    if confirm:
        user = await pool.confirm(username, await latest_code(pool, user.email))
    return user


async def signed_in(pool: UserPool, login: str = "alice", password: str = PASSWORD, **kwargs: object) -> Session:
    session = await pool.sign_in(login, password, **kwargs)
    assert isinstance(session, Session), session
    return session


async def rows(pool: UserPool, table, **where: object) -> list:  # noqa: ANN001
    query = select(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    async with pool.db.read() as conn:
        return list((await conn.execute(query)).all())


async def wrong_code(pool: UserPool, address: str) -> str:
    right = await latest_code(pool, address)
    return "000000" if right != "000000" else "111111"


# ---- sign-up and confirmation -------------------------------------------------------------------


async def test_sign_up_creates_an_unconfirmed_user_and_mails_a_six_digit_code(pool: UserPool) -> None:
    user = await pool.sign_up("Alice", "Alice@Example.com", PASSWORD)
    assert (user.username, user.email, user.confirmed, user.mfa_enabled) == ("alice", "alice@example.com", False, False)
    assert (await pool.get_user(user.id)).confirmed is False
    mails = await mails_to(pool, "alice@example.com")
    assert len(mails) == 1 and mails[0].to == ("alice@example.com",)
    code = await latest_code(pool, "alice@example.com")
    assert re.fullmatch(r"[0-9]{6}", code)
    # the code is stored hashed: it appears nowhere in the database
    (row,) = await rows(pool, schema.codes, user_id=user.id)
    assert code not in str(tuple(row))


async def test_signing_in_before_confirming_is_forbidden_with_a_message_that_says_what_to_do(pool: UserPool) -> None:
    await pool.sign_up("alice", "alice@example.com", PASSWORD)
    with pytest.raises(Forbidden) as caught:
        await pool.sign_in("alice", PASSWORD)
    message = caught.value.message.lower()
    assert "confirm" in message
    assert "/api/v1/accounts/confirm" in message  # where to send the code
    assert "resend" in message and "new" in message  # and how to get a new one
    # with a wrong password the answer does not tell the account is unconfirmed
    with pytest.raises(Unauthorized):
        await pool.sign_in("alice", PASSWORD + "x")


async def test_confirm_with_the_mailed_code_then_sign_in(pool: UserPool) -> None:
    user = await pool.sign_up("alice", "alice@example.com", PASSWORD)
    confirmed = await pool.confirm("alice@example.com", " " + await latest_code(pool, user.email) + " ")
    assert confirmed.confirmed and confirmed.id == user.id
    assert (await pool.get_user(user.id)).confirmed
    session = await signed_in(pool)
    assert session.user.confirmed


async def test_a_wrong_code_is_invalid_and_after_five_wrong_attempts_even_the_right_code_fails(pool: UserPool) -> None:
    user = await pool.sign_up("alice", "alice@example.com", PASSWORD)
    right = await latest_code(pool, user.email)
    wrong = await wrong_code(pool, user.email)
    for _ in range(5):
        with pytest.raises(Invalid) as caught:
            await pool.confirm("alice", wrong)
        assert caught.value.field == "code"
    with pytest.raises(Invalid):
        await pool.confirm("alice", right)
    assert not (await pool.get_user(user.id)).confirmed
    # a new code (attempts start again) works; the old one does not
    await pool.resend_code("alice")
    assert len(await mails_to(pool, user.email)) == 2
    fresh = await latest_code(pool, user.email)
    if fresh != right:
        with pytest.raises(Invalid):
            await pool.confirm("alice", right)
    assert (await pool.confirm("alice", fresh)).confirmed


@pytest.mark.parametrize("code", [None, 123456, "", "12345", "1234567", "abcdef", ["123456"]])
async def test_malformed_codes_are_invalid(pool: UserPool, code: object) -> None:
    await pool.sign_up("alice", "alice@example.com", PASSWORD)
    with pytest.raises(Invalid):
        await pool.confirm("alice", code)


async def test_resend_code_mails_a_new_code_that_works_and_stays_silent_otherwise(pool: UserPool) -> None:
    user = await pool.sign_up("alice", "alice@example.com", PASSWORD)
    first = await latest_code(pool, user.email)
    await pool.resend_code("alice@example.com")
    mails = await mails_to(pool, user.email)
    assert len(mails) == 2
    second = await latest_code(pool, user.email)
    if second != first:
        with pytest.raises(Invalid):
            await pool.confirm("alice", first)
    assert (await pool.confirm("alice", second)).confirmed
    # unknown logins and confirmed accounts: no mail, no error
    await pool.resend_code("nobody")
    await pool.resend_code("nobody@example.com")
    await pool.resend_code("alice")
    assert len(await pool.mailer.list()) == 2


async def test_confirming_an_unknown_login_is_invalid(pool: UserPool) -> None:
    with pytest.raises(Invalid):
        await pool.confirm("nobody", "123456")


async def test_on_confirmed_hooks_run_inside_the_confirming_transaction(pool: UserPool) -> None:
    async with pool.db.write() as conn:
        await conn.execute(text("CREATE TABLE profiles (user_id BIGINT PRIMARY KEY, name TEXT NOT NULL)"))

    async def add_profile(conn, user) -> None:  # noqa: ANN001
        assert user.confirmed
        await conn.execute(text("INSERT INTO profiles (user_id, name) VALUES (:id, :name)"), {"id": user.id, "name": user.username})

    async def explode(conn, user) -> None:  # noqa: ANN001
        raise RuntimeError("the app could not set up the account")

    user = await pool.sign_up("alice", "alice@example.com", PASSWORD)
    code = await latest_code(pool, user.email)
    pool.on_confirmed[:] = [add_profile, explode]
    with pytest.raises(RuntimeError, match="could not set up"):
        await pool.confirm("alice", code)
    # all or nothing: no profile, still unconfirmed, and the code was not spent
    assert not (await pool.get_user(user.id)).confirmed
    async with pool.db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM profiles"))).scalar_one() == 0
    with pytest.raises(Forbidden):
        await pool.sign_in("alice", PASSWORD)

    pool.on_confirmed[:] = [add_profile]
    assert (await pool.confirm("alice", code)).confirmed
    async with pool.db.read() as conn:
        assert (await conn.execute(text("SELECT user_id, name FROM profiles"))).all() == [(user.id, "alice")]


async def test_a_taken_username_or_email_is_a_conflict_naming_the_field(pool: UserPool) -> None:
    await new_user(pool, "alice")
    with pytest.raises(Conflict) as caught:
        await pool.sign_up("ALICE", "other@example.com", PASSWORD)
    assert caught.value.field == "username"
    with pytest.raises(Conflict) as caught:
        await pool.sign_up("alice2", "Alice@EXAMPLE.com", PASSWORD)
    assert caught.value.field == "email"
    # an unconfirmed account holds its name too
    await pool.sign_up("bob", "bob@example.com", PASSWORD)
    with pytest.raises(Conflict) as caught:
        await pool.sign_up("bob", "bob2@example.com", PASSWORD)
    assert caught.value.field == "username"
    assert len(await rows(pool, schema.users)) == 2


@pytest.mark.parametrize(
    "username", ["ab", "a" * 31, "al ice", "-alice", ".alice", "alice.", "al..ice", "al!ce", "böb", "", "   ", None, 42, ["alice"]]
)
async def test_an_invalid_username_is_invalid_naming_the_field(pool: UserPool, username: object) -> None:
    with pytest.raises(Invalid) as caught:
        await pool.sign_up(username, "someone@example.com", PASSWORD)
    assert caught.value.field == "username"
    assert await rows(pool, schema.users) == []
    assert await pool.mailer.list() == []


@pytest.mark.parametrize(
    "email", ["alice", "alice@", "@example.com", "alice@example", "alice@@example.com", "al ice@example.com",
              "alice@exa mple.com", "a" * 65 + "@example.com", "alice@example.com\nBcc: x@evil.com", "alice@" + "a" * 250 + ".com", "", None, 7]
)
async def test_an_invalid_email_is_invalid_naming_the_field(pool: UserPool, email: object) -> None:
    with pytest.raises(Invalid) as caught:
        await pool.sign_up("alice", email, PASSWORD)
    assert caught.value.field == "email"
    assert await rows(pool, schema.users) == []


@pytest.mark.parametrize("email", ["zoë@example.com", "a(b)@example.com", "a..b@example.com", "x@-example.com", "x@example.123"])
async def test_an_email_the_mailer_cannot_send_to_is_refused_before_the_account_exists(pool: UserPool, email: str) -> None:
    """check_email accepts what the mail port refuses: the user row is committed, then sending the
    code raises the mail port's InvalidMessage (a 500), leaving an account no one can confirm that
    holds the username and the address."""
    try:
        await pool.sign_up("zoe", email, PASSWORD)
    except Invalid as error:
        assert error.field == "email"
        assert await rows(pool, schema.users) == [], "the account was created although its address was refused"
    else:  # accepted: then the code must have been mailed
        assert len(await pool.mailer.list()) == 1


# ---- passwords at sign-up and sign-in (the policy itself: test_password_policy.py) ---------------


@pytest.mark.parametrize(
    ("password", "ok"),
    [("kx7#pq2", False), ("kx7#pq2z", True), ("w" * 63 + "z", True), ("pass phrase " * 10 + "12345678", True),
     ("z" * 129, False), ("password1", False), ("iloveyou", False), ("Dragon", False), ("DRAGONFLY", False),
     ("four words with spaces", True), ("🦊🦊🦊🦊🦊🦊🦊🦊", True)],
)
async def test_sign_up_applies_the_password_policy(pool: UserPool, password: str, ok: bool) -> None:
    if ok:
        await pool.sign_up("alice", "alice@example.com", password)
        return
    with pytest.raises(Invalid) as caught:
        await pool.sign_up("alice", "alice@example.com", password)
    assert caught.value.field == "password"
    assert await rows(pool, schema.users) == []


async def test_a_password_typed_in_another_unicode_form_signs_in(pool: UserPool) -> None:
    composed = "café crème brûlée"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    await new_user(pool, "alice", composed)
    await signed_in(pool, "alice", decomposed)
    await new_user(pool, "bob", decomposed)
    await signed_in(pool, "bob", composed)
    # NFKC: fullwidth letters are their ASCII compatibility forms
    await new_user(pool, "carol", "ｗｉｄｅ ｐａｓｓｗｏｒｄ ９")
    await signed_in(pool, "carol", "wide password 9")


async def test_passwords_are_neither_truncated_nor_case_folded(pool: UserPool) -> None:
    password = "Long Passphrase " * 7 + "End"  # 115 characters, beyond bcrypt's 72 bytes
    await new_user(pool, "alice", password)
    for wrong in (password[:72], password[:-1], password.lower(), password.upper()):  # 4: below the lock-out
        with pytest.raises(Unauthorized):
            await pool.sign_in("alice", wrong)
    await signed_in(pool, "alice", password)


# ---- sign-in ------------------------------------------------------------------------------------


async def test_sign_in_by_username_and_by_email_gives_verifiable_tokens(pool: UserPool) -> None:
    user = await new_user(pool)
    for login in ("alice", "ALICE", " alice@example.com ", "Alice@Example.COM"):
        session = await signed_in(pool, login)
        assert session.user.id == user.id and session.expires_in == 300
        principal = await pool.authenticate(session.access_token)
        assert (principal.user_id, principal.username) == (user.id, "alice")
        assert principal.expires_at - principal.issued_at == 300
        claims = pool.tokens.verify(session.id_token, token_use="id")
        assert claims.subject == str(user.id)
        assert claims.claims["email"] == "alice@example.com"
        assert claims.claims["email_verified"] is True
        assert claims.claims["preferred_username"] == "alice"
        assert claims.claims["iss"] == ISSUER and claims.claims["aud"] == "summit-photos"
        assert session.as_json()["token"] == session.access_token
    # the id token and the refresh token are not access tokens
    with pytest.raises(Unauthorized):
        await pool.authenticate(session.id_token)
    with pytest.raises(Unauthorized):
        await pool.authenticate(session.refresh_token)


@pytest.mark.parametrize(("login", "password"), [("alice", PASSWORD + "!"), ("alice", ""), ("alice", None), ("alice", 12345678),
                                                 ("alice", "x" * 10_000), ("nobody", PASSWORD), (None, PASSWORD), ("", PASSWORD)])
async def test_wrong_credentials_are_unauthorized_with_one_message(pool: UserPool, login: object, password: object) -> None:
    await new_user(pool)
    with pytest.raises(Unauthorized) as caught:
        await pool.sign_in(login, password)
    assert caught.value.message == "wrong username/email or password"


@pytest.mark.parametrize("password", ["bad\ud800surrogate", "\udfff" * 8])
async def test_a_password_with_a_lone_surrogate_is_a_wrong_password_not_a_crash(pool: UserPool, password: str) -> None:
    """JSON lets a client send "\\ud800": argon2 cannot encode it, and sign_in / change_password let
    the UnicodeEncodeError escape (a 500) instead of answering 401."""
    user = await new_user(pool)
    with pytest.raises(Unauthorized):
        await pool.sign_in("alice", password)
    with pytest.raises(Unauthorized):
        await pool.change_password(user.id, password, "a brand new passphrase")


async def test_argon2_parameters_are_upgraded_transparently_at_sign_in(env: Env) -> None:
    old = env.pool(hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    user = await new_user(old)
    (before,) = await rows(old, schema.users, id=user.id)
    assert "m=1024,t=1" in before.password_hash

    new_hasher = PasswordHasher(time_cost=2, memory_cost=2048)
    new = env.pool(hasher=new_hasher)
    await signed_in(new)
    (after,) = await rows(new, schema.users, id=user.id)
    assert after.password_hash != before.password_hash
    assert after.password_hash.startswith("$argon2id$") and "m=2048,t=2" in after.password_hash
    assert new_hasher.verify(after.password_hash, PASSWORD)
    assert not new_hasher.needs_rehash(after.password_hash)
    await signed_in(new)  # and again, with the upgraded hash
    (again,) = await rows(new, schema.users, id=user.id)
    assert again.password_hash == after.password_hash  # no rehash when the parameters match
    # a wrong password upgrades nothing
    other = await new_user(old, "bob")
    (bob_before,) = await rows(old, schema.users, id=other.id)
    with pytest.raises(Unauthorized):
        await new.sign_in("bob", "not the password")
    (bob_after,) = await rows(new, schema.users, id=other.id)
    assert bob_after.password_hash == bob_before.password_hash


# ---- refresh tokens -----------------------------------------------------------------------------


async def test_refresh_rotates_the_refresh_token(pool: UserPool) -> None:
    await new_user(pool)
    first = await signed_in(pool)
    second = await pool.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token and second.id_token != first.id_token
    a, b = await pool.authenticate(first.access_token), await pool.authenticate(second.access_token)
    assert a.user_id == b.user_id and a.session_id == b.session_id  # the same sign-in (family)
    assert b.auth_time == a.auth_time  # refreshing is not signing in again
    third = await pool.refresh(second.refresh_token)
    await pool.authenticate(third.access_token)


async def test_reusing_a_refresh_token_revokes_the_whole_family(pool: UserPool) -> None:
    await new_user(pool)
    other_device = await signed_in(pool, device="laptop")
    first = await signed_in(pool, device="phone")
    second = await pool.refresh(first.refresh_token)
    with pytest.raises(Unauthorized) as caught:
        await pool.refresh(first.refresh_token)  # a stolen copy, replayed
    assert "already used" in caught.value.message
    with pytest.raises(Unauthorized):
        await pool.refresh(second.refresh_token)  # the legitimate holder is signed out too
    with pytest.raises(Unauthorized):
        await pool.refresh(first.refresh_token)
    # another sign-in (another family) is untouched
    await pool.refresh(other_device.refresh_token)


async def test_an_expired_refresh_token_fails(pool: UserPool) -> None:
    user = await new_user(pool)
    session = await signed_in(pool)
    (row,) = await rows(pool, schema.refresh_tokens, user_id=user.id)
    assert row.expires_at == pytest.approx(row.created_at + pool.config.refresh_ttl)
    async with pool.db.write() as conn:
        await conn.execute(update(schema.refresh_tokens).values(expires_at=time.time() - 1))
    with pytest.raises(Unauthorized):
        await pool.refresh(session.refresh_token)


@pytest.mark.parametrize("token", [None, "", "short", "x" * 43, "x" * 500, 42, b"bytes"])
async def test_unknown_or_malformed_refresh_tokens_fail(pool: UserPool, token: object) -> None:
    await new_user(pool)
    await signed_in(pool)
    with pytest.raises(Unauthorized):
        await pool.refresh(token)


# ---- sign-out -----------------------------------------------------------------------------------


async def test_sign_out_ends_this_device_only(pool: UserPool) -> None:
    await new_user(pool)
    phone = await signed_in(pool, device="phone")
    laptop = await signed_in(pool, device="laptop")
    principal = await pool.authenticate(phone.access_token)
    await pool.sign_out(principal, refresh_token=phone.refresh_token)
    with pytest.raises(Unauthorized):
        await pool.authenticate(phone.access_token)
    with pytest.raises(Unauthorized):
        await pool.refresh(phone.refresh_token)
    await pool.authenticate(laptop.access_token)
    refreshed = await pool.refresh(laptop.refresh_token)
    await pool.authenticate(refreshed.access_token)


async def test_sign_out_without_the_refresh_token_still_ends_that_sign_in(pool: UserPool) -> None:
    await new_user(pool)
    first = await signed_in(pool)
    refreshed = await pool.refresh(first.refresh_token)
    await pool.sign_out(await pool.authenticate(refreshed.access_token))  # the access token's session id
    with pytest.raises(Unauthorized):
        await pool.authenticate(refreshed.access_token)
    with pytest.raises(Unauthorized):
        await pool.refresh(refreshed.refresh_token)


async def test_sign_out_cannot_revoke_someone_elses_refresh_token(pool: UserPool) -> None:
    await new_user(pool, "alice")
    await new_user(pool, "bob")
    alice = await signed_in(pool, "alice")
    bob = await signed_in(pool, "bob")
    await pool.sign_out(await pool.authenticate(alice.access_token), refresh_token=bob.refresh_token)
    await pool.authenticate(bob.access_token)
    await pool.refresh(bob.refresh_token)


async def test_sign_out_everywhere_refuses_every_earlier_token_at_once(env: Env, pool: UserPool) -> None:
    user = await new_user(pool)
    sessions = [await signed_in(pool, device=f"device {n}") for n in range(3)]
    refreshed = await pool.refresh(sessions[0].refresh_token)
    for session in sessions:
        await pool.authenticate(session.access_token)
    await pool.sign_out_everywhere(user.id)
    for token in [s.access_token for s in sessions] + [refreshed.access_token]:
        with pytest.raises(Unauthorized):
            await pool.authenticate(token)
    for token in [s.refresh_token for s in sessions[1:]] + [refreshed.refresh_token]:
        with pytest.raises(Unauthorized):
            await pool.refresh(token)
    # another process (its own, cold cache) reads the revocation time from the database
    elsewhere = env.pool(cache=open_port("cache", "memory://?max_items=1000"))
    with pytest.raises(Unauthorized):
        await elsewhere.authenticate(sessions[1].access_token)
    # a sign-in right after works, and keeps working (no same-second false positive)
    after = await signed_in(pool)
    await pool.authenticate(after.access_token)
    await elsewhere.authenticate(after.access_token)
    again = await pool.refresh(after.refresh_token)
    await pool.authenticate(again.access_token)


class UnreachableCache(MemoryCache):
    """A shared cache that cannot be reached: every read a miss, every write skipped (as the Redis
    adapter answers while its server is down)."""

    async def get(self, key: str) -> bytes | None:
        return None

    async def get_many(self, keys) -> dict[str, bytes]:  # noqa: ANN001
        return {}

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        return None

    async def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        return False


async def test_a_cache_outage_lets_no_signed_out_token_pass(env: Env) -> None:
    """Revocations live in the database; the cache only remembers them. With the cache down (or
    back, but without what it missed) every check reads the database."""
    down = env.pool(cache=UnreachableCache())
    user = await new_user(down)
    phone, laptop, tablet = [await signed_in(down, device=d) for d in ("phone", "laptop", "tablet")]
    await down.authenticate(phone.access_token)
    await down.sign_out(await down.authenticate(phone.access_token))  # the cache never hears of it
    back = env.pool(cache=open_port("cache", "memory://?max_items=1000"))  # the cache again, empty
    for pool in (down, back):
        with pytest.raises(Unauthorized, match="signed out"):
            await pool.authenticate(phone.access_token)
        await pool.authenticate(laptop.access_token)
    await down.sign_out(None, refresh_token=tablet.refresh_token)  # by its refresh token alone: its access token too
    with pytest.raises(Unauthorized, match="signed out"):
        await back.authenticate(tablet.access_token)
    await down.sign_out_everywhere(user.id)
    fresh = env.pool(cache=open_port("cache", "memory://?max_items=1000"))
    for pool in (down, fresh):
        with pytest.raises(Unauthorized, match="signed out"):
            await pool.authenticate(laptop.access_token)


async def test_a_replayed_refresh_token_signs_out_the_access_tokens_of_its_sign_in(pool: UserPool) -> None:
    await new_user(pool)
    first = await signed_in(pool)
    second = await pool.refresh(first.refresh_token)
    await pool.authenticate(second.access_token)
    with pytest.raises(Unauthorized):
        await pool.refresh(first.refresh_token)  # a stolen copy, replayed
    with pytest.raises(Unauthorized, match="signed out"):
        await pool.authenticate(second.access_token)


async def test_a_sign_in_in_the_same_millisecond_as_sign_out_everywhere_is_not_refused(pool: UserPool, monkeypatch) -> None:  # noqa: ANN001
    """iat_ms is int(now * 1000) (truncated), revoked_before the exact float: a sign-in in the same
    millisecond as the revocation, after it, gets a token that authenticate refuses for its whole
    life (issued_ms < revoked_before * 1000)."""
    user = await new_user(pool)
    instant = (int(time.time() * 1000) + 0.6) / 1000  # a time with a fraction of a millisecond
    monkeypatch.setattr(time, "time", lambda: instant)
    await pool.sign_out_everywhere(user.id)
    after = await signed_in(pool)  # at the same instant, after the revocation
    await pool.authenticate(after.access_token)


# ---- third-party verification and key rotation --------------------------------------------------


def third_party_verify(jwks_json: str, token: str) -> dict:
    """What another service does with summit's JWKS alone (no call back)."""
    key_set = JoseKeySet.import_key_set(json.loads(jwks_json))
    obj = jws.deserialize_compact(token, key_set, algorithms=["Ed25519"])
    return json.loads(obj.payload)


async def test_an_access_token_verifies_with_the_jwks_alone(pool: UserPool, monkeypatch) -> None:  # noqa: ANN001
    user = await new_user(pool)
    session = await signed_in(pool)
    jwks_json = json.dumps(pool.keys.jwks())  # as served at /.well-known/jwks.json
    assert all("d" not in key for key in json.loads(jwks_json)["keys"]), "the JWKS must not carry private keys"

    def no_call(*args: object, **kwargs: object) -> None:
        raise AssertionError("a third party must not need the pool")

    for owner, name in ((UserPool, "authenticate"), (TokenIssuer, "verify"), (KeySet, "key_for"), (KeySet, "jwks")):
        monkeypatch.setattr(owner, name, no_call)
    claims = third_party_verify(jwks_json, session.access_token)
    assert (claims["sub"], claims["iss"], claims["aud"], claims["token_use"]) == (str(user.id), ISSUER, "summit-photos", "access")
    assert claims["exp"] - claims["iat"] == 300
    # a standard JWT library checks the claims with the same key set
    token = jwt.decode(session.id_token, JoseKeySet.import_key_set(json.loads(jwks_json)), algorithms=["Ed25519"])
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": "summit-photos"},
                          exp={"essential": True}).validate(token.claims)
    assert token.claims["email"] == "alice@example.com" and token.header["kid"]


async def test_key_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(pool: UserPool) -> None:
    await new_user(pool)
    old_kid = pool.keys.active_kid
    before = await signed_in(pool)
    new_kid = pool.keys.rotate()
    assert new_kid != old_kid and pool.keys.active_kid == new_kid
    after = await signed_in(pool)
    assert jws.extract_compact(before.access_token.encode()).headers()["kid"] == old_kid
    assert jws.extract_compact(after.access_token.encode()).headers()["kid"] == new_kid
    assert jws.extract_compact(after.id_token.encode()).headers()["kid"] == new_kid
    jwks_json = json.dumps(pool.keys.jwks())
    assert {key["kid"] for key in json.loads(jwks_json)["keys"]} == {old_kid, new_kid}
    for session in (before, after):  # nobody is logged out
        await pool.authenticate(session.access_token)
        pool.tokens.verify(session.id_token, token_use="id")
        third_party_verify(jwks_json, session.access_token)
    refreshed = await pool.refresh(before.refresh_token)
    assert jws.extract_compact(refreshed.access_token.encode()).headers()["kid"] == new_kid


async def test_another_process_rotation_is_picked_up_when_its_kid_is_met(env: Env) -> None:
    signer = env.pool()  # the process that rotates
    await new_user(signer)
    # another process: its own cache and its own view of the key directory
    verifier = env.pool(cache=open_port("cache", "memory://?max_items=1000"), keys=KeySet(env.keys.directory))
    await asyncio.sleep(1.1)  # re-reading the directory is rate-limited to once a second
    new_kid = signer.keys.rotate()
    assert new_kid not in verifier.keys.kids()
    session = await signed_in(signer)
    principal = await verifier.authenticate(session.access_token)
    assert principal.username == "alice"
    assert new_kid in verifier.keys.kids()
    assert verifier.keys.active_kid == new_kid  # and it now signs with the new key too


# ---- password reset and change ------------------------------------------------------------------


async def test_password_reset_by_mailed_code_signs_out_every_session(pool: UserPool) -> None:
    user = await new_user(pool)
    earlier = [await signed_in(pool, device=d) for d in ("phone", "laptop")]
    await pool.start_password_reset("alice@example.com")
    mails = await mails_to(pool, user.email)
    assert "reset" in mails[0].subject.lower()
    code = await latest_code(pool, user.email)
    with pytest.raises(Invalid) as caught:
        await pool.confirm_password_reset("alice", code, "password1")  # weak: refused, the code is kept
    assert caught.value.field == "new_password"
    with pytest.raises(Invalid):
        await pool.confirm_password_reset("alice", await wrong_code(pool, user.email), "a new long passphrase")
    await pool.confirm_password_reset("alice", code, "a new long passphrase")
    with pytest.raises(Unauthorized):
        await pool.sign_in("alice", PASSWORD)
    for session in earlier:
        with pytest.raises(Unauthorized):
            await pool.authenticate(session.access_token)
        with pytest.raises(Unauthorized):
            await pool.refresh(session.refresh_token)
    session = await signed_in(pool, "alice", "a new long passphrase")
    await pool.authenticate(session.access_token)
    with pytest.raises(Invalid):  # a code works once
        await pool.confirm_password_reset("alice", code, "yet another passphrase")


async def test_password_reset_for_an_unknown_login_is_silent(pool: UserPool) -> None:
    await new_user(pool)
    sent = len(await pool.mailer.list())
    await pool.start_password_reset("nobody")
    await pool.start_password_reset("nobody@example.com")
    await pool.start_password_reset(None)
    assert len(await pool.mailer.list()) == sent
    with pytest.raises(Invalid):
        await pool.confirm_password_reset("nobody", "123456", "a new long passphrase")


async def test_a_wrong_reset_code_fails_after_five_attempts_even_when_right(pool: UserPool) -> None:
    user = await new_user(pool)
    await pool.start_password_reset("alice")
    code = await latest_code(pool, user.email)
    wrong = await wrong_code(pool, user.email)
    for _ in range(5):
        with pytest.raises(Invalid):
            await pool.confirm_password_reset("alice", wrong, "a new long passphrase")
    with pytest.raises(Invalid):
        await pool.confirm_password_reset("alice", code, "a new long passphrase")
    await signed_in(pool)  # the password did not change


async def test_change_password(pool: UserPool) -> None:
    user = await new_user(pool)
    with pytest.raises(Unauthorized) as caught:
        await pool.change_password(user.id, "not the password", "a new long passphrase")
    assert caught.value.field == "current_password"
    with pytest.raises(Unauthorized):
        await pool.change_password(user.id, None, "a new long passphrase")
    with pytest.raises(Invalid) as caught:
        await pool.change_password(user.id, PASSWORD, "iloveyou")
    assert caught.value.field == "new_password"
    await signed_in(pool)  # unchanged so far
    await pool.change_password(user.id, PASSWORD, "a new long passphrase")
    with pytest.raises(Unauthorized):
        await pool.sign_in("alice", PASSWORD)
    await signed_in(pool, "alice", "a new long passphrase")


# ---- deleting an account ------------------------------------------------------------------------


async def test_delete_user_removes_the_rows_and_its_tokens_stop_working(env: Env, pool: UserPool) -> None:
    import pyotp

    user = await new_user(pool)
    keep = await new_user(pool, "bob")
    enrolment = await pool.enrol_totp(user.id)
    assert len(await pool.verify_totp(user.id, pyotp.TOTP(enrolment["secret"]).now())) == 10
    challenge = await pool.sign_in("alice", PASSWORD)
    assert isinstance(challenge, MfaChallenge)
    session = await pool.answer_mfa(challenge.challenge, pyotp.TOTP(enrolment["secret"]).at(time.time() + 30))
    await pool.start_password_reset("alice")  # a pending code
    deleted: list[int] = []

    async def on_delete(conn, gone) -> None:  # noqa: ANN001
        deleted.append(gone.id)

    await pool.delete_user(user.id, also=on_delete)
    assert deleted == [user.id]
    with pytest.raises(Unauthorized, match="no longer exists"):
        await pool.authenticate(session.access_token)
    cold = env.pool(cache=open_port("cache", "memory://?max_items=1000"))
    with pytest.raises(Unauthorized, match="no longer exists"):
        await cold.authenticate(session.access_token)
    with pytest.raises(Unauthorized):
        await pool.refresh(session.refresh_token)
    with pytest.raises(Unauthorized):
        await pool.sign_in("alice", PASSWORD)
    with pytest.raises(NotFound):
        await pool.get_user(user.id)
    with pytest.raises(NotFound):
        await pool.delete_user(user.id)
    for table in (schema.users,):
        assert await rows(pool, table, id=user.id) == []
    for table in (schema.codes, schema.recovery_codes, schema.refresh_tokens):
        assert await rows(pool, table, user_id=user.id) == []
    async with pool.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(schema.users))).scalar_one() == 1
    await pool.get_user(keep.id)
    # the name and address are free again
    await pool.sign_up("alice", "alice@example.com", PASSWORD)


async def test_an_app_cleanup_that_fails_keeps_the_account(pool: UserPool) -> None:
    user = await new_user(pool)
    session = await signed_in(pool)

    async def refuse(conn, gone) -> None:  # noqa: ANN001
        raise RuntimeError("the app could not remove its rows")

    with pytest.raises(RuntimeError):
        await pool.delete_user(user.id, also=refuse)
    assert (await pool.get_user(user.id)).username == "alice"
    await pool.authenticate(session.access_token)


# ---- the token issuer as the pool configures it -------------------------------------------------


async def test_the_pool_refuses_tokens_of_another_pool(env: Env, tmp_path: Path) -> None:
    pool = env.pool()
    await new_user(pool)
    session = await signed_in(pool)
    stranger = UserPool(db=env.db, cache=env.cache, mailer=env.mailer, keys=KeySet(tmp_path / "other-keys"),
                        hasher=fast_hasher(), config=PoolConfig(issuer=ISSUER))
    with pytest.raises(Unauthorized):
        await stranger.authenticate(session.access_token)
    with pytest.raises(InvalidToken):
        stranger.tokens.verify(session.id_token, token_use="id")
