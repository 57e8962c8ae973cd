"""Layered training config: defaults, YAML (with extends), --set, and the errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperface.train.config import ConfigError, TrainConfig, apply_overrides, load_config, save_config

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_layers_defaults_yaml_then_set(tmp_path):
    base = write(tmp_path / "base.yaml", "data: {train: [a]}\noptim: {lr: 0.01, epochs: 3}\n")
    child = write(tmp_path / "child.yaml", "extends: base.yaml\noptim: {epochs: 7}\nmodel: {tasks: [landmarks]}\n")
    cfg = load_config(child, ["optim.batch_size=8", "loss.weights.landmarks=2", "data.train=[x, y]"])
    assert cfg.optim.lr == 0.01  # from the base file
    assert cfg.optim.epochs == 7  # the child wins
    assert cfg.optim.batch_size == 8  # --set wins
    assert cfg.loss.weights == {"landmarks": 2.0}
    assert cfg.data.train == ["x", "y"]
    assert cfg.model.tasks == ["landmarks"]
    assert cfg.augment.flip == TrainConfig().augment.flip  # untouched default
    assert cfg.run.name == "child"  # from the file name


def test_unknown_key_names_file_and_known_keys(tmp_path):
    path = write(tmp_path / "bad.yaml", "data: {train: [a]}\noptim: {lrr: 0.1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "bad.yaml" in msg and "optim.lrr" in msg and "lr" in msg


def test_unknown_key_from_set_and_unknown_section(tmp_path):
    path = write(tmp_path / "ok.yaml", "data: {train: [a]}\n")
    with pytest.raises(ConfigError, match="run.sed"):
        load_config(path, ["run.sed=3"])
    with pytest.raises(ConfigError, match="unknown key 'trainer'"):
        load_config(path, ["trainer.x=1"])


@pytest.mark.parametrize("override, fragment", [
    ("optim.epochs=many", "optim.epochs: expected an integer"),
    ("optim.lr=fast", "optim.lr: expected a number"),
    ("run.amp=1", "run.amp: expected true or false"),
    ("model.tasks=3", "model.tasks: expected a list"),
    ("optim=5", "optim: expected a mapping"),
    ("optim.epochs=2.5", "optim.epochs: expected an integer"),
])
def test_wrong_type(tmp_path, override, fragment):
    path = write(tmp_path / "ok.yaml", "data: {train: [a]}\n")
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_config(path, [override])


@pytest.mark.parametrize("override, fragment", [
    ("model.tasks=[landmarks, age]", "unknown task"),
    ("loss.optimise=[gender]", "not in model.tasks"),  # with model.tasks=[landmarks, pose] below
    ("optim.lr=-1", "optim.lr must be > 0"),
    ("augment.flip=1.5", "augment.flip"),
    ("run.device=tpu", "run.device"),
    ("optim.optimizer=lion", "adamw or sgd"),
    ("stage1.optim.epochs=0", "stage1.optim.epochs"),
    ("data.train=[]", "data.train is empty"),
    ("data.oversample={faces: 2}", "unknown kind"),
    ("data.oversample={nonface: -1}", "oversample weights must be >= 0"),
    ("augment.rotate=120", "augment.rotate"),
    ("loss.landmark_loss=smooth_l1", "loss.landmark_loss"),
])
def test_invalid_values(tmp_path, override, fragment):
    path = write(tmp_path / "ok.yaml", "data: {train: [a]}\n")
    with pytest.raises(ConfigError, match=fragment):
        load_config(path, ["model.tasks=[landmarks, pose]", override] if "optimise" in override else [override])


def test_set_syntax_errors():
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["optim.lr"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"optim": 3}, ["optim.lr=1"])


def test_extends_loop_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", "extends: b.yaml\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(tmp_path / "a.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(REPO / "configs" / "experiments" / "exp5.yaml", ["optim.epochs=2"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg


@pytest.mark.parametrize("name", ["exp1", "exp2a", "exp2b", "exp3", "exp4", "exp5"])
def test_experiment_configs_load(name):
    cfg = load_config(REPO / "configs" / "experiments" / f"{name}.yaml")
    assert cfg.run.name == name
    assert cfg.data.train == ["data/study-300w"]
    expected = {"exp3": ["detection", "landmarks", "visibility"], "exp4": ["landmarks", "pose"]}
    assert cfg.model.tasks == expected.get(name, ["detection", "landmarks", "visibility", "pose", "gender"])
    assert cfg.stage1.enabled == (name in ("exp2a", "exp2b", "exp3"))
    assert cfg.optimised_tasks == (["landmarks"] if name == "exp5" else cfg.model.tasks)
    assert cfg.data.positives_only == (name == "exp4")
    assert cfg.stage1.negatives == (["data/negatives"] if name == "exp2b" else [])


def test_compact_config_loads():
    cfg = load_config(REPO / "configs" / "compact.yaml")
    assert cfg.model.arch == "hyperface-compact"
    assert cfg.model.tasks == ["detection", "landmarks", "pose", "gender"]
    assert cfg.data.train == ["data/genface", "data/genface-300w"]


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_builds_its_model(path):
    """A recipe in configs/ that no longer loads (a renamed key, a bad value) or whose model cannot be
    built from its arch_kwargs is found here, not an hour into someone's run."""
    from hyperface.models import create_model

    cfg = load_config(path)
    assert cfg.run.name
    if not cfg.model.init:
        create_model(cfg.model.arch, tasks=tuple(cfg.model.tasks), **cfg.model.arch_kwargs)
    else:  # continues from a file shipped with the package
        assert (REPO / cfg.model.init).is_file(), cfg.model.init


def test_the_stage_two_finetune_recipe_is_the_scratch_recipe_with_wing_loss_from_the_bundled_weights():
    scratch = load_config(REPO / "configs" / "stage2-scratch.yaml")
    tune = load_config(REPO / "configs" / "stage2-finetune.yaml")
    assert tune.loss.landmark_loss == "wing" and scratch.loss.landmark_loss == "l1"
    assert tune.model.init.endswith("hyperface-aligned.safetensors")
    assert tune.augment == scratch.augment and tune.data.oversample == scratch.data.oversample
    assert tune.model.tasks == scratch.model.tasks


def test_numbers_yaml_reads_as_text_are_taken_for_numbers_where_a_number_is_declared(tmp_path):
    """YAML 1.1 reads ``1e-3`` (no dot before the exponent) as a string; the documented --set optim.lr=1e-3."""
    path = write(tmp_path / "ok.yaml", "data: {train: [a]}\noptim: {weight_decay: 5e-5}\n")
    cfg = load_config(path, ["optim.lr=1e-3", "optim.epochs=1e1", "loss.weights.pose=5E-1", "stage1.optim.lr=2e-4"])
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.epochs) == (0.001, 5e-5, 10)
    assert cfg.loss.weights == {"pose": 0.5} and cfg.stage1.optim.lr == 2e-4
    for override, fragment in (("optim.lr=1e-3x", "optim.lr: expected a number, got '1e-3x'"),
                               ("optim.lr=1e999", "optim.lr: expected a number, got '1e999'"),
                               ("optim.lr=.nan", "optim.lr: expected a number, got nan"),
                               ("optim.epochs=1.5e0", "optim.epochs: expected an integer, got '1.5e0'"),
                               ("run.name=1e3", None)):
        if fragment is None:  # a string field keeps the text as written
            assert load_config(path, [override]).run.name == "1e3"
            continue
        with pytest.raises(ConfigError) as err:
            load_config(path, [override])
        assert fragment in str(err.value) and "ok.yaml" in str(err.value)


_BOMB = """data: {train: [a]}
model:
  arch: hyperface-compact
  arch_kwargs:
    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_a_yaml_alias_bomb_is_refused_before_it_is_expanded(tmp_path):
    bomb = write(tmp_path / "bomb.yaml", _BOMB)  # 9 ** 9 = 387 million strings from 600 bytes
    assert bomb.stat().st_size < 700
    with pytest.raises(ConfigError, match=r"bomb.yaml: more than 100,000 values once YAML aliases"):
        load_config(bomb)
    loop = write(tmp_path / "loop.yaml", "data: {train: [a]}\nmodel: {arch_kwargs: {x: &x [1, *x]}}\n")
    with pytest.raises(ConfigError, match="loop.yaml: more than 100,000 values"):
        load_config(loop)
    ok = write(tmp_path / "ok.yaml", "data: {train: [a]}\n")
    with pytest.raises(ConfigError, match=r"--set 'model.arch_kwargs=.*more than 100,000 values"):
        load_config(ok, ["model.arch_kwargs={" + _BOMB.split("arch_kwargs:\n")[1].replace("\n    ", ", ").strip()
                         .replace("\n", "") + "}"])
    (tmp_path / "big.yaml").write_text("data: {train: [a]}\n" + "#" * 1_100_000 + "\n")
    with pytest.raises(ConfigError, match="big.yaml: larger than 1,000,000 bytes"):
        load_config(tmp_path / "big.yaml")
    # anchors and aliases themselves stay usable: a block shared by two sections
    shared = write(tmp_path / "shared.yaml", "data: {train: [a]}\noptim: &o {lr: 0.01, epochs: 2}\n"
                                             "stage1: {optim: *o}\n")
    assert load_config(shared).stage1.optim.lr == 0.01
