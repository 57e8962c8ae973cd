"""DataLoader workers forked while the parent's OpenCV thread pool is live (as after ``prepare``
gives the caller its OpenCV threads back) must not hang in the workers' ``cv2.setNumThreads(1)``."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import cv2, numpy as np, torch
from hyperface.train.data import EpochSampler, make_loader

class Images(torch.utils.data.Dataset):
    def __len__(self):
        return 4
    def __getitem__(self, key):
        epoch, i = key
        img = np.full((64, 64, 3), i, np.uint8)
        return {"image": cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA), "index": np.int64(i)}

cv2.setNumThreads(2)
big = np.random.default_rng(0).integers(0, 255, (1500, 1500, 3), dtype=np.uint8)
for _ in range(3):
    cv2.GaussianBlur(big, (31, 31), 5)  # the parent's pool threads are running now
loader = make_loader(Images(), EpochSampler(4, seed=0), batch_size=2, num_workers=1, drop_last=False)
print(sorted(torch.cat([b["index"] for b in loader]).tolist()), cv2.getNumThreads())
"""


def test_loader_workers_start_after_the_parent_used_opencv_threads():
    try:
        out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        raise AssertionError("a DataLoader worker hung at start (forked copy of OpenCV's thread pool)") from None
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "[0, 1, 2, 3] 2"  # every sample; the parent's threads as they were
