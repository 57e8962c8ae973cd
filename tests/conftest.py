"""Shared fixtures: the development data pool, found via HYPERFACE_DATA or ../shared/data."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

_DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal gives it, however the suite was started.

    A suite started as a background job of a non-interactive shell (``nohup pytest &``) inherits SIGINT
    ignored, and Python then installs no KeyboardInterrupt handler; the tests of what Ctrl-C does
    (prepare, train, train-proposals) would see nothing happen. Python's own handler is put back, which
    the processes they start inherit as the default action.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def data_root() -> Path | None:
    """The data pool folder, or None when it is not on this machine."""
    root = Path(os.environ.get("HYPERFACE_DATA", _DEFAULT))
    return root if root.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data (or $HYPERFACE_DATA); skips the test when absent."""
    root = data_root()
    if root is None:
        pytest.skip(f"development data not found (set HYPERFACE_DATA; looked in {_DEFAULT})")
    return root


@pytest.fixture(scope="session")
def optional_data() -> Path | None:
    """Path to the data pool, or None when it is absent (for tests that use it where it is, without skipping)."""
    return data_root()
