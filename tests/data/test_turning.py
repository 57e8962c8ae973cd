"""Turned copies of 68-point faces (hyperface.data.turning): the pose turns, the labels follow the pixels."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hyperface.cli.main import main
from hyperface.data.readers import open_dataset
from hyperface.data.readers.pts import read_pts, write_pts
from hyperface.data.splits import split_of
from hyperface.data.turning import TurnPlan, turn_dataset, turn_face
from hyperface.head import HEAD68, HEAD_CENTRE, NORMALS68
from hyperface.pose import MODEL3D, PNP_POINTS, pose_from_landmarks, pose_to_rotation

pytest.importorskip("scipy")

SIZE = 400


def _face(pose: tuple[float, float, float], scale: float = 170.0) -> np.ndarray:
    """The generic head's 68 points at ``pose`` (roll, pitch, yaw), centred in a SIZE x SIZE image."""
    projected = HEAD68 @ pose_to_rotation(np.asarray(pose, dtype=np.float64)).T
    return scale * projected[:, :2] + SIZE / 2


def _picture(points: np.ndarray, seed: int = 0) -> np.ndarray:
    """Dim noise with a bright dot on each point: where the dots go, the labels must go."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
    for x, y in points:
        cv2.circle(image, (round(x), round(y)), 3, (255, 255, 255), -1)
    return image


def test_the_generic_head_has_the_pnp_faces_depths():
    """Eye and mouth corners, chin and nose tip sit at MODEL3D's depths (relative to the nose, scaled by
    the eye corners' distance), so PnP reads a turned head's points as turned by the turn."""
    head = HEAD68[list(PNP_POINTS)]
    scale = np.linalg.norm(head[3, :2] - head[2, :2]) / np.linalg.norm(MODEL3D[3, :2] - MODEL3D[2, :2])
    depth = head[:, 2] - head[0, 2]
    assert np.allclose(depth[[2, 3, 4, 5]], MODEL3D[[2, 3, 4, 5], 2] * scale, atol=0.012)
    assert np.allclose(np.linalg.norm(NORMALS68, axis=1), 1.0)


@pytest.mark.parametrize("yaw0, turn", [(0.0, 20.0), (15.0, 8.0), (-10.0, -12.0)])
def test_the_generic_head_turned_is_the_generic_head_at_the_turned_pose(yaw0, turn):
    """A face that is the generic head comes out as the generic head at the turned pose, about its centre;
    PnP reads the turn in the right direction and of about its size (PnP's 6-point face is not the head)."""
    pose = np.array([3.0, -5.0, yaw0])
    points = _face(tuple(pose))
    turned = turn_face(_picture(points), points, turn, -4.0, pose=pose)
    rotation = pose_to_rotation(pose) @ pose_to_rotation(np.array([0.0, -4.0, turn]))
    expected = 170.0 * ((HEAD68 - HEAD_CENTRE) @ rotation.T + HEAD_CENTRE @ pose_to_rotation(pose).T)[:, :2] + SIZE / 2
    assert np.allclose(turned.points, expected, atol=1e-6)
    assert np.allclose(pose_to_rotation(turned.pose), rotation, atol=1e-9)
    change = pose_from_landmarks(turned.points, (SIZE, SIZE)) - pose_from_landmarks(points, (SIZE, SIZE))
    assert 0.6 * abs(turn) < change[2] * np.sign(turn) < 1.5 * abs(turn)
    assert abs(change[0]) < 3.0


def test_the_labels_follow_the_pixels():
    points = _face((0.0, 0.0, 5.0))
    turned = turn_face(_picture(points), points, 15.0, -6.0)
    moved = np.linalg.norm(turned.points - points, axis=1)
    assert moved.max() > 15  # a real turn, not a no-op
    gray = turned.image.max(axis=2)
    at_points = gray[np.round(turned.points[:, 1]).astype(int), np.round(turned.points[:, 0]).astype(int)]
    assert (at_points > 200).mean() > 0.95  # each dot moved with its label
    at_old = gray[np.round(points[:, 1]).astype(int), np.round(points[:, 0]).astype(int)]
    assert (at_old > 200).mean() < 0.5  # and is no longer where it was
    assert turned.image.shape == (SIZE, SIZE, 3)


def test_a_turn_that_folds_the_picture_is_refused():
    points = _face((0.0, 0.0, 30.0))
    with pytest.raises(ValueError, match="folds"):
        turn_face(_picture(points), points, 60.0)
    with pytest.raises(ValueError, match="68"):
        turn_face(_picture(points), points[:5], 10.0)


def _dataset(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True)
    for k, name in enumerate(names):
        points = _face((0.0, 0.0, 12.0 * (k - 1)))
        cv2.imwrite(str(folder / f"{name}.png"), _picture(points, k))
        write_pts(folder / f"{name}.pts", points)


def _names(n_train: int) -> tuple[list[str], str]:
    train = [f"face{k}" for k in range(200) if not split_of(f"face{k}.png", 0.1)][:n_train]
    val = next(f"face{k}" for k in range(200) if split_of(f"face{k}.png", 0.1))
    return train, val


def test_turn_dataset_turns_training_faces_only_and_resumes(tmp_path):
    train, val = _names(3)
    train[0] = next(f"{k}_1_0.jpg.chip" for k in range(200) if not split_of(f"{k}_1_0.jpg.chip.png", 0.1))  # UTKFace-like
    _dataset(tmp_path / "src", train + [val])
    plan = TurnPlan(copies=2, yaw=(15.0, 20.0), pitch=5.0)
    counts = turn_dataset([f"pts:{tmp_path / 'src'}"], tmp_path / "out", plan, log=lambda _: None)
    assert counts["faces"] == 3 and counts["copies"] == 6 and counts["kept"] == 0
    written = sorted((tmp_path / "out" / "0").glob("*.pts"))
    assert len(written) == 6 - counts["dropped"] >= 4
    assert not any(val in p.name for p in (tmp_path / "out" / "0").iterdir())
    records = list(open_dataset(f"pts:{tmp_path / 'out' / '0'}"))
    assert len(records) == len(written) and all(r.faces[0].landmarks.shape == (68, 2) for r in records)
    first = {p.name: read_pts(p)[0] for p in written}
    # a second run keeps what is there; a fresh run with the same seed writes the same copies
    again = turn_dataset([f"pts:{tmp_path / 'src'}"], tmp_path / "out", plan, log=lambda _: None)
    assert again["kept"] == 6 and again["copies"] == 0
    turn_dataset([f"pts:{tmp_path / 'src'}"], tmp_path / "fresh", plan, log=lambda _: None)
    for name, pts in first.items():
        assert np.allclose(read_pts(tmp_path / "fresh" / "0" / name)[0], pts)


def test_a_face_away_from_frontal_turns_further_away(tmp_path):
    train, _ = _names(3)
    _dataset(tmp_path / "src", train)  # yaws -12, 0, +12
    turn_dataset([f"pts:{tmp_path / 'src'}"], tmp_path / "out", TurnPlan(copies=2, yaw=(10.0, 15.0), pitch=0.0),
                 log=lambda _: None)
    for k, name in ((0, train[0]), (2, train[2])):
        for path in (tmp_path / "out" / "0").glob(f"*_{name}_*.pts"):
            yaw = pose_from_landmarks(read_pts(path)[0], (SIZE, SIZE))[2]
            assert abs(yaw) > 12.0 + 5 and np.sign(yaw) == np.sign(k - 1)


def test_cli_prepare_turn(tmp_path, capsys):
    train, _ = _names(2)
    _dataset(tmp_path / "src", train)
    assert main(["prepare", "turn", str(tmp_path / "out"), f"pts:{tmp_path / 'src'}", "--copies", "1",
                 "--yaw", "10:12", "--pitch", "0"]) == 0
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts["faces"] == 2 and counts["copies"] == 2
    assert len(list((tmp_path / "out" / "0").glob("*.pts"))) == 2 - counts["dropped"]
    assert main(["prepare", "turn", str(tmp_path / "out2"), f"pts:{tmp_path / 'missing'}"]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["prepare", "turn", str(tmp_path / "out3"), f"pts:{tmp_path / 'src'}", "--yaw", "30:10"])
    assert main(["prepare", "turn", str(tmp_path / "out4"), f"pts:{tmp_path / 'src'}", "--pitch", "-5"]) == 2
    assert main(["prepare", "turn", str(tmp_path / "out5"), f"pts:{tmp_path / 'src'}", "--copies", "0"]) == 2
    assert not (tmp_path / "out4").exists() and not (tmp_path / "out5").exists()


def test_a_bad_image_is_reported_and_skipped_the_rest_turned(tmp_path):
    train, _ = _names(3)
    _dataset(tmp_path / "src", train)
    (tmp_path / "src" / f"{train[1]}.png").write_bytes(b"not a png")
    said = []
    counts = turn_dataset([f"pts:{tmp_path / 'src'}"], tmp_path / "out", TurnPlan(copies=1, yaw=(10.0, 12.0), pitch=0.0),
                          log=said.append)
    assert counts["skipped"] == 1 and counts["faces"] + counts["skipped"] >= 3
    assert any(f"{train[1]}.png" in line for line in said)
    names = {p.name for p in (tmp_path / "out" / "0").glob("*.pts")}
    assert any(train[0] in n for n in names) and any(train[2] in n for n in names)
    assert not any(train[1] in n for n in names)


def test_a_turn_plan_refuses_what_cannot_be_turned():
    for bad in ({"copies": 0}, {"yaw": (30.0, 10.0)}, {"yaw": (-5.0, 10.0)}, {"pitch": -1.0}, {"pitch": 50.0},
                {"min_yaw": -1.0}, {"retries": -1}):
        with pytest.raises(ValueError):
            TurnPlan(**bad)
    assert TurnPlan(yaw=(0.0, 90.0), pitch=45.0).yaw == (0.0, 90.0)
