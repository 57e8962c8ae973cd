"""``hyperface models``: the table and the JSON list every architecture."""

from __future__ import annotations

import json
import sys

import pytest

from hyperface.cli.main import main
from hyperface.models import list_models, model_info


def _run(monkeypatch, capsys, *argv: str) -> str:
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # main() rewrites sys.argv; restored after the test
    assert main(["models", *argv]) == 0
    return capsys.readouterr().out


def test_models_json_lists_every_architecture(monkeypatch, capsys):
    rows = json.loads(_run(monkeypatch, capsys, "--json", "--tasks", "landmarks", "pose", "--num-points", "68"))
    assert [r["name"] for r in rows] == list_models()
    by_name = {r["name"]: r for r in rows}
    assert by_name["hyperface-compact"]["tasks"] == ["landmarks", "pose"]
    assert by_name["hyperface-compact"]["num_points"] == 68
    assert by_name["hyperface-compact"]["params"] == model_info("hyperface-compact", tasks=["landmarks", "pose"],
                                                                num_points=68)["params"]
    assert by_name["rcnn-face"]["tasks"] == ["detection"]  # shows what it supports
    assert by_name["hyperface-resnet"]["input_size"] == 224
    assert by_name["hyperface-alexnet"]["macs"] > 1e9


def test_models_table(monkeypatch, capsys):
    out = _run(monkeypatch, capsys)
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["name", "params", "MACs/crop", "input"]
    for name in list_models():
        assert any(line.startswith(name + " ") for line in lines), name
    alexnet = next(line for line in lines if line.startswith("hyperface-alexnet "))
    assert "33.82 M" in alexnet and "1.14 G" in alexnet and " 227 " in alexnet


def test_models_rejects_unknown_task(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    with pytest.raises(SystemExit):
        main(["models", "--tasks", "age"])
    assert "invalid choice" in capsys.readouterr().err
