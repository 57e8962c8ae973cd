"""What the commands read and write, checked before any work: no output over an input, no output over a
device or pipe, only regular input files, bad options as one-line errors, help defaults from the code,
standard output as a JSON stream that may be closed early."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from hyperface.cli.main import build_parser, main

from inference_stubs import blob_image, write_video


def photo(path, size=(80, 60)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(blob_image(*size, [(size[0] / 2, size[1] / 2, 15)])).save(path)


def analyze(weights, *args) -> int:
    return main(["analyze", *map(str, args), "--weights", str(weights), "--no-progress"])


# ------------------------------------------------------------------------------------------ outputs over inputs


@pytest.mark.parametrize("case", ["boxes", "weights", "stage-two", "fine", "detector", "fast-dir"])
def test_no_output_replaces_a_file_the_run_reads(case, tiny_weights, tmp_path, capsys, no_models):
    image = tmp_path / "a.png"
    photo(image)
    copy = tmp_path / "model.safetensors"
    shutil.copyfile(tiny_weights, copy)
    boxes = tmp_path / "boxes.txt"
    boxes.write_text("a.png 20 10 60 50\n")
    cascade = tmp_path / "cascade"
    cascade.mkdir()
    shutil.copyfile(tiny_weights, cascade / "hyperface-proposal.safetensors")
    argv, victim = {
        "boxes": (["--proposals", f"boxes:{boxes}"], boxes),
        "weights": (["--weights", copy], copy),
        "stage-two": (["--stage-two", copy], copy),
        "fine": (["--fine", copy], copy),
        "detector": (["--proposals", f"detector:{copy}"], copy),
        "fast-dir": (["--proposals", f"fast:{cascade}"], cascade / "hyperface-proposal.safetensors"),
    }[case]
    before = victim.read_bytes()
    status = main(["analyze", str(image), *map(str, argv), "--json", str(victim), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "--json" in err and "is one of the inputs" in err, err
    assert victim.read_bytes() == before
    assert not (tmp_path / f"{victim.name}.partial").exists()


def test_evaluate_never_writes_over_a_datasets_files(tiny_weights, tmp_path, capsys, no_models):
    data = tmp_path / "300w"
    photo(data / "face.png")
    (data / "face.pts").write_text("version: 1\nn_points: 68\n{\n" + "10 10\n" * 68 + "}\n")
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    for option, target in (("--json", data / "face.pts"), ("--markdown", data / "face.png")):
        status = main(["evaluate", "--weights", str(tiny_weights), "--data", f"pts:{data}", option, str(target)])
        err = capsys.readouterr().err
        assert status == 2 and option in err and f"inside the --data 300w dataset {data}" in err, err
    assert main(["evaluate", "--data", f"pts:{data}", "--plots", str(data)]) == 2
    assert "--plots" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before


# ------------------------------------------------------------------------------------------ special files


def test_outputs_are_never_a_pipe_or_device_and_dev_null_discards(tiny_weights, tmp_path, capsys, monkeypatch):
    # Never a real device here: on a regression, running as root, it would be replaced by a plain file.
    image = tmp_path / "a.png"
    photo(image)
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    link = tmp_path / "stdout.jsonl"
    link.symlink_to(fifo)  # as a link to /proc/self/fd/1 would be, with a pipe there
    for target in (fifo, link):
        assert analyze(tiny_weights, image, "--proposals", "selective-search", "--json", target) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--json" in err and "not a regular file" in err and "'-'" in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()
    monkeypatch.setattr(os, "devnull", str(fifo))  # the FIFO stands for /dev/null: accepted, nothing written
    assert analyze(tiny_weights, image, "--proposals", "selective-search", "--json", fifo) == 0
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "pipe.jsonl", "stdout.jsonl"]


def test_a_link_to_a_regular_file_is_written_through(tiny_weights, tmp_path):
    photo(tmp_path / "a.png")
    real = tmp_path / "runs" / "r1.jsonl"
    real.parent.mkdir()
    link = tmp_path / "latest.jsonl"
    link.symlink_to(real)
    assert analyze(tiny_weights, tmp_path / "a.png", "--proposals", "selective-search", "--json", link) == 0
    assert link.is_symlink() and json.loads(real.read_text())["input"] == str(tmp_path / "a.png")


def test_only_regular_files_are_read(tiny_weights, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    folder = tmp_path / "in"
    photo(folder / "a.png")
    os.mkfifo(folder / "x.jpg")  # opening it would wait for a writer forever
    (folder / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble metadata")
    (folder / "._b.jpg").write_bytes(b"\x00\x05\x16\x07")
    out = tmp_path / "out.jsonl"
    assert analyze(tiny_weights, folder, "--proposals", "selective-search", "--json", out) == 0
    assert [json.loads(line)["input"] for line in out.read_text().splitlines()] == [str(folder / "a.png")]
    assert caplog.text.count("skipped 2 macOS metadata file(s)") == 1
    assert analyze(tiny_weights, folder / "x.jpg", "--proposals", "selective-search") == 2
    assert "x.jpg: not a regular file" in capsys.readouterr().err


def test_videos_inside_folders_are_analysed(tiny_weights, tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    write_video(folder / "clip.avi", 3)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"input": str(folder / "clip.avi"), "frame": i, "boxes": [[18, 20, 50, 52]]}
                                 for i in range(3)]))
    out = tmp_path / "v.jsonl"
    assert analyze(tiny_weights, folder, "--proposals", f"boxes:{boxes}", "--json", out,
                   "--score-threshold", "0") == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["input"], r["frame"], len(r["faces"])) for r in records] == [
        (str(folder / "clip.avi"), i, 1) for i in range(3)]
    assert "no images" not in capsys.readouterr().err


def test_missing_or_empty_inputs_are_usage_errors_before_the_models_load(tiny_weights, tmp_path, capsys, no_models):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "o.jsonl"
    assert analyze(tiny_weights, tmp_path / "nope.jpg", "--json", out) == 2
    assert "nope.jpg: no such file or folder" in capsys.readouterr().err
    assert analyze(tiny_weights, tmp_path / "empty", "--json", out) == 2
    assert "no image or video in" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


# ------------------------------------------------------------------------------------------ options


@pytest.mark.parametrize("argv, option", [
    (["--smooth-cutoff", "nan"], "--smooth-cutoff"),
    (["--smooth-cutoff", "0"], "--smooth-cutoff"),
    (["--smooth-beta", "-1"], "--smooth-beta"),
    (["--irp-rounds", "-1"], "--irp-rounds"),
    (["--threads", "0"], "--threads"),
    (["--batch-size", "0"], "--batch-size"),
    (["--workers", "0"], "--workers"),
    (["--score-threshold", "1.5"], "--score-threshold"),
    (["--min-face", "inf"], "--min-face"),
    (["--proposals", "fast", "--min-face", "0.5"], "--min-face"),
    (["--device", "mps"], "--device"),
    (["--device", "meta"], "--device"),
    (["--resume"], "--resume"),
])
def test_bad_options_are_one_line_errors(argv, option, tiny_weights, tmp_path, capsys, no_models):
    photo(tmp_path / "a.png")
    assert analyze(tiny_weights, tmp_path / "a.png", *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hyperface analyze: ") and err.count("\n") == 1 and option in err, err


def test_help_defaults_come_from_the_code():
    from hyperface.inference.analyzer import DEFAULT_SCORE_THRESHOLD, FUSED_SCORE_THRESHOLD
    from hyperface.inference.proposals import DEFAULT_PROPOSALS

    def help_text(command: str) -> str:
        parser = build_parser([command])
        sub = next(a for a in parser._actions if a.dest == "command").choices[command]
        return " ".join(sub.format_help().split())

    analyze_help, evaluate_help = help_text("analyze"), help_text("evaluate")
    for text in (analyze_help, evaluate_help):
        assert f"(default: {DEFAULT_PROPOSALS})" in text and "fast (default" not in text
    assert f"default: {FUSED_SCORE_THRESHOLD:g} for scores fused" in analyze_help
    assert f"else {DEFAULT_SCORE_THRESHOLD:g})" in analyze_help


def test_command_line_modules_do_not_import_torch():
    modules = ["main", "analyze", "analyze_tasks", "results", "outputs", "workers", "evaluate", "models"]
    code = (f"import sys\nfor m in {modules}: __import__('hyperface.cli.' + m)\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------------ standard output


def test_json_dash_streams_lines_to_stdout_and_logs_to_stderr(tiny_weights, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "a.png")
    photo(tmp_path / "b.png")
    assert analyze(tiny_weights, "a.png", "b.png", "--proposals", "selective-search", "--json", "-") == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["input"] for line in captured.out.splitlines()] == ["a.png", "b.png"]
    assert "analysed 2 image(s)" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no file named '-'


@pytest.mark.parametrize("command", ["models", "analyze"])
def test_a_closed_stdout_ends_the_command_quietly(command, tiny_weights, tmp_path):
    photo(tmp_path / "a.png")
    photo(tmp_path / "b.png")
    argv = {"models": ["models", "--json"],
            "analyze": ["analyze", str(tmp_path), "--weights", str(tiny_weights), "--proposals",
                        "selective-search", "--json", "-", "--no-progress"]}[command]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line (| head -0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-m", "hyperface.cli.main", *argv], stdout=write,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    os.close(write)
    assert result.returncode == 141, result.stderr
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr



def test_a_file_named_twice_is_analysed_once(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "in" / "a.png")
    out = tmp_path / "o.jsonl"
    assert analyze(tiny_weights, "in", "in/a.png", "./in/a.png", "--proposals", "selective-search", "--json", out) == 0
    assert [json.loads(line)["input"] for line in out.read_text().splitlines()] == ["in/a.png"]


def test_an_unwritable_output_folder_is_refused_before_any_work(tiny_weights, tmp_path, capsys, monkeypatch,
                                                                no_models):
    photo(tmp_path / "a.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # root writes anywhere, so the permission is simulated: a read-only folder (or file system) says no
    monkeypatch.setattr(os, "access", lambda p, mode, **k: Path(p) != locked and real_access(p, mode, **k))
    for option, target in (("--draw", locked), ("--json", locked / "o.jsonl")):
        assert analyze(tiny_weights, tmp_path / "a.png", option, target) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and option in err and f"the folder {locked} is not writable" in err
