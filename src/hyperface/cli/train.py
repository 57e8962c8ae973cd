"""``hyperface train``: train a model from a YAML config (both stages of the recipe when enabled).

    hyperface train --config configs/experiments/exp1.yaml --set optim.epochs=5 --set data.num_workers=4
    hyperface train --resume runs/exp1                 # continue exactly where it stopped (or Ctrl-C'd)
    torchrun --nproc_per_node=4 -m hyperface.cli.main train --config configs/compact.yaml   # DDP

See docs/training.md for the config keys, multi-GPU / multi-node commands and the experiments.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="YAML recipe (configs/...)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set optim.lr=1e-3 --set model.tasks=[landmarks,pose] "
                             "(repeatable; values are YAML)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue the run in RUN_DIR with the config saved there (--set still applies)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args: argparse.Namespace) -> int:
    import yaml

    from hyperface.train.config import ConfigError, config_to_dict, load_config

    if args.resume is not None and args.config is not None:
        print("hyperface train: give --config or --resume, not both (a resumed run uses RUN_DIR/config.yaml)",
              file=sys.stderr)
        return 2
    if args.resume is None and args.config is None:
        print("hyperface train: --config FILE is required (or --resume RUN_DIR)", file=sys.stderr)
        return 2
    try:
        if args.resume is not None:
            saved = args.resume / "config.yaml"
            if not saved.is_file():
                print(f"hyperface train: {args.resume} is not a run folder (no config.yaml)", file=sys.stderr)
                return 2
            cfg = load_config(saved, args.overrides)
        else:
            cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"hyperface train: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0

    from hyperface.train.checkpoint import CheckpointError
    from hyperface.train.stages import run_dir_for, train

    try:
        best = train(cfg, resume=args.resume)
    except KeyboardInterrupt as exc:  # Ctrl-C: the library saved a checkpoint at the step it stopped at
        run_dir = args.resume if args.resume is not None else run_dir_for(cfg)
        saved = f"checkpoint saved at step {exc.step}" if getattr(exc, "saved", False) else "last checkpoint kept"
        print(f"hyperface train: interrupted ({saved}); continue with: hyperface train --resume {run_dir}",
              file=sys.stderr)
        return 130
    except (ConfigError, FileExistsError, FileNotFoundError, CheckpointError) as exc:
        print(f"hyperface train: {exc}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:  # a non-finite loss: the last checkpoint is intact
        print(f"hyperface train: {exc}", file=sys.stderr)
        return 1
    if best is not None and os.environ.get("RANK", "0") == "0":  # once under torchrun
        print(f"best weights: {best}")
    return 0
