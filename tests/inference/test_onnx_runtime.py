import pytest
import torch

from inference import onnx_runtime
from models.espcn import ESPCN

pytestmark = pytest.mark.skipif(not onnx_runtime.available(), reason="onnxruntime is not installed")


@pytest.fixture(autouse=True)
def cache_in(tmp_path, monkeypatch):
    monkeypatch.setenv("SR_KERNEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def small_espcn(seed: int = 0) -> ESPCN:
    torch.manual_seed(seed)
    return ESPCN(scale=3, channels=1, features=(8, 4)).eval()


def test_equals_eager_on_other_sizes():
    net = small_espcn()
    ort = onnx_runtime.ort_network(net, torch.rand(2, 1, 11, 13), threads=1)
    for shape in [(1, 1, 20, 31), (3, 1, 7, 9)]:
        x = torch.rand(shape)
        with torch.no_grad():
            assert torch.allclose(ort(x), net(x), atol=1e-5)


def test_export_cached_by_weights(cache_in, monkeypatch):
    net = small_espcn()
    onnx_runtime.ort_network(net, torch.rand(2, 1, 11, 13), threads=1)
    assert len(list((cache_in / "onnx").glob("*.onnx"))) == 1

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr("inference.weight_files.onnx_program", no_export)
    x = torch.rand(1, 1, 9, 10)
    with torch.no_grad():
        assert torch.allclose(onnx_runtime.ort_network(net, x, threads=1)(x), net(x), atol=1e-5)
    other = small_espcn(seed=1)  # other weights: another file
    with pytest.raises(AssertionError, match="exported again"):
        onnx_runtime.ort_network(other, x, threads=1)
    assert onnx_runtime.weights_key(net, True) != onnx_runtime.weights_key(net, False)


def test_unwritable_cache_still_runs(cache_in):
    cache_in.parent.mkdir(parents=True, exist_ok=True)
    cache_in.write_text("a file where the folder should be")
    net = small_espcn()
    x = torch.rand(1, 1, 9, 10)
    with torch.no_grad():
        assert torch.allclose(onnx_runtime.ort_network(net, x, threads=1)(x), net(x), atol=1e-5)


def test_session_follows_pytorchs_thread_count_unless_threads_are_given():
    """A session first used inside single-threaded workers (espcn.py eval) must not stay single-threaded."""
    net, x = small_espcn(), torch.rand(1, 1, 12, 12)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        follows = onnx_runtime.ort_network(net, torch.rand(2, 1, 11, 13))
        pinned = onnx_runtime.ort_network(net, torch.rand(2, 1, 11, 13), threads=1)
        first = follows(x)
        torch.set_num_threads(2)
        with torch.no_grad():
            assert torch.allclose(follows(x), first) and torch.allclose(first, net(x), atol=1e-5)
        pinned(x)
        assert {n: s.get_session_options().intra_op_num_threads for n, s in follows.sessions.items()} == {1: 1, 2: 2}
        assert [s.get_session_options().intra_op_num_threads for s in pinned.sessions.values()] == [1]
    finally:
        torch.set_num_threads(before)
