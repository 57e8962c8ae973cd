"""``benchmarks/pipeline_overhead.py`` times the pipeline around replayed network answers: those answers must
leave every face as the networks themselves give it, or the benchmark times another computation."""

from __future__ import annotations

import numpy as np

from benchmark_modules import load_benchmark


def test_replayed_networks_give_the_same_faces_and_are_put_back():
    import hyperface
    from hyperface.runtime import Runtime

    bench = load_benchmark("pipeline_overhead")
    analyze_speed = load_benchmark("analyze_speed")
    image = analyze_speed.test_image()
    analyzer = hyperface.FaceAnalyzer()
    want = analyzer(image)
    run = Runtime.__call__
    with bench.replayed_networks():
        assert Runtime.__call__ is not run
        first, again = analyzer(image), analyzer(image)  # the second call replays every network's answer
    assert Runtime.__call__ is run
    assert len(want) == len(first) == len(again) >= 1
    for a, b, c in zip(want, first, again):
        np.testing.assert_array_equal(a.box, b.box)
        np.testing.assert_array_equal(a.box, c.box)
        np.testing.assert_array_equal(a.landmarks, c.landmarks)
        np.testing.assert_array_equal(a.pose, c.pose)
        assert a.score == c.score and a.gender == c.gender


def test_a_compare_folder_without_hyperface_is_refused_by_name(tmp_path, capsys):
    """Else the other side would silently time this checkout's code under the other folder's name."""
    import pytest

    with pytest.raises(SystemExit) as stop:
        load_benchmark("pipeline_overhead").main(["--compare", str(tmp_path)])
    assert stop.value.code == 2 and f"--compare {tmp_path}: no hyperface package" in capsys.readouterr().err
