#!/usr/bin/env python3
"""Start moto's AWS emulator on loopback, patched so that multi-Region KMS keys work.

moto stores the key id in a fixed 36-byte field of its ciphertext blobs, which truncates the
40-character ids of multi-Region keys (mrk-...), so every MRK Decrypt fails. This launcher widens
the field to 40 bytes, strips the NUL padding that shorter ids then get, and runs moto's server.

usage: moto_server.py PORT        (listens on 127.0.0.1 only)
"""

import struct
import sys

import moto.kms.utils as kms_utils
from moto.server import main

KEY_ID_LEN = 40
kms_utils.KEY_ID_LEN = KEY_ID_LEN
kms_utils.HEADER_LEN = KEY_ID_LEN + kms_utils.IV_LEN + kms_utils.TAG_LEN
kms_utils.CIPHERTEXT_HEADER_FORMAT = f">{KEY_ID_LEN}s{kms_utils.IV_LEN}s{kms_utils.TAG_LEN}s"


def _deserialize_ciphertext_blob(ciphertext_blob):
    header = ciphertext_blob[: kms_utils.HEADER_LEN]
    ciphertext = ciphertext_blob[kms_utils.HEADER_LEN:]
    key_id, iv, tag = struct.unpack(kms_utils.CIPHERTEXT_HEADER_FORMAT, header)
    return kms_utils.Ciphertext(
        key_id=key_id.rstrip(b"\0").decode("utf-8"), iv=iv, ciphertext=ciphertext, tag=tag
    )


kms_utils._deserialize_ciphertext_blob = _deserialize_ciphertext_blob

if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit(__doc__)
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
