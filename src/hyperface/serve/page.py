"""The page at ``GET /``: drop photos, see the faces drawn with the JSON beside them.

One self-contained file (``page.html``: inline CSS and JavaScript, nothing fetched from elsewhere,
so it works on a machine without network); it draws what :mod:`hyperface.inference.draw` draws,
in the same colours, on a canvas.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

__all__ = ["page_html"]


@lru_cache(maxsize=1)
def page_html() -> str:
    """The page's HTML."""
    return (resources.files("hyperface.serve") / "page.html").read_text(encoding="utf-8")
