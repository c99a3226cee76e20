"""Property-based: random bytes and random arrays either load or raise atomscope's own error."""

import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import atomscope
from atomscope.errors import AtomscopeError
from atomscope.io import SUPPORTED_EXTENSIONS

_MAGIC = {
    ".dm3": b"\x00\x00\x00\x03",
    ".dm4": b"\x00\x00\x00\x04",
    ".tif": b"II*\x00",
    ".tiff": b"MM\x00*",
    ".png": b"\x89PNG\r\n\x1a\n",
    ".h5": b"\x89HDF\r\n\x1a\n",
    ".hspy": b"\x89HDF\r\n\x1a\n",
    ".emd": b"\x89HDF\r\n\x1a\n",
    ".npy": b"\x93NUMPY\x01\x00",
    ".npz": b"PK\x03\x04",
    ".zspy": b"PK\x03\x04",
    ".ser": b"II\x97\x01",
}

_SETTINGS = settings(
    max_examples=int(os.environ.get("ATOMSCOPE_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


@_SETTINGS
@given(
    ext=st.sampled_from(sorted(SUPPORTED_EXTENSIONS) + [".zip"]),
    with_magic=st.booleans(),
    payload=st.binary(min_size=0, max_size=2048),
)
def test_random_bytes_load_or_raise_atomscope_error(ext, with_magic, payload):
    body = (_MAGIC.get(ext, b"") if with_magic else b"") + payload
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"random{ext}"
        path.write_bytes(body)
        try:
            mg = atomscope.load(path)
        except AtomscopeError:
            return
        assert mg.data.dtype == np.float32
        assert mg.data.ndim in (2, 3)
        assert np.isfinite(mg.data).all()


_dtypes = st.sampled_from(
    [
        np.uint8,
        np.uint16,
        np.uint32,
        np.int16,
        np.int32,
        np.int64,
        np.float16,
        np.float32,
        np.float64,
        np.bool_,
        np.complex64,
    ]
)


@_SETTINGS
@given(
    array=hnp.arrays(
        dtype=_dtypes,
        shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6),
    ),
    pixel_size=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_random_arrays_load_or_raise_atomscope_error(array, pixel_size):
    try:
        mg = atomscope.load(array, pixel_size=pixel_size)
    except AtomscopeError:
        return
    assert mg.data.dtype == np.float32
    assert mg.data.ndim in (2, 3)
    assert np.isfinite(mg.data).all()
    assert mg.pixel_size is None or all(p > 0 for p in mg.pixel_size)
