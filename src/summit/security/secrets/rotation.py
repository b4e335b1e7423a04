"""Rotation in four steps, like AWS's rotation functions, and the strategies that take them.

A strategy is an object with four steps, each given a ``Rotation`` (the secret, the pending
version's id ``token``, and what the steps need):

1. ``create_secret``: make the new value and store it as AWSPENDING (``rotation.put_pending``);
2. ``set_secret``: apply the pending value to the resource (a database user's password, ...);
3. ``test_secret``: check that the pending value works against the resource;
4. ``finish_secret``: move AWSCURRENT to the pending version (``rotation.promote()``, the default).

``rotate`` runs them. If a step raises, the rotation is rolled back: AWSCURRENT (and AWSPREVIOUS)
are put back where they were, the pending version is deleted, and the strategy's ``undo_set``
puts the resource back as it was before ``set_secret``, so what AWSCURRENT names keeps working;
then ``RotationFailed`` says which step failed, why, and whether the undo worked. A rotation left
half-done by a crash (an AWSPENDING version on a version that is not current) is resumed with the
same token by the next ``rotate``, as AWS does: ``create_secret`` is skipped, the other steps are
idempotent.

``AlternatingUsers`` is the strategy for a resource with two users that take turns (AWS's
"alternating users"): the new password goes to the user that is *not* current, so the current
value keeps working during the whole rotation and after it, until the next one.
"""

from __future__ import annotations

import importlib
import json
import logging
import secrets
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING

from summit.security.secrets.errors import RotationFailed, SecretsError, VersionNotFound
from summit.security.secrets.manager import CURRENT, PENDING, PREVIOUS

if TYPE_CHECKING:
    from summit.security.secrets.manager import SecretsManager, SecretValue

STEPS = ("create_secret", "set_secret", "test_secret", "finish_secret")
BUILT_IN = {
    "random": "summit.security.secrets.rotation:RandomValue",
    "postgres-alternating-users": "summit.security.secrets.postgres:PostgresAlternatingUsers",
}
log = logging.getLogger("summit.secrets")


@dataclass
class Rotation:
    """What a step works with: the secret and the pending version (``token``)."""

    manager: SecretsManager
    secret: str
    token: str
    progress: Callable[[str], None] | None = None  # where a step says what it did (the CLI prints it)

    def report(self, text: str) -> None:
        log.info("rotation of %s: %s", self.secret, text)
        if self.progress is not None:
            self.progress(text)

    def current(self) -> SecretValue:
        return self.manager.get_secret_value(self.secret, stage=CURRENT)

    def previous(self) -> SecretValue | None:
        try:
            return self.manager.get_secret_value(self.secret, stage=PREVIOUS)
        except VersionNotFound:
            return None

    def pending(self) -> SecretValue:
        return self.manager.get_secret_value(self.secret, version_id=self.token, stage=PENDING)

    def has_pending(self) -> bool:
        try:
            self.pending()
        except VersionNotFound:
            return False
        return True

    def put_pending(self, value: str | bytes) -> None:
        self.manager.put_secret_value(self.secret, value, version_id=self.token, stages=[PENDING])

    def promote(self) -> None:
        """AWSCURRENT to the pending version, AWSPREVIOUS to the old current, AWSPENDING off."""
        self.manager._promote(self.secret, self.token)


class RotationStrategy(ABC):
    """The four steps (see the module's docstring); ``undo_set`` must put the resource back as
    it was before ``set_secret`` (it is called after a failure at set_secret or later, and may be
    called when set_secret did nothing or only part of its work)."""

    @abstractmethod
    def create_secret(self, rotation: Rotation) -> None: ...

    def set_secret(self, rotation: Rotation) -> None:
        """Apply the pending value to the resource (nothing, for a value only summit uses)."""

    def test_secret(self, rotation: Rotation) -> None:
        """Raise if the pending value does not work."""

    def finish_secret(self, rotation: Rotation) -> None:
        rotation.promote()

    def undo_set(self, rotation: Rotation) -> None:
        """Put the resource back as it was before ``set_secret``."""


@dataclass(frozen=True)
class RotationResult:
    secret: str
    version_id: str  # the new AWSCURRENT
    previous_version_id: str  # now AWSPREVIOUS
    resumed: bool  # an interrupted rotation was finished
    seconds: float


def rotate(manager: SecretsManager, name: str, strategy: RotationStrategy, *, progress: Callable[[str], None] | None = None) -> RotationResult:
    """Run the four steps of ``strategy`` on secret ``name``; roll back and raise ``RotationFailed``
    if one fails. One rotation of a secret at a time (``RotationInProgress`` otherwise).
    ``progress`` is told each step as it starts and what the steps report."""
    started = time.monotonic()
    manager.describe(name)  # SecretNotFound before any lock file is made
    with manager._locked(name, "rotating", wait=False):
        info = manager.describe(name)
        current, previous, pending = info.holder(CURRENT), info.holder(PREVIOUS), info.holder(PENDING)
        if current is None:
            raise SecretsError(f"secret {name!r} has no {CURRENT} version to rotate from")
        resumed = pending is not None and pending != current
        if pending == current:  # a label left on the current version: not a rotation in progress
            manager.update_version_stage(name, PENDING, remove_from=pending)
        token = pending if resumed else str(uuid.uuid4())
        assert token is not None
        rotation = Rotation(manager, name, token, progress)
        step = STEPS[0]
        try:
            if not rotation.has_pending():
                rotation.report(f"{step}: new version {token} ({PENDING})")
                strategy.create_secret(rotation)
                if not rotation.has_pending():
                    raise SecretsError(f"create_secret stored no {PENDING} value for version {token} (it must call rotation.put_pending)")
            else:
                rotation.report(f"resuming the interrupted rotation to version {token}")
            for step in STEPS[1:]:
                rotation.report(step)
                getattr(strategy, step)(rotation)
            if manager.describe(name).holder(CURRENT) != token:
                raise SecretsError(f"finish_secret did not move {CURRENT} to version {token} (it must call rotation.promote)")
        except Exception as error:
            rotation.report(f"{step} failed: rolling back")
            raise _roll_back(manager, rotation, strategy, step, error, current, previous) from error
    manager._update_rotation(name, last_rotated=time.time(), last_failure=None)
    log.info("rotated secret %s: version %s is %s", name, token, CURRENT)
    return RotationResult(name, token, current, resumed, time.monotonic() - started)


def _roll_back(manager: SecretsManager, rotation: Rotation, strategy: RotationStrategy, step: str, error: Exception,
               current: str, previous: str | None) -> RotationFailed:  # fmt: skip
    name, token = rotation.secret, rotation.token
    undo_error: Exception | None = None
    try:  # labels as they were before the rotation, AWSPENDING still on the token for undo_set
        manager._restore(name, current, previous, pending=token)
    except Exception as failure:  # noqa: BLE001  (reported in the RotationFailed, with the step's own error)
        undo_error = failure
    try:
        if STEPS.index(step) >= STEPS.index("set_secret"):
            strategy.undo_set(rotation)
    except Exception as failure:  # noqa: BLE001
        undo_error = undo_error or failure
    try:  # a value the resource may still have (undo failed) is kept, without a label, readable by id
        manager._drop_pending(name, token, keep=undo_error is not None)
    except Exception as failure:  # noqa: BLE001
        undo_error = undo_error or failure
    cause = f"{type(error).__name__}: {error}" if not isinstance(error, SecretsError) else str(error)
    if undo_error is None:
        outcome = "the resource was put back (undo_set)" if STEPS.index(step) >= 1 else "nothing had been applied to the resource"
    else:
        outcome = (
            f"putting things back FAILED too ({type(undo_error).__name__}: {undo_error}): check the resource by hand "
            f"(the pending value is kept as version {token}, without a label, in case the resource has it)"
        )
    message = (
        f"rotation of secret {name!r} failed at {step}: {cause}. Rolled back: {PENDING} (version {token}) removed, "
        f"{CURRENT} is still version {current}; {outcome}"
    )
    try:
        manager._update_rotation(name, last_failure={"at": time.time(), "step": step, "error": cause, "undo_failed": undo_error is not None})
    except Exception:  # noqa: BLE001
        log.exception("could not record the failed rotation of %s", name)
    log.warning("%s", message)
    return RotationFailed(message, secret=name, step=step, cause=error, undo_error=undo_error)


def strategy_from_config(strategy: str, options: dict[str, str]) -> RotationStrategy:
    """A strategy from its name (``random``, ``postgres-alternating-users``) or import path
    (``module:Class``), built with ``options`` as keyword arguments."""
    target = BUILT_IN.get(strategy, strategy)
    module_name, sep, attribute = target.partition(":")
    if not sep:
        raise SecretsError(f"unknown rotation strategy {strategy!r}: give one of {', '.join(BUILT_IN)} or module:Class")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise SecretsError(f"cannot load the rotation strategy {strategy!r}: {error}") from None
    try:
        built = factory(**options)
    except TypeError as error:
        raise SecretsError(f"rotation strategy {strategy!r} does not take these options ({', '.join(options) or 'none'}): {error}") from None
    if not isinstance(built, RotationStrategy):
        raise SecretsError(f"{strategy!r} is not a RotationStrategy")
    return built


def new_password(nbytes: int = 32) -> str:
    """A random password: ``nbytes`` of entropy, URL-safe base64 (no quotes, spaces or backslashes)."""
    return secrets.token_urlsafe(nbytes)


class RandomValue(RotationStrategy):
    """A random value that only summit uses (a signing secret, say): nothing to set or test.
    ``field`` puts the value in that field of a JSON secret, keeping the others."""

    def __init__(self, nbytes: int | str = 32, field: str = ""):
        self.nbytes, self.field = int(nbytes), field

    def create_secret(self, rotation: Rotation) -> None:
        value = new_password(self.nbytes)
        if self.field:
            rotation.put_pending(json.dumps({**rotation.current().json(), self.field: value}))
        else:
            rotation.put_pending(value)


class AlternatingUsers(RotationStrategy):
    """Two users of a resource take turns: the secret's value is JSON with ``username`` and
    ``password`` (and whatever else a client needs: host, port, database ...). A rotation sets a
    new password on the user that is not current, tests it, then makes that user current: the
    current value keeps working during and after the rotation, until the rotation after next.

    A subclass says how to reach the resource: ``set_password`` (None: no password login) and
    ``check_login`` (raise unless the user can log in with the password)."""

    def __init__(self, users: tuple[str, str] | str = ("summit_a", "summit_b")):
        pair = tuple(u.strip() for u in users.split(",")) if isinstance(users, str) else tuple(users)
        if len(pair) != 2 or pair[0] == pair[1] or not all(pair):
            raise SecretsError(f"alternating users are two different names, not {users!r}")
        self.users: tuple[str, str] = pair  # type: ignore[assignment]

    @abstractmethod
    def set_password(self, rotation: Rotation, username: str, password: str | None) -> None: ...

    @abstractmethod
    def check_login(self, rotation: Rotation, username: str, password: str) -> None: ...

    def create_secret(self, rotation: Rotation) -> None:
        current = _credentials(rotation.current())
        if current["username"] not in self.users:
            raise SecretsError(f"the current user {current['username']!r} is not one of the alternating users {', '.join(self.users)}")
        other = self.users[1] if current["username"] == self.users[0] else self.users[0]
        rotation.put_pending(json.dumps({**current, "username": other, "password": new_password()}))

    def set_secret(self, rotation: Rotation) -> None:
        pending = _credentials(rotation.pending())
        self.set_password(rotation, pending["username"], pending["password"])

    def test_secret(self, rotation: Rotation) -> None:
        pending = _credentials(rotation.pending())
        self.check_login(rotation, pending["username"], pending["password"])

    def undo_set(self, rotation: Rotation) -> None:
        """Give the user set_secret changed the password it had: the one AWSPREVIOUS names, if
        that version is for this user, else none (it had no password summit knew of)."""
        username = _credentials(rotation.pending())["username"]
        previous = rotation.previous()
        before = _credentials(previous) if previous is not None else None
        self.set_password(rotation, username, before["password"] if before and before["username"] == username else None)


def _credentials(value: SecretValue) -> dict:
    doc = value.json()
    if not isinstance(doc, dict) or not isinstance(doc.get("username"), str) or not isinstance(doc.get("password"), str):
        raise SecretsError(f"version {value.version_id} of secret {value.name!r} is not JSON with a username and a password")
    return doc
