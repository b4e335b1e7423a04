"""The mail contract, on every adapter of the mail port's table (``summit.testing.backends``)."""

from __future__ import annotations

from summit.testing.backends import backend_fixture
from summit.testing.mail import MailerContract


class TestMailer(MailerContract):
    backend = backend_fixture("mail")
