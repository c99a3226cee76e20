"""The loader's own logic: arrays, folders, zips, frames, signals and bad input."""

import zipfile

import numpy as np
import pytest

import atomscope
from atomscope.errors import (
    AtomscopeError,
    CalibrationError,
    CorruptFileError,
    InvalidImageError,
    MissingFileError,
    SignalNotFoundError,
    UnsupportedFormatError,
)
from atomscope.io._signal import RawSignal
from atomscope.io.load import _select_signal, natural_sort_key


def test_array_becomes_float32_micrograph_with_calibration():
    mg = atomscope.load(np.arange(20, dtype=np.uint16).reshape(4, 5), pixel_size=0.02)
    assert mg.data.dtype == np.float32
    assert mg.shape == (4, 5)
    assert mg.pixel_size == (0.02, 0.02)
    assert mg.field_of_view_nm == pytest.approx((0.08, 0.1))


def test_anisotropic_pixel_size_is_kept_row_col():
    mg = atomscope.load(np.ones((4, 5)), pixel_size=(0.2, 0.1))
    assert mg.pixel_size == (0.2, 0.1)
    assert not mg.is_isotropic


def test_stack_and_frame_selection():
    stack = np.stack([np.full((3, 4), i, np.float32) for i in range(5)])
    mg = atomscope.load(stack)
    assert mg.is_stack and mg.n_frames == 5
    one = atomscope.load(stack, frame=3)
    assert one.shape == (3, 4) and one.data[0, 0] == 3
    assert one.source.frame == 3
    assert atomscope.load(stack, frame=-1).data[0, 0] == 4
    assert mg.frame(2).data[0, 0] == 2
    assert [f.data[0, 0] for f in mg.frames()] == [0, 1, 2, 3, 4]
    with pytest.raises(InvalidImageError, match="5 frames"):
        atomscope.load(stack, frame=7)


def test_leading_singleton_axis_is_squeezed():
    assert atomscope.load(np.ones((1, 6, 7))).shape == (6, 7)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.ones(10), "1-D"),
        (np.ones((2, 3, 4, 5)), "4-D"),
        (np.ones((0, 5)), "empty"),
        (np.ones((3, 3), complex), "complex"),
        (np.array([["a", "b"], ["c", "d"]]), "real numbers|non-numeric"),
    ],
)
def test_bad_arrays_raise_named_errors(array, message):
    with pytest.raises(InvalidImageError, match=message):
        atomscope.load(array)


def test_nan_is_reported_with_its_count():
    data = np.ones((8, 8), np.float32)
    data[1, 1] = np.nan
    data[2, 2] = np.nan
    data[3, 3] = np.inf
    with pytest.raises(InvalidImageError, match="2 NaN and 1 infinite"):
        atomscope.load(data)
    filled = atomscope.load(data, nonfinite="fill")
    assert np.isfinite(filled.data).all()
    assert filled.metadata["nonfinite_filled"] == 3


def test_all_nan_cannot_be_filled():
    with pytest.raises(InvalidImageError, match="All"):
        atomscope.load(np.full((4, 4), np.nan), nonfinite="fill")


def test_integer_offset_is_removed_and_recorded():
    rng = np.random.default_rng(0)
    raw = (3_000_000_000 + rng.integers(0, 1000, (16, 16))).astype(np.uint32)
    mg = atomscope.load(raw)
    assert mg.metadata["intensity_offset"] == int(raw.min())
    # every distinct count stays distinct after float32 conversion
    np.testing.assert_array_equal(mg.data.astype(np.int64), raw.astype(np.int64) - raw.min())


def test_small_integer_images_are_not_shifted():
    raw = np.arange(100, dtype=np.uint16).reshape(10, 10)
    mg = atomscope.load(raw)
    assert "intensity_offset" not in mg.metadata
    np.testing.assert_array_equal(mg.data, raw)


@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), (0.1, 0.2, 0.3), "abc"])
def test_bad_pixel_size_raises(bad):
    with pytest.raises(CalibrationError):
        atomscope.load(np.ones((4, 4)), pixel_size=bad)


def test_require_pixel_size_names_the_purpose():
    mg = atomscope.load(np.ones((4, 4)))
    with pytest.raises(CalibrationError, match="lattice estimate needs a pixel size"):
        mg.require_pixel_size("lattice estimate")


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(MissingFileError):
        atomscope.load(tmp_path / "nope.dm3")
    odd = tmp_path / "image.xyz"
    odd.write_bytes(b"123")
    with pytest.raises(UnsupportedFormatError, match="unknown file extension"):
        atomscope.load(odd)


def test_empty_file_is_corrupt(tmp_path):
    empty = tmp_path / "empty.dm3"
    empty.write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty"):
        atomscope.load(empty)


def test_errors_are_atomscope_errors_and_builtin_kinds():
    assert issubclass(MissingFileError, FileNotFoundError)
    assert issubclass(InvalidImageError, ValueError)
    assert issubclass(SignalNotFoundError, AtomscopeError)


def test_natural_sort():
    names = ["frame10.tif", "frame2.tif", "Frame1.tif", "frame100.tif"]
    assert sorted(names, key=natural_sort_key) == [
        "Frame1.tif",
        "frame2.tif",
        "frame10.tif",
        "frame100.tif",
    ]


def _write_frames(folder, n, shape=(6, 7)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        np.save(folder / f"frame{i}.npy", np.full(shape, i, np.uint16))


def test_folder_of_frames_is_a_naturally_sorted_stack(tmp_path):
    _write_frames(tmp_path / "movie", 12)
    mg = atomscope.load(tmp_path / "movie", pixel_size=0.1)
    assert mg.shape == (12, 6, 7)
    assert [int(f.data[0, 0]) for f in mg.frames()] == list(range(12))
    assert mg.pixel_size == (0.1, 0.1)
    one = atomscope.load(tmp_path / "movie", frame=10)
    assert one.shape == (6, 7) and one.data[0, 0] == 10
    assert one.source.path.endswith("frame10.npy")


def test_folder_with_mixed_shapes_needs_a_frame(tmp_path):
    _write_frames(tmp_path / "mixed", 2)
    np.save(tmp_path / "mixed" / "frame9.npy", np.zeros((3, 3), np.uint16))
    with pytest.raises(InvalidImageError, match="different shapes"):
        atomscope.load(tmp_path / "mixed")
    assert atomscope.load(tmp_path / "mixed", frame=2).shape == (3, 3)


def test_empty_folder(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(InvalidImageError, match="no image files"):
        atomscope.load(tmp_path / "nothing")


def test_zip_of_frames(tmp_path):
    _write_frames(tmp_path / "f", 3)
    archive = tmp_path / "frames.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in (2, 0, 1):
            z.write(tmp_path / "f" / f"frame{i}.npy", f"frame{i}.npy")
    mg = atomscope.load(archive)
    assert mg.shape == (3, 6, 7)
    assert [int(f.data[0, 0]) for f in mg.frames()] == [0, 1, 2]
    assert atomscope.load(archive, frame=1).data[0, 0] == 1


def test_bad_zip_is_corrupt(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CorruptFileError):
        atomscope.load(bad)


def _sig(name, kind="image", shape=(4, 4)):
    return RawSignal(np.zeros(shape), None, name, {}, kind)


def test_default_signal_prefers_haadf():
    signals = [_sig("BF"), _sig("DF2"), _sig("HAADF"), _sig("DF4")]
    assert _select_signal(signals, None, "f").name == "HAADF"
    assert _select_signal([_sig("BF"), _sig("DF4")], None, "f").name == "DF4"
    assert _select_signal([_sig("plot", "spectrum", (8,)), _sig("image0")], None, "f").name == (
        "image0"
    )


def test_signal_by_name_index_and_missing():
    signals = [_sig("BF"), _sig("HAADF")]
    assert _select_signal(signals, "bf", "f").name == "BF"
    assert _select_signal(signals, 0, "f").name == "BF"
    with pytest.raises(SignalNotFoundError, match="holds: BF, HAADF"):
        _select_signal(signals, "DF2", "f")
    with pytest.raises(InvalidImageError, match="holds no image"):
        _select_signal([_sig("s", "spectrum", (8,))], None, "f")
