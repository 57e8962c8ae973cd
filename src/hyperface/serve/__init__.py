"""``hyperface serve``: face analysis over HTTP, and a page to try it (``pip install "hyperface[serve]"``).

:func:`create_app` builds the Starlette application around an :class:`AnalyzerPool` (one analyzer per
worker, a bounded queue); ``hyperface serve`` runs it with uvicorn.
"""

from __future__ import annotations

from hyperface.serve.app import create_app
from hyperface.serve.pool import AnalyzerPool, PoolFull

__all__ = ["create_app", "AnalyzerPool", "PoolFull"]
