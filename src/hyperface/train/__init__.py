"""Training: config, augmentation, data loading, the engine, checkpoints, the two-stage recipe, reports.

Entry points: :func:`hyperface.train.stages.train` (what ``hyperface train`` runs),
:func:`hyperface.train.config.load_config` and :func:`hyperface.train.proposal.train_cascade` (what
``hyperface train-proposals`` runs). A stage is built by :mod:`~hyperface.train.build` and trained by
:mod:`~hyperface.train.runner` over the epoch loop of :mod:`~hyperface.train.engine`. Modules are
imported on use, so importing this package is cheap.
"""
