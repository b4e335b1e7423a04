"""The relational schema, in SQLAlchemy Core. Alembic migrations (``photos/migrations``) create it.

Every row that will move with a user when the data is sharded carries an ID minted on that user's
logical shard (``summit.ids``): a user's posts and comments live where the user lives.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

# The profile of a user of the pool (summit.security.identity): same id and username; the pool keeps
# the credentials (email, password, MFA), the app keeps what others see.
users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("username", String(30), nullable=False, unique=True),  # the user pool's, copied at confirmation
    Column("display_name", String(60), nullable=False, server_default=""),
    Column("bio", String(300), nullable=False, server_default=""),
    Column("avatar_key", String(200)),
    Column("created_at", Float, nullable=False),
)

posts = Table(
    "posts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("author_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("caption", String(2200), nullable=False, server_default=""),
    Column("photo_key", String(200), nullable=False),
    Column("content_type", String(40), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("thumbs_ready", Boolean, nullable=False, server_default=false()),
    Column("thumb_small", String(200)),
    Column("thumb_medium", String(200)),
    Column("thumb_large", String(200)),
    Column("like_count", Integer, nullable=False, server_default="0"),
    Column("comment_count", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("edited_at", Float),
    Index("ix_posts_author_id", "author_id", "id"),
)

post_tags = Table(
    "post_tags",
    metadata,
    Column("tag", String(100), primary_key=True),
    Column("post_id", BigInteger, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_post_tags_post_id", "post_id"),
)

follows = Table(
    "follows",
    metadata,
    Column("follower_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("followee_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", Float, nullable=False),
    Index("ix_follows_followee_id", "followee_id"),
)

likes = Table(
    "likes",
    metadata,
    Column("post_id", BigInteger, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", Float, nullable=False),
    Index("ix_likes_user_id", "user_id"),
)

comments = Table(
    "comments",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("post_id", BigInteger, ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
    Column("author_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("body", String(1000), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_comments_post_id", "post_id", "id"),
    Index("ix_comments_author_id", "author_id"),
)

# The hashtags of comments, kept like a caption's in post_tags: a tag's page lists the posts whose
# caption or comments carry it. A comment's rows go with the comment (deleted with it, or with its
# post or its author); post_id is the comment's post, so a tag's page needs no join through comments.
comment_tags = Table(
    "comment_tags",
    metadata,
    Column("comment_id", BigInteger, ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(100), primary_key=True),
    Column("post_id", BigInteger, ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
    Index("ix_comment_tags_tag", "tag", "post_id"),
    Index("ix_comment_tags_post_id", "post_id"),
)

# A POST's response, kept so that a retry with the same Idempotency-Key replays it.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(100), primary_key=True),  # who: a user id or a client address
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # method, path and body hash
    Column("status", Integer),  # NULL while the first request is in flight
    Column("headers", Text),
    Column("body", LargeBinary),
    Column("created_at", Float, nullable=False),
)
