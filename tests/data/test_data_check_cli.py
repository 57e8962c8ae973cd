"""check_dataset counts and the `hyperface data check` command: text, JSON and exit status."""

from __future__ import annotations

import json

import numpy as np

from hyperface.cli.main import main
from hyperface.data.check import check_dataset
from hyperface.data.readers import open_dataset


def _folder(root, gen):
    gen.pts(root / "a.pts", gen.points(68))
    gen.image(root / "a.jpg")
    gen.pts(root / "b.pts", gen.points(5))
    gen.image(root / "b.jpg")
    (root / "bad.pts").write_text("version: 1\nn_points: 68\n{\n1 nan\n}\n")
    gen.image(root / "bad.jpg")
    return root


def test_check_dataset_counts_labels(tmp_path, gen):
    report = check_dataset(open_dataset(f"pts:{_folder(tmp_path, gen)}"))
    assert (report.images, report.faces, report.groups) == (2, 2, 2)
    assert report.point_sets == {"ibug68": 1, "five": 1}
    assert report.labels == {"landmarks": 2, "visibility": 0, "pose": 0, "pose_class": 0, "gender": 0}
    assert len(report.problems) == 1 and report.problems[0].line == 4
    d = report.to_dict()
    assert json.loads(json.dumps(d))["problems"][0]["line"] == 4
    assert f"{tmp_path / 'bad.pts'}:4: " in report.format_text()


def test_check_counts_gender_pose_and_visibility(tmp_path, gen):
    import scipy.io

    pt2d = np.stack([np.arange(21.0), np.arange(21.0)])
    scipy.io.savemat(str(tmp_path / "x.mat"), {"pt2d": pt2d, "Pose_Para": np.zeros((1, 7))})
    gen.image(tmp_path / "x.jpg")
    report = check_dataset(open_dataset(f"aflw2000:{tmp_path}"))
    assert report.labels == {"landmarks": 1, "visibility": 1, "pose": 1, "pose_class": 0, "gender": 0}
    assert report.point_sets == {"aflw21": 1}

    utk = tmp_path / "utk"
    gen.image(utk / "20_1_0_20170109142408075.jpg.chip.jpg")
    gen.image(utk / "21_0_0_20170109142408075.jpg.chip.jpg")
    gen.image(utk / "22_1_0_20170109142408075.jpg.chip.jpg")
    report = check_dataset(open_dataset(f"utkface:{utk}"))
    assert report.genders == {"male": 1, "female": 2} and report.labels["gender"] == 3


def test_cli_text_json_and_exit_status(tmp_path, gen, capsys):
    folder = _folder(tmp_path / "ds", gen)
    assert main(["data", "check", f"pts:{folder}"]) == 0  # problems are not fatal
    out = capsys.readouterr().out
    assert f"pts:{folder}" in out and "faces: 2" in out and "point sets: five 1, ibug68 1" in out
    assert f"{folder / 'bad.pts'}:4: non-finite coordinate" in out

    assert main(["data", "check", f"pts:{folder}", f"pts:{tmp_path / 'missing'}", "--json",
                 "--no-verify-images"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [d["faces"] for d in doc["datasets"]] == [2]
    error = doc["errors"][0]
    assert error["dataset"] == f"pts:{tmp_path / 'missing'}" and "does not exist" in error["error"]

    assert main(["data", "check", f"nosuch:{folder}"]) == 1
    assert "unknown dataset format" in capsys.readouterr().err


def test_cli_verify_images_is_the_default(tmp_path, gen, capsys):
    gen.pts(tmp_path / "a.pts", gen.points(68))
    img = gen.image(tmp_path / "a.jpg", size=(300, 300))
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 2])  # header survives, pixels do not
    assert main(["data", "check", f"pts:{tmp_path}"]) == 0
    assert "problems: 1" in capsys.readouterr().out
    assert main(["data", "check", f"pts:{tmp_path}", "--no-verify-images"]) == 0
    assert "problems: 0" in capsys.readouterr().out


def test_cli_formats(capsys):
    assert main(["data", "formats"]) == 0
    out = capsys.readouterr().out
    assert "300vw" in out and "every=1" in out and "split=all" in out
