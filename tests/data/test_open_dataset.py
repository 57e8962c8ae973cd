"""The reader registry and dataset specs: FORMAT:PATH?key=value, option typing, helpful errors."""

from __future__ import annotations

import inspect

import pytest

from hyperface.data.readers import READERS, format_options, list_formats, open_dataset, parse_spec
from hyperface.data.readers.base import DatasetReader


def test_registry_is_consistent_and_follows_the_contract():
    assert list_formats() == list(READERS)
    assert {"pts", "menpo", "ljson", "300vw", "aflw", "aflw2000", "mtfl", "utkface", "dlib", "celeba",
            "negatives", "voc", "pts-photos", "fairface", "composite", "wider"} == set(READERS)
    for name, cls in READERS.items():
        assert issubclass(cls, DatasetReader) and cls.format == name and cls.description
        params = list(inspect.signature(cls.__init__).parameters.values())
        assert [p.name for p in params[:2]] == ["self", "path"]
        for p in params[2:]:  # every option keyword-only, with a default
            assert p.kind is p.KEYWORD_ONLY and p.default is not p.empty, (name, p.name)
        assert "verify_images" in format_options(name)


def test_spec_parsing():
    assert parse_spec("300vw:/data/300VW?every=10&verify_images=false") == (
        "300vw", "/data/300VW", {"every": "10", "verify_images": "false"})
    assert parse_spec("pts:C:/x") == ("pts", "C:/x", {})
    for bad in ("nocolon", ":path", "pts:", "pts:x?every", "pts:x?a=1&a=2"):
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_options_are_typed_and_unknown_ones_rejected(tmp_path, gen):
    folder = tmp_path / "v"
    (folder / "annot").mkdir(parents=True)
    reader = open_dataset(f"300vw:{folder}?every=10&verify_images=yes")
    assert reader.every == 10 and reader.verify_images is True
    # Spec options override keyword options.
    assert open_dataset(f"300vw:{folder}?verify_images=off", verify_images=True).verify_images is False
    # String options keep their text even when it looks like a number.
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "testing.txt").write_text("")
    assert open_dataset(f"mtfl:{tmp_path / 'm'}?split=testing").lists == [tmp_path / "m" / "testing.txt"]
    with pytest.raises(ValueError, match="unknown option.*step.*allowed: verify_images, every"):
        open_dataset(f"300vw:{folder}?step=3")
    with pytest.raises(ValueError, match="unknown option.*every.*allowed: verify_images$"):
        open_dataset(f"pts:{tmp_path}", every=2)
    with pytest.raises(ValueError, match="unknown dataset format 'png'.*pts, menpo"):
        open_dataset(f"png:{tmp_path}")
