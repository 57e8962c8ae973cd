"""Hostile files for the data tests: a decompression-bomb PNG, named pipes that block whoever opens them."""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A 1-bit all-black PNG of side x side pixels: a ~48 KB file that would decode to 1.2 GB of RGB."""
    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


@contextlib.contextmanager
def fifos(*paths: Path) -> Iterator[list[Path]]:
    """Named pipes at ``paths``; on exit any reader blocked on one is released (a writer opens and closes
    it), so a test of code that hangs fails instead of hanging the test run."""
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(p)
    try:
        yield list(paths)
    finally:
        for p in paths:
            with contextlib.suppress(OSError):  # ENXIO: nobody is reading it, as it should be
                os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))
