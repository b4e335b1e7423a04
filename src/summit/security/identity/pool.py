"""The user pool (like Cognito): sign-up with an emailed code, sign-in with optional TOTP, rotating
refresh tokens, sign-out on one device or everywhere, password change and reset, lock-outs.

State lives in the sql port's database (``schema``). What every request checks, a user's revocation
time and whether its sign-in (its refresh-token family) was signed out, is read through the cache
port (cache-aside): a miss, or a cache that cannot be reached, reads the database, so a cache outage
never lets a signed-out token pass. Fills read the primary and only add (``add``: never over the
newer value a sign-out just set); sign-outs ``set`` the new state after their commit. Mail goes through the mail port. Hooks let the application add
its own rows in the same transaction as the pool's (``on_confirmed``; ``delete_user(also=...)``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, insert, or_, select, update

from summit import ids
from summit.errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests, Unauthorized
from summit.ports import Connection, IntegrityError
from summit.security.identity import password_policy, schema, totp
from summit.security.identity.keys import KeySet
from summit.security.identity.pii import EmailVault, duplicate_error, plaintext_rows_query, seal_statements
from summit.security.identity.records import MfaChallenge, PoolConfig, PoolUser, Principal, Session
from summit.security.identity.throttle import Limits, Throttle
from summit.security.identity.tokens import InvalidToken, TokenIssuer
from summit.security.identity.validation import check_email, check_username, normalize_login
from summit.security.passwords import PasswordHasher

u, c, r, rc = schema.users.c, schema.codes.c, schema.refresh_tokens.c, schema.recovery_codes.c
Hook = Callable[[Connection, PoolUser], Awaitable[None]]
Audit = Callable[..., Awaitable[None]]
STATE_TTL = 300  # seconds a cached revocation state lives (a per-process cache may lag other processes this long)
MFA_CHALLENGE_TTL = 300


async def _no_audit(action: str, **fields: Any) -> None:
    return None


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


class UserPool:
    def __init__(self, *, db, cache, mailer, keys: KeySet, hasher: PasswordHasher, config: PoolConfig,  # noqa: ANN001
                 limits: Limits = Limits(), audit: Audit = _no_audit, reserved_usernames: frozenset[str] = frozenset(),
                 emails: EmailVault | None = None):
        self.db, self.cache, self.mailer = db, cache, mailer
        self.emails = emails or EmailVault(keys.kms)  # the addresses: hashed and encrypted by the key set's KMS
        self.keys, self.hasher, self.config, self.limits = keys, hasher, config, limits
        self.tokens = TokenIssuer(keys, issuer=config.issuer, audience=config.audience, access_ttl=config.access_ttl, id_ttl=config.id_ttl)
        self.throttle = Throttle(db)
        self.audit = audit
        self.reserved = reserved_usernames
        self.on_confirmed: list[Hook] = []

    # ---- sign-up and confirmation -------------------------------------------------------------
    async def sign_up(self, username: object, email: object, password: object, *, source: str | None = None) -> PoolUser:
        username, email = check_username(username, self.reserved), check_email(email)
        password = self._policy(password, username)
        password_hash = await self.hasher.hash_async(password)
        now = time.time()
        try:
            async with self.db.write() as conn:
                lookup = or_(u.username == username, u.email_hash.in_(self.emails.candidates(email)))
                clash = (await conn.execute(select(u.username).where(lookup))).first()
                if clash is not None:
                    if clash.username == username:
                        raise Conflict("that username is taken; choose another", field="username")
                    raise Conflict("that email is already registered: log in, or reset your password", field="email")
                user_id = await self.db.next_id(conn, ids.shard_for_key(username))
                sealed = await asyncio.to_thread(self.emails.seal, user_id, email)  # the KMS reads its directory
                await conn.execute(insert(schema.users).values(
                    id=user_id, username=username, email_hash=self.emails.index(email), email_sealed=sealed,
                    password_hash=password_hash, confirmed=False, created_at=now, password_changed_at=now))
                code = await self._new_code(conn, user_id, "confirm", self.config.code_ttl)
        except IntegrityError:
            raise Conflict("that username or email is already registered") from None
        await self._mail_code(email, "confirm", code)
        await self.audit("auth:SignUp", user_id=user_id, result="success", source=source)
        return PoolUser(user_id, username, email, False, False, now)

    async def resend_code(self, login: object) -> None:
        """Mail a new confirmation code. Answers the same whether or not the account exists."""
        row = await self._find(login)
        if row is None or row.confirmed or not await self._may_mail(row.id):
            return
        async with self.db.write() as conn:
            code = await self._new_code(conn, row.id, "confirm", self.config.code_ttl)
        await self._mail_code(self._email(row), "confirm", code)

    async def confirm(self, login: object, code: object, *, source: str | None = None) -> PoolUser:
        row = await self._find(login)
        if row is None or row.confirmed:  # the same answer: confirming must not reveal who exists
            raise Invalid("wrong or expired code: ask for a new one", field="code")
        user = PoolUser(row.id, row.username, self._email(row), True, bool(row.mfa_enabled), row.created_at)
        async with self.db.write() as conn:
            if await self._use_code(conn, row.id, "confirm", code):
                await conn.execute(update(schema.users).where(u.id == row.id).values(confirmed=True))
                for hook in self.on_confirmed:
                    await hook(conn, user)
            else:
                user = None
        if user is None:
            raise Invalid("wrong or expired code: ask for a new one", field="code")
        await self.audit("auth:ConfirmSignUp", user_id=row.id, result="success", source=source)
        return user

    # ---- sign-in ------------------------------------------------------------------------------
    async def sign_in(self, login: object, password: object, *, source: str | None = None, device: str = "") -> Session | MfaChallenge:
        wrong = Unauthorized("wrong username/email or password")
        name = normalize_login(login)
        address_key = f"addr:{source or '-'}"
        row = await self._find(name) if name else None
        account_key = f"acct:{row.id}" if row is not None else f"login:{name}"
        await self._check_or_audit(self.throttle.check(account_key, address_key), "auth:SignIn", row.id if row else None, source)
        ok = isinstance(password, str) and len(password) <= 4 * password_policy.MAX_LENGTH
        if row is None or not ok:
            await self.hasher.verify_dummy("x")  # the same time as a wrong password
            ok = False
        else:
            ok = await self.hasher.verify_async(row.password_hash, password_policy.normalize(password))
        if not ok:
            await self.throttle.fail(account_key, self.limits.account)
            await self.throttle.fail(address_key, self.limits.address)
            await self.audit("auth:SignIn", user_id=row.id if row else None, result="failure", reason="bad_credentials", source=source)
            raise wrong
        await self.throttle.succeed(account_key)
        if not row.confirmed:
            raise Forbidden(
                "confirm your email first: send the code we mailed to POST /api/v1/accounts/confirm "
                "(POST /api/v1/accounts/confirm/resend mails a new one)",
                field="login",
            )
        if self.hasher.needs_rehash(row.password_hash):
            new_hash = await self.hasher.hash_async(password_policy.normalize(password))
            async with self.db.write() as conn:
                await conn.execute(update(schema.users).where(u.id == row.id).values(password_hash=new_hash))
        if row.mfa_enabled:
            challenge = self.tokens._sign({**self.tokens._base(str(row.id), "mfa_challenge", MFA_CHALLENGE_TTL, None, None), "device": device[:200]})
            await self.audit("auth:SignIn", user_id=row.id, result="mfa_required", source=source)
            return MfaChallenge(challenge, MFA_CHALLENGE_TTL)
        await self.audit("auth:SignIn", user_id=row.id, result="success", source=source)
        return await self._new_session(self._user(row), device=device)

    async def answer_mfa(self, challenge: object, code: object, *, source: str | None = None, device: str = "") -> Session:
        try:
            claims = self.tokens.verify(challenge, token_use="mfa_challenge")
        except InvalidToken as error:
            raise Unauthorized(f"the MFA challenge is {str(error).removeprefix('invalid token: ')}: sign in again") from None
        user_id = int(claims.subject)
        key = f"mfa:{user_id}"
        await self._check_or_audit(self.throttle.check(key), "auth:Mfa", user_id, source)
        async with self.db.write() as conn:
            row = (await conn.execute(select(schema.users).where(u.id == user_id))).first()
            if row is None or not row.mfa_enabled:
                raise Unauthorized("sign in again")
            accepted = await self._accept_second_factor(conn, row, code)
        if not accepted:
            await self.throttle.fail(key, self.limits.mfa)
            await self.audit("auth:Mfa", user_id=user_id, result="failure", source=source)
            raise Unauthorized("wrong or already used code", field="code")
        await self.throttle.succeed(key)
        await self.audit("auth:Mfa", user_id=user_id, result="success", source=source)
        return await self._new_session(self._user(row), device=device, auth_time=claims.issued_at)

    async def _accept_second_factor(self, conn: Connection, row, code: object) -> bool:  # noqa: ANN001
        if isinstance(code, str) and "-" in code:  # a recovery code
            result = await conn.execute(
                update(schema.recovery_codes)
                .where(rc.user_id == row.id, rc.code_hash == totp.hash_code(code), rc.used_at.is_(None))
                .values(used_at=time.time())
            )
            return result.rowcount == 1
        step = totp.matching_step(row.mfa_secret, code)
        if step is None or step <= row.mfa_last_step:
            return False
        result = await conn.execute(
            update(schema.users).where(u.id == row.id, u.mfa_last_step < step).values(mfa_last_step=step)
        )
        return result.rowcount == 1

    # ---- sessions -----------------------------------------------------------------------------
    async def _new_session(self, user: PoolUser, *, device: str, auth_time: int | None = None,
                           family: str | None = None, conn: Connection | None = None) -> Session:
        now = time.time()
        auth_time = int(auth_time or now)
        refresh = secrets.token_urlsafe(32)
        values = dict(token_hash=_digest(refresh), family_id=family or secrets.token_hex(16), user_id=user.id,
                      device=device[:200], auth_time=auth_time, created_at=now, expires_at=now + self.config.refresh_ttl)
        if conn is None:
            async with self.db.write() as own:
                await own.execute(insert(schema.refresh_tokens).values(**values))
        else:
            await conn.execute(insert(schema.refresh_tokens).values(**values))
        access = self.tokens.access_token(str(user.id), username=user.username, auth_time=auth_time, iat_ms=now * 1000, sid=values["family_id"])
        id_token = self.tokens.id_token(str(user.id), username=user.username, email=user.email, email_verified=user.confirmed, auth_time=auth_time)
        return Session(user, access, id_token, refresh, self.config.access_ttl)

    async def refresh(self, refresh_token: object, *, device: str = "", source: str | None = None) -> Session:
        invalid = Unauthorized("the refresh token is invalid or expired: sign in again")
        if not isinstance(refresh_token, str) or not 20 <= len(refresh_token) <= 100:
            raise invalid
        now = time.time()
        async with self.db.write() as conn:
            row = (await conn.execute(select(schema.refresh_tokens).where(r.token_hash == _digest(refresh_token)))).first()
            if row is None or row.revoked_at is not None or row.expires_at < now:
                raise invalid
            claimed = await conn.execute(
                update(schema.refresh_tokens).where(r.token_hash == row.token_hash, r.used_at.is_(None)).values(used_at=now)
            )
            if claimed.rowcount != 1:  # used before: a stolen copy is being replayed
                await conn.execute(update(schema.refresh_tokens).where(r.family_id == row.family_id).values(revoked_at=now))
                reused = True
            else:
                reused = False
                user_row = (await conn.execute(select(schema.users).where(u.id == row.user_id))).first()
                if user_row is None or user_row.revoked_before > row.created_at:
                    raise invalid
                session = await self._new_session(self._user(user_row), device=device or row.device, auth_time=int(row.auth_time),
                                                  family=row.family_id, conn=conn)
        if reused:
            await self.cache.set(f"identity:session:{row.family_id}", b"revoked", ttl=STATE_TTL)
            await self.audit("auth:RefreshReuse", user_id=row.user_id, result="failure", reason="refresh_token_reused", source=source)
            raise Unauthorized("this refresh token was already used: every session of that sign-in is now signed out")
        await self.audit("auth:Refresh", user_id=row.user_id, result="success", source=source)
        return session

    async def sign_out(self, principal: Principal | None, *, refresh_token: str | None = None) -> None:
        """Sign out this device: the refresh-token family of this sign-in, and this access token, at
        once. Either is enough: a client whose access token has expired still signs out."""
        now = time.time()
        user_id = principal.user_id if principal else None
        families = {principal.session_id} if principal and principal.session_id else set()
        async with self.db.write() as conn:
            if isinstance(refresh_token, str) and refresh_token:
                row = (await conn.execute(select(r.family_id, r.user_id).where(r.token_hash == _digest(refresh_token)))).first()
                if row is not None and (principal is None or row.user_id == principal.user_id):
                    families.add(row.family_id)
                    user_id = row.user_id
            if user_id is None:
                raise Unauthorized("nothing to sign out: send the access token or the refresh token of this sign-in")
            for family in families:
                await conn.execute(update(schema.refresh_tokens).where(r.family_id == family, r.user_id == user_id).values(revoked_at=now))
        for family in families:  # its access tokens too, at once (the database says so after the entry expires)
            await self.cache.set(f"identity:session:{family}", b"revoked", ttl=STATE_TTL)
        if principal is not None and not principal.session_id:  # a token of no sign-in: only its id can be marked
            remaining = max(1, principal.expires_at - int(now) + 60)
            await self.cache.set(f"identity:revoked-token:{principal.token_id}", b"1", ttl=remaining)
        await self.audit("auth:SignOut", user_id=user_id, result="success")

    async def sign_out_everywhere(self, user_id: int) -> None:
        now = time.time()
        async with self.db.write() as conn:
            await conn.execute(update(schema.users).where(u.id == user_id).values(revoked_before=now))
            await conn.execute(update(schema.refresh_tokens).where(r.user_id == user_id, r.revoked_at.is_(None)).values(revoked_at=now))
        await self.cache.set(f"identity:state:{user_id}", repr(now).encode(), ttl=STATE_TTL)
        await self.audit("auth:GlobalSignOut", user_id=user_id, result="success")

    async def authenticate(self, token: object) -> Principal:
        """Validate an access token and check it was not signed out since it was issued."""
        try:
            claims = self.tokens.verify(token, token_use="access")
        except InvalidToken as error:
            raise Unauthorized(f"{error}: sign in again") from None
        if not claims.subject.isdigit():
            raise Unauthorized("invalid token: bad subject")
        user_id = int(claims.subject)
        sid = str(claims.claims.get("sid", ""))
        state_key = f"identity:state:{user_id}"
        session_key = f"identity:session:{sid}" if sid else f"identity:revoked-token:{claims.token_id}"
        cached = await self.cache.get_many([state_key, session_key])  # one round trip
        state = cached.get(state_key)
        if state is None:
            state = await self._fill_state(user_id)
        if state == b"deleted":
            raise Unauthorized("this account no longer exists")
        issued_ms = claims.claims.get("iat_ms", claims.issued_at * 1000)
        if issued_ms < float(state) * 1000:
            raise Unauthorized("signed out: sign in again")
        if sid:
            session = cached.get(session_key)
            if (session if session is not None else await self._fill_session(sid)) == b"revoked":
                raise Unauthorized("signed out: sign in again")
        elif session_key in cached:
            raise Unauthorized("signed out: sign in again")
        return Principal(user_id, str(claims.claims.get("username", "")), claims.token_id, claims.issued_at, claims.auth_time,
                         expires_at=claims.expires_at, session_id=str(claims.claims.get("sid", "")), role=str(claims.claims.get("role", "")))

    async def _fill_state(self, user_id: int) -> bytes:
        """The user's revocation time (or ``deleted``) from the primary: a lagging replica must not
        put an older state into the cache than the one a sign-out just wrote."""
        async with self.db.read(after_write=True) as conn:
            row = (await conn.execute(select(u.revoked_before).where(u.id == user_id))).first()
        state = b"deleted" if row is None else repr(row.revoked_before).encode()
        await self.cache.add(f"identity:state:{user_id}", state, ttl=STATE_TTL)
        return state

    async def _fill_session(self, sid: str) -> bytes:
        """``revoked`` if the sign-in's refresh-token family was signed out (or replayed), else ``live``."""
        async with self.db.read(after_write=True) as conn:
            row = (await conn.execute(select(r.family_id).where(r.family_id == sid, r.revoked_at.is_not(None)).limit(1))).first()
        state = b"live" if row is None else b"revoked"
        await self.cache.add(f"identity:session:{sid}", state, ttl=STATE_TTL)
        return state

    def role_token(self, principal: Principal, role: str) -> str:
        """An access token for a session of ``role`` (the caller checked the role's trust policy):
        it lives as long as an access token and is signed out with the user's sign-in."""
        now = time.time()
        return self.tokens.access_token(str(principal.user_id), username=principal.username, auth_time=principal.auth_time,
                                        iat_ms=now * 1000, sid=principal.session_id, role=role)

    # ---- passwords ----------------------------------------------------------------------------
    async def change_password(self, user_id: int, current: object, new: object, *, source: str | None = None) -> None:
        key = f"acct:{user_id}"
        await self._check_or_audit(self.throttle.check(key), "auth:ChangePassword", user_id, source)
        row = await self._get_row(user_id)
        if not isinstance(current, str) or not await self.hasher.verify_async(row.password_hash, password_policy.normalize(current)):
            await self.throttle.fail(key, self.limits.account)
            await self.audit("auth:ChangePassword", user_id=user_id, result="failure", reason="wrong_current_password", source=source)
            raise Unauthorized("the current password is wrong", field="current_password")
        new = self._policy(new, row.username, "new_password")
        new_hash = await self.hasher.hash_async(new)
        async with self.db.write() as conn:
            await conn.execute(update(schema.users).where(u.id == user_id).values(password_hash=new_hash, password_changed_at=time.time()))
        await self.throttle.succeed(key)
        await self.audit("auth:ChangePassword", user_id=user_id, result="success", source=source)

    async def start_password_reset(self, login: object) -> None:
        """Mail a reset code. Answers the same whether or not the account exists."""
        row = await self._find(login)
        if row is None or not await self._may_mail(row.id):
            return
        async with self.db.write() as conn:
            code = await self._new_code(conn, row.id, "reset", self.config.reset_code_ttl)
        await self._mail_code(self._email(row), "reset", code)
        await self.audit("auth:ForgotPassword", user_id=row.id, result="success")

    async def confirm_password_reset(self, login: object, code: object, new: object, *, source: str | None = None) -> None:
        row = await self._find(login)
        if row is None:
            raise Invalid("wrong or expired code: ask for a new one", field="code")
        new = self._policy(new, row.username, "new_password")
        new_hash = await self.hasher.hash_async(new)
        now = time.time()
        async with self.db.write() as conn:
            accepted = await self._use_code(conn, row.id, "reset", code)
            if accepted:
                await conn.execute(update(schema.users).where(u.id == row.id).values(
                    password_hash=new_hash, password_changed_at=now, confirmed=True, revoked_before=now))
                await conn.execute(update(schema.refresh_tokens).where(r.user_id == row.id, r.revoked_at.is_(None)).values(revoked_at=now))
                if not row.confirmed:  # the mailed code proves the address: the account is confirmed now
                    for hook in self.on_confirmed:
                        await hook(conn, PoolUser(row.id, row.username, self._email(row), True, bool(row.mfa_enabled), row.created_at))
        if not accepted:
            raise Invalid("wrong or expired code: ask for a new one", field="code")
        await self.cache.set(f"identity:state:{row.id}", repr(now).encode(), ttl=STATE_TTL)
        await self.throttle.succeed(f"acct:{row.id}")
        await self.audit("auth:ConfirmForgotPassword", user_id=row.id, result="success", source=source)

    # ---- TOTP ---------------------------------------------------------------------------------
    async def enrol_totp(self, user_id: int) -> dict[str, str]:
        row = await self._get_row(user_id)
        secret = totp.new_secret()
        async with self.db.write() as conn:
            if row.mfa_enabled:
                raise Conflict("TOTP is already on for this account")
            await conn.execute(update(schema.users).where(u.id == user_id).values(mfa_secret=secret, mfa_last_step=0))
        uri = totp.provisioning_uri(secret, account=row.username, issuer=self.config.app_name)
        return {"secret": secret, "otpauth_uri": uri, "qr_svg": totp.qr_svg(uri)}

    async def verify_totp(self, user_id: int, code: object) -> list[str]:
        """Turn TOTP on with a first valid code; returns single-use recovery codes (shown once)."""
        row = await self._get_row(user_id)
        if row.mfa_secret is None:
            raise Invalid("start enrolment first: POST /api/v1/me/mfa/totp", field="code")
        if row.mfa_enabled:
            raise Conflict("TOTP is already on for this account")
        await self.throttle.check(f"mfa:{user_id}")
        step = totp.matching_step(row.mfa_secret, code)
        if step is None:
            await self.throttle.fail(f"mfa:{user_id}", self.limits.mfa)
            raise Invalid("wrong code: check the clock of the authenticator and try the current code", field="code")
        codes = totp.new_recovery_codes()
        async with self.db.write() as conn:
            await conn.execute(update(schema.users).where(u.id == user_id).values(mfa_enabled=True, mfa_last_step=step))
            await conn.execute(delete(schema.recovery_codes).where(rc.user_id == user_id))
            await conn.execute(insert(schema.recovery_codes), [{"user_id": user_id, "code_hash": totp.hash_code(x)} for x in codes])
        await self.audit("auth:EnableMfa", user_id=user_id, result="success")
        return codes

    # ---- users --------------------------------------------------------------------------------
    async def get_user(self, user_id: int) -> PoolUser:
        return self._user(await self._get_row(user_id))

    async def delete_user(self, user_id: int, *, also: Hook | None = None) -> None:
        """Delete the account; ``also`` removes the application's rows in the same transaction."""
        async with self.db.write() as conn:
            row = (await conn.execute(select(schema.users).where(u.id == user_id))).first()
            if row is None:
                raise NotFound("no such user")
            if also is not None:
                await also(conn, self._user(row))
            for table, column in ((schema.codes, c.user_id), (schema.recovery_codes, rc.user_id), (schema.refresh_tokens, r.user_id),
                                  (schema.group_members, schema.group_members.c.user_id)):
                await conn.execute(delete(table).where(column == user_id))
            await conn.execute(delete(schema.attachments).where(schema.attachments.c.target_kind.in_(("user", "boundary")),
                                                                  schema.attachments.c.target == str(user_id)))
            await conn.execute(delete(schema.users).where(u.id == user_id))
        await self.cache.set(f"identity:state:{user_id}", b"deleted", ttl=STATE_TTL)
        await self.audit("auth:DeleteUser", user_id=user_id, result="success")

    async def seal_plaintext(self, *, batch: int = 200) -> int:
        """Seal the rows whose address is still in plaintext (a database upgraded without its data
        directory, accounts an app's migration imported); returns how many. Idempotent, and safe
        when several processes start at once (each row is written once)."""
        sealed = 0
        while True:
            async with self.db.write() as conn:
                rows = (await conn.execute(plaintext_rows_query(batch))).all()
                for row in rows:
                    clash, seal = await asyncio.to_thread(seal_statements, self.emails, row.id, row.email)
                    if (other := (await conn.execute(clash)).first()) is not None:
                        raise duplicate_error(row.id, other.id)
                    sealed += (await conn.execute(seal)).rowcount
            if len(rows) < batch:
                return sealed

    # ---- helpers ------------------------------------------------------------------------------
    def _user(self, row) -> PoolUser:  # noqa: ANN001
        return PoolUser(row.id, row.username, self._email(row), bool(row.confirmed), bool(row.mfa_enabled), row.created_at)

    def _email(self, row) -> str:  # noqa: ANN001
        """The row's address, decrypted (only where it is needed: a profile, a token, a mail)."""
        if row.email_sealed is None:  # imported in plaintext, not sealed yet (seal_plaintext)
            return row.email
        return self.emails.open(row.id, row.email_sealed)

    async def _check_or_audit(self, check: Awaitable[None], action: str, user_id: int | None, source: str | None) -> None:
        """Run a lock-out check; a refusal is an authentication event too, recorded before it is raised."""
        try:
            await check
        except TooManyRequests:
            await self.audit(action, user_id=user_id, result="failure", reason="locked_out", source=source)
            raise

    def _policy(self, password: object, username: str, field: str = "password") -> str:
        try:
            return password_policy.check(password, username=username)
        except password_policy.WeakPassword as error:
            raise Invalid(str(error), field=field) from None

    async def _find(self, login: object):  # noqa: ANN202
        name = normalize_login(login)
        if name is None:
            return None
        where = u.email_hash.in_(self.emails.candidates(name)) if "@" in name else u.username == name
        async with self.db.read() as conn:
            return (await conn.execute(select(schema.users).where(where))).first()

    async def _get_row(self, user_id: int):  # noqa: ANN202
        async with self.db.read() as conn:
            row = (await conn.execute(select(schema.users).where(u.id == user_id))).first()
        if row is None:
            raise NotFound("no such user")
        return row

    async def _new_code(self, conn: Connection, user_id: int, purpose: str, ttl: int) -> str:
        code = f"{secrets.randbelow(10**6):06d}"
        await conn.execute(delete(schema.codes).where(c.user_id == user_id, c.purpose == purpose))
        await conn.execute(insert(schema.codes).values(user_id=user_id, purpose=purpose, code_hash=_digest(user_id, purpose, code),
                                                       expires_at=time.time() + ttl, attempts=0))
        return code

    async def _use_code(self, conn: Connection, user_id: int, purpose: str, code: object) -> bool:
        """Consume the code if it matches (True); else count the attempt, which the caller commits."""
        row = (await conn.execute(select(schema.codes).where(c.user_id == user_id, c.purpose == purpose))).first()
        if row is None or row.expires_at < time.time() or row.attempts >= self.config.code_attempts:
            return False
        if not isinstance(code, str) or not hmac.compare_digest(row.code_hash, _digest(user_id, purpose, code.strip())):
            await conn.execute(update(schema.codes).where(c.user_id == user_id, c.purpose == purpose).values(attempts=c.attempts + 1))
            return False
        await conn.execute(delete(schema.codes).where(c.user_id == user_id, c.purpose == purpose))
        return True

    async def _may_mail(self, user_id: int) -> bool:
        """At most a few code mails in a row per account (each new code gives fresh guesses)."""
        try:
            await self.throttle.check(f"mail:{user_id}")
        except TooManyRequests:
            return False
        await self.throttle.fail(f"mail:{user_id}", self.limits.mails)
        return True

    async def _mail_code(self, email: str, purpose: str, code: str) -> None:
        from summit.ports.mail import MailMessage

        name = self.config.app_name
        if purpose == "confirm":
            subject = f"{name}: your confirmation code is {code}"
            text = f"Welcome to {name}!\n\nYour confirmation code is {code}. It is valid for 24 hours.\n"
        else:
            subject = f"{name}: your password reset code is {code}"
            text = f"Someone asked to reset the password of your {name} account.\n\nYour code is {code}. It is valid for one hour.\nIf it was not you, ignore this mail: your password stays as it is.\n"
        await self.mailer.send(MailMessage(to=[email], subject=subject, text=text))
