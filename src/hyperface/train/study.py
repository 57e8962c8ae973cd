"""The study's experiments as one resumable job: every experiment for every seed, in order.

``hyperface experiments run --scale cpu --seeds 0,1,2`` trains ``configs/experiments/cpu/EXP.yaml``
(``--scale paper``: ``configs/experiments/EXP.yaml``, the AlexNet originals) into
``OUT/seed-N/EXP``. Seeds are the outer loop, so a job stopped early still has whole seeds. A
finished run (``done.json``) is skipped and a started one is resumed, so running the same command
again continues where it stopped; adding a seed later adds only that seed's runs.

Two experiments depend on another of the same seed:

* experiment 5 and its variants start from experiment 2(a)'s best weights (``model.init``);
* experiment 3 reuses experiment 2(a)'s stage one (``stage1.init``): the study's recipe for it is
  the same, so training it again would only add noise and time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hyperface.train.config import TrainConfig, load_config

__all__ = ["EXPERIMENTS", "SCALES", "StudyRun", "plan_study", "run_study"]

log = logging.getLogger("hyperface.train")

EXPERIMENTS: tuple[str, ...] = ("exp1", "exp2a", "exp2b", "exp3", "exp4", "exp5", "exp5-all", "exp5-uncertainty",
                                "exp5-subset", "exp1-long")
SCALES: dict[str, str] = {"paper": ".", "cpu": "cpu"}  # scale -> config folder under configs/experiments


@dataclass(frozen=True)
class StudyRun:
    """One training run of the study: its config file, run folder and the overrides that place it."""

    experiment: str
    seed: int
    config: Path
    folder: Path
    overrides: tuple[str, ...]

    @property
    def done(self) -> bool:
        return (self.folder / "done.json").is_file()

    @property
    def started(self) -> bool:
        return (self.folder / "config.yaml").is_file()


def _depends_on(experiment: str) -> list[tuple[str, str]]:
    """(key, path inside the 2(a) run) that ``experiment`` takes from experiment 2(a) of its seed."""
    if experiment.startswith("exp5"):
        return [("model.init", "best.safetensors")]
    if experiment == "exp3":
        return [("stage1.init", "stage1/best.safetensors")]
    return []


def plan_study(configs: str | Path, scale: str, seeds: Sequence[int], out: str | Path,
               experiments: Sequence[str] = EXPERIMENTS) -> list[StudyRun]:
    """The runs in order (seed by seed); an unknown scale or experiment, or a missing config, is a ValueError."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    unknown = [e for e in experiments if e not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}")
    folder = Path(configs) / SCALES[scale]
    order = [e for e in EXPERIMENTS if e in experiments]
    needs_2a = [e for e in order if _depends_on(e)]
    if needs_2a and "exp2a" not in order:
        raise ValueError(f"{', '.join(needs_2a)} start from experiment 2(a) of the same seed: include exp2a")
    runs = []
    for seed in seeds:
        base = Path(out) / f"seed-{seed}"
        for e in order:
            config = folder / f"{e}.yaml"
            if not config.is_file():
                raise ValueError(f"{config}: config not found (is --configs the configs/experiments folder?)")
            overrides = [f"run.seed={seed}", f"run.out_dir={base}", f"run.name={e}"]
            overrides += [f"{key}={base / 'exp2a' / path}" for key, path in _depends_on(e)]
            runs.append(StudyRun(e, int(seed), config, base / e, tuple(overrides)))
    return runs


def run_study(runs: Sequence[StudyRun], extra_overrides: Sequence[str] = (),
              train: Callable[..., Path | None] | None = None) -> list[Path]:
    """Train each run not yet done (resuming a started one); returns the run folders finished.

    Stops (returns early) when a run stops before its end (``run.max_steps``); errors propagate.
    """
    if train is None:
        from hyperface.train.stages import train
    finished = []
    for i, r in enumerate(runs, 1):
        if r.done:
            log.info("study %d/%d: %s seed %d already done (%s)", i, len(runs), r.experiment, r.seed, r.folder)
            finished.append(r.folder)
            continue
        overrides = [*r.overrides, *extra_overrides]
        if r.started:
            cfg: TrainConfig = load_config(r.folder / "config.yaml", list(extra_overrides))
            log.info("study %d/%d: %s seed %d, resuming %s", i, len(runs), r.experiment, r.seed, r.folder)
            result = train(cfg, resume=r.folder)
        else:
            cfg = load_config(r.config, overrides)
            log.info("study %d/%d: %s seed %d -> %s", i, len(runs), r.experiment, r.seed, r.folder)
            result = train(cfg)
        if result is None:
            return finished
        finished.append(r.folder)
    return finished
