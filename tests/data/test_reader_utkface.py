"""UTKFace reader: labels from file names, whole-image box, malformed names reported and skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hyperface.data.readers.utkface import UtkFaceReader, parse_utkface_name


def test_names_labels_and_box(tmp_path, gen):
    gen.image(tmp_path / "25_1_2_20170116174525125.jpg.chip.jpg", size=(200, 180))
    gen.image(tmp_path / "3_0_4_20161219203650636.jpg.chip.jpg", size=(200, 200))
    bad = {
        "61_1_20170109142408075.jpg.chip.jpg": "found 3 field",       # race missing
        "x_1_2_20170116174525125.jpg.chip.jpg": "age field 'x'",
        "30_2_1_20170116174525125.jpg.chip.jpg": "gender 2",
        "30__1_20170116174525125.jpg.chip.jpg": "gender field ''",
    }
    for name in bad:
        gen.image(tmp_path / name)
    (tmp_path / "README.txt").write_text("not an image: ignored")
    reader = UtkFaceReader(tmp_path)
    records = {r.group: r for r in reader}
    assert sorted(records) == ["25_1_2_20170116174525125.jpg.chip.jpg", "3_0_4_20161219203650636.jpg.chip.jpg"]
    face = records["25_1_2_20170116174525125.jpg.chip.jpg"].faces[0]
    assert face.gender == 1 and face.attributes == {"age": 25, "race": 2} and face.landmarks is None
    np.testing.assert_array_equal(face.box, [0, 0, 200, 180])
    assert records["3_0_4_20161219203650636.jpg.chip.jpg"].faces[0].gender == 0
    problems = {Path(p.path).name: p.message for p in reader.problems}
    assert set(problems) == set(bad)
    for name, fragment in bad.items():
        assert fragment in problems[name] and problems[name].startswith("malformed UTKFace name")


def test_parse_name_without_chip_suffix():
    assert parse_utkface_name("40_0_1_20170117134213422.jpg") == (40, 0, 1)
    with pytest.raises(ValueError, match="race 7"):
        parse_utkface_name("40_0_7_20170117134213422.jpg")
