"""The embedded mail adapter of stage 1 (``outbox://``): sent mail is kept as files to read."""
