"""``from_hyperspy``: HyperSpy-like objects (never HyperSpy itself) to Micrographs."""

from types import SimpleNamespace

import numpy as np
import pytest

import atomscope
from atomscope.errors import AtomscopeError, InvalidImageError
from atomscope.image import as_micrograph
from atomscope.io.hyperspy import (
    AxisInfo,
    from_hyperspy,
    raw_signal_from_hyperspy,
    signal_from_axes,
)


def axis(size, scale=1.0, units=None, name=None, offset=0.0):
    return SimpleNamespace(size=size, scale=scale, units=units, name=name, offset=offset)


def fake_signal(data, signal_axes, navigation_axes=(), metadata=None):
    md = None
    if metadata is not None:
        md = SimpleNamespace(as_dictionary=lambda: metadata)
    am = SimpleNamespace(signal_axes=tuple(signal_axes), navigation_axes=tuple(navigation_axes))
    return SimpleNamespace(data=data, axes_manager=am, metadata=md)


def test_image_pixel_size_is_row_col_from_y_and_x_axes():
    data = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30)
    s = fake_signal(data, [axis(30, 0.02, "nm", "x"), axis(20, 0.05, "nm", "y")])
    mg = from_hyperspy(s)
    assert mg.shape == (20, 30)
    assert mg.data.dtype == np.float32
    assert mg.pixel_size == pytest.approx((0.05, 0.02))
    assert mg.source.format == "hyperspy"
    np.testing.assert_array_equal(mg.data, data)


@pytest.mark.parametrize(
    ("units", "scale", "expected"),
    [
        ("µm", 0.002, 2.0),
        ("um", 0.002, 2.0),
        ("Å", 0.5, 0.05),
        ("A", 0.5, 0.05),
        ("pm", 50.0, 0.05),
        ("m", 1e-10, 0.1),
    ],
)
def test_length_units_are_converted_to_nm(units, scale, expected):
    s = fake_signal(np.zeros((8, 9)), [axis(9, scale, units), axis(8, scale, units)])
    assert from_hyperspy(s).pixel_size == pytest.approx((expected, expected))


@pytest.mark.parametrize("units", [None, "<undefined>", "_None_", "", "px"])
def test_scale_without_length_unit_is_uncalibrated_but_kept(units):
    s = fake_signal(np.zeros((8, 9)), [axis(9, 0.0093, units), axis(8, 0.0093, units)])
    mg = from_hyperspy(s)
    assert mg.pixel_size is None
    assert mg.metadata["uncalibrated_scale"] == pytest.approx([0.0093, 0.0093])


def test_unit_scale_without_units_has_no_uncalibrated_scale():
    mg = from_hyperspy(fake_signal(np.zeros((8, 9)), [axis(9), axis(8)]))
    assert mg.pixel_size is None and "uncalibrated_scale" not in mg.metadata


def test_reciprocal_units_mark_a_diffraction_pattern():
    s = fake_signal(np.ones((16, 16)), [axis(16, 0.17, "1/nm"), axis(16, 0.17, "1/nm")])
    mg = from_hyperspy(s)
    assert mg.pixel_size is None
    assert mg.metadata["kind"] == "diffraction"
    assert mg.metadata["reciprocal_pixel_size"] == pytest.approx([0.17, 0.17])


def test_one_navigation_axis_is_a_stack_frames_first():
    data = np.stack([np.full((6, 7), k, np.float32) for k in range(4)])
    s = fake_signal(
        data,
        [axis(7, 0.1, "nm", "x"), axis(6, 0.1, "nm", "y")],
        [axis(4, 0.25, "s", "time")],
    )
    mg = from_hyperspy(s)
    assert mg.shape == (4, 6, 7)
    assert [float(f.data[0, 0]) for f in mg.frames()] == [0, 1, 2, 3]
    assert mg.metadata["frame_interval"] == pytest.approx(0.25)
    assert mg.pixel_size == pytest.approx((0.1, 0.1))


def test_metadata_tree_title_and_voltage():
    md = {
        "General": {"title": "HAADF", "date": "2024-05-06", "time": "10:11:12"},
        "Acquisition_instrument": {
            "TEM": {"beam_energy": 200.0, "magnification": 5e6, "microscope": "Titan"}
        },
        "Signal": {"signal_type": ""},
        "_HyperSpy": {"Folding": {"unfolded": False}},
    }
    s = fake_signal(np.zeros((8, 9)), [axis(9, 0.1, "nm"), axis(8, 0.1, "nm")], metadata=md)
    mg = from_hyperspy(s)
    assert mg.metadata["voltage"] == pytest.approx(200e3)
    assert mg.metadata["title"] == "HAADF"
    assert mg.metadata["date"] == "2024-05-06"
    assert mg.metadata["magnification"] == 5e6
    assert mg.metadata["microscope"] == "Titan"
    assert mg.metadata["General"]["time"] == "10:11:12"
    assert "_HyperSpy" not in mg.metadata
    assert mg.source.signal == "HAADF"


def test_metadata_may_be_missing_or_a_plain_dict():
    s = fake_signal(np.zeros((8, 9)), [axis(9), axis(8)])
    del s.metadata
    assert from_hyperspy(s).shape == (8, 9)
    s2 = fake_signal(np.zeros((8, 9)), [axis(9), axis(8)])
    s2.metadata = {"General": {"title": "plain"}}
    assert from_hyperspy(s2).metadata["title"] == "plain"


def test_spectrum_is_refused():
    s = fake_signal(np.zeros(100), [axis(100, 0.1, "eV")])
    with pytest.raises(InvalidImageError, match="one-dimensional"):
        from_hyperspy(s)


def test_spectrum_image_is_refused():
    s = fake_signal(np.zeros((5, 6, 100)), [axis(100, 0.1, "eV")], [axis(6), axis(5)])
    with pytest.raises(InvalidImageError, match="one-dimensional"):
        from_hyperspy(s)


def test_4d_stem_is_refused_with_a_hint():
    s = fake_signal(np.zeros((3, 4, 8, 9)), [axis(9), axis(8)], [axis(4), axis(3)])
    with pytest.raises(InvalidImageError, match="2 navigation dimensions"):
        from_hyperspy(s)


def test_three_signal_dimensions_are_refused():
    s = fake_signal(np.zeros((3, 8, 9)), [axis(9), axis(8), axis(3)])
    with pytest.raises(InvalidImageError, match="3 signal dimensions"):
        from_hyperspy(s)


def test_axes_that_disagree_with_the_data_are_refused():
    s = fake_signal(np.zeros((8, 9)), [axis(8), axis(9)])  # x must be the last numpy axis
    with pytest.raises(InvalidImageError, match="numpy axis 0 has 8 points"):
        from_hyperspy(s)
    s = fake_signal(np.zeros((8, 9, 2)), [axis(9), axis(8)])
    with pytest.raises(InvalidImageError, match="3 dimensions"):
        from_hyperspy(s)


def test_objects_without_axes_are_refused():
    s = SimpleNamespace(data=np.zeros((4, 4)), axes_manager=SimpleNamespace())
    with pytest.raises(AtomscopeError):
        from_hyperspy(s)


def test_nan_values_raise_invalid_image():
    data = np.zeros((8, 9))
    data[0, 0] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        from_hyperspy(fake_signal(data, [axis(9), axis(8)]))


def test_load_and_as_micrograph_accept_hyperspy_like_objects():
    data = np.stack([np.full((6, 7), k + 1, np.float32) for k in range(3)])
    s = fake_signal(data, [axis(7, 0.1, "nm"), axis(6, 0.2, "nm")], [axis(3)])
    mg = atomscope.load(s)
    assert mg.shape == (3, 6, 7)
    assert mg.pixel_size == pytest.approx((0.2, 0.1))
    one = atomscope.load(s, frame=2)
    assert one.shape == (6, 7) and float(one.data[0, 0]) == 3.0
    override = as_micrograph(s, pixel_size=0.5)
    assert override.pixel_size == (0.5, 0.5)


def test_raw_signal_keeps_dtype():
    data = np.arange(72, dtype=np.int32).reshape(8, 9)
    sig = raw_signal_from_hyperspy(fake_signal(data, [axis(9, 0.1, "nm"), axis(8, 0.1, "nm")]))
    assert sig.data.dtype == np.int32 and sig.kind == "image" and sig.name == "image"


def test_signal_from_axes_reorders_navigation_axes_first():
    data = np.zeros((8, 9, 3))  # signal axes stored before the navigation axis
    axes = [
        AxisInfo(8, 0.1, units="nm", navigate=False),
        AxisInfo(9, 0.1, units="nm", navigate=False),
        AxisInfo(3, navigate=True),
    ]
    sig = signal_from_axes(data, axes, {}, "x")
    assert sig.data.shape == (3, 8, 9)
    assert sig.pixel_size == pytest.approx((0.1, 0.1))


def test_axis_info_from_file_attributes():
    ax = AxisInfo.from_mapping(
        {
            "scale": np.float64(0.5),
            "units": b"nm",
            "navigate": np.False_,
            "size": np.int64(4),
            "name": "_None_",
        }
    )
    assert ax == AxisInfo(size=4, scale=0.5, offset=0.0, units="nm", name=None, navigate=False)
