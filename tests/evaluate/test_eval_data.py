"""Evaluation data: --data specs and labels, the prepare-compatible split."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hyperface.data.prepare import split_of
from hyperface.evaluate.datasets import EvalDataset, parse_data_specs

def test_data_specs_labels_and_grouping():
    specs = parse_data_specs(["300w=pts:/d/300w/lfpw/trainset", "300w=pts:/d/300w/helen/trainset",
                              "mtfl:/d/mtfl?split=training", "dlib:/d/dlib_faces/testing.xml"])
    assert [s.label for s in specs] == ["300w", "300w", "mtfl", "dlib_faces/testing"]
    assert specs[2].spec == "mtfl:/d/mtfl?split=training"
    with pytest.raises(ValueError, match="FORMAT:PATH"):
        parse_data_specs(["just/a/path"])


def test_split_is_prepares_split(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    names = [f"img_{i:03d}" for i in range(60)]
    for n in names:
        Image.new("RGB", (8, 8)).save(root / f"{n}.png")
    data = lambda split, limit=None: EvalDataset("n", [f"negatives:{root}"], split=split, val_fraction=0.3,
                                                 limit=limit)
    val = {r.group for r in data("val")}
    train = {r.group for r in data("train")}
    everything = {r.group for r in data("all")}
    assert val == {g for g in everything if split_of(g, 0.3) == 1}
    assert val | train == everything and not val & train and 0 < len(val) < len(everything)
    assert len(list(data("all", limit=5))) == 5
    with pytest.raises(ValueError, match="split"):
        data("test")


def test_val_split_is_the_prepared_validation_split(shared_data, tmp_path):
    """``--split val --prepared DIR`` selects exactly the images ``prepare`` put in validation."""
    import shutil

    from hyperface.data.prepare import PrepareOptions, prepare
    from hyperface.data.shards import PreparedDataset
    from hyperface.evaluate.datasets import val_fraction_from_prepared

    src = tmp_path / "src"
    src.mkdir()
    for pts in sorted((shared_data / "300w" / "lfpw" / "trainset").glob("*.pts"))[:8]:
        shutil.copy(pts, src)
        shutil.copy(pts.with_suffix(".jpg"), src)
    options = PrepareOptions(ss_mode="none", val_fraction=0.4, crop_size=32, positives_per_face=1,
                             partials_per_face=0, negatives_per_face=0)
    prepare([f"pts:{src}"], tmp_path / "prepared", options, progress=False)
    prepared = PreparedDataset(tmp_path / "prepared", split="val")
    prepared_val = {prepared.info(i)["image"] for i in range(len(prepared))}

    fraction = val_fraction_from_prepared(tmp_path / "prepared")
    assert fraction == 0.4
    selected = {r.image.name for r in EvalDataset("x", [f"pts:{src}"], split="val", val_fraction=fraction)}
    assert selected == prepared_val and 0 < len(selected) < 8
