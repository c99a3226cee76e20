"""TIFF, raster, NumPy, HDF5/HyperSpy and zspy readers, through ``atomscope.load`` and
``atomscope.io.read_signals``: real files from ../shared/data and small synthetic files."""

import json
import math
import shutil
import time
import warnings
import zipfile

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

import atomscope
from atomscope.errors import (
    AtomscopeError,
    CorruptFileError,
    InvalidImageError,
    UnsupportedFormatError,
)
from atomscope.io import read_signals
from atomscope.io.readers import tiff as tiff_reader
from atomscope.io.readers import zspy as zspy_reader


def close(a, b, rel=1e-3):
    return math.isclose(a, b, rel_tol=rel)


def assert_pixel_size(mg_or_sig, expected, rel=1e-3):
    ps = mg_or_sig.pixel_size
    if expected is None:
        assert ps is None
        return
    if isinstance(expected, int | float):
        expected = (expected, expected)
    assert ps is not None, "expected a calibration"
    assert close(ps[0], expected[0], rel) and close(ps[1], expected[1], rel), ps


# --------------------------------------------------------------------------------------------
# real files: TIFF


def test_tiff_saved_with_dm(shared_data):
    path = shared_data / "rsciio" / "tif_saved_with_DM.tif"
    mg = atomscope.load(path)
    assert mg.shape == (68, 68)
    assert mg.data.dtype == np.float32
    assert_pixel_size(mg, 168.7)
    assert mg.metadata["tiff_flavour"] == "digitalmicrograph"
    assert mg.metadata["voltage"] == pytest.approx(200e3)  # from the DM tag tree (tag 65027)
    (sig,) = read_signals(path)
    assert sig.data.dtype == np.int32 and sig.name == "image" and not sig.rgb


def test_tiff_saved_with_dm_stack_keeps_anisotropic_calibration(shared_data):
    path = shared_data / "rsciio" / "tif_saved_with_DM_stack.tif"
    mg = atomscope.load(path)
    assert mg.shape == (2, 68, 68)
    assert_pixel_size(mg, (1687.0, 168.7))  # y 1.687 µm, x 0.1687 µm as stored
    assert not mg.is_isotropic
    assert mg.metadata["frame_interval"] == pytest.approx(2.5)
    raw = tifffile.imread(path)
    for k in range(2):
        one = atomscope.load(path, frame=k)
        assert one.shape == (68, 68)
        np.testing.assert_array_equal(one.data, raw[k].astype(np.float32))
        assert_pixel_size(one, (1687.0, 168.7))


def test_tiff_saved_with_imagej(shared_data):
    mg = atomscope.load(shared_data / "rsciio" / "tif_saved_with_ImageJ.tif")
    assert mg.shape == (68, 68)
    assert_pixel_size(mg, 168.7)
    assert mg.metadata["tiff_flavour"] == "imagej"


def test_tiff_saved_with_imagej_stack(shared_data):
    path = shared_data / "rsciio" / "tif_saved_with_ImageJ_stack.tif"
    mg = atomscope.load(path)
    assert mg.shape == (2, 68, 68)
    assert_pixel_size(mg, 168.7)
    assert mg.metadata["frame_spacing"] == pytest.approx(2.5)
    raw = tifffile.imread(path)
    np.testing.assert_array_equal(atomscope.load(path, frame=1).data, raw[1])
    np.testing.assert_array_equal(atomscope.load(path, frame=-2).data, raw[0])
    with pytest.raises(InvalidImageError, match="2 frames"):
        atomscope.load(path, frame=2)


def test_tiff_saved_with_imagej_no_scale_is_uncalibrated(shared_data):
    mg = atomscope.load(shared_data / "rsciio" / "tif_saved_with_ImageJ_no_scale.tif")
    assert mg.shape == (68, 68)
    assert mg.pixel_size is None


def test_rgb_tiff_with_identical_channels_becomes_grey(shared_data):
    path = shared_data / "ingrained" / "Ni_001_M3B2_001" / "HAADF91.tif"
    (sig,) = read_signals(path)
    assert sig.rgb and sig.data.shape == (1024, 1024, 3) and sig.data.dtype == np.uint8
    mg = atomscope.load(path)
    assert mg.shape == (1024, 1024)
    assert mg.pixel_size is None  # DM scale 1 without unit, and 72 dpi
    assert mg.metadata["converted_from"] == "RGB with identical channels"
    np.testing.assert_array_equal(mg.data, np.asarray(sig.data[..., 0], np.float32))


def test_plain_uint16_tiff_without_calibration(shared_data):
    (path,) = sorted((shared_data / "singleorigin").glob("*.tif"))
    (sig,) = read_signals(path)
    assert sig.data.shape == (1364, 1368) and sig.data.dtype == np.uint16
    assert sig.pixel_size is None
    mg = atomscope.load(path)
    assert mg.shape == (1364, 1368) and mg.pixel_size is None


# name, shape, pixel size (nm) in natural-sort order of the zip members
_FEI_MEMBERS = [
    ("FEI-Helios-Ebeam-8bits.tif", (471, 512), 3372.4),
    ("FEI-Helios-Ebeam-16bits.tif", (471, 512), 3372.4),
    ("FEI-Helios-navcam-with-no-IRBeam-bad-floats.tif", (551, 768), None),
    ("FEI-Helios-navcam-with-no-IRBeam.tif", (551, 768), None),
    ("FEI-Helios-navcam.tif", (551, 768), (0.135155 / 512 * 1e9, 0.202732 / 768 * 1e9)),
]


@pytest.mark.parametrize("frame", range(len(_FEI_MEMBERS)))
def test_fei_helios_tiffs_in_a_zip(shared_data, frame):
    name, shape, pixel_size = _FEI_MEMBERS[frame]
    mg = atomscope.load(shared_data / "rsciio" / "tif_FEI_Helios_SEM.zip", frame=frame)
    assert mg.metadata["archive_member"] == name
    assert mg.shape == shape
    assert_pixel_size(mg, pixel_size)
    assert mg.metadata["tiff_flavour"] == "fei"
    if "Ebeam" in name:
        assert mg.metadata["voltage"] == pytest.approx(5000)
        assert mg.metadata["databar_rows"] == 471 - 442
    else:
        assert "voltage" not in mg.metadata  # empty or "notafloat" HV


def test_fei_zip_without_frame_refuses_mixed_shapes(shared_data):
    with pytest.raises(InvalidImageError, match="different shapes"):
        atomscope.load(shared_data / "rsciio" / "tif_FEI_Helios_SEM.zip")


# --------------------------------------------------------------------------------------------
# real files: NumPy, PNG, HDF5, zspy


def test_npy_is_memory_mapped_raw_dtype(shared_data):
    path = shared_data / "pystem" / "high_entropy_alloy.npy"
    (sig,) = read_signals(path)
    assert isinstance(sig.data, np.memmap)
    assert sig.data.shape == (1024, 1024) and sig.data.dtype == np.uint16
    mg = atomscope.load(path)
    assert mg.shape == (1024, 1024) and mg.pixel_size is None


def test_table_shaped_npy_is_not_an_image(shared_data):
    path = shared_data / "temul-toolkit" / "AuNP_atom_positions_141x2.npy"
    (sig,) = read_signals(path)
    assert sig.kind == "other"
    with pytest.raises(InvalidImageError, match="holds no image"):
        atomscope.load(path)


def test_rgba_png_becomes_grey(shared_data):
    path = shared_data / "pystem" / "high_entropy_alloy_preview_512px.png"
    (sig,) = read_signals(path)
    assert sig.rgb and sig.data.shape == (512, 512, 4)
    mg = atomscope.load(path)
    assert mg.shape == (512, 512) and mg.pixel_size is None


def test_hspy_diffraction_pattern(shared_data):
    path = shared_data / "rsciio" / "hspy_example2_v3.1.hspy"
    (sig,) = read_signals(path)
    assert sig.kind == "diffraction" and sig.pixel_size is None
    assert sig.name == "test_diffraction_pattern"
    assert sig.data.shape == (16, 16) and sig.data.dtype == np.int32
    assert sig.metadata["reciprocal_pixel_size"][0] == pytest.approx(0.1744, rel=1e-3)
    assert sig.metadata["reciprocal_units"] == "1/nm"
    assert sig.metadata["voltage"] == pytest.approx(200e3)
    assert sig.metadata["date"] == "2014-07-09"
    assert sig.metadata["Acquisition_instrument"]["TEM"]["microscope"] == "FEI Tecnai"
    mg = atomscope.load(path)
    assert mg.shape == (16, 16) and mg.metadata["kind"] == "diffraction"


@pytest.mark.parametrize(
    "name", ["hspy_ADF_STEM_atomic_400x380.hdf5", "hspy_ABF_STEM_atomic_400x380.hdf5"]
)
def test_atomap_hdf5_scale_without_units_is_uncalibrated(shared_data, name):
    path = shared_data / "atomap" / name
    (sig,) = read_signals(path)
    assert sig.data.shape == (400, 380) and sig.data.dtype == np.float16
    assert sig.pixel_size is None
    assert sig.metadata["uncalibrated_scale"] == pytest.approx([0.009326, 0.009326], rel=1e-3)
    mg = atomscope.load(path)
    assert mg.shape == (400, 380) and mg.pixel_size is None
    assert mg.metadata["uncalibrated_scale"][0] == pytest.approx(0.009326, rel=1e-3)


def test_atomap_simulated_nanoparticle(shared_data):
    mg = atomscope.load(shared_data / "atomap" / "hspy_simulated_nanoparticle_220x300.hspy")
    assert mg.shape == (220, 300) and mg.pixel_size is None
    assert "uncalibrated_scale" not in mg.metadata  # scale 1


def test_atom_lattice_hdf5_generic_fallback(shared_data):
    path = shared_data / "temul-toolkit" / "atomap_AtomLattice_AuNP_479x504.hdf5"
    signals = read_signals(path)
    by_name = {s.name: s for s in signals}
    assert "_sublattice/original_image_data" in by_name
    assert by_name["_sublattice/atom_positions"].kind == "other"
    assert all(s.pixel_size is None for s in signals)
    mg = atomscope.load(path)
    assert mg.shape == (479, 504)
    sub = atomscope.load(path, signal="_sublattice/original_image_data")
    assert sub.shape == (479, 504)


def test_zspy_signal1d_is_a_spectrum_not_an_image(shared_data):
    path = shared_data / "rsciio" / "zspy_signal1d_10x10_ZipStore.zspy"
    (sig,) = read_signals(path)
    assert sig.kind == "spectrum" and sig.data.shape == (10, 10)
    np.testing.assert_array_equal(sig.data, np.arange(100).reshape(10, 10))
    with pytest.raises(InvalidImageError, match="holds no image"):
        atomscope.load(path)


# --------------------------------------------------------------------------------------------
# synthetic TIFF


@pytest.mark.parametrize(
    ("unit", "res", "expected_nm"),
    [
        ("nm", 1 / 0.05, 0.05),
        ("\\u00C5", 1 / 0.5, 0.05),
        ("um", 1 / 0.002, 2.0),
        ("micron", 1 / 0.002, 2.0),
        ("\\u00B5m", 1 / 0.002, 2.0),
    ],
)
def test_imagej_units(tmp_path, unit, res, expected_nm):
    path = tmp_path / "ij.tif"
    data = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    tifffile.imwrite(path, data, imagej=True, resolution=(res, res), metadata={"unit": unit})
    mg = atomscope.load(path)
    assert_pixel_size(mg, expected_nm)
    np.testing.assert_array_equal(mg.data, data)


def test_imagej_anisotropic_time_series(tmp_path):
    path = tmp_path / "movie.tif"
    data = np.stack(
        [np.full((16, 24), k, np.uint16) + np.arange(24, dtype=np.uint16) for k in range(5)]
    )
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.1),
        metadata={"unit": "nm", "axes": "TYX", "finterval": 0.5},
    )
    mg = atomscope.load(path)
    assert mg.shape == (5, 16, 24)
    assert_pixel_size(mg, (0.1, 0.2))
    assert mg.metadata["frame_interval"] == pytest.approx(0.5)
    for k in range(5):
        np.testing.assert_array_equal(atomscope.load(path, frame=k).data, data[k])


def test_imagej_hyperstack_is_flattened_to_frames(tmp_path):
    path = tmp_path / "hyper.tif"
    data = np.arange(2 * 3 * 8 * 9, dtype=np.uint8).reshape(2, 3, 8, 9)
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZYX"})
    (sig,) = read_signals(path)
    assert sig.data.shape == (6, 8, 9)
    np.testing.assert_array_equal(sig.data[4], data[1, 1])


@pytest.mark.parametrize(
    ("unit", "expected"),
    [("CENTIMETER", 1e7 / 2e5), ("MILLIMETER", 1e6 / 2e5), ("INCH", None), ("NONE", None)],
)
def test_plain_tiff_resolution_units(tmp_path, unit, expected):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((10, 12), np.uint8), resolution=(2e5, 2e5), resolutionunit=unit)
    mg = atomscope.load(path)
    assert_pixel_size(mg, expected)


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64]
)
def test_tiff_dtypes_are_kept_raw(tmp_path, dtype):
    path = tmp_path / "d.tif"
    data = (np.arange(12 * 14) % 100).astype(dtype).reshape(12, 14)
    tifffile.imwrite(path, data)
    (sig,) = read_signals(path)
    assert sig.data.dtype == dtype
    np.testing.assert_array_equal(sig.data, data)


@pytest.mark.parametrize(
    "kwargs", [{"bigtiff": True}, {"byteorder": ">"}, {"compression": "zlib"}, {"tile": (16, 16)}]
)
def test_tiff_variants(tmp_path, kwargs):
    path = tmp_path / "v.tif"
    data = np.arange(3 * 32 * 48, dtype=np.uint16).reshape(3, 32, 48)
    tifffile.imwrite(path, data, photometric="minisblack", **kwargs)
    mg = atomscope.load(path)
    assert mg.shape == (3, 32, 48)
    np.testing.assert_array_equal(mg.data[2], data[2].astype(np.float32) - data.min())


def test_rgb_tiff_with_different_channels_uses_luminance(tmp_path):
    path = tmp_path / "rgb.tif"
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 10
    rgb[0, 0] = 0
    tifffile.imwrite(path, rgb, photometric="rgb")
    (sig,) = read_signals(path)
    assert sig.rgb and sig.data.shape == (20, 30, 3)
    mg = atomscope.load(path)
    assert mg.shape == (20, 30)
    assert mg.data[5, 5] == pytest.approx(0.2126 * 200 + 0.7152 * 100 + 0.0722 * 10, rel=1e-5)
    assert "luminance" in mg.metadata["converted_from"]


def test_planar_rgb_tiff(tmp_path):
    path = tmp_path / "planar.tif"
    rgb = np.stack([np.full((10, 12), v, np.uint8) for v in (10, 20, 30)])
    tifffile.imwrite(path, rgb, photometric="rgb", planarconfig="separate")
    (sig,) = read_signals(path)
    assert sig.rgb and sig.data.shape == (10, 12, 3)
    assert tuple(sig.data[0, 0]) == (10, 20, 30)


def test_fei_like_tiff(tmp_path):
    text = (
        "[User]\r\nDate=01/02/2024\r\nTime=10:00:00 AM\r\n[Beam]\r\nHV=30000\r\nBeam=EBeam\r\n"
        "[EBeam]\r\nHV=30000\r\n[Scan]\r\nPixelWidth=2.5e-09\r\nPixelHeight=5e-09\r\n"
        "[Image]\r\nResolutionX=64\r\nResolutionY=48\r\n"
    )
    path = tmp_path / "fei.tif"
    tifffile.imwrite(path, np.ones((60, 64), np.uint16), extratags=[(34682, "s", 0, text, True)])
    mg = atomscope.load(path)
    assert_pixel_size(mg, (5.0, 2.5))
    assert mg.metadata["voltage"] == 30000
    assert mg.metadata["databar_rows"] == 12
    assert mg.metadata["date"] == "01/02/2024"


def test_fei_like_tiff_with_bad_metadata_is_uncalibrated(tmp_path):
    text = "[Beam]\r\nHV=notafloat\r\n[Scan]\r\nPixelWidth=\r\n"
    path = tmp_path / "fei_bad.tif"
    tifffile.imwrite(path, np.ones((60, 64), np.uint16), extratags=[(34682, "s", 0, text, True)])
    mg = atomscope.load(path)
    assert mg.pixel_size is None and "voltage" not in mg.metadata


def test_dm_like_private_tags(tmp_path):
    path = tmp_path / "dm.tif"
    angstrom = "Å".encode("latin-1")  # DM writes 8-bit text
    tags = [
        (65003, "s", 0, angstrom, True),
        (65004, "s", 0, angstrom, True),
        (65009, "d", 1, 0.2, True),
        (65010, "d", 1, 0.5, True),
    ]
    tifffile.imwrite(path, np.ones((30, 40), np.int32), extratags=tags)
    assert_pixel_size(atomscope.load(path), (0.05, 0.02))


def test_dm_like_reciprocal_tags_mark_diffraction(tmp_path):
    path = tmp_path / "dp.tif"
    tags = [
        (65003, "s", 0, "1/nm", True),
        (65004, "s", 0, "1/nm", True),
        (65009, "d", 1, 0.17, True),
        (65010, "d", 1, 0.17, True),
    ]
    tifffile.imwrite(path, np.ones((30, 40), np.int32), extratags=tags)
    (sig,) = read_signals(path)
    assert sig.kind == "diffraction" and sig.pixel_size is None
    assert sig.metadata["reciprocal_pixel_size"] == pytest.approx([0.17, 0.17])


def test_ome_tiff_physical_size(tmp_path):
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(
        path,
        np.zeros((2, 10, 12), np.uint16),
        ome=True,
        metadata={
            "axes": "TYX",
            "PhysicalSizeX": 0.5,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeY": 0.25,
            "PhysicalSizeYUnit": "nm",
        },
    )
    assert_pixel_size(atomscope.load(path), (0.25, 0.5))


def test_big_uncompressed_tiff_is_memory_mapped(tmp_path, monkeypatch):
    monkeypatch.setattr(tiff_reader, "_MMAP_THRESHOLD", 0)
    path = tmp_path / "big.tif"
    data = np.arange(4 * 20 * 30, dtype=np.uint16).reshape(4, 20, 30)
    tifffile.imwrite(path, data, photometric="minisblack")
    (sig,) = read_signals(path)
    assert isinstance(sig.data, np.memmap)
    np.testing.assert_array_equal(sig.data, data)


# --------------------------------------------------------------------------------------------
# synthetic raster, NumPy


def test_png_grey_8_and_16_bit(tmp_path):
    for dtype in (np.uint8, np.uint16):
        path = tmp_path / f"g{np.dtype(dtype).itemsize}.png"
        data = (np.arange(40 * 50) % 250).astype(dtype).reshape(40, 50)
        iio.imwrite(path, data)
        (sig,) = read_signals(path)
        assert sig.data.dtype == dtype and not sig.rgb and sig.pixel_size is None
        np.testing.assert_array_equal(sig.data, data)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".jpg"])
def test_rgb_raster(tmp_path, ext):
    path = tmp_path / f"rgb{ext}"
    rgb = np.zeros((32, 40, 3), np.uint8)
    rgb[..., 0] = 200
    iio.imwrite(path, rgb)
    (sig,) = read_signals(path)
    assert sig.rgb and sig.data.shape == (32, 40, 3)
    assert atomscope.load(path).shape == (32, 40)


def test_animated_gif_is_a_stack(tmp_path):
    path = tmp_path / "movie.gif"
    frames = np.stack([np.full((20, 30), 40 * k, np.uint8) for k in range(3)])
    iio.imwrite(path, frames)
    mg = atomscope.load(path)
    assert mg.shape == (3, 20, 30)
    assert [float(f.data[0, 0]) for f in mg.frames()] == [0.0, 40.0, 80.0]


def test_npy_grey_and_rgb(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((12, 14), np.float32))
    np.save(tmp_path / "rgb.npy", np.zeros((12, 14, 3), np.uint8))
    np.save(tmp_path / "stack.npy", np.zeros((3, 12, 14), np.int16))
    assert atomscope.load(tmp_path / "a.npy").shape == (12, 14)
    (rgb,) = read_signals(tmp_path / "rgb.npy")
    assert rgb.rgb
    assert atomscope.load(tmp_path / "stack.npy").shape == (3, 12, 14)


def test_npz_main_key_other_arrays_and_pixel_size(tmp_path):
    path = tmp_path / "a.npz"
    frames = np.arange(2 * 10 * 12, dtype=np.uint16).reshape(2, 10, 12)
    np.savez(
        path,
        mask=np.zeros((10, 12), bool),
        frames=frames,
        positions=np.zeros((50, 2)),
        pixel_size=np.float64(0.02),
        voltage=np.float64(300e3),
    )
    signals = read_signals(path)
    assert [s.name for s in signals] == ["frames", "mask", "positions"]
    assert_pixel_size(signals[0], 0.02)
    assert_pixel_size(signals[1], 0.02)
    assert signals[2].kind == "other" and signals[2].pixel_size is None
    assert signals[0].metadata["voltage"] == 300e3
    mg = atomscope.load(path, frame=1)
    np.testing.assert_array_equal(mg.data, frames[1] - frames[1].min())


def test_npz_single_array_fortran_order_and_unit(tmp_path):
    path = tmp_path / "f.npz"
    data = np.asfortranarray(np.arange(10 * 12, dtype=np.float32).reshape(10, 12))
    np.savez_compressed(
        path, arr_0=data, pixel_size=np.array([2.0, 3.0]), pixel_size_unit=np.array("Å")
    )
    (sig,) = read_signals(path)
    np.testing.assert_array_equal(sig.data, data)
    assert_pixel_size(sig, (0.2, 0.3))


def test_npz_without_known_key_takes_first_image(tmp_path):
    path = tmp_path / "g.npz"
    np.savez(path, labels=np.arange(5), haadf_img=np.ones((16, 16)), other=np.ones((16, 16)))
    assert read_signals(path)[0].name == "haadf_img"
    assert atomscope.load(path).shape == (16, 16)


def test_object_arrays_are_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UnsupportedFormatError, match="unpickl"):
        atomscope.load(tmp_path / "obj.npy")


# --------------------------------------------------------------------------------------------
# synthetic HDF5 / HyperSpy / zspy


def _write_hspy(path, data, axes, metadata=None, title="img"):
    with h5py.File(path, "w") as f:
        f.attrs["file_format"] = "HyperSpy"
        f.attrs["file_format_version"] = "3.1"
        g = f.create_group(f"Experiments/{title}")
        g.create_dataset("data", data=data)
        for i, ax in enumerate(axes):
            a = g.create_group(f"axis-{i}")
            for k, v in ax.items():
                a.attrs[k] = v
        md = g.create_group("metadata")
        for section, values in (metadata or {}).items():
            sub = md.require_group(section)
            for k, v in values.items():
                sub.attrs[k] = v


def test_hspy_stack_with_time_axis_and_length_units(tmp_path):
    path = tmp_path / "s.hspy"
    data = np.arange(3 * 16 * 20, dtype=np.int16).reshape(3, 16, 20)
    axes = [
        {"name": "time", "scale": 0.5, "units": "s", "size": 3, "navigate": True},
        {"name": "y", "scale": 1.0, "units": "Å", "size": 16, "navigate": False},
        {"name": "x", "scale": 0.02, "units": "µm", "size": 20, "navigate": False},
    ]
    md = {
        "Acquisition_instrument/TEM": {"beam_energy": 300.0},
        "General": {"title": "movie", "date": "2024-01-02"},
    }
    _write_hspy(path, data, axes, md, title="__unnamed__")
    (sig,) = read_signals(path)
    assert sig.name == "movie" and sig.kind == "image"
    assert_pixel_size(sig, (0.1, 20.0))
    assert sig.metadata["frame_interval"] == 0.5
    assert sig.metadata["voltage"] == 300e3
    mg = atomscope.load(path, frame=2)
    np.testing.assert_array_equal(mg.data, data[2] - data[2].min())


def test_hspy_with_two_navigation_axes_is_refused_clearly(tmp_path):
    path = tmp_path / "4d.hspy"
    axes = [
        {"size": 2, "navigate": True},
        {"size": 3, "navigate": True},
        {"size": 8, "navigate": False},
        {"size": 9, "navigate": False},
    ]
    _write_hspy(path, np.zeros((2, 3, 8, 9), np.float32), axes)
    with pytest.raises(InvalidImageError, match="4D-STEM"):
        atomscope.load(path)


def test_hspy_spectrum_is_kind_spectrum(tmp_path):
    path = tmp_path / "sp.hspy"
    axes = [{"size": 4, "navigate": True}, {"size": 50, "navigate": False, "units": "eV"}]
    _write_hspy(path, np.zeros((4, 50), np.float32), axes, title="__unnamed__")
    (sig,) = read_signals(path)
    assert sig.kind == "spectrum" and sig.name == "spectrum"
    with pytest.raises(InvalidImageError, match="holds no image"):
        atomscope.load(path)


def test_generic_hdf5(tmp_path):
    path = tmp_path / "g.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("deep/group/img", data=np.ones((2, 12, 14), np.uint16))
        f.create_dataset("top", data=np.ones((20, 22), np.float32))
        f.create_dataset("line", data=np.ones(30))
        f.create_dataset("xy", data=np.ones((100, 2)))
    signals = read_signals(path)
    assert [s.name for s in signals] == ["top", "deep/group/img", "xy"]
    assert signals[-1].kind == "other"
    assert atomscope.load(path).shape == (20, 22)
    assert atomscope.load(path, signal="deep/group/img").shape == (2, 12, 14)


def _write_zspy(store, data, axes, title="img"):
    import zarr

    g = zarr.open_group(store=store, mode="w", zarr_format=2)
    g.attrs.update({"file_format": "ZSpy", "file_format_version": "3.3"})
    e = g.create_group("Experiments").create_group(title)
    arr = e.create_array("data", shape=data.shape, dtype=data.dtype, chunks=data.shape)
    arr[...] = data
    for i, ax in enumerate(axes):
        e.create_group(f"axis-{i}").attrs.update(ax)
    e.create_group("metadata").create_group("General").attrs.update({"title": title})


_ZSPY_AXES = [
    {"scale": 0.1, "units": "nm", "size": 12, "navigate": False},
    {"scale": 0.1, "units": "nm", "size": 14, "navigate": False},
]


def test_zspy_zip_image(tmp_path):
    from zarr.storage import ZipStore

    path = tmp_path / "img.zspy"
    data = np.arange(12 * 14, dtype=np.uint16).reshape(12, 14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zip "Duplicate name" warnings of zarr's ZipStore
        store = ZipStore(path, mode="w")
        _write_zspy(store, data, _ZSPY_AXES)
        store.close()
        mg = atomscope.load(path)
    assert mg.shape == (12, 14)
    assert_pixel_size(mg, 0.1)
    assert mg.metadata["title"] == "img"


def test_zspy_directory_store_through_the_reader(tmp_path):
    from zarr.storage import LocalStore

    path = tmp_path / "img_dir.zspy"
    data = np.ones((12, 14), np.float32)
    _write_zspy(LocalStore(path), data, _ZSPY_AXES)
    (sig,) = zspy_reader.read(path)
    assert sig.data.shape == (12, 14)
    assert_pixel_size(sig, 0.1)


# --------------------------------------------------------------------------------------------
# garbage and truncated files

_MY_EXTENSIONS = [
    ".tif",
    ".tiff",
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".npy",
    ".npz",
    ".h5",
    ".hdf5",
    ".hspy",
    ".zspy",
]


def _assert_fails_fast(path, error=AtomscopeError):
    start = time.perf_counter()
    with pytest.raises(error) as info:
        atomscope.load(path)
    assert time.perf_counter() - start < 10
    assert path.name in str(info.value)


@pytest.mark.parametrize("ext", _MY_EXTENSIONS)
def test_random_bytes_raise_corrupt_file_error(tmp_path, ext):
    rng = np.random.default_rng(sum(ext.encode()))
    path = tmp_path / f"garbage{ext}"
    path.write_bytes(rng.bytes(5000))
    _assert_fails_fast(path, CorruptFileError)


_MAGICS = {
    ".tif": b"II*\x00",
    ".tiff": b"MM\x00*",
    ".png": b"\x89PNG\r\n\x1a\n",
    ".jpg": b"\xff\xd8\xff\xe0",
    ".bmp": b"BM",
    ".gif": b"GIF89a",
    ".npy": b"\x93NUMPY\x01\x00",
    ".npz": b"PK\x03\x04",
    ".h5": b"\x89HDF\r\n\x1a\n",
    ".hspy": b"\x89HDF\r\n\x1a\n",
    ".zspy": b"PK\x03\x04",
}


@pytest.mark.parametrize("ext", sorted(_MAGICS))
def test_right_signature_then_garbage(tmp_path, ext):
    rng = np.random.default_rng(7)
    for k in range(5):
        path = tmp_path / f"magic{k}{ext}"
        path.write_bytes(_MAGICS[ext] + rng.bytes(int(rng.integers(0, 3000))))
        _assert_fails_fast(path)


def _synthetic_files(tmp_path):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (64, 80), dtype=np.uint8)
    files = []
    for ext in (".png", ".jpg", ".bmp", ".gif"):
        iio.imwrite(tmp_path / f"s{ext}", np.stack([img] * 3, -1))
        files.append(tmp_path / f"s{ext}")
    tifffile.imwrite(
        tmp_path / "s.tif", rng.random((3, 40, 50)).astype(np.float32), photometric="minisblack"
    )
    tifffile.imwrite(tmp_path / "sz.tiff", img, compression="zlib")
    np.save(tmp_path / "s.npy", rng.random((40, 50)))
    np.savez(tmp_path / "s.npz", image=rng.random((40, 50)), pixel_size=0.1)
    np.savez_compressed(tmp_path / "sc.npz", image=rng.random((40, 50)))
    _write_hspy(tmp_path / "s.hspy", rng.random((40, 50)), _ZSPY_AXES)
    files += [tmp_path / n for n in ("s.tif", "sz.tiff", "s.npy", "s.npz", "sc.npz", "s.hspy")]
    return files


_SHARED_FOR_TRUNCATION = [
    "rsciio/tif_saved_with_DM.tif",
    "rsciio/tif_saved_with_DM_stack.tif",
    "rsciio/tif_saved_with_ImageJ.tif",
    "rsciio/tif_saved_with_ImageJ_stack.tif",
    "rsciio/hspy_example2_v3.1.hspy",
    "rsciio/zspy_signal1d_10x10_ZipStore.zspy",
    "atomap/hspy_simulated_nanoparticle_220x300.hspy",
    "pystem/high_entropy_alloy_preview_512px.png",
]


def test_truncated_copies_raise_corrupt_file_error(tmp_path, shared_data):
    sources = _synthetic_files(tmp_path)
    for rel in _SHARED_FOR_TRUNCATION:
        dst = tmp_path / ("shared_" + rel.split("/")[-1])
        shutil.copyfile(shared_data / rel, dst)
        sources.append(dst)
    with zipfile.ZipFile(shared_data / "rsciio" / "tif_FEI_Helios_SEM.zip") as z:
        dst = tmp_path / "fei_Ebeam-16bits.tif"
        dst.write_bytes(z.read("FEI-Helios-Ebeam-16bits.tif"))
        sources.append(dst)
    for src in sources:
        atomscope.io.read_signals(src)  # the intact file reads
        body = src.read_bytes()
        for frac in (0.1, 0.5, 0.9, 0.995):
            cut = tmp_path / f"cut_{int(frac * 1000)}_{src.name}"
            cut.write_bytes(body[: max(1, int(len(body) * frac))])
            _assert_fails_fast(cut, CorruptFileError)


@pytest.mark.parametrize(
    "rel",
    [
        "rsciio/tif_saved_with_DM.tif",
        "rsciio/tif_saved_with_ImageJ_stack.tif",
        "rsciio/tif_FEI_Helios_SEM.zip",
        "rsciio/hspy_example2_v3.1.hspy",
        "rsciio/zspy_signal1d_10x10_ZipStore.zspy",
        "temul-toolkit/atomap_AtomLattice_AuNP_479x504.hdf5",
    ],
)
def test_metadata_is_json_friendly(shared_data, rel):
    path = shared_data / rel
    if path.suffix == ".zip":
        json.dumps(atomscope.load(path, frame=0).metadata, allow_nan=False)
        return
    for sig in read_signals(path):
        json.dumps(sig.metadata, allow_nan=False)
