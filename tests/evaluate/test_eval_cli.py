"""``hyperface evaluate`` end to end: a randomly initialised tiny model on a few real images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hyperface.cli.main import main
from hyperface.data.boxes import five_point_box
from hyperface.data.images import image_size, load_image
from hyperface.data.readers import open_dataset
from hyperface.evaluate.metrics import nme_5
from hyperface.evaluate.models import AnalyzerModel
from hyperface.evaluate.references import convert_prediction, detection_box
from hyperface.models.registry import create_model
from hyperface.models.weights import save_weights


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    import hyperface.models.compact  # noqa: F401  (registers the architecture)

    torch.manual_seed(0)
    model = create_model("hyperface-compact", tasks=("detection", "landmarks", "pose", "gender"), num_points=68,
                         width=0.25, fc_channels=16, branch_channels=16, input_size=32)
    return save_weights(model, tmp_path_factory.mktemp("weights") / "tiny.safetensors")


def _first(spec: str, n: int):
    out = []
    for r in open_dataset(spec):
        out.append(r)
        if len(out) == n:
            break
    return out


def test_evaluate_cli_end_to_end(shared_data, tiny_weights, tmp_path, capsys):
    dlib = f"dlib:{shared_data / 'dlib_faces' / 'testing_with_face_landmarks.xml'}"
    mtfl = f"mtfl:{shared_data / 'mtfl'}"
    photo = _first(dlib, 1)[0]
    crops = _first(mtfl, 2)
    # Candidates: the annotated boxes (and one of them shifted) plus a box with no face, so that the
    # run is fast and the numbers are not trivially empty.
    boxes = {}
    for rec in [photo, *crops]:
        size = image_size(rec.image)
        b = [detection_box(rec, f, size).tolist() for f in rec.faces]
        b.append((np.array(b[0]) + 3).tolist())
        b.append([0.0, 0.0, 20.0, 20.0])
        boxes[rec.image.name] = b
    boxes_file = tmp_path / "boxes.json"
    boxes_file.write_text(json.dumps(boxes))

    out_json = tmp_path / "eval.json"
    status = main(["evaluate", "--weights", str(tiny_weights), "--data", f"photos={dlib}", "--data", f"mtfl={mtfl}",
                   "--limit", "1", "--proposals", f"boxes:{boxes_file}", "--json", str(out_json),
                   "--per-face"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "| tiny | full |" in printed and "| tiny | box |" in printed
    report = json.loads(out_json.read_text())
    assert [m["name"] for m in report["models"]] == ["tiny"]
    results = {(r["dataset"], r["mode"]): r for r in report["results"]}
    assert set(results) == {("photos", "full"), ("photos", "box"), ("mtfl", "full"), ("mtfl", "box")}
    n_faces = len(photo.faces)
    assert results[("photos", "full")]["detection"]["ground_truth"] == n_faces
    assert results[("photos", "box")]["landmarks"]["ibug68"]["faces"] == n_faces
    assert results[("photos", "box")]["landmarks"]["ibug68"]["found"] == n_faces  # a box always gets an answer
    assert "pnp" in results[("photos", "box")]["pose"]
    assert results[("mtfl", "box")]["landmarks"]["five"]["faces"] == 1
    assert results[("mtfl", "box")]["gender"]["faces"] == 1
    assert "detection" not in results[("mtfl", "full")]

    # The box-mode NME of the MTFL face equals a direct computation with the same analyzer.
    model = AnalyzerModel(tiny_weights, proposals=f"boxes:{boxes_file}")
    rec = crops[0]
    face = model.given(load_image(rec.image), five_point_box(rec.faces[0].landmarks)[None], str(rec.image))[0]
    expected = nme_5(convert_prediction(face.landmarks, "ibug68", "five"), rec.faces[0].landmarks)
    per_face = results[("mtfl", "box")]["per_face"]
    assert per_face[0]["nme"] == pytest.approx(expected, rel=1e-4)


def test_evaluate_cli_bad_data_is_a_clear_error(tiny_weights, tmp_path, capsys):
    status = main(["evaluate", "--weights", str(tiny_weights), "--data", f"pts:{tmp_path / 'nowhere'}"])
    assert status == 2
    assert "nowhere" in capsys.readouterr().err


def test_evaluate_cli_passes_stage_two_options(shared_data, tmp_path, capsys):
    """--no-flip-average, --iterations and --fine reach stage two: the box-mode NME is the options' analyzer's."""
    mtfl = f"mtfl:{shared_data / 'mtfl'}"
    rec = _first(mtfl, 1)[0]
    out_json = tmp_path / "eval.json"
    status = main(["evaluate", "--data", mtfl, "--limit", "1", "--mode", "box", "--no-flip-average",
                   "--iterations", "2", "--fine", "none", "--json", str(out_json), "--per-face"])
    assert status == 0, capsys.readouterr().err
    per_face = json.loads(out_json.read_text())["results"][0]["per_face"]

    box = five_point_box(rec.faces[0].landmarks)[None]
    nmes = {}
    for options in ({}, {"flip_average": False, "iterations": 2, "fine": None}):
        face = AnalyzerModel(None, **options).given(load_image(rec.image), box, str(rec.image))[0]
        nmes[len(options)] = nme_5(convert_prediction(face.landmarks, "ibug68", "five"), rec.faces[0].landmarks)
    assert nmes[3] != pytest.approx(nmes[0], rel=1e-6)  # the options change the answer...
    assert per_face[0]["nme"] == pytest.approx(nmes[3], rel=1e-4)  # ...and evaluate used them


def test_evaluate_cli_bad_stage_two_option_is_a_usage_error(tiny_weights, capsys):
    status = main(["evaluate", "--weights", str(tiny_weights), "--data", "pts:nowhere", "--iterations", "0"])
    assert status == 2
    assert "--iterations must be at least 1" in capsys.readouterr().err


def test_evaluate_cli_never_writes_over_the_fine_weights(tiny_weights, tmp_path, capsys):
    """--fine's file is an input: an output named like it is a usage error, and the file is untouched."""
    import shutil

    fine = tmp_path / "fine.safetensors"
    shutil.copyfile(tiny_weights, fine)
    before = fine.read_bytes()
    status = main(["evaluate", "--weights", str(tiny_weights), "--data", f"pts:{tmp_path}", "--fine", str(fine),
                   "--json", str(fine)])
    err = capsys.readouterr().err
    assert status == 2 and "is one of the inputs" in err, err
    assert fine.read_bytes() == before
