"""Backends: ``RuntimeOptions`` validates what runs where; the analyzer runs every network on one engine and
hands its thread count to both engines."""

from __future__ import annotations

import pytest
import torch

from hyperface.inference import FaceAnalyzer
from hyperface.inference.proposals import FastProposals
from hyperface.runtime import BACKENDS, RuntimeOptions

from inference_stubs import BlobNet, blob_image


def test_auto_is_onnxruntime_on_the_cpu_and_pytorch_on_a_gpu():
    assert BACKENDS == ("auto", "onnx", "torch")
    assert RuntimeOptions().engine == "onnx" and RuntimeOptions("auto", "cpu").engine == "onnx"
    assert RuntimeOptions("auto", "cuda").engine == "torch" and RuntimeOptions("auto", "cuda:1").engine == "torch"
    assert RuntimeOptions("torch").engine == "torch" and RuntimeOptions("onnx", "cuda").engine == "onnx"
    assert RuntimeOptions(device=" CUDA:0 ").device == "cuda:0"  # normalised
    assert RuntimeOptions(threads=2).threads == 2 and RuntimeOptions().threads is None


@pytest.mark.parametrize("backend", ["tensorrt", "", "ONNX", None])
def test_an_unknown_backend_names_the_known_ones(backend):
    with pytest.raises(ValueError, match="auto, onnx, torch"):
        RuntimeOptions(backend)


@pytest.mark.parametrize("device", ["mps", "meta", "gpu", "cuda:x", "cuda:-1", "xla", ""])
def test_an_unsupported_device_is_a_value_error_naming_cpu_and_cuda(device):
    with pytest.raises(ValueError, match=r"'cpu'.*'cuda'"):
        RuntimeOptions("auto", device)
    with pytest.raises(ValueError, match=r"'cpu'.*'cuda'"):
        FaceAnalyzer(device=device)


@pytest.mark.parametrize("threads", [0, -1, 1.5, 2.0, "2", True])
def test_threads_must_be_a_whole_number_of_at_least_one(threads):
    with pytest.raises(ValueError, match="threads"):
        RuntimeOptions(threads=threads)


def test_a_missing_gpu_is_a_value_error_before_any_network_loads():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        RuntimeOptions("torch", "cuda").torch_device()


def _session_threads(runtime) -> int:
    return runtime._run.session.get_session_options().intra_op_num_threads


def test_the_analyzer_runs_every_network_on_one_backend_and_sets_both_thread_pools(proposal_weights):
    before = torch.get_num_threads()
    fast = {"weights": proposal_weights, "min_face": 32, "refine": None}
    try:
        a = FaceAnalyzer(BlobNet(), proposals="fast", proposal_options=fast, threads=1)
        assert a.backend == "onnx" and a.options == RuntimeOptions("auto", "cpu", 1)
        assert a.stage_one.runtime.engine == a.proposals.runtime.engine == "onnx"
        assert _session_threads(a.stage_one.runtime) == _session_threads(a.proposals.runtime) == 1
        torch.set_num_threads(3)
        b = FaceAnalyzer(BlobNet(), proposals="fast", proposal_options=fast, backend="torch", threads=1)
        assert b.backend == "torch" and b.proposals.runtime.engine == "torch"
        assert torch.get_num_threads() == 1  # PyTorch's process-wide pool, set once the torch engine runs
        image = blob_image(200, 140, [(70, 60, 20)])
        fa, fb = a(image), b(image)
        assert len(fa) == len(fb) == 1
        assert abs(fa[0].score - fb[0].score) < 1e-4
        # a source built by the caller keeps its own engine; the analyzer's networks follow the analyzer
        own = FastProposals(proposal_weights, min_face=32, refine=None)
        c = FaceAnalyzer(BlobNet(), proposals=own, backend="torch")
        assert c.backend == "torch" and c.proposals.runtime.engine == "onnx"
        with pytest.raises(ValueError, match="threads"):
            FaceAnalyzer(BlobNet(), proposals=own, threads=0)
    finally:
        torch.set_num_threads(before)


def test_onnx_threads_spin_briefly_before_they_sleep(proposal_weights):
    from hyperface.runtime import SPIN_MICROSECONDS, session_options

    def entry(opts, key):
        try:
            return opts.get_session_config_entry(key)
        except RuntimeError:  # onnxruntime's answer for a key never set
            return None

    def entries(opts):
        return [entry(opts, k) for k in ("session.intra_op.allow_spinning", "session.intra_op.spin_duration_us")]

    assert SPIN_MICROSECONDS > 0 and entries(session_options()) == ["1", str(SPIN_MICROSECONDS)]
    assert entries(session_options(spin_us=200)) == ["1", "200"]
    assert entries(session_options(spin_us=0)) == ["0", None]  # never spins
    a = FaceAnalyzer(BlobNet(), proposals="fast", proposal_options={"weights": proposal_weights, "refine": None})
    for runtime in (a.stage_one.runtime, a.proposals.runtime):  # every session the analyzer builds
        assert entries(runtime._run.session.get_session_options()) == ["1", str(SPIN_MICROSECONDS)]


def test_an_onnxruntime_that_cannot_bound_the_spin_never_spins(monkeypatch):
    import onnxruntime

    from hyperface.runtime import session_options

    monkeypatch.setattr(onnxruntime, "__version__", "1.20.1")  # before session.intra_op.spin_duration_us
    opts = session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
