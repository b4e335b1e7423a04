"""What the Secrets Manager raises: every failure is a ``SecretsError`` whose message says what
to fix."""

from __future__ import annotations


class SecretsError(Exception):
    """A Secrets Manager call failed; the message says why and what to do."""


class SecretNotFound(SecretsError):
    """No secret of that name (``summit secrets put NAME`` makes one)."""


class VersionNotFound(SecretsError):
    """No version with that id or staging label."""


class RotationInProgress(SecretsError):
    """Another rotation of the secret is running."""


class RotationFailed(SecretsError):
    """A rotation step failed and the rotation was rolled back: ``step`` names the step, ``cause``
    is the error it raised, ``undo_error`` the error of putting the resource back, if that failed
    too."""

    def __init__(self, message: str, *, secret: str, step: str, cause: BaseException, undo_error: BaseException | None = None):
        super().__init__(message)
        self.secret, self.step, self.cause, self.undo_error = secret, step, cause, undo_error
