"""Lock-outs like Cognito's: after 5 failures in a row, each attempt waits 2^(n-5) seconds, capped at
15 minutes; per account, per source address (20 failures) and per MFA factor. Time moves through the
throttle's injectable clock, never by sleeping."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from pathlib import Path

import pyotp
import pytest

from summit.errors import TooManyRequests, Unauthorized
from summit.security.identity import KeySet, MfaChallenge, PoolConfig, Session, UserPool, migrations
from summit.security.identity.throttle import CAP_SECONDS, FORGET_AFTER_SECONDS, Limits, Throttle, wait_after
from summit.security.passwords import PasswordHasher
from summit.wiring import open_port

PASSWORD = "correct horse battery"


# ---- the back-off table ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (6, 2), (7, 4), (8, 8), (9, 16), (10, 32), (11, 64), (12, 128),
     (13, 256), (14, 512), (15, 900), (16, 900), (20, 900), (100, 900), (100_000, 900)],
)
def test_wait_after_five_failures_doubles_from_one_second_up_to_fifteen_minutes(failures: int, seconds: int) -> None:
    assert wait_after(failures, 5) == seconds
    assert isinstance(wait_after(failures, 5), float)


def test_wait_after_other_thresholds() -> None:
    assert [wait_after(n, 20) for n in (0, 19, 20, 21, 22, 29, 30, 31)] == [0, 0, 1, 2, 4, 512, 900, 900]
    assert CAP_SECONDS == 15 * 60
    assert Limits() == Limits(account=5, address=20, mfa=5)


# ---- the throttle on a real database --------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def db(tmp_path: Path, migrated: Path):  # noqa: ANN201
    shutil.copyfile(migrated, tmp_path / "app.db")
    database = open_port("sql", f"sqlite:///{tmp_path}/app.db")
    await asyncio.to_thread(migrations.upgrade, database.sync_url)
    yield database
    await database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def locked_for(throttle: Throttle, *keys: str) -> int | None:
    """retry_after if any key is locked now, else None."""
    try:
        await throttle.check(*keys)
    except TooManyRequests as error:
        assert error.headers == {"Retry-After": str(error.retry_after)}
        assert f"{error.retry_after} second" in error.message
        return error.retry_after
    return None


async def test_a_key_locks_after_the_threshold_and_the_wait_doubles(db, clock: Clock) -> None:  # noqa: ANN001
    throttle = Throttle(db, clock=clock)
    for _ in range(4):
        await throttle.fail("acct:1", 5)
        assert await locked_for(throttle, "acct:1") is None
    await throttle.fail("acct:1", 5)
    assert await locked_for(throttle, "acct:1") == 1
    clock.advance(0.5)
    assert await locked_for(throttle, "acct:1") == 1  # rounded up
    clock.advance(0.51)
    assert await locked_for(throttle, "acct:1") is None
    for n in range(6, 18):
        await throttle.fail("acct:1", 5)
        wait = min(CAP_SECONDS, 2 ** (n - 5))
        assert await locked_for(throttle, "acct:1") == wait
        clock.advance(wait - 1.5)
        assert await locked_for(throttle, "acct:1") == 2  # 1.5 s left, rounded up
        clock.advance(1.51)
        assert await locked_for(throttle, "acct:1") is None
    assert await locked_for(throttle, "acct:2") is None  # other keys are free


async def test_success_resets_a_key(db, clock: Clock) -> None:  # noqa: ANN001
    throttle = Throttle(db, clock=clock)
    for _ in range(5):
        await throttle.fail("acct:1", 5)
    assert await locked_for(throttle, "acct:1") == 1
    await throttle.succeed("acct:1")
    assert await locked_for(throttle, "acct:1") is None
    for _ in range(4):
        await throttle.fail("acct:1", 5)
    assert await locked_for(throttle, "acct:1") is None


async def test_failures_older_than_an_hour_are_forgotten(db, clock: Clock) -> None:  # noqa: ANN001
    throttle = Throttle(db, clock=clock)
    for _ in range(12):
        await throttle.fail("acct:1", 5)
        clock.advance(CAP_SECONDS)
    clock.advance(FORGET_AFTER_SECONDS + 1)
    assert await locked_for(throttle, "acct:1") is None
    await throttle.fail("acct:1", 5)  # counts as the first failure again
    assert await locked_for(throttle, "acct:1") is None


async def test_check_reports_the_longest_wait_of_several_keys(db, clock: Clock) -> None:  # noqa: ANN001
    throttle = Throttle(db, clock=clock)
    for _ in range(7):
        await throttle.fail("acct:1", 5)
    for _ in range(20):
        await throttle.fail("addr:192.0.2.1", 20)
    assert await locked_for(throttle, "acct:1", "addr:192.0.2.1") == 4
    assert await locked_for(throttle, "acct:9", "addr:192.0.2.1") == 1
    assert await locked_for(throttle, "acct:9", "addr:192.0.2.2") is None


async def test_long_keys_made_of_user_input_work(db, clock: Clock) -> None:  # noqa: ANN001
    throttle = Throttle(db, clock=clock)
    long_key = "login:" + "é" * 300
    other = "login:" + "é" * 299 + "e"
    for _ in range(5):
        await throttle.fail(long_key, 5)
    assert await locked_for(throttle, long_key) == 1
    assert await locked_for(throttle, other) is None
    await throttle.succeed(long_key)
    assert await locked_for(throttle, long_key) is None


# ---- lock-outs through the pool -------------------------------------------------------------------


@pytest.fixture
async def pool(tmp_path: Path, db, clock: Clock):  # noqa: ANN001, ANN201
    cache = open_port("cache", "memory://?max_items=1000")
    mailer = open_port("mail", f"outbox://{tmp_path}/outbox")
    pool = UserPool(db=db, cache=cache, mailer=mailer, keys=KeySet(tmp_path / "keys"),
                    hasher=PasswordHasher(time_cost=1, memory_cost=1024), config=PoolConfig(issuer="http://testserver"))
    pool.throttle.clock = clock
    yield pool
    await mailer.close()
    await cache.close()


async def new_user(pool: UserPool, username: str = "alice", *, confirm: bool = True):  # noqa: ANN201
    user = await pool.sign_up(username, f"{username}@example.com", PASSWORD)
    if confirm:
        mail = (await pool.mailer.list(to=user.email))[0]
        user = await pool.confirm(username, re.search(r"\b(\d{6})\b", mail.subject).group(1))
    return user


async def sign_in_fails(pool: UserPool, login: str, password: str, source: str | None = None) -> None:
    with pytest.raises(Unauthorized):
        await pool.sign_in(login, password, source=source)


async def locked_out(pool: UserPool, login: str, password: str = PASSWORD, source: str | None = None) -> int:
    with pytest.raises(TooManyRequests) as caught:
        await pool.sign_in(login, password, source=source)
    assert caught.value.retry_after >= 1 and caught.value.headers["Retry-After"] == str(caught.value.retry_after)
    return caught.value.retry_after


async def test_five_wrong_passwords_lock_the_account_even_for_the_right_password(pool: UserPool, clock: Clock) -> None:
    await new_user(pool)
    for n in range(5):
        await sign_in_fails(pool, "alice", f"wrong password {n}", source="192.0.2.1")
    assert await locked_out(pool, "alice", source="192.0.2.1") == 1
    assert await locked_out(pool, "alice@example.com", source="198.51.100.9") == 1  # per account, from anywhere
    clock.advance(1.01)
    await sign_in_fails(pool, "alice", "wrong again", source="192.0.2.1")  # the 6th failure
    assert await locked_out(pool, "alice") == 2
    clock.advance(2.01)
    await sign_in_fails(pool, "alice", "and again", source="192.0.2.2")  # the 7th
    assert await locked_out(pool, "alice") == 4
    clock.advance(4.01)
    assert isinstance(await pool.sign_in("alice", PASSWORD), Session)
    # the success reset the account's count: four more failures do not lock it
    for n in range(4):
        await sign_in_fails(pool, "alice", f"wrong {n}", source="192.0.2.3")
    assert isinstance(await pool.sign_in("alice", PASSWORD), Session)


async def test_the_wait_is_capped_at_fifteen_minutes(pool: UserPool, clock: Clock) -> None:
    await new_user(pool)
    waits = []
    for n in range(1, 18):
        await sign_in_fails(pool, "alice", "wrong", source=f"192.0.2.{n}")
        if n >= 5:
            waits.append(await locked_out(pool, "alice"))
            clock.advance(waits[-1] + 0.01)
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]


async def test_username_and_email_count_against_the_same_account(pool: UserPool) -> None:
    await new_user(pool)
    for login in ("alice", "ALICE", "alice@example.com", "Alice@Example.com", " alice "):
        await sign_in_fails(pool, login, "wrong password")
    await locked_out(pool, "alice@example.com")


async def test_an_unknown_login_locks_out_the_same_way(pool: UserPool) -> None:
    """So that the answers do not tell which accounts exist."""
    for _ in range(5):
        await sign_in_fails(pool, "nobody", "wrong password")
    assert await locked_out(pool, "nobody", "wrong password") == 1


async def test_twenty_failures_from_one_address_lock_that_address(pool: UserPool, clock: Clock) -> None:
    for n in range(21):
        await new_user(pool, f"user{n}", confirm=n == 20)
    for n in range(20):  # credential stuffing: one try per login
        await sign_in_fails(pool, f"user{n}", "password from a leak", source="203.0.113.7")
    assert await locked_out(pool, "user20", source="203.0.113.7") == 1  # even a good login, right password
    assert isinstance(await pool.sign_in("user20", PASSWORD, source="203.0.113.8"), Session)  # other addresses are free
    clock.advance(1.01)
    await sign_in_fails(pool, "user0", "password from a leak", source="203.0.113.7")  # the 21st
    assert await locked_out(pool, "user20", source="203.0.113.7") == 2


async def test_a_success_resets_the_account_but_not_the_address(pool: UserPool) -> None:
    await new_user(pool, "alice")
    for n in range(4):
        await new_user(pool, f"user{n}", confirm=False)
    source = "203.0.113.7"
    for n in range(19):
        await sign_in_fails(pool, f"user{n % 4}" if n >= 4 else "alice", "wrong password", source=source)
    assert isinstance(await pool.sign_in("alice", PASSWORD, source=source), Session)
    # alice's own count starts again ...
    for _ in range(4):
        await sign_in_fails(pool, "alice", "wrong password", source="198.51.100.1")
    assert isinstance(await pool.sign_in("alice", PASSWORD, source="198.51.100.1"), Session)
    # ... but the address keeps its 19 failures: one more locks it
    await sign_in_fails(pool, "user0", "wrong password", source=source)
    assert await locked_out(pool, "alice", source=source) == 1


async def test_change_password_counts_against_the_account(pool: UserPool) -> None:
    user = await new_user(pool)
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await pool.change_password(user.id, "not the password", "a new long passphrase")
    with pytest.raises(TooManyRequests):
        await pool.change_password(user.id, PASSWORD, "a new long passphrase")
    await locked_out(pool, "alice")


async def test_mfa_codes_are_throttled_the_same_way(pool: UserPool, clock: Clock) -> None:
    user = await new_user(pool)
    secret = (await pool.enrol_totp(user.id))["secret"]
    await pool.verify_totp(user.id, pyotp.TOTP(secret).now())
    challenge = await pool.sign_in("alice", PASSWORD)
    assert isinstance(challenge, MfaChallenge)
    otp = pyotp.TOTP(secret)
    near = {otp.at(time.time() + 30 * k) for k in range(-2, 3)}
    wrong = [code for code in (f"{n:06d}" for n in range(100)) if code not in near][:7]
    for code in wrong[:5]:
        with pytest.raises(Unauthorized):
            await pool.answer_mfa(challenge.challenge, code)
    right = otp.at(time.time() + 30)
    with pytest.raises(TooManyRequests) as caught:
        await pool.answer_mfa(challenge.challenge, right)  # even the right code waits
    assert caught.value.retry_after == 1
    clock.advance(1.01)
    with pytest.raises(Unauthorized):
        await pool.answer_mfa(challenge.challenge, wrong[5])
    with pytest.raises(TooManyRequests) as caught:
        await pool.answer_mfa(challenge.challenge, right)
    assert caught.value.retry_after == 2
    clock.advance(2.01)
    session = await pool.answer_mfa(challenge.challenge, right)
    await pool.authenticate(session.access_token)
    # the success reset the count
    for code in wrong[:4]:
        with pytest.raises(Unauthorized):
            await pool.answer_mfa(challenge.challenge, code)
    with pytest.raises(Unauthorized):  # refused as a wrong code, not locked
        await pool.answer_mfa(challenge.challenge, wrong[4])
