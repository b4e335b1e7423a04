"""Operations over a whole stage: compliance rules (``summit config check``, ``config_rules``) and
the app's PostgreSQL login as a secret that rotates live (``dblogin``).

A platform layer below the CLI, above the control plane and the security package: it reads the
blueprint and the control plane's files; ``config_rules`` changes nothing, ``dblogin`` makes the
secret ``db/app`` and rotates it with the stage's PostgreSQL and PgBouncers.
"""
