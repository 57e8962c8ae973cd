"""benchmarks/quantize_stage_two.py: stage two's networks in 8-bit integers, read back as the analyzer reads them."""

from __future__ import annotations

import numpy as np
import pytest
from benchmark_modules import load_benchmark

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")

from hyperface.inference.assets import bundled  # noqa: E402
from hyperface.runtime import RuntimeOptions, load_runtime  # noqa: E402

quantize_stage_two = load_benchmark("quantize_stage_two")


def test_the_quantized_fine_network_keeps_its_config_and_answers_near_the_float_one(tmp_path):
    pipeline = bundled()
    if "fine" not in pipeline:
        pytest.skip("this installation ships no fine landmark network")
    options = RuntimeOptions("onnx", "cpu", 1)
    source = pipeline.networks["fine"].onnx
    float_net = load_runtime(source, options, batch_size=8)
    size = float_net.config.input_size
    rng = np.random.default_rng(0)
    # smooth random pictures: calibration and test crops alike (a face's crops are smooth too)
    crops = [np.repeat(np.repeat(rng.integers(40, 220, (4, size // 8, size // 8, 3)), 8, 1), 8, 2).astype(np.uint8)
             for _ in range(4)]
    recorder = quantize_stage_two.Recorder(float_net)
    for batch in crops:
        recorder(batch)
    assert len(recorder.inputs) == 4 and recorder.config is float_net.config  # records, and is the network
    out = tmp_path / "fine-int8.onnx"
    quantize_stage_two.quantize(source, recorder.inputs, out)
    int8 = load_runtime(out, options, batch_size=8)
    assert int8.config.point_set == float_net.config.point_set and int8.config.tasks == float_net.config.tasks
    a, b = float_net(crops[0])["landmarks"], int8(crops[0])["landmarks"]
    assert a.shape == b.shape
    diff = np.abs(a - b).max()
    assert 0 < diff < 0.05  # quantized (not the same graph) and still near: landmarks are box fractions
    assert out.stat().st_size < 0.5 * source.stat().st_size
