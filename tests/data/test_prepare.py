"""The prepare job on a small generated pool: labels per source kind, crop geometry, splits,
a corrupt image, resume after a crash or a kill, shards merged == one run, preview."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyperface.data.labels import to_pixels
from hyperface.data.prepare import PrepareOptions, merge, prepare, split_of
from hyperface.data.readers.pts import PTS_ORIGIN
from hyperface.data.shards import PreparedDataset, label_dtype, relative_to_crop, shard_is_complete

NOSE = 30
OPTS = PrepareOptions(crop_size=48, context=1.25, ss_max_side=64, ss_max_proposals=40, images_per_shard=2,
                      val_fraction=0.3, min_box=6)


def _face68(x0: float, y0: float, size: float) -> np.ndarray:
    """A frontal-ish 68-point face in (x0, y0, x0 + size, y0 + size)."""
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([0.5 - 0.5 * np.cos(t), 0.45 + 0.55 * np.sin(t)], axis=1)
    brows = np.stack([np.r_[np.linspace(0.1, 0.4, 5), np.linspace(0.6, 0.9, 5)], np.full(10, 0.25)], axis=1)
    nose = np.stack([np.r_[np.full(4, 0.5), np.linspace(0.4, 0.6, 5)], np.r_[np.linspace(0.35, 0.55, 4),
                                                                             np.full(5, 0.62)]], axis=1)
    a6 = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    eyes = np.concatenate([np.stack([0.3 - 0.08 * np.cos(a6), 0.38 + 0.03 * np.sin(a6)], axis=1),
                           np.stack([0.7 + 0.08 * np.cos(a6), 0.38 + 0.03 * np.sin(a6)], axis=1)])
    a12, a8 = np.linspace(0, 2 * np.pi, 12, endpoint=False), np.linspace(0, 2 * np.pi, 8, endpoint=False)
    mouth = np.concatenate([np.stack([0.5 - 0.15 * np.cos(a12), 0.78 - 0.06 * np.sin(a12)], axis=1),
                            np.stack([0.5 - 0.1 * np.cos(a8), 0.78 - 0.03 * np.sin(a8)], axis=1)])
    pts = np.concatenate([jaw, brows, nose, eyes, mouth])
    pts[NOSE] = (0.52, 0.58)
    return pts * size + [x0, y0]


def _texture(rng, w: int, h: int) -> np.ndarray:
    """Red/blue blocks and noise, green channel kept low (the nose marker is the only green)."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    for _ in range(6):
        x, y = rng.integers(0, w - 8), rng.integers(0, h - 8)
        img[y:y + rng.integers(6, h // 2), x:x + rng.integers(6, w // 2)] = (rng.integers(60, 250), 0,
                                                                            rng.integers(60, 250))
    img[..., [0, 2]] = np.clip(img[..., [0, 2]].astype(int) + rng.integers(0, 40, (h, w, 2)), 0, 255)
    return img


def _write_pts(path: Path, pts: np.ndarray) -> None:
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in pts + PTS_ORIGIN)  # 0-based points, 1-based file
    path.write_text(f"version: 1\nn_points: {len(pts)}\n{{\n{body}\n}}\n")


def make_pool(root: Path) -> dict[str, str]:
    """Generated 300-W-, MTFL-, UTKFace- and negatives-style folders; returns format -> spec."""
    rng = np.random.default_rng(7)
    pts_dir, mtfl_dir, utk_dir, neg_dir = (root / n for n in ("pts", "mtfl", "utk", "neg"))
    for d in (pts_dir, mtfl_dir / "img", utk_dir, neg_dir):
        d.mkdir(parents=True)
    for i in range(9):
        img = _texture(rng, 120, 100)
        size = rng.uniform(45, 60)
        x0, y0 = rng.uniform(5, 115 - size), rng.uniform(5, 95 - size)
        pts = _face68(x0, y0, size)
        img[int(y0 + size * 0.3):int(y0 + size), int(x0 + size * 0.1):int(x0 + size * 0.9), 0] = 200
        nx, ny = np.round(pts[NOSE]).astype(int)
        img[ny - 1:ny + 2, nx - 1:nx + 2] = (0, 255, 0)  # the marker at the nose tip
        Image.fromarray(img).save(pts_dir / f"face_{i:02d}.png")
        _write_pts(pts_dir / f"face_{i:02d}.pts", pts)
    # A truncated JPEG: its header reads, its pixels do not.
    Image.fromarray(_texture(rng, 120, 100)).save(pts_dir / "broken.jpg", quality=95)
    data = (pts_dir / "broken.jpg").read_bytes()
    (pts_dir / "broken.jpg").write_bytes(data[: len(data) // 3])
    _write_pts(pts_dir / "broken.pts", _face68(20, 20, 50))
    lines = []
    for i in range(3):
        Image.fromarray(_texture(rng, 100, 100)).save(mtfl_dir / "img" / f"m{i}.jpg")
        xs, ys = [35, 65, 50, 38, 62], [40, 40, 55, 70, 70]
        lines.append(f"img\\m{i}.jpg " + " ".join(map(str, xs + ys)) + f" {1 + i % 2} 1 2 3")
    (mtfl_dir / "training.txt").write_text("\n".join(lines) + "\n")
    for i in range(3):
        Image.fromarray(_texture(rng, 80, 80)).save(utk_dir / f"{20 + i}_{i % 2}_0_2017010{i}.jpg.chip.jpg")
    for i in range(3):
        Image.fromarray(_texture(rng, 48, 48)).save(neg_dir / f"n{i}.png")
    return {"pts": f"pts:{pts_dir}", "mtfl": f"mtfl:{mtfl_dir}?split=training",
            "utkface": f"utkface:{utk_dir}", "negatives": f"negatives:{neg_dir}"}


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> dict[str, str]:
    return make_pool(tmp_path_factory.mktemp("pool"))


@pytest.fixture(scope="module")
def clean(pool, tmp_path_factory) -> Path:
    """One uninterrupted run with two spawned workers: the reference."""
    out = tmp_path_factory.mktemp("clean")
    prepare(list(pool.values()), out, OPTS, workers=2, progress=False)
    return out


def _cli(monkeypatch, *argv: str) -> int:
    """Run the hyperface CLI in this process (main() reads sys.argv)."""
    from hyperface.cli.main import main

    monkeypatch.setattr(sys, "argv", [sys.argv[0]])
    return main(list(argv))


def _all_samples(roots) -> list[dict]:
    ds = PreparedDataset(roots, split=None)
    return [ds[i] for i in range(len(ds))]


def _assert_same(a_roots, b_roots) -> None:
    a, b = _all_samples(a_roots), _all_samples(b_roots)
    assert len(a) == len(b) and len(a) > 0
    for x, y in zip(a, b):
        for key in x:
            if key != "index":
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_manifest_counts_splits_and_corrupt_image(clean, pool):
    manifest = json.loads((clean / "manifest.json").read_text())
    assert manifest["complete"] and manifest["hyperface_version"]
    assert manifest["options"]["crop_size"] == 48 and manifest["options"]["num_points"] == 68
    assert [s["format"] for s in manifest["sources"]] == ["pts", "mtfl", "utkface", "negatives"]
    ds = PreparedDataset(clean, split=None)
    train, val = PreparedDataset(clean, "train"), PreparedDataset(clean, "val")
    c = manifest["counts"]
    assert len(ds) == c["samples"] == len(train) + len(val)
    assert (len(train), len(val)) == (c["train"]["samples"], c["val"]["samples"])
    assert c["images"] == 9 + 3 + 3 + 3  # the broken image is not among them
    labels = ds.labels()
    assert c["train"]["face"] + c["val"]["face"] == int((labels["detection_mask"] & (labels["detection"] == 1)).sum())
    assert c["pose_source"]["pnp"] == int(labels["pose_mask"].sum()) > 0
    assert c["train"]["pose_class"] + c["val"]["pose_class"] == int((labels["pose_class"] > 0).sum()) > 0
    # The truncated image is reported with its file and skipped.
    broken = [s for s in manifest["skipped"] if s["path"].endswith("broken.jpg")]
    assert len(broken) == 1 and "decode" in broken[0]["message"]
    infos = [ds.info(i) for i in range(len(ds))]
    assert not any(i["image"].endswith("broken.jpg") for i in infos)
    # The split is the hash of the record's group; every sample of an image is on one side.
    side: dict[str, str] = {}
    for info in infos:
        group = info["image"] if not info["source"].startswith("mtfl") else info["image"]
        assert side.setdefault(info["image"], info["split"]) == info["split"]
        assert info["split"] == ("val" if split_of(group, OPTS.val_fraction) else "train")
    assert set(side.values()) == {"train", "val"}


def test_masks_per_source_kind(clean):
    ds = PreparedDataset(clean, split=None)
    by_source: dict[str, list[tuple[dict, dict]]] = {}
    for i in range(len(ds)):
        info = ds.info(i)
        by_source.setdefault(info["source"].split(":")[0], []).append((ds[i], info))
    # 68-point faces: landmarks, five points and a PnP pose on positives; no gender, no visibility.
    for s, info in by_source["pts"]:
        assert not s["gender_mask"] and not s["visibility_mask"].any()
        if s["detection_mask"] and s["detection"] == 1:
            assert s["landmarks_mask"].all() and s["landmarks5_mask"].all() and s["pose_mask"]
            assert info["pose_source"] == "pnp"
    # 5 points with gender: landmarks5 and gender, never 68-point landmarks or pose.
    mtfl = [s for s, _ in by_source["mtfl"]]
    assert not any(s["landmarks_mask"].any() or s["pose_mask"] for s in mtfl)
    assert any(s["landmarks5_mask"].all() and s["gender_mask"] for s in mtfl)
    # MTFL's pose class (3 in every line) goes with the attributes, and no other source has one.
    assert all(s["pose_class"] == (3 if s["gender_mask"] else 0) for s in mtfl)
    assert not any(s["pose_class"] for kind in ("pts", "utkface", "negatives") for s, _ in by_source[kind])
    # Whole-image gender-only faces: gender on positives, nothing else.
    for s, _ in by_source["utkface"]:
        assert not s["landmarks_mask"].any() and not s["landmarks5_mask"].any() and not s["pose_mask"]
        assert s["gender_mask"] == (s["detection_mask"] and s["detection"] == 1)
    # Negatives: only non-face detection labels.
    for s, info in by_source["negatives"]:
        assert s["detection_mask"] and s["detection"] == 0 and info["face"] == -1
        assert not (s["landmarks5_mask"].any() or s["gender_mask"] or s["pose_mask"])
    # Masked values are 0.
    for s, _ in by_source["pts"] + by_source["mtfl"]:
        assert not s["landmarks"][~s["landmarks_mask"]].any() and not s["pose"][~s["pose_mask"]].any()


def test_marker_at_the_nose_lands_on_the_stored_landmark(clean, pool):
    """A pixel drawn at a source landmark appears in the crop where the stored relative landmark says."""
    from hyperface.data.readers import open_dataset

    truth = {Path(r.image).name: r.faces[0].landmarks for r in open_dataset(pool["pts"])}
    ds = PreparedDataset(clean, split=None)
    checked = 0
    for i in range(len(ds)):
        s, info = ds[i], ds.info(i)
        if not s["landmarks_mask"][NOSE]:
            continue
        # The stored relative landmark maps back to the source pixel via the stored box ...
        np.testing.assert_allclose(to_pixels(s["landmarks"], info["box"]), truth[info["image"]], atol=1e-3)
        # ... and to the crop pixel where the green marker was warped to.
        u, v = relative_to_crop(s["landmarks"][NOSE], ds.context, ds.crop_size)
        g = s["image"][..., 1].astype(float)
        g[g < 40] = 0
        yy, xx = np.mgrid[0:ds.crop_size, 0:ds.crop_size]
        near = (abs(xx - u) < 6) & (abs(yy - v) < 6)
        w = g * near
        assert w.sum() > 0, info
        cu, cv = (w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()
        assert abs(cu - u) < 0.75 and abs(cv - v) < 0.75, (info, (u, v), (cu, cv))
        checked += 1
    assert checked >= 9


def test_two_shards_merged_equal_one_run(clean, pool, tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    ma = prepare(list(pool.values()), a, OPTS, shard=(0, 2), progress=False)
    mb = prepare(list(pool.values()), b, OPTS, shard=(1, 2), progress=False)
    assert ma["complete"] and mb["complete"]
    assert not {s["name"] for s in ma["shards"]} & {s["name"] for s in mb["shards"]}
    merged = tmp_path / "merged"
    assert _cli(monkeypatch, "prepare", "merge", str(merged), str(a), str(b)) == 0
    m = json.loads((merged / "manifest.json").read_text())
    assert m["complete"]
    clean_manifest = json.loads((clean / "manifest.json").read_text())
    assert m["counts"] == clean_manifest["counts"]
    assert len(m["skipped"]) == len(clean_manifest["skipped"])
    # a part prepared before 0.20 (1-based labels: no "pixels") does not merge with a 0.20 one
    old = json.loads((b / "manifest.json").read_text())
    del old["pixels"]
    (b / "manifest.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="pixel coordinates"):
        merge(tmp_path / "mixed", [a, b])
    _assert_same(merged, clean)  # workers=2 one run == two workers=1 halves, sample for sample
    # One half alone is an incomplete merge.
    assert not merge(tmp_path / "half", [a])["complete"]


def test_resume_after_a_crash_and_a_partial_tmp_shard(clean, pool, tmp_path):
    out = tmp_path / "out"
    done: list[str] = []

    def crash(name: str) -> None:
        done.append(name)
        if len(done) == 3:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated"):
        prepare(list(pool.values()), out, OPTS, progress=False, on_shard=crash)
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    complete = sorted(p.name for p in (out / "shards").iterdir() if shard_is_complete(p))
    assert complete == sorted(done)
    # A shard being written when the process died: a temporary folder with a partial file.
    pending = next(s["name"] for s in json.loads((clean / "manifest.json").read_text())["shards"]
                   if s["name"] not in done)
    tmp = out / "shards" / f".{pending}.deadbeef0000.tmp"
    tmp.mkdir()
    (tmp / "images.npy").write_bytes(b"\x93NUMPY partial")
    seen: list[str] = []
    manifest = prepare(list(pool.values()), out, OPTS, progress=False, on_shard=seen.append)
    assert manifest["complete"] and not set(seen) & set(done)  # finished shards not redone
    assert not list((out / "shards").glob(".*"))
    names = [s["name"] for s in manifest["shards"]]
    assert len(names) == len(set(names))
    _assert_same(out, clean)


def _as_version_1(shard: Path) -> None:
    """Rewrite a shard as the format-1 code wrote it: no pose_class column, no format_version."""
    labels = np.load(shard / "labels.npy", allow_pickle=False)
    old = np.zeros(len(labels), dtype=label_dtype(68, version=1))
    for name in old.dtype.names:
        old[name] = labels[name]
    np.save(shard / "labels.npy", old)
    meta = json.loads((shard / "shard.json").read_text())
    del meta["format_version"]
    (shard / "shard.json").write_text(json.dumps(meta))


def test_a_version_1_job_resumes_into_a_mixed_folder(clean, pool, tmp_path):
    """A job prepared by the format-1 code and resumed by this one keeps its old shards and reads both."""
    out = tmp_path / "out"
    shutil.copytree(clean, out)
    manifest = json.loads((out / "manifest.json").read_text())
    names = [s["name"] for s in manifest["shards"]]
    mtfl = next(n for n in names if n.startswith("01-"))  # the second source is MTFL
    for name in names:
        _as_version_1(out / "shards" / name)
    shutil.rmtree(out / "shards" / mtfl)  # not done yet when the code was upgraded
    (out / "manifest.json").write_text(json.dumps(dict(manifest, format_version=1)))
    redone: list[str] = []
    resumed = prepare(list(pool.values()), out, OPTS, progress=False, on_shard=redone.append)
    assert resumed["complete"] and redone == [mtfl] and resumed["format_version"] == 2
    assert "format_version" not in json.loads((out / "shards" / names[0] / "shard.json").read_text())
    ds = PreparedDataset(out, split=None)
    ref = PreparedDataset(clean, split=None)
    assert len(ds) == len(ref)
    classes = [int(ds[i]["pose_class"]) for i in range(len(ds))]
    # the redone shard has MTFL's classes, the old ones (another MTFL shard among them) read as 0
    expected = [int(ref[i]["pose_class"]) if ref.info(i)["shard"] == mtfl else 0 for i in range(len(ref))]
    assert classes == expected and 3 in classes and 3 in [int(ref[i]["pose_class"]) for i in range(len(ref))
                                                          if ref.info(i)["shard"] != mtfl]
    assert ds.labels()["pose_class"].tolist() == classes


def test_resume_after_the_process_is_killed(clean, pool, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "hyperface.cli.main", "prepare", "--out", str(out), "--no-progress",
           "--crop-size", "48", "--ss-max-side", "64", "--ss-max-proposals", "40", "--images-per-shard", "2",
           "--val-fraction", "0.3", "--min-box", "6"]
    for spec in pool.values():
        cmd += ["--source", spec]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "shards").is_dir() and any(shard_is_complete(p) for p in (out / "shards").iterdir()):
            break
        time.sleep(0.01)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # The same options through the API: resuming the CLI's job.
    assert prepare(list(pool.values()), out, OPTS, progress=False)["complete"]
    assert not list((out / "shards").glob(".*"))
    _assert_same(out, clean)


def test_resume_with_other_options_is_refused(clean, pool):
    other = PrepareOptions(**{**{k: v for k, v in OPTS.to_dict().items() if k != "num_points"}, "pos_iou": 0.6})
    with pytest.raises(ValueError, match="pos_iou"):
        prepare(list(pool.values()), clean, other, progress=False)


def test_a_job_prepared_before_0_20_is_not_resumed_and_warns_when_read(clean, pool, tmp_path, caplog):
    """Its 300-W- and MTFL-style labels are 1-based (no ``pixels`` in the manifest): resuming it would mix
    them with 0-based ones, and training on it is a pixel off today's labels."""
    assert json.loads((clean / "manifest.json").read_text())["pixels"] == "0-based"
    out = tmp_path / "old"
    shutil.copytree(clean, out)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["pixels"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="before 0.20.*1-based"):
        prepare(list(pool.values()), out, OPTS, progress=False)
    with caplog.at_level("WARNING", logger="hyperface.data"):
        PreparedDataset(out, split=None)
    (warning,) = [r.getMessage() for r in caplog.records if "before 0.20" in r.getMessage()]
    names = [s["name"] for s in manifest["sources"] if s["format"] in ("pts", "mtfl")]
    assert len(names) == 2 and all(n in warning for n in names)
    caplog.clear()
    with caplog.at_level("WARNING", logger="hyperface.data"):
        PreparedDataset(clean, split=None)
    assert not [r for r in caplog.records if "before 0.20" in r.getMessage()]


def test_preview_contact_sheet(clean, tmp_path, monkeypatch, capsys):
    sheet = tmp_path / "sheet.png"
    capsys.readouterr()
    assert _cli(monkeypatch, "prepare", "preview", str(clean), "--out", str(sheet), "--n", "10", "--split", "all",
                "--tile", "64", "--columns", "5") == 0
    info = json.loads(capsys.readouterr().out)
    img = np.asarray(Image.open(sheet))
    assert info["samples"] == 10 and img.shape == (info["height"], info["width"], 3)
    assert img.shape[1] == 4 + 5 * (64 + 4)


def test_real_300w_images(shared_data, tmp_path):
    """Two real LFPW faces: PnP pose plausible; stored landmarks map back to the .pts points."""
    from hyperface.data.readers import open_dataset

    spec = f"pts:{shared_data / '300w' / 'lfpw' / 'trainset'}"
    opts = PrepareOptions(images_per_shard=2, ss_max_side=128, crop_size=64)
    n_shards = -(-sum(1 for _ in open_dataset(spec)) // 2)
    m = prepare([spec], tmp_path, opts, shard=(0, n_shards), progress=False)
    assert m["complete"] and m["counts"]["images"] == 2
    truth = {Path(r.image).name: r.faces[0].landmarks for r in open_dataset(spec)}
    ds = PreparedDataset(tmp_path, split=None)
    faces = 0
    for i in range(len(ds)):
        s, info = ds[i], ds.info(i)
        if s["detection_mask"] and s["detection"] == 1:
            faces += 1
            assert s["pose_mask"] and np.all(np.abs(s["pose"]) < 90)
            np.testing.assert_allclose(to_pixels(s["landmarks"], info["box"]), truth[info["image"]], atol=1e-3)
            assert np.all(np.abs(s["landmarks"]) < 1.0)
    assert faces == 2 * opts.positives_per_face


def test_video_frames_are_decoded_and_cropped(tmp_path, gen):
    """300-VW style: every 3rd annotated frame of a generated video; each crop shows its own frame."""
    import cv2

    folder = tmp_path / "vw" / "001"
    folder.mkdir(parents=True)
    writer = cv2.VideoWriter(str(folder / "vid.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(12):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[..., 1] = 20 * i  # green encodes the frame index
        writer.write(frame)
    writer.release()
    for n in range(1, 13):  # 1-based frame numbers
        gen.pts(folder / "annot" / f"{n:06d}.pts", _face68(10 + n, 8, 30))
    out = tmp_path / "out"
    m = prepare([f"300vw:{tmp_path / 'vw'}?every=3"], out, OPTS, progress=False)
    assert m["complete"] and m["counts"]["images"] == 4 and not m["skipped"]
    ds = PreparedDataset(out, split=None)
    frames = set()
    splits = set()
    for i in range(len(ds)):
        s, info = ds[i], ds.info(i)
        frame = int(info["image"].rsplit("#", 1)[1])
        frames.add(frame)
        splits.add(info["split"])
        c = ds.crop_size // 2
        assert abs(int(s["image"][c, c, 1]) - 20 * frame) <= 8, (info, s["image"][c, c])
    assert len(frames) == 4 and len(splits) == 1  # one video: one side of the split


def test_prepare_leaves_the_callers_opencv_threads_as_they_were(clean, pool):
    import cv2

    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(3)
        assert prepare(list(pool.values()), clean, OPTS, progress=False)["complete"]  # resumes: nothing to do
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def test_a_rerun_redoes_hand_damaged_shards(clean, pool, tmp_path):
    import shutil

    from hyperface.data.shards import ShardError

    out = tmp_path / "damaged"
    shutil.copytree(clean, out)
    names = sorted(p.name for p in (out / "shards").iterdir())
    images = out / "shards" / names[0] / "images.npy"
    images.write_bytes(images.read_bytes()[:-100])  # truncated
    (out / "shards" / names[1] / "labels.npy").unlink()  # a file deleted by hand
    with pytest.raises(ShardError) as info:
        PreparedDataset(out, split=None)
    assert str(out / "shards" / names[0]) in str(info.value) and "Delete the folder" in str(info.value)
    assert "hyperface prepare" in str(info.value)
    redone: list[str] = []
    manifest = prepare(list(pool.values()), out, OPTS, progress=False, on_shard=redone.append)
    assert manifest["complete"] and sorted(redone) == names[:2]
    assert not list((out / "shards").glob(".*"))
    _assert_same(out, clean)
