"""Ray Data: a local two-CPU Ray gives the same JSON lines as the analyzer called image by image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyperface.cluster import analyze_with_ray, parquet_schema, run_ray_cli
from hyperface.data.images import load_image
from hyperface.inference import FaceAnalyzer
from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path

SETTINGS = {"threads": 1, "max_side": 640}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A folder of photos with and without faces (one in a subfolder, one grey, one PNG) and a broken file."""
    folder = tmp_path_factory.mktemp("photos")
    astronaut = Image.open(asset_path(EXAMPLE_IMAGE)).convert("RGB")
    astronaut.save(folder / "astronaut.jpg", quality=95)
    astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "mirrored.png")
    canvas = Image.new("RGB", (640, 480), (128, 128, 128))  # the evaluation document's test image
    canvas.paste(astronaut.resize((480, 480)), (80, 0))
    (folder / "sub").mkdir()
    canvas.save(folder / "sub" / "640x480.jpg", quality=95)
    Image.fromarray(np.full((120, 160), 90, np.uint8)).save(folder / "grey.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("not an image suffix: never read")
    return folder


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray (two CPUs) for the whole module: it takes seconds to start."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def _single_process_lines(folder: Path) -> dict[str, dict]:
    """The analyze line of every readable image under ``folder``, by the analyzer called per image."""
    analyzer = FaceAnalyzer(**SETTINGS)
    lines = {}
    for path in sorted(p for p in folder.rglob("*.*") if p.suffix in (".jpg", ".png") and p.name != "broken.jpg"):
        image = load_image(path)
        lines[str(path)] = {"input": str(path), "frame": None, "width": image.shape[1], "height": image.shape[0],
                            "faces": [f.to_dict() for f in analyzer(image)]}
    return lines


@pytest.fixture(scope="module")
def expected(photos) -> dict[str, dict]:
    return _single_process_lines(photos)


def test_ray_lines_are_the_single_process_lines(ray_session, photos, expected, tmp_path):
    out = tmp_path / "faces.jsonl"
    run = analyze_with_ray([photos], out, settings=SETTINGS, batch_size=2)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    by_input = {line["input"]: line for line in lines}
    assert len(by_input) == len(lines) == len(expected) + 1  # each image once, and the broken file
    broken = by_input.pop(str(photos / "broken.jpg"))
    assert broken == {"input": str(photos / "broken.jpg"), "frame": None, "error": broken["error"]}  # analyze's error line
    assert broken["error"].startswith(f"{photos / 'broken.jpg'}: cannot decode image")
    assert by_input == expected
    assert sum(len(line["faces"]) for line in expected.values()) >= 3  # the three astronauts
    assert (run.images, run.failures, run.faces) == (len(expected), 1, sum(len(v["faces"]) for v in expected.values()))


def test_ray_writes_parquet_with_faces_as_structs(ray_session, photos, expected, tmp_path):
    import pyarrow.parquet as pq

    files = [photos / "astronaut.jpg", photos / "grey.jpg"]
    out = tmp_path / "faces.parquet"
    analyze_with_ray(files, out, settings=SETTINGS, num_actors=1, format="parquet")
    table = pq.read_table(out)
    assert table.schema.equals(parquet_schema())
    rows = {row["input"]: row for row in table.to_pylist()}
    assert set(rows) == {str(f) for f in files}
    for name, row in rows.items():
        assert row["error"] is None
        for face in row["faces"]:
            face["sources"] = dict(face["sources"])  # a Parquet map reads back as (key, value) pairs
        assert {k: v for k, v in row.items() if k != "error"} == expected[name]


def test_ray_settings_inputs_and_output_are_checked_before_ray_starts(photos, tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown analyzer setting.*colour"):
        analyze_with_ray([photos], tmp_path / "x.jsonl", settings={"colour": "red"})
    with pytest.raises(ValueError, match="format must be one of jsonl, parquet"):
        analyze_with_ray([photos], tmp_path / "x.csv", format="csv")
    assert run_ray_cli([photos / "missing"], tmp_path / "x.jsonl", None, {}) == 2
    assert "missing: no such file or folder" in capsys.readouterr().err
    assert run_ray_cli([photos], None, None, {}) == 2
    assert "--ray needs --json" in capsys.readouterr().err
    assert run_ray_cli([photos], photos, None, {}) == 2
    assert f"{photos} is a folder" in capsys.readouterr().err
    assert run_ray_cli([photos / "grey.jpg"], photos / "grey.jpg", None, {}) == 2
    assert "is one of the inputs" in capsys.readouterr().err
    assert run_ray_cli([photos], tmp_path / "x.jsonl", None, {"weights": str(photos / "grey.jpg")}) == 2
    assert "grey.jpg: not a readable safetensors file" in capsys.readouterr().err
    assert run_ray_cli([photos], tmp_path / "x.jsonl", None, {"score_threshold": 2.0}) == 2
    assert "score_threshold must be in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


def test_an_actor_batch_reports_each_failed_image_and_goes_on(photos):
    from hyperface.cluster import _AnalyzeBatch

    class Flaky:  # fails on the grey image, finds nothing elsewhere
        def __call__(self, image):
            if image.shape[:2] == (120, 160):
                raise RuntimeError("out of luck")
            return []

    actor = object.__new__(_AnalyzeBatch)
    actor.analyzer, actor.max_pixels = Flaky(), None
    names = ["grey.jpg", "broken.jpg", "astronaut.jpg"]
    out = actor({"bytes": [(photos / n).read_bytes() for n in names], "path": names})
    lines = [json.loads(line) for line in out["line"]]
    assert out["failed"] == [True, True, False] and out["faces"] == [0, 0, 0]
    assert lines[0] == {"input": "grey.jpg", "frame": None, "error": "grey.jpg: analysis failed (RuntimeError: out of luck)"}
    assert lines[1]["error"].startswith("broken.jpg: cannot decode image")
    assert lines[2] == {"input": "astronaut.jpg", "frame": None, "width": 512, "height": 512, "faces": []}


def test_analyze_on_ray_from_the_command_line(ray_session, photos, expected, tmp_path, capsys):
    from hyperface.cli.main import main

    out = tmp_path / "cli.jsonl"
    assert main(["analyze", str(photos), "--json", str(out), "--ray", "--threads", "1", "--max-side", "640",
                 "--no-progress"]) == 1  # the broken file is that input's failure
    lines = {line["input"]: line for line in map(json.loads, out.read_text().splitlines())}
    assert "error" in lines.pop(str(photos / "broken.jpg"))
    assert lines == expected
    assert main(["analyze", str(photos), "--ray", "--draw", str(tmp_path / "d"), "--json", str(out)]) == 2
    assert "--draw does not go with --ray" in capsys.readouterr().err
