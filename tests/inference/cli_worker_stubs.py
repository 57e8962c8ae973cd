"""Work functions for the worker-pool tests, importable by spawned processes (kept free of heavy imports)."""

from __future__ import annotations

import os


def echo_or_die(task, options) -> list[dict]:
    """One line per input; a worker given an input named ``poison*`` dies as a native crash would."""
    names = [item.path.name for item in task.items]
    if any(n.startswith("poison") for n in names):
        os._exit(1)
    return [{"input": str(item.path), "frame": None} for item in task.items]
