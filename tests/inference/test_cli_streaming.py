"""``analyze`` over many inputs: lines streamed into a partial file, resumed after a kill, failures kept to
their input (bad boxes, unwritable pictures, a full disk, a dying worker), the same lines with workers."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from PIL import Image

from hyperface.cli.analyze_tasks import Item, Task, TaskOptions
from hyperface.cli.main import main
from hyperface.cli.results import ResultsFile
from hyperface.cli.workers import _Pool, ordered_lines
from hyperface.inference import FaceAnalyzer

from cli_worker_stubs import echo_or_die
from inference_stubs import blob_image, write_video


def photos(folder: Path, n: int, size=(80, 60)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        w, h = size
        path = folder / f"p{i:03d}.png"
        Image.fromarray(blob_image(w, h, [(w / 2 + i % 7, h / 2, 12 + i % 5)])).save(path)
        paths.append(path)
    return paths


def boxes_for(paths: list[Path], path: Path) -> Path:
    path.write_text("".join(f"{p} 20 10 60 50\n" for p in paths))
    return path


def analyze(weights, *args) -> int:
    return main(["analyze", *map(str, args), "--weights", str(weights), "--score-threshold", "0", "--no-progress"])


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def six(tmp_path, tiny_weights):
    """Six photos, their boxes file, and the JSON of one uninterrupted run."""
    folder = tmp_path / "in"
    paths = photos(folder, 6)
    boxes = boxes_for(paths, tmp_path / "boxes.txt")
    reference = tmp_path / "reference.jsonl"
    assert analyze(tiny_weights, folder, "--proposals", f"boxes:{boxes}", "--json", reference) == 0
    return folder, boxes, reference


def count_batches(monkeypatch) -> list[str]:
    """The names of every image analysed from now on (its key, or the path it was given as)."""
    seen, real = [], FaceAnalyzer.batch

    def batch(self, images, boxes=None, keys=None, color_order=None):
        seen.extend(keys or [str(im) for im in images])
        return real(self, images, boxes, keys, color_order)

    monkeypatch.setattr(FaceAnalyzer, "batch", batch)
    return seen


# ------------------------------------------------------------------------------------------ streaming, resume


def test_each_line_is_in_the_partial_file_as_soon_as_its_image_is_done(six, tiny_weights, tmp_path, monkeypatch):
    folder, boxes, reference = six
    out = tmp_path / "out.jsonl"
    out.write_text("an earlier complete run\n")
    seen_lines, real = [], FaceAnalyzer.batch

    def batch(self, images, boxes=None, keys=None):
        partial = tmp_path / "out.jsonl.partial"
        seen_lines.append(len(partial.read_text().splitlines()))
        assert out.read_text() == "an earlier complete run\n"
        return real(self, images, boxes, keys)

    monkeypatch.setattr(FaceAnalyzer, "batch", batch)
    assert analyze(tiny_weights, folder, "--proposals", f"boxes:{boxes}", "--json", out, "--batch-size", "1") == 0
    assert seen_lines == [0, 1, 2, 3, 4, 5]
    assert out.read_text() == reference.read_text()
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_resume_after_a_kill_gives_every_input_once_with_the_same_answers(six, tiny_weights, tmp_path, monkeypatch):
    folder, boxes, reference = six
    out = tmp_path / "out.jsonl"
    done = reference.read_text().splitlines(keepends=True)
    # what kill -9 leaves: two whole lines and half of the third
    (tmp_path / "out.jsonl.partial").write_text(done[0] + done[1] + done[2][: len(done[2]) // 2])
    analysed = count_batches(monkeypatch)
    assert analyze(tiny_weights, folder, "--proposals", f"boxes:{boxes}", "--json", out, "--resume") == 0
    assert out.read_text() == reference.read_text()
    assert analysed == [str(p) for p in sorted(folder.iterdir())[2:]]
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_resume_of_a_finished_file_adds_only_new_inputs(six, tiny_weights, tmp_path, monkeypatch):
    folder, boxes, reference = six
    new = photos(tmp_path / "more", 1)[0]
    boxes.write_text(boxes.read_text() + f"{new} 20 10 60 50\n")
    before = reference.read_text()
    analysed = count_batches(monkeypatch)
    assert analyze(tiny_weights, folder, new, "--proposals", f"boxes:{boxes}", "--json", reference, "--resume") == 0
    assert analysed == [str(new)]
    assert reference.read_text().startswith(before) and lines_of(reference)[-1]["input"] == str(new)


def test_a_video_cut_short_is_finished_without_its_frames_twice(tiny_weights, tmp_path):
    video = tmp_path / "clip.avi"
    write_video(video, 6)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"input": str(video), "frame": i, "boxes": [[14 + 4 * i, 16, 46 + 4 * i, 48]]}
                                 for i in range(6)]))
    reference, out = tmp_path / "reference.jsonl", tmp_path / "out.jsonl"
    args = ("--proposals", f"boxes:{boxes}", "--smooth", "--batch-size", "2")
    assert analyze(tiny_weights, video, *args, "--json", reference) == 0
    (tmp_path / "out.jsonl.partial").write_text("".join(reference.read_text().splitlines(keepends=True)[:3]))
    assert analyze(tiny_weights, video, *args, "--json", out, "--resume") == 0
    assert out.read_text() == reference.read_text()  # smoothing state rebuilt from frame 0: same answers


def test_an_unfinished_run_is_never_thrown_away_by_accident(six, tiny_weights, tmp_path, capsys):
    folder, boxes, reference = six
    partial = tmp_path / "out.jsonl.partial"
    partial.write_text(reference.read_text().splitlines(keepends=True)[0])
    assert analyze(tiny_weights, folder, "--proposals", f"boxes:{boxes}", "--json", tmp_path / "out.jsonl") == 2
    assert "holds an unfinished run: add --resume" in capsys.readouterr().err
    partial.write_text('{"input": "a.png", "frame": null, "faces": []}\nnot json\n{"input": "b"}\n')
    assert analyze(tiny_weights, folder, "--proposals", f"boxes:{boxes}", "--json", tmp_path / "out.jsonl",
                   "--resume") == 2
    assert f"{partial}:2: not a line written by hyperface analyze" in capsys.readouterr().err
    assert analyze(tiny_weights, folder, "--json", "-", "--resume") == 2
    assert "--resume needs --json OUT" in capsys.readouterr().err


def test_progress_shows_images_per_second_and_time_left(six, tiny_weights, capsys):
    folder, boxes, _ = six
    assert main(["analyze", str(folder), "--weights", str(tiny_weights), "--proposals", f"boxes:{boxes}"]) == 0
    err = capsys.readouterr().err
    assert "6/6" in err and "img/s" in err and "<00:00" in err


@pytest.mark.slow
def test_kill_9_then_resume_gives_every_image_once_with_the_same_answers(tmp_path):
    """The real thing: the bundled models on 40 photos, the process killed after its first lines."""
    folder = tmp_path / "in"
    folder.mkdir()
    face = Image.open(Path(__file__).parents[2] / "src/hyperface/assets/astronaut.jpg")
    for i in range(40):
        canvas = Image.new("RGB", (320, 240), (20 * (i % 10), 90, 120))
        canvas.paste(face.resize((120 + 2 * i, 120 + 2 * i)), (i * 3, i % 20))
        canvas.save(folder / f"p{i:03d}.jpg")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def command(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "hyperface.cli.main", "analyze", str(folder), "--json", str(out),
                "--batch-size", "1", "--no-progress", *extra]

    reference, out = tmp_path / "reference.jsonl", tmp_path / "out.jsonl"
    subprocess.run(command(reference), env=env, check=True, capture_output=True)
    partial = tmp_path / "out.jsonl.partial"
    proc = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.exists() and partial.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial.exists() and not out.exists(), "the run ended before it could be killed"
    assert 3 <= partial.read_bytes().count(b"\n") < 40
    subprocess.run(command(out, "--resume"), env=env, check=True, capture_output=True)
    assert out.read_text() == reference.read_text()
    assert sorted(r["input"] for r in lines_of(out)) == sorted(str(p) for p in folder.iterdir())


# ------------------------------------------------------------------------------------------ failures stay local


def test_a_bad_box_or_an_ambiguous_name_fails_only_its_image(tiny_weights, tmp_path, capsys):
    folder = tmp_path / "in"
    good = photos(folder, 3)
    other = photos(tmp_path / "other", 1)[0]  # p000.png again, in another folder
    boxes = tmp_path / "boxes.txt"
    boxes.write_text(f"{good[0]} 20 10 60 50\n{good[1]} 0 0 1000000 1000000\n{good[2]} 20 10 60 50\n"
                     f"x/p000.png 1 1 9 9\ny/p000.png 1 1 9 9\n")
    out = tmp_path / "out.jsonl"
    assert analyze(tiny_weights, folder, other, "--proposals", f"boxes:{boxes}", "--json", out) == 1
    records = {(r["input"]): r for r in lines_of(out)}
    assert len(records[str(good[0])]["faces"]) == 1 and len(records[str(good[2])]["faces"]) == 1
    assert set(records[str(good[1])]) == {"input", "frame", "error"}
    assert str(good[1]) in records[str(good[1])]["error"] and "1000000" in records[str(good[1])]["error"]
    assert "ambiguous" in records[str(other)]["error"]
    assert "2 failure(s)" in capsys.readouterr().out


def test_a_drawn_picture_that_cannot_be_written_fails_only_its_image(six, tiny_weights, tmp_path, caplog,
                                                                        monkeypatch):
    folder, boxes, reference = six
    draw, out = tmp_path / "drawn", tmp_path / "out.jsonl"
    (draw / "p000.faces.jpg").mkdir(parents=True)  # a folder where the picture goes
    real_imwrite = cv2.imwrite
    monkeypatch.setattr(cv2, "imwrite", lambda name, img, *a: "p003.faces" not in name and real_imwrite(name, img))
    assert analyze(tiny_weights, folder, "--proposals", f"boxes:{boxes}", "--json", out, "--draw", draw) == 1
    records = lines_of(out)
    assert [r["faces"] for r in records] == [r["faces"] for r in lines_of(reference)]  # every analysis kept
    failed = {Path(r["input"]).name: r["error"] for r in records if "error" in r}
    assert sorted(failed) == ["p000.png", "p003.png"]
    assert f"{draw / 'p000.faces.jpg'}: cannot write the drawn picture" in failed["p000.png"]
    assert str(draw / "p003.faces.jpg") in failed["p003.png"]
    assert sorted(p.name for p in draw.iterdir()) == sorted(
        ["p000.faces.jpg"] + [f"p00{i}.faces.jpg" for i in (1, 2, 4, 5)])
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and all("\n" not in e for e in errors)


def test_a_full_disk_while_writing_the_json_keeps_the_lines_for_resume(six, tiny_weights, tmp_path, capsys,
                                                                        monkeypatch):
    folder, boxes, reference = six
    out = tmp_path / "out.jsonl"
    real = ResultsFile._emit

    def emit(self, text):
        if self.written == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, text)

    monkeypatch.setattr(ResultsFile, "_emit", emit)
    assert analyze(tiny_weights, folder, "--proposals", f"boxes:{boxes}", "--json", out, "--batch-size", "1") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "--resume" in err
    assert not out.exists() and len((tmp_path / "out.jsonl.partial").read_text().splitlines()) == 2
    monkeypatch.setattr(ResultsFile, "_emit", real)
    assert analyze(tiny_weights, folder, "--proposals", f"boxes:{boxes}", "--json", out, "--resume") == 0
    assert out.read_text() == reference.read_text()


# ------------------------------------------------------------------------------------------ workers


def test_workers_write_the_same_lines_in_the_same_order(six, tiny_weights, tmp_path):
    folder, boxes, _ = six
    (folder / "broken.png").write_bytes(b"not an image")
    write_video(folder / "clip.avi", 3)
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    args = ("--proposals", f"boxes:{boxes}", "--batch-size", "2")
    assert analyze(tiny_weights, folder, *args, "--json", one) == 1
    assert analyze(tiny_weights, folder, *args, "--json", two, "--workers", "2") == 1
    assert two.read_text() == one.read_text()
    assert [Path(r["input"]).name for r in lines_of(two)] == ["broken.png", "clip.avi", "clip.avi", "clip.avi"] + [
        f"p00{i}.png" for i in range(6)]


def test_a_worker_that_dies_fails_only_its_input(tmp_path):
    names = ["a", "b", "poison", "c", "d", "e", "f"]
    tasks = [Task(tuple(Item(tmp_path / n, "image") for n in names[i:i + 2])) for i in range(0, len(names), 2)]
    pool = _Pool(2)
    try:
        lines = list(ordered_lines(pool, iter(tasks), TaskOptions(), window=4, work=echo_or_die))
    finally:
        pool.close()
    assert [Path(line["input"]).name for line in lines] == names
    assert [Path(line["input"]).name for line in lines if "error" in line] == ["poison"]
    assert "worker process analysing it died" in lines[2]["error"]


def test_a_worker_that_cannot_build_its_analyzer_is_a_usage_error(tiny_weights, tmp_path, capsys):
    photos(tmp_path / "in", 2)
    out = tmp_path / "out.jsonl"
    assert analyze(tiny_weights, tmp_path / "in", "--proposals", "no-such-source", "--workers", "2",
                   "--json", out) == 2
    err = capsys.readouterr().err
    assert "unknown candidate source 'no-such-source'" in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "out.jsonl.partial").exists()
