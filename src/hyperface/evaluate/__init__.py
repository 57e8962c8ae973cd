"""Evaluation with the metrics, matching rules and conventions of ``evaluation.md``.

Modules: :mod:`~hyperface.evaluate.metrics` (the metrics, shared with training; never imports torch),
:mod:`~hyperface.evaluate.references` (ground-truth boxes, landmark targets, pose references),
:mod:`~hyperface.evaluate.datasets` (``--data`` specs and the prepare-compatible split; readers of
its own for VOC XML and photos with one ``.pts`` per face), :mod:`~hyperface.evaluate.models` (a
weights file under test), :mod:`~hyperface.evaluate.runner` (models over data, per-face results),
:mod:`~hyperface.evaluate.summary`, :mod:`~hyperface.evaluate.report`, :mod:`~hyperface.evaluate.plots`.
The command is ``hyperface evaluate`` (:mod:`hyperface.cli.evaluate`).
"""
