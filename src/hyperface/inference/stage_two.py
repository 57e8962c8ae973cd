"""Stage two: each found face, aligned by its five points, analysed again by a second network.

After L-NMS (or on faces in given boxes) every face's current landmarks fix a similarity transform
onto the stage-two network's template (:mod:`hyperface.alignment`; the template, crop size and
normalisation come from the network's own weights file); the network sees the aligned crop and its
answers are mapped back to image pixels: landmarks through the inverse transform, pose turned back
by the alignment's rotation (the network saw the face with its roll removed), gender and
visibility as they are. Options:

* ``iterations``: align again on the refined points and re-run (each round costs one network call);
* ``flip_average``: also run the mirrored crop and average both answers (left/right points swapped
  back, roll and yaw negated back), which cancels a part of the network's left/right bias;
* ``fine``: a second ``hyperface-aligned`` network with landmarks only, run once more on each face
  aligned by stage two's own points (closer than stage one's); its points replace stage two's, and
  the pose is read from them. ``fine_flip_average`` mirrors its crop too;
* ``pose_from``: ``"branch"`` (the network's pose output), ``"landmarks"`` (the PnP of its refined
  68 points, :func:`hyperface.pose.pose_from_landmarks`) or ``"mean"`` of the two; ``"auto"`` (the
  default) is ``"landmarks"`` for a network with 68 iBUG points, else ``"branch"``: on the 300-W
  validation faces the PnP of the bundled stage two's points is 3.15 degrees from the reference,
  its branch 3.51 (``benchmarks/pose_source.py``).

Only the tasks the stage-two network has are replaced; every :class:`~hyperface.inference.result.Face`
says which stage each of its outputs came from (``Face.sources``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hyperface.alignment import Alignment, align, five_points
from hyperface.inference.batch import Batch
from hyperface.inference.candidates import softmax
from hyperface.points import get_point_set
from hyperface.pose import flip_pose, pose_from_landmarks, rotate_pose
from hyperface.runtime import Runtime

__all__ = ["StageTwo", "AlignedNetwork", "StageTwoOutput", "STAGE_TWO_ARCHS", "POSE_FROM"]

STAGE_TWO_ARCHS = ("hyperface-aligned",)
POSE_FROM = ("auto", "branch", "landmarks", "mean")


@dataclass
class StageTwoOutput:
    """Stage two's answers for K faces, in image pixels / degrees / probabilities (None: task absent)."""

    landmarks: np.ndarray | None    # (K, N, 2)
    visibility: np.ndarray | None   # (K, N)
    pose: np.ndarray | None         # (K, 3) roll, pitch, yaw in degrees, the image's frame
    gender: np.ndarray | None       # (K, 2) probabilities (male, female)


class AlignedNetwork:
    """One ``hyperface-aligned`` network with its input contract: aligns faces by five points as its
    training did (template, crop size, context from its own weights file) and maps its answers back to
    image pixels / degrees / probabilities."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.config = runtime.config
        if self.config.arch not in STAGE_TWO_ARCHS:
            raise ValueError(f"{runtime.source}: stage two needs a {' or '.join(STAGE_TWO_ARCHS)} network, got "
                             f"{self.config.arch!r} (a stage-one model goes in FaceAnalyzer's weights=)")
        kw = self.config.arch_kwargs
        self.template = np.asarray(kw["template"], dtype=np.float64)
        self.context = float(kw.get("context", 1.0))
        self.size = int(self.config.input_size)
        self.point_set = self.config.point_set
        self.tasks = self.config.tasks
        # the index each point takes in a mirrored face (left and right swap)
        n = self.config.num_points
        self._flip_index = (get_point_set(self.point_set).flip_values(np.arange(n)) if self.point_set
                            else np.arange(n))

    def align(self, points5: np.ndarray) -> list[Alignment]:
        """Each face's alignment onto this network's template, from its five points ``(K, 5, 2)``."""
        return [align(p, self.size, self.context, self.template) for p in points5]

    def run(self, images: Sequence[np.ndarray], alignments: list[Alignment], image_index: np.ndarray,
            flip_average: bool) -> StageTwoOutput:
        """One round: the aligned crops through the network (with their mirror images when
        ``flip_average``), answers in the image's terms."""
        crops = np.stack([al.warp(images[int(i)]) for al, i in zip(alignments, image_index)])
        if flip_average:  # one network call for both: a batch of 2K costs less than two of K
            both = self._network(np.concatenate([crops, crops[:, :, ::-1]]))
            k = len(crops)
            mirrored = self._unflip({t: v[k:] for t, v in both.items()})
            raw = {t: (v[:k] + mirrored[t]) / 2 for t, v in both.items()}
        else:
            raw = self._network(crops)
        landmarks = pose = None
        if "landmarks" in raw:
            landmarks = np.stack([al.to_image(r) for al, r in zip(alignments, raw["landmarks"])])
        if "pose" in raw:
            pose = np.stack([rotate_pose(p, -al.angle) for al, p in zip(alignments, raw["pose"])])
        return StageTwoOutput(landmarks=landmarks, visibility=raw.get("visibility"), pose=pose,
                              gender=raw.get("gender"))

    def _network(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Window-relative landmarks, visibility, pose in degrees, gender probabilities (float64)."""
        outputs = self.runtime(crops)
        if "pose" in outputs:
            outputs["pose"] = np.degrees(outputs["pose"])
        if "gender" in outputs:
            outputs["gender"] = softmax(outputs["gender"])
        return {t: v.astype(np.float64) for t, v in outputs.items() if t != "detection"}

    def _unflip(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Answers for mirrored crops expressed for the unmirrored crops."""
        out = dict(raw)
        if "landmarks" in out:
            out["landmarks"] = out["landmarks"][:, self._flip_index] * [-1.0, 1.0]  # x mirrors about the centre
        if "visibility" in out:
            out["visibility"] = out["visibility"][:, self._flip_index]
        if "pose" in out:
            out["pose"] = flip_pose(out["pose"])
        return out


def _landmarks_of(network: AlignedNetwork) -> tuple[int, str | None] | None:
    """(point count, point set) of a network's landmarks; None without a landmark task."""
    return (network.config.num_points, network.point_set) if "landmarks" in network.tasks else None


class StageTwo:
    """The aligned-face network behind one call; built once, called per batch of faces.

    ``runtime``: the ``hyperface-aligned`` network (:class:`hyperface.runtime.Runtime`).
    ``iterations`` >= 1 alignment rounds; ``flip_average`` averages with the mirrored crop.
    ``fine``: the fine landmark network (``hyperface-aligned`` with landmarks in stage two's point set),
    run once more on each face aligned by stage two's own points; its landmarks replace stage two's.
    ``fine_flip_average``: whether it also runs the mirrored crop (None: as ``flip_average``).
    """

    def __init__(self, runtime: Runtime, *, iterations: int = 1, flip_average: bool = False,
                 pose_from: str = "auto", fine: Runtime | None = None,
                 fine_flip_average: bool | None = None) -> None:
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
            raise ValueError(f"stage two iterations must be a whole number >= 1, got {iterations!r}")
        if pose_from not in POSE_FROM:
            raise ValueError(f"pose_from must be one of {POSE_FROM}, got {pose_from!r}")
        self.main = AlignedNetwork(runtime)
        self.fine = None if fine is None else AlignedNetwork(fine)
        if self.fine is not None:
            wanted, given = _landmarks_of(self.main), _landmarks_of(self.fine)
            if wanted is None or given != wanted:
                raise ValueError(f"{fine.source}: the fine landmark network must give the landmarks stage two gives "
                                 f"(stage two: {wanted or 'no landmarks'}; the fine network: {given or 'no landmarks'})")
        self.iterations = int(iterations)
        self.flip_average = bool(flip_average)
        self.fine_flip_average = self.flip_average if fine_flip_average is None else bool(fine_flip_average)
        has_68 = self.point_set == "ibug68" and "landmarks" in self.tasks
        self.pose_from = ("landmarks" if has_68 else "branch") if pose_from == "auto" else pose_from
        if self.pose_from != "branch" and not has_68:
            raise ValueError(f"pose_from={pose_from!r} needs a stage two with 68 iBUG landmarks")

    # stage two's own network: its runtime, config, point set and tasks
    network = property(lambda self: self.main.runtime)
    config = property(lambda self: self.main.config)
    point_set = property(lambda self: self.main.point_set)
    tasks = property(lambda self: self.main.tasks)

    @property
    def runtimes(self) -> list[Runtime]:
        """The networks a call runs: stage two's, then the fine landmark network's when there is one."""
        return [self.network] + ([self.fine.runtime] if self.fine is not None else [])

    def __repr__(self) -> str:
        return (f"StageTwo(arch={self.config.arch!r}, tasks={self.tasks}, iterations={self.iterations}, "
                f"flip_average={self.flip_average}, pose_from={self.pose_from!r}, fine={self.fine is not None})")

    def __call__(self, images: Sequence[np.ndarray], landmarks: np.ndarray, point_set: str,
                 image_index: np.ndarray) -> StageTwoOutput:
        """Answers for faces with ``landmarks`` (K, M, 2) in ``point_set``, face k in ``images[image_index[k]]``."""
        landmarks = np.asarray(landmarks, dtype=np.float64)
        k = len(landmarks)
        if k == 0:
            n = self.config.num_points
            empty = {"landmarks": np.zeros((0, n, 2)), "visibility": np.zeros((0, n)), "pose": np.zeros((0, 3)),
                     "gender": np.zeros((0, 2))}
            return StageTwoOutput(**{t: (empty[t] if t in self.tasks else None) for t in empty})
        points5, out = five_points(landmarks, point_set), None
        for _ in range(self.iterations):
            out = self.main.run(images, self.main.align(points5), image_index, self.flip_average)
            if out.landmarks is None:
                break
            points5 = five_points(out.landmarks, self.point_set)
        if self.fine is not None:
            out.landmarks = self.fine.run(images, self.fine.align(points5), image_index,
                                          self.fine_flip_average).landmarks
        if self.pose_from != "branch" and out.landmarks is not None:
            out.pose = self._pose_of_landmarks(images, out, image_index)
        return out

    def apply(self, batch: Batch) -> Batch:
        """The pipeline step: ``batch.faces``' landmarks, visibility, pose and gender replaced by this
        network's (the tasks it has), ``batch.sources`` and ``batch.point_set`` updated."""
        c = batch.faces
        if c is None or c.landmarks is None or len(c) == 0:
            return batch
        out = self(batch.images, c.landmarks, batch.point_set, c.image)
        for task in ("landmarks", "visibility", "pose", "gender"):
            value = getattr(out, task)
            if value is not None:
                value = np.asarray(value, dtype=np.float32)
                if task == "pose" and c.pose is not None:  # no pose for a face: stage one's stays
                    value = np.where(np.isnan(value), c.pose, value)
                setattr(c, task, value)
                batch.sources[task] = "stage2"
        if out.landmarks is not None:
            batch.point_set = self.point_set
        return batch

    def _pose_of_landmarks(self, images: Sequence[np.ndarray], out: StageTwoOutput,
                           image_index: np.ndarray) -> np.ndarray:
        """The PnP pose of each face's points (its mean with the branch's for ``"mean"``); where the points
        are degenerate (a face of a few pixels), the branch's pose, else NaN."""
        pnp = np.full((len(out.landmarks), 3), np.nan)
        for k, (lm, i) in enumerate(zip(out.landmarks, image_index)):
            try:
                pnp[k] = pose_from_landmarks(lm, (images[int(i)].shape[1], images[int(i)].shape[0]))
            except ValueError:
                if out.pose is not None:
                    pnp[k] = out.pose[k]
        if self.pose_from == "landmarks" or out.pose is None:
            return pnp
        return (pnp + out.pose) / 2
