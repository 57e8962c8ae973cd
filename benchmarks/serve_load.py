"""Load on ``hyperface serve``: N concurrent clients on loopback for a bounded time; prints a markdown table.

Each client thread keeps one HTTP/1.1 connection and posts, back to back, the evaluation document's
test image (the bundled astronaut resized to 480 x 480 and pasted at x = 80 on a 640 x 480 grey (128)
canvas; JPEG) as the raw request body. Two phases of ``--seconds`` each: good uploads only, then a
``--bad-share`` of bad ones, drawn at random per request from: bytes that are not an image (415), a
truncated JPEG (415), an unknown option (400), a body over the size limit (413) and a decompression
bomb (413). A good request counts as answered when it gets 200 with the same faces as the analyzer
called in this process on the same image; a bad one when it gets exactly its 4xx. Anything else
(another status, a 5xx, a refused or broken connection) is an error. Latency is per request, from
sending to the whole answer.

    python benchmarks/serve_load.py [--clients 8] [--seconds 60] [--bad-share 0.2] [--workers N] [--threads 1]
    python benchmarks/serve_load.py --url http://HOST:PORT/     # a service already running

Without ``--url`` the service is started here (``hyperface serve`` in a subprocess, so the clients'
threads and the server do not share a GIL) with ``--max-upload-mb 2`` and stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from PIL import Image

from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path

MAX_UPLOAD_MB = 2


def test_image_jpeg() -> bytes:
    """The evaluation document's 640 x 480 test image, JPEG-encoded (quality 95)."""
    canvas = Image.new("RGB", (640, 480), (128, 128, 128))
    canvas.paste(Image.open(asset_path(EXAMPLE_IMAGE)).convert("RGB").resize((480, 480), Image.BILINEAR), (80, 0))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def bad_uploads(good: bytes, max_upload_bytes: int) -> dict[str, tuple[str, bytes, int]]:
    """name -> (query, body, the status the service must answer)."""
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # a few kB that decode to 400 megapixels
    return {
        "not an image": ("", b"this is not an image\n" * 50, 415),
        "truncated JPEG": ("", good[: len(good) // 3], 415),
        "unknown option": ("?colour=red", good, 400),
        "over the size limit": ("", b"\xff" * (max_upload_bytes + 1), 413),
        "decompression bomb": ("", bomb.getvalue(), 413),
    }


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    good_sent: int = 0
    good_answered: int = 0
    bad_sent: int = 0
    bad_refused: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "image/jpeg"})
    response = conn.getresponse()
    return response.status, response.read()


def client(url: str, good: bytes, expected_faces: list, bad: dict, bad_share: float, until: float, seed: int,
           tally: Tally) -> None:
    parts = urllib.parse.urlsplit(url)
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    names = sorted(bad)
    while time.monotonic() < until:
        is_bad = rng.random() < bad_share
        if is_bad:
            name = rng.choice(names)
            query, body, want = bad[name]
        else:
            name, query, body, want = "good", "", good, 200
        t0 = time.perf_counter()
        try:
            status, payload = _post(conn, "/analyze" + query, body)
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # the service may close a connection after refusing an unread body: a new one
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
            tally.error(f"{name}: {type(exc).__name__}")
            continue
        latency = time.perf_counter() - t0
        with tally.lock:
            tally.latencies.append(latency)
            if is_bad:
                tally.bad_sent += 1
            else:
                tally.good_sent += 1
        if status != want:
            tally.error(f"{name}: HTTP {status} (wanted {want})")
        elif not is_bad and json.loads(payload)["faces"] != expected_faces:
            tally.error("good: different faces")
        else:
            with tally.lock:
                if is_bad:
                    tally.bad_refused += 1
                else:
                    tally.good_answered += 1
        if status >= 400:
            conn.close()  # a refused upload may leave its body unread: start clean
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    conn.close()


def run_phase(url: str, clients: int, seconds: float, good: bytes, expected: list, bad: dict,
              bad_share: float) -> tuple[Tally, float]:
    tally = Tally()
    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(url, good, expected, bad, bad_share, start + seconds, i, tally))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally, time.monotonic() - start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(workers: int | None, threads: int, queue: int | None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "hyperface.cli.main", "serve", "--port", str(port), "--threads", str(threads),
           "--max-upload-mb", str(MAX_UPLOAD_MB)]
    cmd += ["--workers", str(workers)] if workers else []
    cmd += ["--queue", str(queue)] if queue is not None else []
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"hyperface serve exited with status {proc.returncode}: {' '.join(cmd)}")
        try:
            with urllib.request.urlopen(url + "health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("hyperface serve did not start within 180 s")


def _row(label: str, tally: Tally, wall: float) -> str:
    lat = sorted(tally.latencies)
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")
    n_err = sum(tally.errors.values())
    bad = f"{tally.bad_refused}/{tally.bad_sent}" if tally.bad_sent else "-"
    return (f"| {label} | {len(lat)} | {len(lat) / wall:.2f} | {p50 * 1000:.0f} | {p99 * 1000:.0f} | "
            f"{p99 / p50:.2f} | {tally.good_answered}/{tally.good_sent} | {bad} | {n_err} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running service (default: start hyperface serve here)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase (default 60)")
    parser.add_argument("--bad-share", type=float, default=0.2, help="share of bad uploads in phase two")
    parser.add_argument("--workers", type=int, default=None, help="service workers (default: its own)")
    parser.add_argument("--threads", type=int, default=1, help="service threads per worker")
    parser.add_argument("--queue", type=int, default=None, help="service queue (default: its own)")
    args = parser.parse_args(argv)

    from hyperface.analysis_lines import decode_image_bytes
    from hyperface.inference import FaceAnalyzer

    good = test_image_jpeg()
    expected = [f.to_dict() for f in FaceAnalyzer(threads=1)(decode_image_bytes(good, "test.jpg"))]
    proc = None
    url = args.url
    if url is None:
        proc, url = start_service(args.workers, args.threads, args.queue)
    try:
        with urllib.request.urlopen(url + "health", timeout=10) as r:
            health = json.load(r)
        bad = bad_uploads(good, health["max_upload_bytes"])
        run_phase(url, health["workers"], 5.0, good, expected, bad, 0.0)  # warm-up: a first call is slow
        good_only, wall1 = run_phase(url, args.clients, args.seconds, good, expected, bad, 0.0)
        mixed, wall2 = run_phase(url, args.clients, args.seconds, good, expected, bad, args.bad_share)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"hyperface serve: {health['workers']} worker(s), capacity {health['capacity']}; {args.clients} clients, "
          f"{args.seconds:g} s per phase; 640x480 JPEG of {len(good):,} bytes, {len(expected)} face(s)\n")
    print("| phase | requests | requests/s | p50 ms | p99 ms | p99/p50 | good answered | bad refused (4xx) | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(_row("good uploads", good_only, wall1))
    print(_row(f"{args.bad_share:.0%} bad uploads", mixed, wall2))
    for label, tally in (("good uploads", good_only), ("bad uploads", mixed)):
        for what, n in sorted(tally.errors.items()):
            print(f"- {label}: {n} x {what}")
    failed = good_only.errors or mixed.errors or not good_only.latencies
    return 1 if failed else 0



if __name__ == "__main__":
    sys.exit(main())
