"""The KMS's primitives against published test vectors, through the very functions the KMS calls
(``summit.security.kms.crypto``): AES-256-GCM from McGrew and Viega's GCM specification (test
cases 13-18, the 256-bit-key ones) and NIST CAVP's gcmEncryptExtIV256 / gcmDecrypt256 (Count 0 of
the 96-bit-IV, empty-text sets), and HKDF-SHA256 from RFC 5869 (test cases 1-3)."""

from __future__ import annotations

import pytest

from summit.security.kms.crypto import encode_context, hkdf, hkdf_expand, hkdf_extract, seal, unseal
from summit.security.kms.errors import InvalidCiphertext, KmsError

h = bytes.fromhex
K0 = bytes(32)
K = h("feffe9928665731c6d6a8f9467308308" "feffe9928665731c6d6a8f9467308308")
P = h(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
A = h("feedfacedeadbeeffeedfacedeadbeefabaddad2")

# (name, key, iv, plaintext, aad, ciphertext, tag)
GCM = [
    ("McGrew-Viega 13", K0, h("000000000000000000000000"), b"", b"", b"", h("530f8afbc74536b9a963b4f1c4cb738b")),
    ("McGrew-Viega 14", K0, h("000000000000000000000000"), bytes(16), b"",
     h("cea7403d4d606b6e074ec5d3baf39d18"), h("d0d1c8a799996bf0265b98b5d48ab919")),
    ("McGrew-Viega 15", K, h("cafebabefacedbaddecaf888"), P, b"",
     h("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
       "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"), h("b094dac5d93471bdec1a502270e3cc6c")),
    ("McGrew-Viega 16 (AAD)", K, h("cafebabefacedbaddecaf888"), P[:60], A,
     h("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
       "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"), h("76fc6ece0f4e1768cddf8853bb2d551b")),
    ("McGrew-Viega 17 (AAD, 64-bit IV)", K, h("cafebabefacedbad"), P[:60], A,
     h("c3762df1ca787d32ae47c13bf19844cbaf1ae14d0b976afac52ff7d79bba9de0"
       "feb582d33934a4f0954cc2363bc73f7862ac430e64abe499f47c9b1f"), h("3a337dbf46a792c45e454913fe2ea8f2")),
    ("McGrew-Viega 18 (AAD, 480-bit IV)", K,
     h("9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728"
       "c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b"), P[:60], A,
     h("5a8def2f0c9e53f1f75d7853659e2a20eeb2b22aafde6419a058ab4f6f746bf4"
       "0fc0c3b780f244452da3ebf1c5d82cdea2418997200ef82e44ae7e3f"), h("a44a8266ee1c8eb0c8b5d4cf5ae9f19a")),
    ("CAVP gcmEncryptExtIV256 Count 0", h("b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4"),
     h("516c33929df5a3284ff463d7"), b"", b"", b"", h("bdc1ac884d332457a1d2664f168c76f0")),
    ("CAVP gcmDecrypt256 Count 0", h("f5a2b27c74355872eb3ef6c5feafaa740e6ae990d9d48c3bd9bb8235e589f010"),
     h("58d2240f580a31c1d24948e9"), b"", b"", b"", h("15e051a5e4a5f5da6cea92e2ebee5bac")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "key", "iv", "plaintext", "aad", "ciphertext", "tag"), GCM, ids=[c[0] for c in GCM])
def test_aes_gcm_vectors_encrypt_and_decrypt(name, key, iv, plaintext, aad, ciphertext, tag) -> None:  # noqa: ANN001
    assert seal(key, iv, plaintext, aad) == ciphertext + tag
    assert unseal(key, iv, ciphertext + tag, aad) == plaintext


@pytest.mark.parametrize("case", [GCM[3], GCM[7]], ids=["McGrew-Viega 16", "CAVP gcmDecrypt256 Count 0"])
def test_aes_gcm_refuses_a_wrong_tag_a_changed_ciphertext_aad_iv_or_key(case) -> None:  # noqa: ANN001
    _, key, iv, _, aad, ciphertext, tag = case
    bad_tag = tag[:-1] + bytes([tag[-1] ^ 0x01])
    with pytest.raises(InvalidCiphertext, match="does not authenticate"):
        unseal(key, iv, ciphertext + bad_tag, aad)  # the failing-tag case (CAVP's FAIL entries)
    if ciphertext:
        with pytest.raises(InvalidCiphertext):
            unseal(key, iv, bytes([ciphertext[0] ^ 0x80]) + ciphertext[1:] + tag, aad)
    with pytest.raises(InvalidCiphertext):
        unseal(key, iv, ciphertext + tag, aad + b"\x00")
    with pytest.raises(InvalidCiphertext):
        unseal(key, bytes([iv[0] ^ 1]) + iv[1:], ciphertext + tag, aad)
    with pytest.raises(InvalidCiphertext):
        unseal(bytes([key[0] ^ 1]) + key[1:], iv, ciphertext + tag, aad)
    with pytest.raises(InvalidCiphertext, match="truncated"):
        unseal(key, iv, tag[:15], aad)


def test_a_bad_key_length_is_a_kms_error_not_a_cryptography_one() -> None:
    with pytest.raises(KmsError, match="AES-GCM"):
        seal(b"short", bytes(12), b"x")
    with pytest.raises(InvalidCiphertext):
        unseal(b"short", bytes(12), bytes(32))


# RFC 5869, appendix A: (name, IKM, salt, info, L, PRK, OKM)
HKDF = [
    ("RFC 5869 A.1", b"\x0b" * 22, h("000102030405060708090a0b0c"), h("f0f1f2f3f4f5f6f7f8f9"), 42,
     h("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"),
     h("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")),
    ("RFC 5869 A.2", bytes(range(0x00, 0x50)), bytes(range(0x60, 0xB0)), bytes(range(0xB0, 0x100)), 82,
     h("06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244"),
     h("b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
       "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
       "cc30c58179ec3e87c14c01d5c1f3434f1d87")),
    ("RFC 5869 A.3", b"\x0b" * 22, b"", b"", 42,
     h("19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04"),
     h("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "ikm", "salt", "info", "length", "prk", "okm"), HKDF, ids=[c[0] for c in HKDF])
def test_hkdf_sha256_vectors(name, ikm, salt, info, length, prk, okm) -> None:  # noqa: ANN001
    assert hkdf_extract(ikm, salt) == prk
    assert hkdf_expand(prk, info, length) == okm
    assert hkdf(ikm, salt=salt, info=info, length=length) == okm


def test_the_context_encoding_is_canonical_and_unambiguous() -> None:
    assert encode_context({"b": "2", "a": "1"}) == encode_context({"a": "1", "b": "2"})
    assert encode_context({"a": "bc"}) != encode_context({"ab": "c"})
    assert encode_context({}) == encode_context(None) == bytes(4)
    assert encode_context({"k": "v"}) == h("00000001" "00000001") + b"k" + h("00000001") + b"v"
    assert encode_context({"é": "ü"}) == h("00000001" "00000002") + "é".encode() + h("00000002") + "ü".encode()
    with pytest.raises(KmsError, match="str to str"):
        encode_context({"n": 1})  # type: ignore[dict-item]
    with pytest.raises(KmsError, match="mapping"):
        encode_context([("a", "b")])  # type: ignore[arg-type]
