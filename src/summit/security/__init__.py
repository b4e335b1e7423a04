"""Security services of the platform: password hashing, signed tokens (identity, policies and
audit come with the stage 1+ identity work)."""
