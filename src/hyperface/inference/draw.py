"""Pictures of the results: box, score and gender label, landmarks (visible points filled,
invisible ones hollow), and the head pose as a 3D axis (x red, y green, z blue) at the face centre."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from hyperface.inference.result import Face
from hyperface.pose import pose_to_rotation

__all__ = ["draw_faces", "VISIBLE_THRESHOLD"]

VISIBLE_THRESHOLD = 0.5  # visibility from which a point is drawn as visible
_BOX = (40, 220, 40)
_VISIBLE = (255, 220, 0)
_INVISIBLE = (255, 60, 60)
_AXES = ((230, 40, 40), (40, 200, 40), (60, 90, 255))  # x, y, z in RGB


def _pose_axes(face: Face, length: float) -> np.ndarray:
    """End points (3, 2) of the face's x, y, z axes drawn from the origin, in image pixels (orthographic)."""
    r = pose_to_rotation(face.pose)
    return (r[:2, :] * length).T  # column i of R is face axis i in camera coordinates


def draw_faces(image: np.ndarray, faces: Sequence[Face], thickness: int | None = None,
               label: bool = True) -> np.ndarray:
    """A copy of the RGB ``image`` with ``faces`` drawn on it."""
    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    t = thickness or max(1, round(max(h, w) / 500))
    for face in faces:
        x0, y0, x1, y1 = face.box
        side = max(x1 - x0, y1 - y0)
        cv2.rectangle(out, (round(x0), round(y0)), (round(x1), round(y1)), _BOX, t, cv2.LINE_AA)
        if face.landmarks is not None:
            r = max(1, round(side / 60))
            for k, (x, y) in enumerate(face.landmarks):
                if not np.isfinite([x, y]).all():
                    continue
                visible = face.visibility is None or face.visibility[k] >= VISIBLE_THRESHOLD
                centre = (round(float(x)), round(float(y)))
                if visible:
                    cv2.circle(out, centre, r, _VISIBLE, -1, cv2.LINE_AA)
                else:
                    cv2.circle(out, centre, r + 1, _INVISIBLE, max(1, t // 2), cv2.LINE_AA)
        if face.pose is not None:
            if face.landmarks is not None:
                origin = np.nanmean(face.landmarks, axis=0)
            else:
                origin = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
            for end, colour in zip(_pose_axes(face, side / 2), _AXES):
                p0 = (round(float(origin[0])), round(float(origin[1])))
                p1 = (round(float(origin[0] + end[0])), round(float(origin[1] + end[1])))
                cv2.arrowedLine(out, p0, p1, colour, t + 1, cv2.LINE_AA, tipLength=0.15)
        if label:
            text = f"{face.score:.2f}"
            if face.gender is not None:
                text += f" {face.gender} {face.gender_probability:.2f}"
            scale = max(0.35, min(1.2, side / 160))
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            ty = round(y0) - 3 if y0 - th - 4 >= 0 else round(y1) + th + 3
            cv2.rectangle(out, (round(x0), ty - th - 2), (round(x0) + tw + 2, ty + base - 1), (0, 0, 0), -1)
            cv2.putText(out, text, (round(x0) + 1, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                        cv2.LINE_AA)
    return out
