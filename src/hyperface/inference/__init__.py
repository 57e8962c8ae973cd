"""Face analysis of whole images: candidates -> network on batched crops -> IRP -> L-NMS.

The entry point is :class:`FaceAnalyzer`; results are :class:`Face` objects.
"""

from hyperface.inference.analyzer import FaceAnalyzer
from hyperface.inference.result import Face

__all__ = ["FaceAnalyzer", "Face"]
