"""``benchmarks/gender_teacher_probe.py``'s logistic regression: it must find the direction that separates the
labels, or the probe would blame the descriptors for its own fit."""

from __future__ import annotations

import numpy as np

from benchmark_modules import load_benchmark


def test_the_logistic_fit_recovers_the_direction_that_made_the_labels():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=16)
    x = rng.normal(size=(4000, 16))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(x @ truth + 0.5)))).astype(float)
    w = load_benchmark("gender_teacher_probe").fit_logistic(x, y, l2=1e-6)
    cosine = w[:-1] @ truth / np.linalg.norm(w[:-1]) / np.linalg.norm(truth)
    assert cosine > 0.97 and abs(w[-1] - 0.5) < 0.3
    right = ((np.hstack([x, np.ones((len(x), 1))]) @ w > 0) == (y > 0.5)).mean()
    best = ((x @ truth + 0.5 > 0) == (y > 0.5)).mean()
    assert right > best - 0.01  # as good as the true weights on their own noisy labels


def test_without_dlib_it_says_which_interpreter_to_use(monkeypatch, capsys):
    """Each worker loads dlib as it starts; without it the pool would wait for ever, so it is checked first."""
    import importlib.util

    import pytest

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(SystemExit) as stop:
        load_benchmark("gender_teacher_probe").main(["../shared/data/fairface"])
    assert stop.value.code == 2 and "needs dlib and face_recognition_models" in capsys.readouterr().err
