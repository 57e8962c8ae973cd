"""Gender accuracy, and faces found, told apart by true gender, age band (children apart) and race (issue 27)."""

from __future__ import annotations

import numpy as np

from hyperface.evaluate.report import to_markdown
from hyperface.evaluate.results import FaceResult, RunResult
from hyperface.evaluate.summary import gender_by, summarize


def _face(k: int, truth: int, pred: int, **groups) -> FaceResult:
    return FaceResult(image=f"i{k}", face=0, gender_true=truth, gender_pred=pred, groups=groups)


FACES = [
    _face(0, 0, 0, age=5, race="Black"), _face(1, 1, 0, age=6, race="Black"),  # a child wrong
    _face(2, 1, -1, age=1, race="White"),                                      # missed: counts wrong
    _face(3, 0, 0, age=25, race="White"), _face(4, 1, 1, age=34.5, race="White"),
    _face(5, 0, 0, age=80, race="Black"), _face(6, 1, 1),                      # no groups: gender only
]


def test_gender_is_counted_by_gender_age_band_and_race_with_misses_wrong():
    by = gender_by(FACES)
    assert by["gender"] == {"female": [2, 4], "male": [3, 3]}
    assert by["age"] == {"0-2": [0, 1], "3-9": [1, 2], "20-29": [1, 1], "30-39": [1, 1], ">=70": [1, 1]}
    assert list(by["age"]) == ["0-2", "3-9", "20-29", "30-39", ">=70"]  # in age order, not string order
    assert by["race"] == {"Black": [2, 3], "White": [2, 3]}


def test_found_faces_alone_leave_the_missed_face_out():
    by = gender_by(FACES, found_only=True)
    assert by["gender"] == {"female": [2, 3], "male": [3, 3]}
    assert "0-2" not in by["age"] and by["age"]["3-9"] == [1, 2]
    assert by["race"] == {"Black": [2, 3], "White": [2, 2]}


def test_the_summary_and_report_carry_gender_by_group_and_its_spread():
    run = RunResult(model="m", dataset="d", mode="full", images=len(FACES), faces=FACES)
    summary = summarize(run)
    assert summary["gender"]["by"]["race"]["Black"] == [2, 3]
    text = to_markdown([summary])
    assert "gender by age (misses wrong): 0-2: 0/1 (0.0%); 3-9: 1/2 (50.0%)" in text
    assert "gender by race (misses wrong): Black: 2/3 (66.7%); White: 2/3 (66.7%); spread 0.0 points" in text
    assert "gender by race (found faces): Black: 2/3 (66.7%); White: 2/2 (100.0%); spread 33.3 points" in text
    assert np.isclose(summary["gender"]["accuracy"], 5 / 7)


def test_faces_found_are_counted_by_group():
    """Whom the detection misses: the missed face is a White child of 0-2 and a girl."""
    summary = summarize(RunResult(model="m", dataset="d", mode="full", images=len(FACES), faces=FACES))
    found = summary["gender"]["found_by"]
    assert found["race"] == {"Black": [3, 3], "White": [2, 3]}
    assert found["age"]["0-2"] == [0, 1] and found["age"]["3-9"] == [2, 2]
    assert found["gender"] == {"female": [3, 4], "male": [3, 3]}
    text = to_markdown([summary])
    assert "faces found by race: Black: 3/3 (100.0%); White: 2/3 (66.7%); spread 33.3 points" in text
    assert "faces found by gender: female: 3/4 (75.0%); male: 3/3 (100.0%); spread 25.0 points" in text
