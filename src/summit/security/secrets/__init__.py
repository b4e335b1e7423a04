"""The secrets manager, like AWS Secrets Manager: versioned secrets encrypted under the KMS, with
staging labels (AWSCURRENT, AWSPENDING, AWSPREVIOUS) and rotation in four steps. See
``manager.py``, ``rotation.py``, ``postgres.py`` and ``docs/secrets.md``.

    secrets = SecretsManager.for_data_dir(data_dir)
    secrets.put_secret_value("db/app", '{"username": "summit_a", "password": "..."}')
    secrets.get_secret_value("db/app").json()
    secrets.rotate("db/app", PostgresAlternatingUsers(admin_secret="db/admin"))
"""

from summit.security.secrets.errors import RotationFailed, RotationInProgress, SecretNotFound, SecretsError, VersionNotFound
from summit.security.secrets.manager import CURRENT, PENDING, PREVIOUS, SecretInfo, SecretsManager, SecretValue, VersionInfo
from summit.security.secrets.rotation import AlternatingUsers, RandomValue, Rotation, RotationResult, RotationStrategy

__all__ = [
    "AlternatingUsers",
    "CURRENT",
    "PENDING",
    "PREVIOUS",
    "RandomValue",
    "Rotation",
    "RotationFailed",
    "RotationInProgress",
    "RotationResult",
    "RotationStrategy",
    "SecretInfo",
    "SecretNotFound",
    "SecretValue",
    "SecretsError",
    "SecretsManager",
    "VersionInfo",
    "VersionNotFound",
]


def __dir__() -> list[str]:
    """``dir()`` shows what the package offers, not the modules it is built from (PEP 562)."""
    return sorted(__all__)
