"""TOTP (RFC 6238) second factor: enrolment with an otpauth URI and a QR code, verification in which
each code is accepted once, and single-use recovery codes."""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import time

import pyotp
import segno

STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1  # accept the previous and the next step too (clock skew)
RECOVERY_CODES = 10


def new_secret() -> str:
    return pyotp.random_base32(length=32)  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgns=True)
    return out.getvalue().decode()


def matching_step(secret: str, code: object, *, now: float | None = None, digest=hashlib.sha1, digits: int = DIGITS) -> int | None:
    """The time step whose code equals ``code`` within the window, or None.

    The caller stores the step of the last accepted code and accepts only later steps, so a code
    (and any earlier one) cannot be replayed.
    """
    if not isinstance(code, str) or len(code) != digits or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=digits, digest=digest, interval=STEP_SECONDS)
    step = int((time.time() if now is None else now) // STEP_SECONDS)
    found = None
    for candidate in range(step - WINDOW, step + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            found = candidate  # keep comparing: constant work whatever matched
    return found


def new_recovery_codes() -> list[str]:
    """Ten codes like ``4f7k-9m2p-xq3d``: 60 bits each, shown once, stored hashed."""
    alphabet = "23456789abcdefghjkmnpqrstuvwxyz"
    return ["-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3)) for _ in range(RECOVERY_CODES)]


def hash_code(code: str) -> str:
    """Codes with enough entropy (recovery codes, emailed codes salted by the caller) hash with SHA-256."""
    return hashlib.sha256(code.strip().lower().encode()).hexdigest()
