"""The self-describing ciphertext blob of ``Kms.encrypt`` (format 1), all integers big-endian:

    offset      size   field
    0           1      format version: 0x01
    1           1      n: length of the key name (1..64)
    2           n      key name (ASCII)
    2+n         4      key version (1..2^32-1)
    6+n         12     nonce of the wrapped data key
    18+n        48     wrapped data key: AES-256-GCM under the key version (32 bytes + 16-byte tag)
    66+n        12     nonce of the payload
    78+n        ...    payload: AES-256-GCM under the data key (ciphertext + 16-byte tag)

The header (format, name, version) is authenticated with the encryption context by both layers:
the data key is wrapped with associated data ``b"summit-kms/wrap/v1\\0" + header + context``, the
payload sealed with ``b"summit-kms/data/v1\\0" + everything before the payload + context``, so
changing any byte, or decrypting with another context, fails.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from summit.security.kms.crypto import KEY_BYTES, NONCE_BYTES, TAG_BYTES
from summit.security.kms.errors import InvalidCiphertext

FORMAT_V1 = 1
WRAPPED_KEY_BYTES = KEY_BYTES + TAG_BYTES
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
WRAP_DOMAIN = b"summit-kms/wrap/v1\0"
DATA_DOMAIN = b"summit-kms/data/v1\0"


@dataclass(frozen=True)
class Blob:
    key_name: str
    key_version: int
    wrap_nonce: bytes
    wrapped_key: bytes
    data_nonce: bytes
    payload: bytes  # ciphertext + tag

    def header(self) -> bytes:
        name = self.key_name.encode("ascii")
        return struct.pack(">BB", FORMAT_V1, len(name)) + name + struct.pack(">I", self.key_version)

    def before_payload(self) -> bytes:
        return self.header() + self.wrap_nonce + self.wrapped_key + self.data_nonce

    def to_bytes(self) -> bytes:
        return self.before_payload() + self.payload

    @classmethod
    def parse(cls, data: bytes) -> Blob:
        """Split a blob into its fields; ``InvalidCiphertext`` says what is wrong with its shape."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidCiphertext(f"a KMS blob is bytes, not {type(data).__name__}")
        data = bytes(data)
        if not data:
            raise InvalidCiphertext("the blob is empty")
        if data[0] != FORMAT_V1:
            raise InvalidCiphertext(f"not a summit KMS blob: format byte 0x{data[0]:02x}, expected 0x{FORMAT_V1:02x}")
        if len(data) < 2:
            raise InvalidCiphertext("the blob is truncated: no key name")
        n = data[1]
        fixed = 2 + n + 4 + NONCE_BYTES + WRAPPED_KEY_BYTES + NONCE_BYTES
        if len(data) < fixed + TAG_BYTES:
            raise InvalidCiphertext(f"the blob is truncated: {len(data)} bytes, at least {fixed + TAG_BYTES} expected")
        try:
            name = data[2 : 2 + n].decode("ascii")
        except UnicodeDecodeError:
            raise InvalidCiphertext("the blob's key name is not ASCII: it was changed") from None
        if not KEY_NAME.match(name):
            raise InvalidCiphertext(f"the blob's key name {name!r} is not a valid key name: it was changed")
        (version,) = struct.unpack(">I", data[2 + n : 6 + n])
        if version == 0:
            raise InvalidCiphertext("the blob names key version 0, which never exists: it was changed")
        at = 6 + n
        wrap_nonce, at = data[at : at + NONCE_BYTES], at + NONCE_BYTES
        wrapped, at = data[at : at + WRAPPED_KEY_BYTES], at + WRAPPED_KEY_BYTES
        data_nonce, at = data[at : at + NONCE_BYTES], at + NONCE_BYTES
        return cls(name, version, wrap_nonce, wrapped, data_nonce, data[at:])
