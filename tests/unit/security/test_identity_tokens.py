"""Tokens of the user pool: forged tokens are refused (``alg: none``, HS256 keyed with the public key,
an embedded ``jwk``, a ``jku``, tampered payloads, another key), claims are checked (``exp``, ``nbf``,
``iat``, ``iss``, ``aud``, ``token_use``), garbage is refused with a clear error; RFC 8037 and RFC 7515
JWS examples; the key set (rotation, retirement, JWKS, file permissions)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import stat
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, OKPKey
from joserfc.jwk import KeySet as JoseKeySet

from summit.security.identity.keys import ALGORITHM, KeySet
from summit.security.identity.tokens import LEEWAY_SECONDS, InvalidToken, TokenIssuer

ISSUER = "http://testserver"
AUDIENCE = "summit-photos"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact(header: dict, payload: bytes | dict, sign) -> str:  # noqa: ANN001
    """A compact JWS built by hand, so that a test can put anything in it."""
    if isinstance(payload, dict):
        payload = json.dumps(payload).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def ed25519_signer(key: OKPKey):  # noqa: ANN201
    return key.private_key.sign


def claims(**changes: object) -> dict:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "42", "token_use": "access", "iat": now, "nbf": now, "exp": now + 300,
            "auth_time": now, "jti": secrets.token_urlsafe(12), "username": "alice"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not DROP}


DROP = object()


@pytest.fixture
def keys(tmp_path: Path) -> KeySet:
    return KeySet(tmp_path / "keys")


@pytest.fixture
def issuer(keys: KeySet) -> TokenIssuer:
    return TokenIssuer(keys, issuer=ISSUER, audience=AUDIENCE)


def ours(keys: KeySet, payload: bytes | dict, **header: object) -> str:
    """Signed with the pool's own active key."""
    key = keys.signing_key
    return compact({"alg": ALGORITHM, "typ": "JWT", "kid": key.kid, **header}, payload, ed25519_signer(key))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("token verification must not touch the network (jku, x5u)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# ---- what is accepted -----------------------------------------------------------------------------


def test_access_and_id_tokens_verify(issuer: TokenIssuer, keys: KeySet) -> None:
    access = issuer.access_token("42", username="alice", auth_time=1_700_000_000)
    got = issuer.verify(access)
    assert (got.subject, got.token_use, got.auth_time, got.claims["username"]) == ("42", "access", 1_700_000_000, "alice")
    assert got.expires_at - got.issued_at == 300
    header = json.loads(unb64(access.split(".")[0]))
    assert header == {"alg": "Ed25519", "typ": "JWT", "kid": keys.active_kid}
    id_token = issuer.id_token("42", username="alice", email="alice@example.com", email_verified=True)
    got = issuer.verify(id_token, token_use="id")
    assert got.claims["email"] == "alice@example.com" and got.claims["preferred_username"] == "alice"
    assert got.expires_at - got.issued_at == 3600
    assert got.token_id != issuer.verify(issuer.access_token("42", username="alice")).token_id


def test_hand_built_tokens_with_the_pool_key_verify(issuer: TokenIssuer, keys: KeySet) -> None:
    """The forgeries below change one thing each from this accepted baseline."""
    assert issuer.verify(ours(keys, claims())).subject == "42"
    assert issuer.verify(ours(keys, claims(aud=["another-app", AUDIENCE]))).subject == "42"
    assert issuer.verify(ours(keys, claims(nbf=DROP))).subject == "42"


# ---- forged tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
def test_alg_none_is_refused(issuer: TokenIssuer, keys: KeySet, alg: str) -> None:
    header = {"alg": alg, "typ": "JWT", "kid": keys.active_kid}
    unsigned = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}."
    with pytest.raises(InvalidToken, match="algorithm"):
        issuer.verify(unsigned)
    # the same with a real signature of ours left in place
    valid_signature = ours(keys, claims()).split(".")[2]
    with pytest.raises(InvalidToken):
        issuer.verify(unsigned + valid_signature)
    header.pop("alg")
    with pytest.raises(InvalidToken, match="algorithm"):
        issuer.verify(f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}.")


def test_hs256_keyed_with_the_public_key_is_refused(issuer: TokenIssuer, keys: KeySet) -> None:
    """The classic key-confusion attack: the verifier's public key used as an HMAC secret."""
    public = keys.signing_key
    secrets_tried = [
        public.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw),
        public.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        public.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        keys.jwks()["keys"][0]["x"].encode(),
        json.dumps(keys.jwks()).encode(),
        json.dumps(keys.jwks()["keys"][0]).encode(),
    ]
    for secret in secrets_tried:
        for alg, digest in (("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)):
            token = compact({"alg": alg, "typ": "JWT", "kid": keys.active_kid}, claims(),
                            lambda data, s=secret, d=digest: hmac.new(s, data, d).digest())
            with pytest.raises(InvalidToken, match="algorithm"):
                issuer.verify(token)
    # joserfc itself, given the public key bytes as an oct key, makes the same forgery
    oct_key = OctKey.import_key(secrets_tried[0])
    token = jws.serialize_compact({"alg": "HS256", "kid": keys.active_kid}, json.dumps(claims()).encode(), oct_key, algorithms=["HS256"])
    with pytest.raises(InvalidToken):
        issuer.verify(token)


@pytest.mark.parametrize("alg", ["EdDSA", "ed25519", "Ed448", "ES256", "RS256", "PS256", "HS256", "ES256K"])
def test_only_ed25519_is_allowed(issuer: TokenIssuer, keys: KeySet, alg: str) -> None:
    key = keys.signing_key
    token = compact({"alg": alg, "typ": "JWT", "kid": key.kid}, claims(), ed25519_signer(key))  # our own key's signature
    with pytest.raises(InvalidToken, match="algorithm"):
        issuer.verify(token)


def test_an_embedded_jwk_is_not_trusted(issuer: TokenIssuer, keys: KeySet, no_network: None) -> None:
    attacker = OKPKey.generate_key("Ed25519")
    embedded = attacker.as_dict(private=False)
    for kid in (keys.active_kid, attacker.thumbprint(), None):
        header = {"alg": ALGORITHM, "typ": "JWT", "jwk": embedded}
        if kid:
            header["kid"] = kid
        with pytest.raises(InvalidToken, match="jwk"):
            issuer.verify(compact(header, claims(), ed25519_signer(attacker)))
    # without the jwk field, the attacker's signature under our kid is just a bad signature
    with pytest.raises(InvalidToken, match="signature"):
        issuer.verify(compact({"alg": ALGORITHM, "typ": "JWT", "kid": keys.active_kid}, claims(), ed25519_signer(attacker)))


@pytest.mark.parametrize("field", ["jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64", "cty", "zip", "enc"])
def test_key_locating_and_other_header_fields_are_refused(issuer: TokenIssuer, keys: KeySet, no_network: None, field: str) -> None:
    attacker = OKPKey.generate_key("Ed25519", auto_kid=True)
    values = {"jku": "https://attacker.example/jwks.json", "x5u": "https://attacker.example/cert.pem", "x5c": ["MIIB"],
              "x5t": "abc", "x5t#S256": "abc", "crit": ["exp"], "b64": False, "cty": "JWT", "zip": "DEF", "enc": "A256GCM"}
    for signer, kid in ((attacker, attacker.kid), (keys.signing_key, keys.active_kid)):
        token = compact({"alg": ALGORITHM, "typ": "JWT", "kid": kid, field: values[field]}, claims(), ed25519_signer(signer))
        with pytest.raises(InvalidToken, match="not allowed"):
            issuer.verify(token)


def test_a_tampered_payload_is_refused(issuer: TokenIssuer) -> None:
    token = issuer.access_token("42", username="alice")
    header, payload, signature = token.split(".")
    body = json.loads(unb64(payload))
    for change in ({"sub": "1"}, {"exp": body["exp"] + 86400}, {"token_use": "id"}, {"username": "admin"}, {"extra": 1}):
        forged = f"{header}.{b64(json.dumps({**body, **change}, separators=(',', ':')).encode())}.{signature}"
        with pytest.raises(InvalidToken, match="signature"):
            issuer.verify(forged)
    # a flipped bit of the signature, a signature cut short or missing, a header swapped
    raw = bytearray(unb64(signature))
    raw[10] ^= 1
    for forged in (f"{header}.{payload}.{b64(bytes(raw))}", f"{header}.{payload}.{signature[:-4]}", f"{header}.{payload}.",
                   f"{b64(json.dumps({'alg': ALGORITHM, 'kid': json.loads(unb64(header))['kid']}).encode())}.{payload}.{signature}"):
        with pytest.raises(InvalidToken):
            issuer.verify(forged)
    assert issuer.verify(token).subject == "42"


def test_a_token_signed_by_another_key_set_is_refused(issuer: TokenIssuer, keys: KeySet, tmp_path: Path) -> None:
    other = KeySet(tmp_path / "other")
    stranger = TokenIssuer(other, issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(InvalidToken, match="unknown key"):
        issuer.verify(stranger.access_token("42", username="alice"))
    # the other key claiming our kid
    with pytest.raises(InvalidToken, match="signature"):
        issuer.verify(compact({"alg": ALGORITHM, "typ": "JWT", "kid": keys.active_kid}, claims(), ed25519_signer(other.signing_key)))
    # one of our keys signing under another of our kids
    old = keys.active_kid
    keys.rotate()
    with pytest.raises(InvalidToken, match="signature"):
        issuer.verify(compact({"alg": ALGORITHM, "typ": "JWT", "kid": old}, claims(), ed25519_signer(keys.signing_key)))


@pytest.mark.parametrize("kid", [None, 123, ["kid"], {"k": 1}, "", "no-such-kid", "../../etc/passwd", "a" * 5000])
def test_a_missing_or_unknown_kid_is_refused(issuer: TokenIssuer, keys: KeySet, kid: object) -> None:
    header = {"alg": ALGORITHM, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    with pytest.raises(InvalidToken):
        issuer.verify(compact(header, claims(), ed25519_signer(keys.signing_key)))


# ---- claims ---------------------------------------------------------------------------------------


def test_expiry_with_a_small_leeway(issuer: TokenIssuer) -> None:
    token = issuer.access_token("42", username="alice")
    exp = issuer.verify(token).expires_at
    issuer.verify(token, now=exp + LEEWAY_SECONDS - 1)
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(token, now=exp + LEEWAY_SECONDS + 1)
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(token, now=time.time() + 86400)
    old = issuer.access_token("42", username="alice", now=time.time() - 3600)
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(old)


def test_not_yet_valid(issuer: TokenIssuer, keys: KeySet) -> None:
    future = issuer.access_token("42", username="alice", now=time.time() + 3600)
    with pytest.raises(InvalidToken, match="not valid yet"):
        issuer.verify(future)
    issuer.verify(issuer.access_token("42", username="alice", now=time.time() + LEEWAY_SECONDS - 5))  # clock skew
    now = int(time.time())
    with pytest.raises(InvalidToken, match="not valid yet"):
        issuer.verify(ours(keys, claims(nbf=now + 600)))
    with pytest.raises(InvalidToken, match="not valid yet"):
        issuer.verify(ours(keys, claims(iat=now + 600, nbf=now)))


def test_wrong_issuer_or_audience(keys: KeySet, issuer: TokenIssuer) -> None:
    for other in (TokenIssuer(keys, issuer="http://evil.example", audience=AUDIENCE),
                  TokenIssuer(keys, issuer=ISSUER + "/", audience=AUDIENCE)):
        with pytest.raises(InvalidToken, match="issued by someone else"):
            issuer.verify(other.access_token("42", username="alice"))
    with pytest.raises(InvalidToken, match="audience"):
        issuer.verify(TokenIssuer(keys, issuer=ISSUER, audience="another-app").access_token("42", username="alice"))
    with pytest.raises(InvalidToken, match="audience"):
        issuer.verify(ours(keys, claims(aud=["another-app"])))
    with pytest.raises(InvalidToken, match="audience"):
        issuer.verify(ours(keys, claims(aud=[])))


def test_wrong_token_use(issuer: TokenIssuer, keys: KeySet) -> None:
    access = issuer.access_token("42", username="alice")
    id_token = issuer.id_token("42", username="alice", email="alice@example.com", email_verified=True)
    with pytest.raises(InvalidToken, match="token"):
        issuer.verify(id_token)  # an id token where an access token is needed
    with pytest.raises(InvalidToken):
        issuer.verify(access, token_use="id")
    with pytest.raises(InvalidToken):
        issuer.verify(access, token_use="mfa_challenge")
    with pytest.raises(InvalidToken):
        issuer.verify(ours(keys, claims(token_use="refresh")))


@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "token_use", "iat", "exp", "jti"])
def test_a_missing_claim_is_refused(issuer: TokenIssuer, keys: KeySet, claim: str) -> None:
    with pytest.raises(InvalidToken, match=f"{claim} claim is missing"):
        issuer.verify(ours(keys, claims(**{claim: DROP})))


@pytest.mark.parametrize("change", [{"iat": "1700000000"}, {"exp": 1.5e12}, {"exp": True}, {"nbf": None}, {"auth_time": "now"},
                                    {"sub": 42}, {"sub": None}, {"exp": [1]}])
def test_malformed_claims_are_refused(issuer: TokenIssuer, keys: KeySet, change: dict) -> None:
    with pytest.raises(InvalidToken):
        issuer.verify(ours(keys, claims(**change)))


@pytest.mark.parametrize("payload", [b"not json", b"", b"[1, 2]", b'"a string"', b"null", b"\xff\xfe", b"NaN"])
def test_a_signed_payload_that_is_not_a_json_object_is_refused(issuer: TokenIssuer, keys: KeySet, payload: bytes) -> None:
    with pytest.raises(InvalidToken, match="payload"):
        issuer.verify(ours(keys, payload))


# ---- garbage --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", " ", "garbage", "a.b", "a.b.c", "a.b.c.d", "a.b.c.d.e", "...", "..", ".", "eyJ.eyJ.sig", "é.é.é", "\x00.\x00.\x00",
     "Bearer abc.def.ghi", "x" * 9000 + ".a.b", b64(b"[]") + ".e30.", b64(b"null") + ".e30.", b64(b"1") + ".e30.",
     b64(b'"alg"') + ".e30.", b64(b"{not json") + ".e30.", "!!!!.e30.", None, 0, 42, 1.5, True, b"a.b.c", ["a", "b", "c"],
     {"token": "a.b.c"}, object()],
)
def test_garbage_is_refused_with_invalid_token(issuer: TokenIssuer, token: object) -> None:
    with pytest.raises(InvalidToken) as caught:
        issuer.verify(token)
    assert str(caught.value)


def test_a_valid_token_with_whitespace_or_padding_is_refused(issuer: TokenIssuer) -> None:
    token = issuer.access_token("42", username="alice")
    header, payload, signature = token.split(".")
    for variant in (f" {token}", f"{token}\n", f"{header}.{payload}.{signature}==", f"{header}=.{payload}.{signature}"):
        with pytest.raises(InvalidToken):
            issuer.verify(variant)


# ---- RFC examples ---------------------------------------------------------------------------------

RFC8037_KEY = {"kty": "OKP", "crv": "Ed25519", "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
               "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
RFC8037_JWS = ("eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
               "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning")
def test_rfc8037_a4_ed25519_signing() -> None:
    """RFC 8037 Appendix A.4: Ed25519 is deterministic, so signing gives the RFC's exact JWS."""
    private = OKPKey.import_key(RFC8037_KEY)
    assert private.thumbprint() == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"  # RFC 8037 A.3 (RFC 7638 thumbprint)
    signed = jws.serialize_compact({"alg": "EdDSA"}, b"Example of Ed25519 signing", private, algorithms=["EdDSA"])
    assert signed == RFC8037_JWS
    public = OKPKey.import_key({k: v for k, v in RFC8037_KEY.items() if k != "d"})
    obj = jws.deserialize_compact(RFC8037_JWS, public, algorithms=["EdDSA"])
    assert obj.payload == b"Example of Ed25519 signing"
    # the raw Ed25519 signature over the signing input, with cryptography alone
    head, body, signature = RFC8037_JWS.split(".")
    public.public_key.verify(unb64(signature), f"{head}.{body}".encode())
    tampered = RFC8037_JWS[:-3] + ("A" if RFC8037_JWS[-3] != "A" else "B") + RFC8037_JWS[-2:]
    with pytest.raises(Exception):  # noqa: B017, PT011 - joserfc's BadSignatureError
        jws.deserialize_compact(tampered, public, algorithms=["EdDSA"])


def test_rfc8037_key_signs_under_rfc9864s_name_and_our_verifier_uses_that_name(tmp_path: Path) -> None:
    """The same key and payload under "alg": "Ed25519" (RFC 9864), the only name summit accepts."""
    private = OKPKey.import_key(RFC8037_KEY)
    signed = jws.serialize_compact({"alg": "Ed25519"}, b"Example of Ed25519 signing", private, algorithms=["Ed25519"])
    assert signed.split(".")[0] == b64(b'{"alg":"Ed25519"}')
    public = OKPKey.import_key({k: v for k, v in RFC8037_KEY.items() if k != "d"})
    assert jws.deserialize_compact(signed, public, algorithms=["Ed25519"]).payload == b"Example of Ed25519 signing"
    issuer = TokenIssuer(KeySet(tmp_path / "keys"), issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(InvalidToken, match="algorithm"):
        issuer.verify(RFC8037_JWS)


RFC7515_PAYLOAD = b'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}'
RFC7515_A3 = ("eyJhbGciOiJFUzI1NiJ9."
              "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
              "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q")
RFC7515_A3_KEY = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                  "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
RFC7515_A1 = ("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
              "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
              "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
RFC7515_A1_KEY = {"kty": "oct", "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}


def test_rfc7515_a3_es256_verifies_and_is_not_a_summit_token(issuer: TokenIssuer) -> None:
    """RFC 7515 Appendix A.3 (ECDSA P-256, randomised: verify only)."""
    obj = jws.deserialize_compact(RFC7515_A3, ECKey.import_key(RFC7515_A3_KEY), algorithms=["ES256"])
    assert obj.payload == RFC7515_PAYLOAD
    with pytest.raises(InvalidToken, match="algorithm 'ES256' is not allowed"):
        issuer.verify(RFC7515_A3)


def test_rfc7515_a1_hs256_verifies_and_is_not_a_summit_token(issuer: TokenIssuer) -> None:
    """RFC 7515 Appendix A.1 (HMAC SHA-256): the MAC recomputed from the RFC's key."""
    head, body, signature = RFC7515_A1.split(".")
    key = unb64(RFC7515_A1_KEY["k"])
    assert hmac.compare_digest(hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest(), unb64(signature))
    assert unb64(body) == RFC7515_PAYLOAD
    obj = jws.deserialize_compact(RFC7515_A1, OctKey.import_key(RFC7515_A1_KEY), algorithms=["HS256"])
    assert obj.payload == RFC7515_PAYLOAD
    with pytest.raises(InvalidToken, match="algorithm 'HS256' is not allowed"):
        issuer.verify(RFC7515_A1)


# ---- the key set ----------------------------------------------------------------------------------


def test_keys_are_private_files_in_a_private_directory(keys: KeySet) -> None:
    assert stat.S_IMODE(keys.directory.stat().st_mode) == 0o700
    files = list(keys.directory.glob("*.jwk.kms"))
    assert len(files) == 1 and not list(keys.directory.glob("*.jwk"))  # no private key in plaintext
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert b'"d"' not in path.read_bytes()
    keys.rotate()
    assert len(list(keys.directory.glob("*.jwk.kms"))) == 2
    for path in keys.directory.glob("*.jwk.kms"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_jwks_is_public_keys_only(keys: KeySet) -> None:
    keys.rotate()
    document = keys.jwks()
    assert len(document["keys"]) == 2
    for key in document["keys"]:
        assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "Ed25519", "sig")
    imported = JoseKeySet.import_key_set(json.loads(json.dumps(document)))
    assert all(not key.is_private for key in imported.keys)


def test_a_key_set_reopened_on_its_directory_has_the_same_keys(keys: KeySet, issuer: TokenIssuer) -> None:
    token = issuer.access_token("42", username="alice")
    again = KeySet(keys.directory)
    assert again.active_kid == keys.active_kid and sorted(again.kids()) == sorted(keys.kids())
    assert TokenIssuer(again, issuer=ISSUER, audience=AUDIENCE).verify(token).subject == "42"


def test_rotation_keeps_old_tokens_and_signs_with_the_new_key(keys: KeySet, issuer: TokenIssuer) -> None:
    old_kid = keys.active_kid
    before = issuer.access_token("42", username="alice")
    new_kid = keys.rotate()
    after = issuer.access_token("42", username="alice")
    assert json.loads(unb64(after.split(".")[0]))["kid"] == new_kid != old_kid
    assert issuer.verify(before).subject == issuer.verify(after).subject == "42"
    assert {key["kid"] for key in keys.jwks()["keys"]} == {old_kid, new_kid}
    assert (keys.directory / "active").read_text().strip() == new_kid


def test_retiring_a_key_ends_its_tokens_and_the_active_key_cannot_be_retired(keys: KeySet, issuer: TokenIssuer) -> None:
    old_kid = keys.active_kid
    before = issuer.access_token("42", username="alice")
    with pytest.raises(ValueError, match="rotate first"):
        keys.retire(old_kid)
    keys.rotate()
    keys.retire(old_kid)
    assert old_kid not in keys.kids() and old_kid not in {key["kid"] for key in keys.jwks()["keys"]}
    with pytest.raises(InvalidToken, match="unknown key"):
        issuer.verify(before)
    assert issuer.verify(issuer.access_token("42", username="alice")).subject == "42"


def test_key_for_takes_only_string_kids(keys: KeySet) -> None:
    assert keys.key_for(keys.active_kid) is keys.signing_key
    for kid in (None, 1, b"kid", ["kid"]):
        assert keys.key_for(kid) is None


def test_a_token_verified_before_stops_validating_when_its_key_is_retired(issuer: TokenIssuer, keys: KeySet) -> None:
    token = issuer.access_token("42", username="alice")
    assert issuer.verify(token).subject == "42"  # its signature is checked once, then remembered
    old = keys.active_kid
    keys.rotate()
    assert issuer.verify(token).subject == "42"  # rotation alone signs nobody out
    keys.retire(old)
    with pytest.raises(InvalidToken, match="unknown key"):
        issuer.verify(token)
    with pytest.raises(InvalidToken, match="a 'access' token where an 'id' token is needed"):
        issuer.verify(issuer.access_token("42", username="alice"), token_use="id")
