"""Tables of the user pool, in the application's database (the sql port), with their own Alembic
history (version table ``summit_identity_version``) so the platform and the app migrate apart."""

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text, false

metadata = MetaData()

users = Table(
    "identity_users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("username", String(30), nullable=False, unique=True),
    # The email is stored as a keyed hash (lookups, uniqueness) and encrypted (pii.py). ``email``
    # only holds an address imported in plaintext (an upgrade, the app's 0002) until it is sealed.
    Column("email", String(254), unique=True),
    Column("email_hash", String(64)),
    Column("email_sealed", Text),
    Column("password_hash", String(200), nullable=False),
    Column("confirmed", Boolean, nullable=False, server_default=false()),
    Column("created_at", Float, nullable=False),
    Column("password_changed_at", Float, nullable=False),
    Column("revoked_before", Float, nullable=False, server_default="0"),  # sign-out everywhere
    Column("mfa_secret", String(64)),
    Column("mfa_enabled", Boolean, nullable=False, server_default=false()),
    Column("mfa_last_step", BigInteger, nullable=False, server_default="0"),
    Index("ix_identity_users_email_hash", "email_hash", unique=True),
)

# One-time codes sent by mail (confirm the address, reset the password), stored hashed.
codes = Table(
    "identity_codes",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("purpose", String(20), primary_key=True),
    Column("code_hash", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
)

recovery_codes = Table(
    "identity_recovery_codes",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("code_hash", String(64), primary_key=True),
    Column("used_at", Float),
)

# Rotating refresh tokens: each use marks the token used and issues its successor in the same
# family; presenting a used token again revokes the whole family.
refresh_tokens = Table(
    "identity_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family_id", String(32), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("device", String(200), nullable=False, server_default=""),
    Column("auth_time", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
    Column("revoked_at", Float),
    Index("ix_identity_refresh_tokens_family", "family_id"),
    Index("ix_identity_refresh_tokens_user", "user_id"),
)

# Failed attempts by account, by source address and by MFA, for lock-outs with back-off.
throttle = Table(
    "identity_throttle",
    metadata,
    Column("key", String(120), primary_key=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("locked_until", Float, nullable=False, server_default="0"),
    Column("updated_at", Float, nullable=False),
)

# IAM-style principals: groups and policies attached to users and groups.
groups = Table(
    "identity_groups",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
)

group_members = Table(
    "identity_group_members",
    metadata,
    Column("group_name", String(64), primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Index("ix_identity_group_members_user", "user_id"),
)

policies = Table(
    "identity_policies",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("document", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Roles (like IAM roles): a trust policy says who may assume one; attached policies say what a
# session of the role may do.
roles = Table(
    "identity_roles",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("trust_policy", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

attachments = Table(
    "identity_policy_attachments",
    metadata,
    Column("policy_name", String(128), primary_key=True),
    Column("target_kind", String(10), primary_key=True),  # "user" | "group" | "role" | "boundary"
    Column("target", String(64), primary_key=True),  # user id, group or role name
    Index("ix_identity_policy_attachments_target", "target_kind", "target"),
)
