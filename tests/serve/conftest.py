"""Fixtures for the service's tests: a started pool of the real analyzer, stand-in analyzers, photos."""

from __future__ import annotations

import pytest
from serve_stubs import MAX_PIXELS, StubFactory

from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path


@pytest.fixture(scope="session")
def astronaut_bytes() -> bytes:
    return asset_path(EXAMPLE_IMAGE).read_bytes()


@pytest.fixture(scope="session")
def real_pool():
    """One worker with the bundled analyzer (one thread), as ``hyperface serve`` builds it."""
    from hyperface.serve import AnalyzerPool

    with AnalyzerPool({"threads": 1}, workers=1, queue_size=4, max_pixels=MAX_PIXELS) as pool:
        yield pool


@pytest.fixture
def stub_factory() -> StubFactory:
    return StubFactory()
