"""Training: config, augmentation, data loading, the engine, checkpoints, the two-stage recipe, reports.

Entry points: :func:`hyperface.train.stages.train` (what ``hyperface train`` runs) and
:func:`hyperface.train.config.load_config`. Modules are imported on use, so importing this package
is cheap.
"""
