"""Namespaces and devices for the array API tests (shared by their modules)."""

import pytest
from sklearn.externals.array_api_compat import get_namespace as compat_namespace

# (namespace, device name); the GPU and torch entries skip where unavailable.
NAMESPACES = [
    ("array_api_strict", "CPU_DEVICE"),
    ("array_api_strict", "device1"),
    ("torch", "cpu"),
    ("torch", "cuda"),
    ("cupy", None),
]
NS_IDS = [f"{ns}-{dev}" for ns, dev in NAMESPACES]


def namespace(name, device_name):
    """``(xp, device)``: the (compatibility-wrapped) namespace and a device."""
    mod = pytest.importorskip(name)
    if name == "array_api_strict":
        return mod, mod.Device(device_name)
    if name == "torch":
        if device_name == "cuda" and not mod.cuda.is_available():
            pytest.skip("PyTorch without CUDA")
        return compat_namespace(mod.asarray(1)), device_name
    try:  # cupy
        mod.cuda.runtime.getDeviceCount()
    except Exception:  # pragma: no cover - no GPU
        pytest.skip("CuPy without a GPU")
    return compat_namespace(mod.asarray(1)), None  # pragma: no cover


def same_place(a, xp, device):
    """``a`` is an array of ``xp`` on ``device``."""
    a_xp = compat_namespace(a)
    assert a_xp.__name__.rsplit(".", 1)[-1] == xp.__name__.rsplit(".", 1)[-1]
    if device is not None:
        assert str(a.device).split(":")[0] == str(device).split(":")[0]
