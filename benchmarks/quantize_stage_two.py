"""Stage two's networks in 8-bit integers: how much faster, and what it costs the answers.

Static quantization (onnxruntime's QDQ format: int8 weights per channel, uint8 activations) of the
bundled stage two and its fine landmark network, calibrated on the crops these networks really see:
the pipeline's own aligned crops of training faces (the ``--split train`` faces of the sources given),
recorded while the bundled analyzer runs. Writes ``OUT/hyperface-aligned-int8.onnx`` and
``OUT/hyperface-aligned-fine-int8.onnx`` (the float files' metadata copied, so the analyzer reads them
as it reads the shipped ones) and prints each network's time per face against its float file,
alternating, with one thread and with onnxruntime's default threads (int8 gains on one thread only
on these cores: its convolutions do not split across threads as the float ones do). The answers: run ``hyperface evaluate`` with the files (the command is printed).

    python benchmarks/quantize_stage_two.py --out int8 --calibrate pts:../shared/data/300w/lfpw/trainset \\
        --calibrate pts:../shared/data/300w/helen/trainset --calibrate "mtfl:../shared/data/mtfl?split=training"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hyperface.data.images import load_image
from hyperface.evaluate.datasets import DEFAULT_VAL_FRACTION, EvalDataset
from hyperface.inference import FaceAnalyzer
from hyperface.runtime import RuntimeOptions, load_runtime
from timing import alternating_ms


class Recorder:
    """A network that keeps every input it is given (and answers as the network it wraps)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.inputs: list[np.ndarray] = []

    def __call__(self, pixels: np.ndarray) -> Any:
        self.inputs.append(np.array(pixels))
        return self.runtime(pixels)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runtime, name)


def record_inputs(sources: list[str], images: int) -> dict[str, tuple[Path, list[np.ndarray]]]:
    """Stage two's networks (by role) -> (their ONNX file, the crops the pipeline gave them) over the first
    ``images`` training images of each source."""
    analyzer = FaceAnalyzer(threads=1)
    stage_two = analyzer.stage_two
    if stage_two is None:
        raise SystemExit("the bundled analyzer has no stage two to quantize")
    networks = {"stage_two": stage_two.main} | ({"fine": stage_two.fine} if stage_two.fine is not None else {})
    recorders = {}
    for role, network in networks.items():
        recorders[role] = network.runtime = Recorder(network.runtime)
    for spec in sources:
        dataset = EvalDataset(spec.split(":")[0], [spec], split="train", val_fraction=DEFAULT_VAL_FRACTION)
        for k, record in enumerate(dataset):
            if k >= images:
                break
            analyzer(load_image(record.image))
    return {role: (Path(str(r.runtime.source)), r.inputs) for role, r in recorders.items()}


def quantize(source: Path, crops: list[np.ndarray], out: Path) -> None:
    """``source`` quantized to ``out``, calibrated on ``crops`` (batches of the network's input)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(source))
    name = model.graph.input[0].name

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{name: batch[i:i + 1]} for batch in crops for i in range(len(batch))])

        def get_next(self) -> dict | None:
            return next(self.items, None)

    quantize_static(str(source), str(out), Crops(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    quantized = onnx.load(str(out))
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(model.metadata_props)  # the network's config, as the runtime reads it
    onnx.save(quantized, str(out))


def time_per_face(files: dict[str, Path], threads: int | None = 1) -> dict[str, float]:
    """Median ms per call of one face with ``threads`` (None: onnxruntime's default), the files in alternation."""
    options = RuntimeOptions("onnx", "cpu", threads)
    runtimes = {label: load_runtime(path, options, batch_size=1) for label, path in files.items()}
    size = next(iter(runtimes.values())).config.input_size
    face = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    return alternating_ms({label: (lambda r=runtime: r(face)) for label, runtime in runtimes.items()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the quantized ONNX files")
    parser.add_argument("--calibrate", action="append", required=True, metavar="FORMAT:PATH",
                        help="faces whose training images calibrate (repeat)")
    parser.add_argument("--images", type=int, default=100, help="training images per source")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    recorded = record_inputs(args.calibrate, args.images)
    files: dict[str, Path] = {}
    for role, (source, crops) in recorded.items():
        if not crops:
            raise SystemExit(f"no face reached stage two's {role} network in the calibration images")
        out = args.out / f"{source.stem}-int8.onnx"
        quantize(source, crops, out)
        print(f"{role}: {sum(len(c) for c in crops)} crops calibrate {out}")
        files[f"{role} float"], files[f"{role} int8"] = source, out
    one, default = time_per_face(files, threads=1), time_per_face(files, threads=None)
    print("\n| network | ms / face, one thread | ratio to float | ms / face, default threads | ratio to float |")
    print("|---|---:|---:|---:|---:|")
    for label in files:
        base = label.replace(" int8", " float")
        print(f"| {label} | {one[label]:.3f} | {one[label] / one[base]:.2f}x | {default[label]:.3f} | "
              f"{default[label] / default[base]:.2f}x |")
    s2, fine = files.get("stage_two int8"), files.get("fine int8")
    print(f"\nanswers: hyperface evaluate --weights \"src/hyperface/assets/hyperface-compact.onnx+{s2}\""
          + (f" --fine {fine}" if fine else "") + " --split val --mode full --data ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
