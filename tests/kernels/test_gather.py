import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gigapatch.errors import DeviceError, InvalidArgumentError, RegionError
from gigapatch.kernels import array_module, gather, resolve_device, to_host
from tests.helpers import gpu_cupy, padded_patches


def _reference(block, ys, xs, size):
    h, w = size
    return np.stack([block[y : y + h, x : x + w] for y, x in zip(ys, xs, strict=True)])


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_gather_equals_slicing(data):
    bh, bw = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40))
    c = data.draw(st.sampled_from([1, 3, 4]))
    dtype = data.draw(st.sampled_from([np.uint8, np.uint16, np.float32]))
    block = np.random.default_rng(0).integers(0, 200, (bh, bw, c)).astype(dtype)
    h, w = data.draw(st.integers(1, bh)), data.draw(st.integers(1, bw))
    n = data.draw(st.integers(0, 20))
    ys = data.draw(st.lists(st.integers(0, bh - h), min_size=n, max_size=n))
    xs = data.draw(st.lists(st.integers(0, bw - w), min_size=n, max_size=n))
    out = gather(block, ys, xs, (h, w))
    assert out.shape == (n, h, w, c) and out.dtype == block.dtype
    if n:
        assert np.array_equal(out, _reference(block, ys, xs, (h, w)))


def test_gather_fills_a_given_output():
    block = np.arange(100, dtype=np.uint8).reshape(10, 10, 1)
    out = np.zeros((2, 3, 3, 1), np.uint8)
    assert gather(block, [0, 7], [1, 7], (3, 3), out=out) is out
    assert np.array_equal(out, _reference(block, [0, 7], [1, 7], (3, 3)))


@pytest.mark.parametrize(("ys", "xs"), [([0, 8], [0, 0]), ([0], [-1]), ([-3], [2])])
def test_gather_bounds_checks_before_copying(ys, xs):
    block = np.zeros((10, 10, 3), np.uint8)
    out = np.full((len(ys), 3, 3, 3), 7, np.uint8)
    with pytest.raises(RegionError, match=r"spanning 3x3 lies outside the 10x10 block"):
        gather(block, ys, xs, (3, 3), fill=None, out=out)
    assert (out == 7).all()  # nothing was copied


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_gather_with_dilation_and_fill_equals_padded_slicing(data):
    bh, bw = data.draw(st.integers(1, 20)), data.draw(st.integers(1, 20))
    block = np.random.default_rng(3).integers(1, 200, (bh, bw, 2)).astype(np.int16)
    h, w = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    ry, rx = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    n = data.draw(st.integers(1, 8))
    ys = data.draw(st.lists(st.integers(-30, bh + 5), min_size=n, max_size=n))
    xs = data.draw(st.lists(st.integers(-30, bw + 5), min_size=n, max_size=n))
    fill = data.draw(st.sampled_from([0, -1, 255]))
    out = gather(block, ys, xs, (h, w), dilation=(ry, rx), fill=fill)
    assert np.array_equal(out, padded_patches(block, ys, xs, (h, w), (ry, rx), fill))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"size": 0}, "size must be at least 1; got 0"),
    ({"size": (2, 2), "dilation": (1, 0)}, r"dilation must be at least 1; got \(1, 0\)"),
    ({"size": 2, "dilation": 1.5}, "dilation must be an integer or a pair of integers"),
])
def test_gather_checks_its_arguments(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        gather(np.zeros((4, 4, 1)), [0], [0], **kwargs)


def test_gather_runs_on_a_strict_non_host_device():
    xps = pytest.importorskip("array_api_strict")
    device = xps.Device("device1")
    host = np.random.default_rng(1).integers(0, 255, (12, 14, 3), dtype=np.uint8)
    block = xps.asarray(host, device=device)
    out = gather(block, [0, 5, 9], [1, 2, 11], (3, 3))
    assert out.device == device
    back = np.asarray(xps.asarray(out, device=xps.Device("CPU_DEVICE")))
    assert np.array_equal(back, _reference(host, [0, 5, 9], [1, 2, 11], (3, 3)))


def test_device_resolution_without_gpu():
    if gpu_cupy() is not None:
        pytest.skip("a GPU is present: auto resolves to it")
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == "cpu"
    assert array_module("cpu") is np
    with pytest.raises(DeviceError, match=r"pip install 'gigapatch\[gpu\]'"):
        resolve_device("gpu")


def test_device_names_are_checked():
    with pytest.raises(
        InvalidArgumentError, match="device must be one of auto, cpu, gpu; got 'tpu'"
    ):
        resolve_device("tpu")


def test_to_host_passes_numpy_through_and_copies_a_device_array_once():
    a = np.ones(3)
    assert to_host(a) is a

    class DeviceArray:  # what to_host needs of a CuPy array: .get(), one device→host copy
        copies = 0

        def get(self):
            DeviceArray.copies += 1
            return np.arange(4)

    host = to_host(DeviceArray())
    assert type(host) is np.ndarray and host.tolist() == [0, 1, 2, 3]
    assert DeviceArray.copies == 1


@pytest.mark.gpu
@pytest.mark.skipif(gpu_cupy() is None, reason="no CUDA device")
def test_gather_on_gpu_equals_numpy():
    import cupy

    host = np.random.default_rng(2).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    ys, xs = [0, 10, 33], [0, 47, 50]
    out = gather(cupy.asarray(host), ys, xs, (31, 30))
    assert isinstance(out, cupy.ndarray)
    assert np.array_equal(to_host(out), _reference(host, ys, xs, (31, 30)))
