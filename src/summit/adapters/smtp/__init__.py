"""The mail port on an SMTP server (``smtp://``, ``smtp+ssl://``), through aiosmtplib."""
