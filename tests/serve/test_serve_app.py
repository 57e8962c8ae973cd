"""``POST /analyze``, ``GET /health`` and ``GET /`` through Starlette's in-process client: answers and refusals."""

from __future__ import annotations

import re

import pytest
from serve_stubs import MAX_PIXELS, OverlapCheckingFactory, StubFactory, png_bytes

pytest.importorskip("starlette", reason="the serve extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("multipart", reason="python-multipart (the serve extra) is not installed")

from starlette.testclient import TestClient  # noqa: E402

from hyperface.data.images import load_image  # noqa: E402
from hyperface.inference import FaceAnalyzer  # noqa: E402
from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path  # noqa: E402
from hyperface.serve import AnalyzerPool, create_app  # noqa: E402

LIMIT = 300_000  # bytes; the astronaut JPEG is well under it


@pytest.fixture(scope="module")
def client(real_pool):
    with TestClient(create_app(real_pool, max_upload_bytes=LIMIT)) as c:
        yield c


@pytest.fixture(scope="module")
def expected_line() -> dict:
    """What ``hyperface analyze`` writes for the example photo: the line schema built by hand."""
    path = asset_path(EXAMPLE_IMAGE)
    image = load_image(path)
    faces = FaceAnalyzer(threads=1)(image)
    return {"input": EXAMPLE_IMAGE, "frame": None, "width": image.shape[1], "height": image.shape[0],
            "faces": [f.to_dict() for f in faces]}


# ------------------------------------------------------------------------------------------ answers


def test_multipart_upload_answers_the_analyze_line_named_by_the_file(client, astronaut_bytes, expected_line):
    r = client.post("/analyze", files={"file": (EXAMPLE_IMAGE, astronaut_bytes, "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.json() == expected_line
    assert len(expected_line["faces"]) == 1


def test_raw_body_upload_is_named_upload(client, astronaut_bytes, expected_line):
    r = client.post("/analyze", content=astronaut_bytes, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200, r.text
    assert r.json() == {**expected_line, "input": "upload"}


def test_a_query_option_changes_the_answer(client, astronaut_bytes):
    r = client.post("/analyze?score_threshold=1", content=astronaut_bytes)
    assert r.status_code == 200, r.text
    assert r.json()["faces"] == []  # no score reaches 1


def test_the_fine_networks_mirrored_face_is_a_request_option(client, astronaut_bytes, expected_line):
    r = client.post("/analyze?fine_flip_average=true", content=astronaut_bytes)
    assert r.status_code == 200, r.text
    face, default = r.json()["faces"][0], expected_line["faces"][0]
    assert face["box"] == default["box"] and face["gender"] == default["gender"]  # only the fine points move
    expected = FaceAnalyzer(threads=1, fine_flip_average=True)(load_image(asset_path(EXAMPLE_IMAGE)))[0].to_dict()
    assert face["landmarks"] == expected["landmarks"] != default["landmarks"]


def test_a_photo_without_faces_answers_an_empty_list(client):
    r = client.post("/analyze", files={"file": ("grey.png", png_bytes(64, 48), "image/png")})
    assert r.status_code == 200
    assert r.json() == {"input": "grey.png", "frame": None, "width": 64, "height": 48, "faces": []}


# ------------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("query, words", [
    ("colour=red", ["unknown option 'colour'", "score_threshold"]),
    ("score_threshold=1.5", ["score_threshold", "[0, 1]", "'1.5'"]),
    ("score_threshold=abc", ["score_threshold", "'abc'"]),
    ("max_side=10", ["max_side", "[32, 8192]"]),
    ("min_face=0", ["min_face", "(0, 10000]"]),
    ("pose_from=guess", ["pose_from", "landmarks"]),
    ("flip_average=maybe", ["flip_average", "true or false"]),
    ("fine_flip_average=2", ["fine_flip_average", "true or false"]),
    ("detector_flip=maybe", ["detector_flip", "true or false"]),
    ("irp_rounds=1&irp_rounds=2", ["irp_rounds", "twice"]),
])
def test_a_bad_option_is_a_400_naming_it(client, astronaut_bytes, query, words):
    r = client.post(f"/analyze?{query}", content=astronaut_bytes)
    assert r.status_code == 400
    for word in words:
        assert word in r.json()["error"]


def test_bytes_that_are_not_an_image_are_a_415_naming_the_file(client):
    r = client.post("/analyze", files={"file": ("notes.jpg", b"shopping list: eggs", "image/jpeg")})
    assert r.status_code == 415
    message = r.json()["error"]
    assert message.startswith("not an image") and "notes.jpg: cannot decode image" in message
    assert "/tmp" not in message and "hyperface-" not in message  # the temporary file stays private


def test_a_truncated_image_is_a_415(client, astronaut_bytes):
    r = client.post("/analyze", files={"file": ("cut.jpg", astronaut_bytes[:2000], "image/jpeg")})
    assert r.status_code == 415
    assert "cut.jpg" in r.json()["error"]


def test_a_body_over_the_limit_is_a_413_before_it_is_read(client):
    r = client.post("/analyze", content=b"\xff" * (LIMIT + 1))
    assert r.status_code == 413
    assert f"{LIMIT:,} bytes" in r.json()["error"] and "--max-upload-mb" in r.json()["error"]


def test_a_chunked_body_over_the_limit_is_a_413(client):
    def chunks():  # no Content-Length: the limit applies as the body arrives
        for _ in range(LIMIT // 50_000 + 2):
            yield b"\xff" * 50_000

    r = client.post("/analyze", content=chunks())
    assert r.status_code == 413


def test_a_multipart_file_over_the_limit_is_a_413(client):
    r = client.post("/analyze", files={"file": ("big.jpg", b"\xff" * (LIMIT + 1), "image/jpeg")})
    assert r.status_code == 413


def test_a_decompression_bomb_is_a_413_before_decoding(client):
    bomb = png_bytes(4000, 4000, mode="1")  # a few kB that decode to 16 megapixels, over the pixel limit
    assert len(bomb) < LIMIT and 4000 * 4000 > MAX_PIXELS
    r = client.post("/analyze", files={"file": ("bomb.png", bomb, "image/png")})
    assert r.status_code == 413
    message = r.json()["error"]
    assert "bomb.png: image too large (4000x4000" in message and "--max-megapixels" in message


def test_an_empty_upload_is_a_400(client):
    r = client.post("/analyze", content=b"")
    assert r.status_code == 400 and "empty upload" in r.json()["error"]


def test_a_multipart_upload_without_a_file_is_a_400(client):
    body = b'--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--XyZ--\r\n'
    r = client.post("/analyze", content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert r.status_code == 400 and "no file" in r.json()["error"]


def test_two_files_in_one_request_are_a_400(client, astronaut_bytes):
    files = [("file", ("a.jpg", astronaut_bytes, "image/jpeg")), ("file", ("b.jpg", astronaut_bytes, "image/jpeg"))]
    r = client.post("/analyze", files=files)
    assert r.status_code == 400 and "bad multipart upload" in r.json()["error"]


def test_unknown_paths_and_methods_answer_json_errors(client):
    assert client.get("/nowhere").status_code == 404
    r = client.get("/analyze")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}


# ------------------------------------------------------------------------------------------ health and page


def test_health_reports_the_pool_and_limits(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert (body["workers"], body["busy"], body["waiting"], body["capacity"]) == (1, 0, 0, 5)
    assert body["max_upload_bytes"] == LIMIT and body["max_pixels"] == MAX_PIXELS
    assert "score_threshold" in body["options"]


def test_the_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<input id="files" type="file"' in html and "<canvas" in html and 'fetch("analyze"' in html
    # nothing loaded from another host: no external scripts, styles, fonts or images
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html


# ------------------------------------------------------------------------------------------ pool: 503 and failures


def _stub_client(factory: StubFactory, workers: int = 1, queue_size: int = 1):
    pool = AnalyzerPool({"threads": 1}, workers=workers, queue_size=queue_size, factory=factory, cache=1).start()
    return pool, TestClient(create_app(pool, max_upload_bytes=LIMIT))


def test_a_full_queue_is_a_503_and_the_service_recovers(stub_factory):
    pool, client = _stub_client(stub_factory, workers=1, queue_size=1)
    try:
        stub_factory.gate.clear()  # the analyzer now waits: fill the worker and the queue
        held = [pool.submit(png_bytes(20, 10), "held.png") for _ in range(2)]
        r = client.post("/analyze", content=png_bytes(30, 10))
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
        assert client.get("/health").json()["busy"] + client.get("/health").json()["waiting"] == 2
        stub_factory.gate.set()
        assert [f.result(timeout=30)["faces"][0]["score"] for f in held] == [0.02, 0.02]
        r = client.post("/analyze", content=png_bytes(30, 10))
        assert r.status_code == 200 and r.json()["faces"][0]["score"] == 0.03
    finally:
        stub_factory.gate.set()
        pool.close()


def test_an_analyzer_failure_is_a_500_for_that_request_only(stub_factory):
    pool, client = _stub_client(stub_factory)
    try:
        r = client.post("/analyze", files={"file": ("odd.png", png_bytes(13, 10), "image/png")})
        assert r.status_code == 500 and "odd.png" in r.json()["error"]
        r = client.post("/analyze", content=png_bytes(40, 10))
        assert r.status_code == 200 and r.json()["faces"][0]["score"] == 0.04
        assert client.get("/health").json()["busy"] == 0
    finally:
        pool.close()


def test_request_options_get_their_own_analyzer_kept_per_worker(stub_factory):
    pool, client = _stub_client(stub_factory)
    try:
        for query in ("", "?score_threshold=0.7", "?score_threshold=0.7", "?min_face=40", "?score_threshold=0.7"):
            assert client.post(f"/analyze{query}", content=png_bytes(20, 10)).status_code == 200
        # the default, then 0.7 (kept for its second use), min_face (evicting 0.7: cache=1), 0.7 again
        assert [s.get("score_threshold") for s in stub_factory.built] == [None, 0.7, None, 0.7]
        assert stub_factory.built[2]["proposal_options"] == {"min_face": 40.0}
        assert all(s["threads"] == 1 for s in stub_factory.built)
    finally:
        pool.close()


def test_the_candidate_sources_options_reach_it_under_its_own_names(stub_factory):
    pool, client = _stub_client(stub_factory)
    try:
        assert client.post("/analyze?detector_flip=yes&min_face=40", content=png_bytes(20, 10)).status_code == 200
        assert client.post("/analyze?detector_flip=false", content=png_bytes(20, 10)).status_code == 200
        built = [s.get("proposal_options") for s in stub_factory.built]  # the default first, built at start
        assert built == [None, {"flip": True, "min_face": 40.0}, {"flip": False}]
    finally:
        pool.close()


def test_options_the_analyzer_refuses_are_a_400(stub_factory):
    pool, client = _stub_client(stub_factory)
    try:
        r = client.post("/analyze?score_threshold=0.25", content=png_bytes(20, 10))
        assert r.status_code == 400 and "refused by this stand-in" in r.json()["error"]
    finally:
        pool.close()


def test_a_pool_whose_analyzer_cannot_be_built_does_not_start(tmp_path):
    pool = AnalyzerPool({"weights": str(tmp_path / "missing.safetensors")}, workers=2)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        pool.start()
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(b"x", "x")


def test_workers_build_their_analyzers_one_at_a_time():
    factory = OverlapCheckingFactory()
    pool = AnalyzerPool({"threads": 1}, workers=4, queue_size=8, factory=factory, cache=1).start()
    try:
        futures = [pool.submit(png_bytes(20, 10), "a.png", (("score_threshold", 0.1 * (1 + i % 4)),))
                   for i in range(8)]
        assert all(f.result(timeout=30)["width"] == 20 for f in futures)
        assert len(factory.built) >= 4 + 4 and not factory.overlapped
    finally:
        pool.close()


# ------------------------------------------------------------------------------------------ the command


@pytest.mark.parametrize("argv, message", [
    (["--workers", "0"], "--workers must be >= 1"),
    (["--queue", "-1"], "--queue must be >= 0"),
    (["--max-upload-mb", "0"], "--max-upload-mb must be positive"),
    (["--weights", "missing.safetensors"], "missing.safetensors: network file not found"),
])
def test_serve_refuses_bad_settings_before_listening(argv, message, capsys):
    from hyperface.cli.main import main

    assert main(["serve", "--workers", "1", *argv]) == 2
    assert message in capsys.readouterr().err


def test_the_command_line_builds_each_workers_analyzer_with_the_fine_network_option():
    """``hyperface serve --fine none`` turns the fine landmark network off in every worker's analyzer;
    by default the bundled pipeline's runs (as for ``analyze``)."""
    from hyperface.cli.main import build_parser
    from hyperface.cli.serve import analyzer_settings

    def parse(argv):
        return build_parser(argv).parse_args(argv)

    default, off = analyzer_settings(parse(["serve"])), analyzer_settings(parse(["serve", "--fine", "none"]))
    assert default["fine"] == "auto" and off["fine"] is None
    assert FaceAnalyzer(**default).stage_two.fine is not None
    assert FaceAnalyzer(**off).stage_two.fine is None
