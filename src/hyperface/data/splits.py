"""The train/validation split by hash: one small module that ``prepare`` and ``evaluate`` both import.

A record goes to the validation split when the SHA-1 of its ``group`` (one image, or one video)
falls below ``val_fraction``: deterministic, machine-independent and the same in every run, so an
evaluation on ``--split val`` sees exactly the images ``hyperface prepare`` held out.
"""

from __future__ import annotations

import hashlib

__all__ = ["DEFAULT_VAL_FRACTION", "hash64", "split_of"]

DEFAULT_VAL_FRACTION = 0.1  # prepare's default share of groups in the validation split


def hash64(text: str) -> int:
    """The first 8 bytes of the SHA-1 of ``text`` (UTF-8) as an unsigned integer."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def split_of(group: str, val_fraction: float) -> int:
    """0 (train) or 1 (val) from the SHA-1 of ``group``: deterministic, machine-independent."""
    return int(hash64(group) / 2.0**64 < val_fraction)
