"""Hostile but fair inputs: absurd or degenerate annotations, a decompression bomb, a huge crop, a
failing image inside a shard. Each is reported with its file (and line) and skipped; ``data check``
and ``prepare`` agree on what is a problem; nothing stops the job or asks for gigabytes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hostile_files import bomb_png
from hyperface.data.candidates import CropTooLargeError, extract_crop
from hyperface.data.images import ImageReadError, ImageTooLargeError, image_size, load_image, pixel_limits
from hyperface.data.prepare import PrepareOptions, ShardTask, prepare, process_shard
from hyperface.data.readers import open_dataset
from hyperface.data.records import FaceRecord, ImageRecord
from hyperface.data.shards import PreparedDataset, read_shard_json

OPTS = PrepareOptions(crop_size=32, ss_mode="none", images_per_shard=8, min_box=6, val_fraction=0.0)


def _pts_with(path: Path, points: np.ndarray, replace: dict[int, str] | None = None) -> None:
    """A .pts file with header (points start on line 4), some point lines replaced by raw text."""
    body = [f"{x:.3f} {y:.3f}" for x, y in points]
    for k, text in (replace or {}).items():
        body[k] = text
    path.write_text("\n".join(["version: 1", f"n_points: {len(body)}", "{", *body, "}"]) + "\n")


def _hostile_folder(root: Path, gen, *, with_huge: bool = True) -> dict[str, int | None]:
    """Two good faces and the bad ones of the issue; returns bad file name -> expected line."""
    root.mkdir(parents=True, exist_ok=True)
    good = gen.points(68, offset=(20, 15), scale=40)
    for name in ("good1", "good2"):
        _pts_with(root / f"{name}.pts", good)
        gen.image(root / f"{name}.png", size=(96, 80))
    bad = {"one_far.pts": 4 + 10, "tiny_huge.pts": 4 + 3, "degenerate.pts": None, "outside.pts": None}
    if with_huge:
        _pts_with(root / "one_far.pts", good, {10: "60000 60000"})  # ~25 GB crop in the old code
    else:
        del bad["one_far.pts"]
    _pts_with(root / "tiny_huge.pts", good, {3: "1e30 5"})
    _pts_with(root / "degenerate.pts", np.full((68, 2), 100.0))  # SQPnP failed on this
    _pts_with(root / "outside.pts", good - [150, 0])  # all points left of the image, within the margin
    for name in bad:
        gen.image(root / name.replace(".pts", ".png"), size=(160, 120))
    return bad


def _check_json(capsys, *specs: str) -> dict:
    from hyperface.cli.main import main

    capsys.readouterr()
    assert main(["data", "check", "--json", *specs]) == 0
    return json.loads(capsys.readouterr().out)


def test_data_check_reports_absurd_and_degenerate_pts_files_with_their_line(tmp_path, gen, capsys):
    bad = _hostile_folder(tmp_path, gen)
    report = _check_json(capsys, f"pts:{tmp_path}")["datasets"][0]
    assert report["images"] == 2 and report["faces"] == 2
    found = {Path(p["path"]).name: p for p in report["problems"]}
    assert {name: p["line"] for name, p in found.items()} == bad
    # the file's 1-based 60000 is pixel 59999 of the record (PTS_ORIGIN); the line names the file's row
    assert "59999" in found["one_far.pts"]["message"] and "outside" in found["one_far.pts"]["message"]
    assert "1e+30" in found["tiny_huge.pts"]["message"]
    assert "degenerate" in found["degenerate.pts"]["message"]
    assert "all 68 points lie outside" in found["outside.pts"]["message"]


def test_prepare_skips_exactly_what_data_check_reports_and_keeps_the_good_faces(tmp_path, gen, capsys):
    pts_dir, neg_dir = tmp_path / "pts", tmp_path / "neg"
    _hostile_folder(pts_dir, gen, with_huge=False)  # old code: the 60000 face asks for 25 GB; not run here
    neg_dir.mkdir()
    gen.image(neg_dir / "plain.png", size=(64, 64))
    bomb_png(neg_dir / "bomb.png")
    specs = [f"pts:{pts_dir}", f"negatives:{neg_dir}"]
    checked = _check_json(capsys, *specs)
    problems = {(p["path"], p["line"], p["message"]) for d in checked["datasets"] for p in d["problems"]}
    manifest = prepare(specs, tmp_path / "out", OPTS, progress=False)
    skipped = {(s["path"], s["line"], s["message"]) for s in manifest["skipped"]}
    assert skipped == problems and len(problems) == 4
    assert manifest["complete"] and manifest["counts"]["faces"] == 2 and manifest["counts"]["images"] == 3
    ds = PreparedDataset(tmp_path / "out", split=None)
    assert {ds.info(i)["image"] for i in range(len(ds))} == {"good1.png", "good2.png", "plain.png"}


def test_a_failing_image_is_reported_and_the_rest_of_its_shard_is_written(tmp_path, gen, monkeypatch):
    import hyperface.data.prepare as prepare_module

    good = gen.points(68, offset=(20, 15), scale=40)
    img_good, img_bad = gen.image(tmp_path / "good.png", size=(96, 80)), gen.image(tmp_path / "bad.png", size=(96, 80))
    real_sample = prepare_module.sample_image

    def failing_on_bad(image, record, opts, rng):  # an OpenCV failure inside one image's sampling
        if Path(record.image).name == "bad.png":
            raise cv2.error("sampling failed")
        return real_sample(image, record, opts, rng)

    monkeypatch.setattr(prepare_module, "sample_image", failing_on_bad)
    records = (ImageRecord(img_bad, (FaceRecord(box=[20, 15, 60, 55], landmarks=good, point_set="ibug68"),),
                           "test", "bad"),
               ImageRecord(img_good, (FaceRecord(box=[20, 15, 60, 55], landmarks=good, point_set="ibug68"),),
                           "test", "good"))
    task = ShardTask("00-00000", 0, 0, records, ("bad.png", "good.png"), (0, 0))
    meta = process_shard(task, OPTS, tmp_path / "out")
    assert [s["path"] for s in meta["skipped"]] == [str(img_bad)]
    assert meta["skipped"][0]["message"].startswith("cannot sample: ")
    labels = np.load(tmp_path / "out" / "shards" / "00-00000" / "labels.npy")
    assert len(labels) > 0 and set(labels["image"].tolist()) == {1}
    assert read_shard_json(tmp_path / "out" / "shards" / "00-00000")["counts"]["faces"] == 1


def test_extract_crop_checks_its_pixel_budget_before_allocating(monkeypatch):
    image = np.zeros((48, 64, 3), dtype=np.uint8)
    with pytest.raises(CropTooLargeError, match=r"60000.*over the limit of 1,000,000.*HYPERFACE_MAX_CROP_PIXELS"):
        extract_crop(image, np.array([10.0, 5.0, 60000.0, 60000.0]), 1.25, 48, max_pixels=10**6)
    with pytest.raises(CropTooLargeError, match="1e\\+30|1e30"):
        extract_crop(image, np.array([10.0, 5.0, 1e30, 20.0]), 1.25, 48)  # not an overflow traceback
    box = np.array([0.0, 0.0, 200.0, 200.0])  # a 250 x 250 region, shrunk to 48 x 48
    assert extract_crop(image, box, 1.25, 48).shape == (48, 48, 3)
    monkeypatch.setenv("HYPERFACE_MAX_CROP_PIXELS", "10000")
    with pytest.raises(CropTooLargeError, match="10,000"):
        extract_crop(image, box, 1.25, 48)
    with pixel_limits(crop=10**6):  # raised again for a block, then back to the variable's value
        assert extract_crop(image, box, 1.25, 48).shape == (48, 48, 3)
    with pytest.raises(CropTooLargeError):
        extract_crop(image, box, 1.25, 48)


def test_a_decompression_bomb_is_an_image_read_error_naming_file_pixels_and_limit(tmp_path, monkeypatch):
    bomb = bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 100_000
    for read in (load_image, image_size):
        with pytest.raises(ImageReadError) as info:  # what the analyze CLI catches and skips
            read(bomb)
        assert isinstance(info.value, ImageTooLargeError)
        text = str(info.value)
        assert str(bomb) in text and "20000x20000" in text and "400,000,000" in text
        assert "178,956,970" in text and "HYPERFACE_MAX_IMAGE_PIXELS" in text
    # A raised limit is honoured past Pillow's own threshold (header only: nothing decoded here).
    assert image_size(bomb, max_pixels=5 * 10**8) == (20000, 20000)
    small = tmp_path / "small.png"
    Image.new("RGB", (100, 50)).save(small)
    monkeypatch.setenv("HYPERFACE_MAX_IMAGE_PIXELS", "4000")
    with pytest.raises(ImageTooLargeError, match="100x50 = 5,000 pixels; the limit is 4,000"):
        load_image(small)
    assert load_image(small, max_pixels=5000).shape == (50, 100, 3)


def test_data_check_negatives_reports_a_bomb_and_goes_on(tmp_path, gen, capsys):
    gen.image(tmp_path / "plain.png", size=(64, 64))
    bomb_png(tmp_path / "bomb.png")
    report = _check_json(capsys, f"negatives:{tmp_path}")["datasets"][0]
    assert report["images"] == 1
    assert [(Path(p["path"]).name, "too large" in p["message"]) for p in report["problems"]] == [("bomb.png", True)]
