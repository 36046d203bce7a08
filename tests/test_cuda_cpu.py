"""The CUDA entry points on a machine without a GPU, for both builds CI makes: the CPU build
(calls that need a device say deepcore was built without CUDA) and the CUDA build (they say
there is no CUDA device). Either way the queries answer as PyTorch does without a GPU."""
import warnings

import pytest

import deepcore as dc

pytestmark = pytest.mark.skipif(dc.cuda.is_available(), reason="a CUDA device is present")
BUILT = dc._C._build_info()["cuda"]
NO_DEVICE = "no CUDA device" if BUILT else "deepcore was built without CUDA"


def test_queries_answer_like_torch_without_a_gpu():
    assert dc.cuda.is_available() is False
    assert dc.cuda.device_count() == 0
    assert dc.cuda.is_initialized() is False
    for fn in (dc.cuda.memory_allocated, dc.cuda.max_memory_allocated, dc.cuda.memory_reserved,
               dc.cuda.max_memory_reserved):
        assert fn() == 0
    dc.cuda.manual_seed(0)
    dc.cuda.manual_seed_all(0)
    dc.cuda.empty_cache()
    dc.cuda.reset_peak_memory_stats()


@pytest.mark.parametrize("call", [
    lambda: dc.cuda.synchronize(), lambda: dc.cuda.current_device(),
    lambda: dc.cuda.get_device_name(), lambda: dc.cuda.get_device_properties(0),
    lambda: dc.cuda.get_device_capability(), lambda: dc.cuda.current_stream(),
    lambda: dc.cuda.default_stream(), lambda: dc.cuda.Stream(), lambda: dc.cuda.Event(),
    lambda: dc.cuda.set_device(0), lambda: dc.cuda.stream(None),
    lambda: dc.cuda.set_stream(None), lambda: dc.ones(2).record_stream(None),
])
def test_device_calls_say_why_there_is_no_device(call):
    with pytest.raises(RuntimeError, match=NO_DEVICE):
        call()


@pytest.mark.parametrize("call", [
    lambda: dc.randn(3, device="cuda"), lambda: dc.ones(2).cuda(), lambda: dc.ones(2).to("cuda"),
    lambda: dc.zeros(2, device="cuda:1"),
])
def test_cuda_tensors_are_a_clear_error(call):
    with pytest.raises(RuntimeError, match=NO_DEVICE):
        call()


def test_pinned_memory():
    x = dc.ones(3)
    assert x.is_pinned() is False
    with pytest.raises(RuntimeError, match=NO_DEVICE):
        x.pin_memory()
    with pytest.warns(UserWarning, match="pin_memory=True"):
        loader = dc.utils.data.DataLoader(dc.utils.data.TensorDataset(dc.arange(4.0)),
                                          batch_size=2, pin_memory=True)
    assert loader.pin_memory is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [b[0].tolist() for b in loader] == [[0.0, 1.0], [2.0, 3.0]]


def test_show_config_reports_the_cuda_build():
    text = dc.show_config()
    if BUILT:
        assert "CUDA:          built" in text and "CUDA runtime:" in text
        assert "CUDA devices:  none" in text
    else:
        assert "CUDA:          not built" in text
