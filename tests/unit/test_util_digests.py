"""``gxo._util.digests`` gives hashlib's digests without importing hashlib where it can."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys

import pytest

from gxo._util.digests import blake2b_hex, sha1_hex, sha256_file, sha256_hex


@pytest.mark.parametrize("data", [b"", b"abc", bytes(range(256)) * 1500])
def test_the_digests_are_hashlibs(data: bytes) -> None:
    assert sha1_hex(data) == hashlib.sha1(data).hexdigest()
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert sha256_file(io.BytesIO(data)) == hashlib.sha256(data).hexdigest()
    for size in (8, 16, 64):
        assert blake2b_hex(data, size) == hashlib.blake2b(data, digest_size=size).hexdigest()


def test_no_hashlib_import_where_cpython_has_its_own() -> None:
    script = (
        "import sys; from gxo._util.digests import sha1_hex, sha256_hex, blake2b_hex; "
        "sha1_hex(b'x'); sha256_hex(b'x'); blake2b_hex(b'x', 8); "
        "print('hashlib' in sys.modules, '_hashlib' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["False", "False"]
