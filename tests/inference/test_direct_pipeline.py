"""The ``direct`` pipeline: a detector that finds five points gives the faces, and stage two aligns them."""

from __future__ import annotations

import numpy as np
import pytest

from hyperface.inference import FaceAnalyzer
from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path
from hyperface.inference.proposals import DetectorProposals, ProposalSource
from hyperface.inference.proposals.detector import Detections, decode_detections
from hyperface.models.geometry import cell_centres
from hyperface.runtime import RuntimeOptions

from test_detector_source import DIST, probe_net

# the five points of the astronaut's face on the example image (eye centres, nose, mouth corners), and its box
FIVE = np.array([[203.0, 111.0], [246.0, 110.0], [225.0, 135.0], [207.0, 153.0], [244.0, 152.0]])
OFFSETS = np.array([[-12.0, -6.0], [12.0, -6.0], [0.0, 4.0], [-9.0, 14.0], [9.0, 14.0]])  # from the cell's point


def test_decoding_carries_each_cells_points():
    prob = np.zeros((4, 6), np.float32)
    prob[1, 2] = 0.9
    dist = np.full((4, 4, 6), 8.0, np.float32)
    offsets = np.zeros((10, 4, 6), np.float32)
    offsets[:, 1, 2] = OFFSETS.reshape(-1)
    empty = [(np.zeros((h, w), np.float32), np.ones((4, h, w), np.float32), np.zeros((10, h, w), np.float32))
             for h, w in ((2, 3), (1, 2), (1, 1))]
    found = decode_detections([(prob, dist, offsets), *empty], 0.5, 0.5, 10)
    centre = cell_centres(4, 6, 8)[1 * 6 + 2]
    assert len(found) == 1 and found.points.shape == (1, 5, 2)
    np.testing.assert_allclose(found.points[0], centre + OFFSETS, atol=1e-5)
    no_points = decode_detections([(prob, dist), *[level[:2] for level in empty]], 0.5, 0.5, 10)
    assert no_points.points is None and len(no_points) == 1


def test_the_source_maps_points_back_to_the_image():
    image = np.full((70, 100, 3), 20, np.uint8)
    image[21:28, 37:44] = 250  # under the tap of cell (3, 5): working pixel (40, 24)
    src = DetectorProposals(probe_net(points=OFFSETS), min_face=12, smallest=12, options=RuntimeOptions("torch"),
                            rescore=None, points=None)  # the detector's own point head, not the point stage
    found = src.faces(image)
    assert src.gives_points and len(found) == 1
    np.testing.assert_allclose(found.boxes[0], [43.5 - DIST[0], 27.5 - DIST[1], 43.5 + DIST[2], 27.5 + DIST[3]],
                               atol=1e-3)
    np.testing.assert_allclose(found.points[0], np.array([43.5, 27.5]) + OFFSETS, atol=1e-3)
    assert not DetectorProposals(probe_net(), options=RuntimeOptions("torch"), rescore=None, points=None).gives_points


class KnownFace(ProposalSource):
    """A detector that finds the astronaut's face with its five points (and a weaker false face)."""

    name = "known"
    gives_points = True

    def __call__(self, image, key=None):
        return self.found(image).boxes

    def found(self, image, floor=0.0, points=False):
        boxes = np.array([[178.0, 89.0, 275.0, 177.0], [400.0, 300.0, 440.0, 340.0]], np.float32)
        five = np.stack([FIVE, FIVE + [220.0, 195.0]]).astype(np.float32)
        found = Detections(boxes, np.array([0.95, 0.4], np.float32), five if points else None)  # asked for
        return found.select(found.scores >= floor)


def test_direct_faces_are_the_detectors_aligned_by_its_points_for_stage_two():
    image = str(asset_path(EXAMPLE_IMAGE))
    paper = FaceAnalyzer()(image)[0]
    direct = FaceAnalyzer(proposals=KnownFace(), pipeline="direct")
    faces = direct(image)
    assert len(faces) == 1  # 0.4 is under the threshold
    face = faces[0]
    np.testing.assert_allclose(face.box, [178.0, 89.0, 275.0, 177.0])  # the detector's box and probability
    assert face.score == pytest.approx(0.95, abs=1e-6)
    assert face.sources["landmarks"] == "stage2" and face.landmarks.shape == (68, 2)
    # stage two aligned by the detector's points answers as when stage one's points align it (not the gender:
    # this face is near even odds, so a pixel of alignment can turn it)
    assert np.abs(face.landmarks - paper.landmarks).mean() < 3.0
    assert np.abs(face.pose - paper.pose).max() < 5.0
    # given boxes still go through stage one, one face per box, in the same call's point set
    both = direct.batch([image, image], boxes=[None, [paper.box]])
    assert [len(f) for f in both] == [1, 1]
    assert np.abs(both[1][0].landmarks - paper.landmarks).mean() < 1.0
    with pytest.raises(ValueError, match="five points"):
        FaceAnalyzer(proposals="fast", pipeline="direct")  # the fast cascade finds no points
    with pytest.raises(ValueError, match="pipeline must be one of paper, direct"):
        FaceAnalyzer(pipeline="short")


def test_the_command_line_refuses_the_direct_pipeline_without_a_detector_that_finds_points(capsys, tmp_path):
    from hyperface.cli.main import main

    status = main(["analyze", "--example", "--proposals", "fast", "--pipeline", "direct",
                   "--json", str(tmp_path / "x.jsonl")])
    assert status == 2 and "five points" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


def test_the_bundled_detector_finds_points_so_the_direct_pipeline_runs_out_of_the_box(tmp_path):
    """The bundled pipeline has the detector's point stage: the direct pipeline needs no training, finds
    the paper pipeline's face on the example image (its points and pose), and the command line writes it."""
    import json

    from hyperface.cli.main import main
    from hyperface.inference.analyzer import DIRECT_ITERATIONS

    image = str(asset_path(EXAMPLE_IMAGE))
    paper = FaceAnalyzer()(image)
    analyzer = FaceAnalyzer(pipeline="direct")
    direct = analyzer(image)
    assert len(direct) == len(paper) == 1 and analyzer.stage_two.iterations == DIRECT_ITERATIONS
    assert analyzer.proposals._point_stage is not None  # the bundled point stage reads the points
    face = direct[0]
    # the same face: its points and pose (gender is not compared: this face is near even odds, and a
    # different alignment can tip it)
    assert face.sources["landmarks"] == face.sources["gender"] == "stage2" and face.gender in ("male", "female")
    assert np.abs(face.landmarks - paper[0].landmarks).mean() < 2.0
    assert np.abs(face.pose - paper[0].pose).max() < 5.0
    out = tmp_path / "direct.jsonl"
    assert main(["analyze", "--example", "--pipeline", "direct", "--json", str(out)]) == 0
    line = json.loads(out.read_text())
    assert len(line["faces"]) == 1
    np.testing.assert_allclose(line["faces"][0]["box"], face.box, atol=0.05)


def test_the_command_lines_help_states_the_direct_pipelines_rounds(capsys):
    """The --iterations help names the number the analyzer uses, so the two cannot drift apart."""
    from hyperface.cli.main import main
    from hyperface.inference.analyzer import DIRECT_ITERATIONS

    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"{DIRECT_ITERATIONS} in the direct pipeline" in help_text and "on in the direct one" in help_text


def test_flip_average_defaults_and_an_explicit_value_wins():
    """Without a fine landmark network stage two's default follows FLIP_AVERAGE per pipeline (on in both
    since 0.11); with the bundled one, FLIP_AVERAGE_WITH_FINE (both networks without the mirrored face since
    0.12). An explicit value wins, and changes the answer."""
    from hyperface.inference.analyzer import FLIP_AVERAGE, FLIP_AVERAGE_WITH_FINE

    assert FLIP_AVERAGE == {"paper": True, "direct": True}
    assert FLIP_AVERAGE_WITH_FINE == {"stage_two": False, "fine": False}
    image = str(asset_path(EXAMPLE_IMAGE))
    alone, plain = FaceAnalyzer(fine=None), FaceAnalyzer(fine=None, flip_average=False)
    assert alone.stage_two.fine is None and alone.stage_two.flip_average and not plain.stage_two.flip_average
    assert FaceAnalyzer(pipeline="direct", fine=None).stage_two.flip_average
    assert not FaceAnalyzer(pipeline="direct", fine=None, flip_average=False).stage_two.flip_average
    a, b = alone(image)[0], plain(image)[0]
    assert 0.01 < np.abs(a.landmarks - b.landmarks).mean() < 2.0  # a refinement of the same points
    default, mirrored = FaceAnalyzer(), FaceAnalyzer(fine_flip_average=True)
    assert default.stage_two.fine is not None and FaceAnalyzer(pipeline="direct").stage_two.fine is not None
    assert not default.stage_two.flip_average and not default.stage_two.fine_flip_average
    assert mirrored.stage_two.fine_flip_average and not mirrored.stage_two.flip_average
    c, d = default(image)[0], mirrored(image)[0]
    assert 0.01 < np.abs(c.landmarks - d.landmarks).mean() < 2.0
    assert 0.01 < np.abs(c.landmarks - a.landmarks).mean() < 3.0  # the fine network moves stage two's points
