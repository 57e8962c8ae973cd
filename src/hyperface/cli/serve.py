"""``hyperface serve``: the analyzer as an HTTP service, with a page to drop photos on (``GET /``).

``POST /analyze`` (a multipart file or the raw image as the body; options as query parameters)
answers the JSON object of a line of ``hyperface analyze``; ``GET /health`` says how busy it is.
Needs ``pip install "hyperface[serve]"``. Exit status 2 for a usage error (found before listening:
a bad setting, weights that do not load).
"""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("hyperface.serve")

DEFAULT_MAX_MEGAPIXELS = 50.0
DEFAULT_QUEUE = 16  # with a photo in about 0.2 s per worker, the last one waits a few seconds, not minutes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hyperface.inference.proposals import DEFAULT_PROPOSALS

    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                        "only; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="analyzer workers, one analyzer each (default: this machine's CPUs / --threads)")
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="CPU threads of each worker (default 1)")
    parser.add_argument("--queue", type=int, default=DEFAULT_QUEUE, metavar="N",
                        help="requests that may wait for a busy worker; one more gets 503 at once (default "
                             f"{DEFAULT_QUEUE})")
    parser.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB",
                        help="largest request body; a larger one gets 413 (default 20)")
    parser.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_MEGAPIXELS, metavar="MP",
                        help="largest image decoded (width x height); a larger one, e.g. a decompression bomb, "
                             f"gets 413 before it is decoded (default {DEFAULT_MAX_MEGAPIXELS:g})")
    parser.add_argument("--weights", help="weights file (default: the bundled hyperface-compact)")
    parser.add_argument("--proposals", default=DEFAULT_PROPOSALS, metavar="SOURCE",
                        help="candidate source, as for analyze (default: %(default)s)")
    parser.add_argument("--stage-two", default="auto", metavar="auto|none|bundled|WEIGHTS",
                        help="the aligned-face network, as for analyze")
    parser.add_argument("--fine", default="auto", metavar="auto|none|bundled|WEIGHTS",
                        help="stage two's fine landmark network, as for analyze")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto", help="network runtime")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")


def _check(args: argparse.Namespace) -> str | None:
    """The first usage error in ``args``, or None."""
    for name in ("port", "threads", "max_upload_mb", "max_megapixels"):
        if getattr(args, name) <= 0:
            return f"--{name.replace('_', '-')} must be positive"
    if args.workers is not None and args.workers < 1:
        return "--workers must be >= 1"
    if args.queue < 0:
        return "--queue must be >= 0"
    return None


def analyzer_settings(args: argparse.Namespace) -> dict:
    """The ``FaceAnalyzer`` settings every worker's analyzer is built from."""
    return {"weights": args.weights, "proposals": args.proposals, "stage_two": args.stage_two,
            "fine": None if args.fine == "none" else args.fine, "backend": args.backend, "device": args.device,
            "threads": args.threads}


def run(args: argparse.Namespace) -> int:
    import uvicorn  # the serve extra: cli.main names it when missing

    from hyperface.serve import AnalyzerPool, create_app
    from hyperface.serve.pool import default_workers, machine_cpus

    problem = _check(args)
    if problem:
        print(f"hyperface serve: {problem}", file=sys.stderr)
        return 2
    workers = args.workers or default_workers(args.threads)
    if workers * args.threads > machine_cpus():
        log.warning("%d workers x %d threads exceed this machine's %d CPUs: requests will compete for them",
                    workers, args.threads, machine_cpus())
    pool = AnalyzerPool(analyzer_settings(args), workers, args.queue, max_pixels=int(args.max_megapixels * 1e6))
    log.info("loading %d analyzer(s)", workers)
    try:
        pool.start()
    except (FileNotFoundError, ValueError, TypeError, ImportError) as exc:
        print(f"hyperface serve: {exc}", file=sys.stderr)
        return 2
    try:
        app = create_app(pool, max_upload_bytes=int(args.max_upload_mb * 2 ** 20))
        log.info("%d worker(s) x %d thread(s), queue %d; page at http://%s:%d/", workers, args.threads,
                 pool.queue_size, args.host, args.port)
        uvicorn.run(app, host=args.host, port=args.port, log_level="info", timeout_keep_alive=5)
    finally:
        pool.close()
    return 0
