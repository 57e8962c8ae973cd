"""One process of the DDP test, launched by torchrun: trains, then writes the indices it saw and its
final weights (captured at the last validation, on every rank) to OUT/."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from safetensors.torch import save_file

import hyperface.train.runner as runner
import hyperface.train.stages as stages
from hyperface.train.config import load_config


def main() -> None:
    cfg, out = load_config(sys.argv[1]), Path(sys.argv[2])
    rank = int(os.environ["RANK"])
    seen: list[int] = []
    evaluate = runner.evaluate

    def evaluate_and_keep(model, *args, **kwargs):
        tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(tensors, out / f"weights{rank}.safetensors")
        return evaluate(model, *args, **kwargs)

    runner.evaluate = evaluate_and_keep
    stages.train(cfg, on_batch=lambda stage, batch: seen.extend(batch["index"].tolist()))
    (out / f"seen{rank}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    main()
