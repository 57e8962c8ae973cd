"""Analyse large image collections on a Ray cluster (``pip install "hyperface[ray]"``).

Ray Data reads the files (local folders, or any filesystem Ray reads, e.g. ``s3://bucket/photos``)
as bytes, so workers need no shared disk; an actor pool runs the analyzer (``map_batches`` with a
callable class: one :class:`~hyperface.FaceAnalyzer` per actor, built from a settings dict, which is
what crosses the network, not the analyzer); the driver streams the answers into one JSON-lines or
Parquet file, written atomically. Each actor reserves as many CPUs as its analyzer has threads, so
actors x threads never exceed a node's CPUs.

The lines are ``hyperface analyze``'s (:func:`hyperface.analysis_lines.result_line`), in the order
they finish; an image that cannot be decoded is a line ``{"input": PATH, "error": WHY}``.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperface import fileio
from hyperface.analysis_lines import ImageReadError, analyze_bytes, error_line
from hyperface.data.images import IMAGE_SUFFIXES

__all__ = ["analyze_with_ray", "run_ray_cli", "RayRun", "FORMATS", "parquet_schema"]

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "parquet")
_PARQUET_ROWS = 1024  # rows per Parquet row group written by the driver


@dataclass(frozen=True)
class RayRun:
    """What :func:`analyze_with_ray` did: images analysed, faces found, inputs that failed, seconds."""

    output: Path
    images: int
    faces: int
    failures: int
    seconds: float


class _AnalyzeBatch:
    """The actor's callable: one analyzer, built once from its settings, applied to each image of a batch."""

    def __init__(self, settings: dict[str, Any], max_pixels: int | None) -> None:
        from hyperface.inference import FaceAnalyzer

        self.analyzer = FaceAnalyzer(**settings)
        self.max_pixels = max_pixels

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        lines, faces, failed = [], [], []
        for data, path in zip(batch["bytes"], batch["path"]):
            try:
                record = analyze_bytes(self.analyzer, bytes(data), str(path), self.max_pixels)
            except ImageReadError as exc:  # one bad file is a line, never the end of the run
                record = error_line(path, None, str(exc))
            except Exception as exc:  # nor is one image the analyzer fails on
                record = error_line(path, None, f"{path}: analysis failed ({type(exc).__name__}: {exc})")
            lines.append(json.dumps(record))
            faces.append(len(record.get("faces", ())))
            failed.append("error" in record)
        return {"line": lines, "faces": faces, "failed": failed}


def _check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as FaceAnalyzer keyword arguments; a ValueError naming any it does not take."""
    from hyperface.inference import FaceAnalyzer

    known = set(inspect.signature(FaceAnalyzer).parameters)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown analyzer setting(s) {', '.join(unknown)}; FaceAnalyzer takes "
                         f"{', '.join(sorted(known))}")
    threads = settings.get("threads")
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return dict(settings)


def _check_inputs(inputs: Sequence[str | Path]) -> list[str]:
    """Inputs as Ray paths; local ones must exist (a URI such as ``s3://...`` is Ray's to check)."""
    paths = [str(p) for p in inputs]
    if not paths:
        raise ValueError("give at least one image, folder or URI")
    for p in paths:
        if "://" not in p and not Path(p).exists():
            raise FileNotFoundError(f"{p}: no such file or folder")
    return paths


def parquet_schema():
    """The Parquet schema of the lines: ``faces`` as a list of structs, ``error`` for failed inputs."""
    import pyarrow as pa

    f64 = pa.float64()
    face = pa.struct([("box", pa.list_(f64)), ("score", f64), ("landmarks", pa.list_(pa.list_(f64))),
                      ("point_set", pa.string()), ("visibility", pa.list_(f64)),
                      ("pose", pa.struct([("roll", f64), ("pitch", f64), ("yaw", f64)])),
                      ("gender", pa.string()), ("gender_probability", f64),
                      ("sources", pa.map_(pa.string(), pa.string()))])
    return pa.schema([("input", pa.string()), ("frame", pa.int64()), ("width", pa.int64()),
                      ("height", pa.int64()), ("faces", pa.list_(face)), ("error", pa.string())])


class _JsonLinesSink:
    def __init__(self, fh) -> None:
        self.fh = fh

    def write(self, lines: Sequence[str]) -> None:
        self.fh.write("".join(line + "\n" for line in lines))

    def close(self) -> None:
        pass


class _ParquetSink:
    def __init__(self, fh) -> None:
        import pyarrow.parquet as pq

        self.schema = parquet_schema()
        self.writer = pq.ParquetWriter(fh, self.schema)
        self.rows: list[dict] = []

    def write(self, lines: Sequence[str]) -> None:
        self.rows += [json.loads(line) for line in lines]
        if len(self.rows) >= _PARQUET_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


def _default_actors(threads: int) -> int:
    """As many actors as the cluster's CPUs hold at ``threads`` each (at least one)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1) // threads))


def analyze_with_ray(inputs: Sequence[str | Path], output: str | Path, *, address: str | None = None,
                     settings: dict[str, Any] | None = None, num_actors: int | None = None,
                     format: str = "jsonl", max_pixels: int | None = None, batch_size: int = 16) -> RayRun:
    """Analyse the images under ``inputs`` on Ray and write one line per image to ``output``.

    ``inputs``: image files, folders (searched recursively for image suffixes) or URIs Ray reads.
    ``address``: the Ray cluster (``"auto"``, ``"ray://HOST:10001"``); None: the Ray session this
    process already has, else ``$RAY_ADDRESS``, else a local one for this call. ``settings``:
    :class:`~hyperface.FaceAnalyzer` keyword arguments (``threads``: each actor's CPU threads and
    CPUs reserved, default 1). ``num_actors``: analyzers in the pool (default: the cluster's CPUs /
    threads). ``format``: ``"jsonl"`` or ``"parquet"`` (:func:`parquet_schema`). ``max_pixels``: the
    decoding pixel budget (default: :func:`hyperface.data.images.max_image_pixels`).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    settings = _check_settings(settings or {})
    paths = _check_inputs(inputs)
    threads = int(settings.setdefault("threads", 1))
    if num_actors is not None and num_actors < 1:
        raise ValueError(f"num_actors must be >= 1, got {num_actors}")
    output = Path(output)
    if output.is_dir():
        raise ValueError(f"{output} is a folder; the output is one {format} file")
    if any("://" not in p and Path(p).resolve() == output.resolve() for p in paths):
        raise ValueError(f"{output} is one of the inputs; choose another output file")
    output.parent.mkdir(parents=True, exist_ok=True)
    # One analyzer built here first: a bad setting (a missing weights file, a value out of range) is then
    # one clear error, where in an actor's constructor Ray would restart the actor again and again.
    _AnalyzeBatch(settings, max_pixels)
    import ray  # after the checks: a usage error needs no Ray

    started = time.perf_counter()
    owns_session = not ray.is_initialized()
    if owns_session:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        actors = num_actors or _default_actors(threads)
        # Reading is I/O: its tasks reserve no CPU, or an actor pool holding every CPU would starve them.
        ds = ray.data.read_binary_files(paths, include_paths=True, num_cpus=0,
                                        file_extensions=sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
        ds = ds.map_batches(_AnalyzeBatch, fn_constructor_kwargs={"settings": settings, "max_pixels": max_pixels},
                            batch_size=batch_size, batch_format="numpy", num_cpus=threads,
                            compute=ray.data.ActorPoolStrategy(size=actors))
        images = faces = failures = 0
        with fileio.atomic_open(output, "w" if format == "jsonl" else "wb") as fh:
            sink = _JsonLinesSink(fh) if format == "jsonl" else _ParquetSink(fh)
            for batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):
                sink.write([str(line) for line in batch["line"]])
                failed = int(batch["failed"].sum())
                images += len(batch["line"]) - failed
                failures += failed
                faces += int(batch["faces"].sum())
            sink.close()
    finally:
        if owns_session:
            ray.shutdown()
    return RayRun(output=output, images=images, faces=faces, failures=failures,
                  seconds=time.perf_counter() - started)


def run_ray_cli(inputs: Sequence[str | Path], json_out: str | Path | None, address: str | None,
                settings: dict[str, Any]) -> int:
    """``hyperface analyze INPUT... --json OUT --ray [ADDRESS]``: exit status 0, 1 (an input failed) or 2
    (a usage error); ``OUT`` ending in ``.parquet`` writes Parquet."""
    if json_out is None:
        print("hyperface analyze: --ray needs --json OUT (.jsonl or .parquet): the results go to a file",
              file=sys.stderr)
        return 2
    fmt = "parquet" if str(json_out).lower().endswith(".parquet") else "jsonl"
    try:
        run = analyze_with_ray(inputs, json_out, address=address or None, settings=settings, format=fmt)
    except ImportError as exc:
        print(f"hyperface analyze: --ray needs Ray Data: pip install \"hyperface[ray]\" ({exc})", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"hyperface analyze: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:  # no Ray cluster at ADDRESS
        print(f"hyperface analyze: --ray {address}: {exc}", file=sys.stderr)
        return 2
    print(f"analysed {run.images} image(s) on Ray, {run.faces} face(s), {run.failures} failure(s) in "
          f"{run.seconds:.1f} s; {fmt}: {run.output}")
    return 1 if run.failures else 0
