"""Electron-microscopy readers (DM3/DM4, TIA EMI/SER, Velox and Berkeley EMD, MRC) on the
reference files in ../shared/data: shape, calibration, signal names, frame order, metadata, and
garbage input."""

import json
import os
import shutil
import struct
import time
from pathlib import Path

import h5py
import mrcfile
import numpy as np
import pytest

import atomscope
from atomscope.errors import (
    AtomscopeError,
    CorruptFileError,
    InvalidImageError,
    MissingFileError,
    SignalNotFoundError,
)
from atomscope.io import read_signals

# file, (T,)H,W as loaded by default, pixel size (row, col) in nm or None, signal names as
# read_signals returns them (None: not checked), voltage in V (None: not in the file)
CASES = [
    ("rsciio/dm3_STEM_image_FEI_Titan.dm3", (68, 68), 0.2485, ["test_STEM_image"], 200e3),
    ("rsciio/dm3_image_um_unit.dm3", (68, 68), 168.7, ["test_dm_image_um_unit"], 200e3),
    ("rsciio/dm3_imagestack_3frames.dm3", (3, 2, 16), 59.98, ["stackbuilder_test4_16x2"], None),
    (
        "rsciio/dm3_multi_signal_HAADF512_plus_plot.dm3",
        (512, 512),
        0.01775,
        ["HAADF", "Plot"],
        300e3,
    ),
    ("rsciio/dm4_synthetic_2x2_int16.dm4", (2, 2), None, ["test"], None),
    ("ncempy/dm4_synthetic_nonsquare_diff_pixel_size.dm4", (64, 128), (0.2, 1.0), None, None),
    ("ingrained/CdTe_110_CdTe_110_tilt/HAADF149.dm3", (512, 512), 0.016388, None, 200e3),
    ("ingrained/CdTe_110_CdTe_110_twin/HAADF26.dm3", (512, 512), 0.020217, ["HAADF26"], 200e3),
    (
        "temul-toolkit/dm3_ADF_Se-implanted_MoS2_1024.dm3",
        (1024, 1024),
        0.0127,
        ["SI Survey Image (active)"],
        60e3,
    ),
    ("rsciio/tia_STEM_nanoparticles_5frames.emi", (5, 128, 128), 0.3844, ["HAADF"], 200e3),
    ("rsciio/tia_STEM_nanoparticles_5frames_1.ser", (5, 128, 128), 0.3844, ["HAADF"], 200e3),
    ("rsciio/tia_TEM_search_128.emi", (128, 128), 5.261, ["CCD"], 200e3),
    ("rsciio/tia_TEM_preview_64x64x5.emi", (5, 64, 64), 6.282, ["CCD"], 200e3),
    ("rsciio/tia_STEM_BF_DF_16.emi", (16, 16), 21.51, ["BF", "DF4"], 200e3),
    ("rsciio/tia_STEM_BF_DF_16_2.ser", (16, 16), 21.51, ["DF4"], 200e3),
    ("ncempy/tia_STEM_SrTiO3_atomic_1024.emi", (1024, 1024), 0.01001, ["HAADF"], 80e3),
    ("rsciio/velox_TEM_stack_cropped.emd", (2, 3, 3), 0.008173, ["BM-Ceta"], 300e3),
    (
        "rsciio/velox_STEM_DPC_multisignal_cropped.emd",
        (2, 2),
        0.09962,
        ["DF4-A", "DF4-B", "DF4-C", "DF4-D", "A-C", "B-D", "filtered iDPC", "iDPC", "DPC"],
        300e3,
    ),
    ("ncempy/velox_STEM_HAADF_DF4_DF2_BF_128.emd", (128, 128), 87.37, None, 300e3),
    ("ncempy/velox_TEM_Ceta_512.emd", (512, 512), 3.139, ["BM-Ceta"], 300e3),
    ("rsciio/ncem_emd_example_image.emd", (3, 3), None, ["__unnamed__"], None),
    ("ncempy/ncem_emd_atomic_1024.emd", (1024, 1024), 0.012247, ["single"], 200e3),
    (
        "rsciio/prismatic_Si100_3D_simulation.emd",
        (37, 22, 22),
        0.25,
        ["virtual_detector_depth0000"],
        100e3,
    ),
    ("rsciio/mrc_velox_HAADF_16.mrc", (16, 16), 5.679, ["HAADF"], 300e3),
    ("rsciio/mrc_movie_348x16x16.mrc", (348, 16, 16), None, ["image"], None),
]


def _counts(mg):
    """The loaded values with the loader's integer offset (if any) added back."""
    return mg.data.astype(np.float64) + mg.metadata.get("intensity_offset", 0)


def _pixel(expected):
    if expected is None or isinstance(expected, tuple):
        return expected
    return (expected, expected)


@pytest.mark.parametrize(
    ("rel", "shape", "pixel", "names", "voltage"), CASES, ids=[c[0].split("/")[-1] for c in CASES]
)
def test_reference_file_loads_calibrated(shared_data, rel, shape, pixel, names, voltage):
    path = shared_data / rel
    mg = atomscope.load(path)
    assert mg.shape == shape
    assert mg.data.dtype == np.float32
    expected = _pixel(pixel)
    if expected is None:
        assert mg.pixel_size is None
    else:
        assert mg.pixel_size == pytest.approx(expected, rel=1e-3)
    if voltage is not None:
        assert mg.metadata["voltage"] == pytest.approx(voltage)
    else:
        assert "voltage" not in mg.metadata

    signals = read_signals(path)
    if names is not None:
        assert [s.name for s in signals] == names
    for sig in signals:
        json.dumps(sig.metadata, allow_nan=False)  # JSON-friendly
    # every named signal is reachable by name
    for sig in signals:
        if sig.kind in ("image", "diffraction") and min(sig.data.shape) > 1:
            assert atomscope.load(path, signal=sig.name).source.signal == sig.name


def test_raw_dtypes_are_kept(shared_data):
    expected = {
        "rsciio/dm3_STEM_image_FEI_Titan.dm3": np.uint32,
        "rsciio/dm3_diffraction_pattern_FEI_Tecnai.dm3": np.int32,
        "rsciio/dm4_synthetic_2x2_int16.dm4": np.int16,
        "rsciio/tia_STEM_nanoparticles_5frames.emi": np.uint16,
        "rsciio/tia_TEM_search_128.emi": np.int32,
        "rsciio/velox_TEM_stack_cropped.emd": np.int16,
        "ncempy/velox_STEM_HAADF_DF4_DF2_BF_128.emd": np.uint16,
        "ncempy/ncem_emd_atomic_1024.emd": np.uint16,
        "rsciio/mrc_movie_348x16x16.mrc": np.uint16,
    }
    for rel, dtype in expected.items():
        assert read_signals(shared_data / rel)[0].data.dtype == dtype, rel


# -- DigitalMicrograph --------------------------------------------------------------------------
def test_dm_stack_frames_first_and_in_order(shared_data):
    from ncempy.io import dm

    path = shared_data / "rsciio/dm3_imagestack_3frames.dm3"
    mg = atomscope.load(path)
    with dm.fileDM(path) as f:
        ref = f.getDataset(0)["data"]
    assert ref.shape == (3, 2, 16)
    np.testing.assert_array_equal(_counts(mg), ref)
    np.testing.assert_array_equal(read_signals(path)[0].data, ref)
    for k in range(3):
        one = atomscope.load(path, frame=k)
        assert one.shape == (2, 16)
        np.testing.assert_array_equal(_counts(one), ref[k])
    assert mg.pixel_size == pytest.approx((59.98, 59.98), rel=1e-3)


def test_dm_multi_signal_image_and_plot(shared_data):
    path = shared_data / "rsciio/dm3_multi_signal_HAADF512_plus_plot.dm3"
    image, plot = read_signals(path)
    assert (image.kind, image.data.shape, image.data.dtype) == ("image", (512, 512), np.uint16)
    assert (plot.kind, plot.data.shape, plot.data.dtype) == ("spectrum", (512,), np.float32)
    assert atomscope.load(path).source.signal == "HAADF"
    with pytest.raises(InvalidImageError, match="spectrum"):
        atomscope.load(path, signal="Plot")
    with pytest.raises(SignalNotFoundError):
        atomscope.load(path, signal="DF")


def test_dm_diffraction_pattern_keeps_reciprocal_calibration(shared_data):
    path = shared_data / "rsciio/dm3_diffraction_pattern_FEI_Tecnai.dm3"
    (sig,) = read_signals(path)
    assert sig.kind == "diffraction"
    assert sig.pixel_size is None
    assert sig.metadata["reciprocal_pixel_size"] == pytest.approx([0.1744, 0.1744], rel=1e-3)
    assert sig.metadata["reciprocal_unit"] == "1/nm"
    mg = atomscope.load(path)
    assert mg.shape == (87, 87)
    assert mg.pixel_size is None
    assert mg.metadata["kind"] == "diffraction"


def test_dm_anisotropic_units_converted_per_axis(shared_data):
    (sig,) = read_signals(shared_data / "ncempy/dm4_synthetic_nonsquare_diff_pixel_size.dm4")
    assert sig.data.shape == (64, 128)
    assert sig.pixel_size == pytest.approx((0.2, 1.0))  # y: 2 Å, x: 1 nm
    assert sig.metadata["calibration"]["units"] == ["A", "nm"]


def test_dm_metadata(shared_data):
    md = atomscope.load(shared_data / "rsciio/dm3_STEM_image_FEI_Titan.dm3").metadata
    assert md["format"] == "DM3"
    assert md["microscope"] == "FEI Titan"
    assert md["magnification"] == pytest.approx(225000)
    assert md["acquisition_date"] == "2016-08-08T16:26:37"
    assert md["mode"] == "SCANNING"
    assert isinstance(md["original"], dict)
    md = atomscope.load(shared_data / "ingrained/CdTe_110_CdTe_110_tilt/HAADF149.dm3").metadata
    assert md["acquisition_date"].startswith("2018-03-21")
    assert md["detector"] == "HAADF"
    assert md["specimen"] == "CdSeTe"
    md = atomscope.load(shared_data / "temul-toolkit/dm3_ADF_Se-implanted_MoS2_1024.dm3").metadata
    assert md["acquisition_date"].startswith("2016-07-03")


# -- TIA ----------------------------------------------------------------------------------------
def test_tia_series_is_a_stack_in_acquisition_order(shared_data):
    from ncempy.io import ser

    emi = shared_data / "rsciio/tia_STEM_nanoparticles_5frames.emi"
    mg = atomscope.load(emi)
    ref = ser.serReader(str(shared_data / "rsciio/tia_STEM_nanoparticles_5frames_1.ser"))["data"]
    assert ref.shape == (5, 128, 128)
    np.testing.assert_array_equal(_counts(mg), ref)
    for k in (0, 3, -1):
        np.testing.assert_array_equal(_counts(atomscope.load(emi, frame=k)), ref[k])
    assert mg.metadata["frame_interval_s"] == pytest.approx(0.23593)
    assert mg.metadata["acquisition_date"] == "2019-04-25T09:30:09"
    assert mg.metadata["magnification"] == pytest.approx(1.3e6)


def test_tia_bf_df_pair(shared_data):
    emi = shared_data / "rsciio/tia_STEM_BF_DF_16.emi"
    bf, df = read_signals(emi)
    assert (bf.name, df.name) == ("BF", "DF4")
    assert not np.array_equal(bf.data, df.data)
    np.testing.assert_array_equal(_counts(atomscope.load(emi, signal="DF4")), df.data)
    # default: the dark-field signal is preferred over bright field
    assert atomscope.load(emi).source.signal == "DF4"
    # the .ser alone gives the same signal, named from the .emi next to it
    (df_alone,) = read_signals(shared_data / "rsciio/tia_STEM_BF_DF_16_2.ser")
    assert df_alone.name == "DF4"
    np.testing.assert_array_equal(df_alone.data, df.data)


def test_tia_ser_without_emi_gets_positional_name(shared_data, tmp_path):
    src = shared_data / "rsciio/tia_TEM_search_128_1.ser"
    dst = tmp_path / "lonely_1.ser"
    shutil.copy(src, dst)
    (sig,) = read_signals(dst)
    assert sig.name == "ser1"
    assert sig.pixel_size == pytest.approx((5.261, 5.261), rel=1e-3)
    assert "voltage" not in sig.metadata


def test_tia_emi_without_series_files(shared_data, tmp_path):
    dst = tmp_path / "alone.emi"
    shutil.copy(shared_data / "rsciio/tia_TEM_search_128.emi", dst)
    with pytest.raises(MissingFileError, match="alone_1.ser"):
        atomscope.load(dst)


def test_tia_ser_with_damaged_emi_still_reads(shared_data, tmp_path):
    emi = (shared_data / "rsciio/tia_STEM_nanoparticles_5frames.emi").read_bytes()
    (tmp_path / "x.emi").write_bytes(emi[: len(emi) // 2])
    shutil.copy(shared_data / "rsciio/tia_STEM_nanoparticles_5frames_1.ser", tmp_path / "x_1.ser")
    mg = atomscope.load(tmp_path / "x.emi")
    assert mg.shape == (5, 128, 128)
    assert mg.pixel_size == pytest.approx((0.3844, 0.3844), rel=1e-3)


# -- EMD ----------------------------------------------------------------------------------------
def _velox_frames(path, detector):
    with h5py.File(path, "r") as f:
        for group in f["Data/Image"].values():
            meta = json.loads(group["Metadata"][:, 0].tobytes().split(b"\x00", 1)[0])
            if meta["BinaryResult"]["Detector"] == detector:
                return group["Data"][()]
    raise AssertionError(detector)


def test_velox_stack_frames_first(shared_data):
    path = shared_data / "rsciio/velox_TEM_stack_cropped.emd"
    raw = _velox_frames(path, "BM-Ceta")  # (H, W, T) in the file
    assert raw.shape == (3, 3, 2)
    mg = atomscope.load(path)
    assert mg.shape == (2, 3, 3)
    for k in range(2):
        np.testing.assert_array_equal(_counts(mg)[k], raw[:, :, k])
        np.testing.assert_array_equal(_counts(atomscope.load(path, frame=k)), raw[:, :, k])
    assert mg.metadata["frame_interval_s"] == pytest.approx(0.8, rel=1e-3)
    assert mg.metadata["exposure_time_s"] == pytest.approx(0.8)
    assert mg.pixel_size == pytest.approx((0.008173, 0.008173), rel=1e-3)


def test_velox_four_detectors(shared_data):
    path = shared_data / "ncempy/velox_STEM_HAADF_DF4_DF2_BF_128.emd"
    signals = read_signals(path)
    assert sorted(s.name for s in signals) == ["BF", "DF2", "DF4", "HAADF"]
    assert atomscope.load(path).source.signal == "HAADF"
    for name in ("HAADF", "DF2", "DF4", "BF"):
        mg = atomscope.load(path, signal=name)
        assert mg.shape == (128, 128)
        np.testing.assert_array_equal(_counts(mg), _velox_frames(path, name)[:, :, 0])
        assert mg.metadata["detector"] == name
    md = atomscope.load(path).metadata
    assert md["magnification"] == pytest.approx(7100)
    assert md["frame_time_s"] == pytest.approx(0.24706)
    assert md["acquisition_date"].startswith("2020-07-29")


def test_velox_dpc_complex_signal_is_refused_with_a_clear_message(shared_data):
    path = shared_data / "rsciio/velox_STEM_DPC_multisignal_cropped.emd"
    signals = {s.name: s for s in read_signals(path)}
    assert len(signals) == 9
    dpc = signals["DPC"]
    assert dpc.kind == "other"
    assert dpc.data.dtype == np.complex64
    assert dpc.data.shape == (2, 2)
    assert signals["iDPC"].data.dtype == np.float32
    assert atomscope.load(path).source.signal != "DPC"
    with pytest.raises(InvalidImageError, match="complex"):
        atomscope.load(path, signal="DPC")
    mg = atomscope.load(path, signal="iDPC")
    assert mg.pixel_size == pytest.approx((0.09962, 0.09962), rel=1e-3)


def test_berkeley_emd_units_and_metadata(shared_data):
    mg = atomscope.load(shared_data / "ncempy/ncem_emd_atomic_1024.emd")
    assert mg.metadata["microscope"] == "TEAM 0.5"
    assert mg.metadata["magnification"] == pytest.approx(5.1e6)
    assert mg.metadata["specimen"] == "STO laser cut"
    (sig,) = read_signals(shared_data / "rsciio/ncem_emd_example_image.emd")
    assert sig.pixel_size is None  # units "[]"
    np.testing.assert_array_equal(
        sig.data,
        h5py.File(shared_data / "rsciio/ncem_emd_example_image.emd")["signals/__unnamed__/data"][
            ()
        ],
    )


def test_prismatic_detector_axis_becomes_frame_axis(shared_data):
    path = shared_data / "rsciio/prismatic_Si100_3D_simulation.emd"
    with h5py.File(path, "r") as f:
        raw = f["4DSTEM_simulation/data/realslices/virtual_detector_depth0000/realslice"][()]
    assert raw.shape == (22, 22, 37)
    mg = atomscope.load(path)
    assert mg.shape == (37, 22, 22)
    for k in (0, 10, 36):
        np.testing.assert_array_equal(mg.data[k], raw[:, :, k])
    assert mg.metadata["frame_axis"]["units"] == "[mrad]"
    assert mg.metadata["simulated"] is True


# -- MRC ----------------------------------------------------------------------------------------
def test_mrc_movie_frames_and_uncalibrated(shared_data):
    path = shared_data / "rsciio/mrc_movie_348x16x16.mrc"
    with mrcfile.open(path, permissive=True) as m:
        ref = np.array(m.data)
    mg = atomscope.load(path, frame=200)
    np.testing.assert_array_equal(_counts(mg), ref[200])
    (sig,) = read_signals(path)
    assert sig.pixel_size is None  # voxel size -10 Å
    assert isinstance(sig.data, np.memmap)


def test_mrc_fei_extended_header(shared_data):
    md = atomscope.load(shared_data / "rsciio/mrc_velox_HAADF_16.mrc").metadata
    assert md["detector"] == "HAADF"
    assert md["mode"] == "STEM"
    assert md["dwell_time_s"] == pytest.approx(0.01)
    assert md["mrc_extended_header_type"] == "FEI2"


def _write_mrc(path, voxel_size, shape=(1, 8, 8)):
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(np.arange(np.prod(shape), dtype=np.int16).reshape(shape))
        if voxel_size is not None:
            m.voxel_size = voxel_size


@pytest.mark.parametrize(
    ("voxel", "expected"), [(2.5, (0.25, 0.25)), (0.0, None), (-3.0, None), (None, None)]
)
def test_mrc_voxel_size_rules(tmp_path, voxel, expected):
    path = tmp_path / "v.mrc"
    _write_mrc(path, voxel)
    mg = atomscope.load(path)
    assert mg.shape == (8, 8)  # a single section (1, H, W) is an image
    if expected is None:
        assert mg.pixel_size is None
    else:
        assert mg.pixel_size == pytest.approx(expected)


# -- garbage ------------------------------------------------------------------------------------
EXTENSIONS = [".dm3", ".dm4", ".emi", ".ser", ".emd", ".mrc"]
TRUNCATE = {
    ".dm3": "rsciio/dm3_STEM_image_FEI_Titan.dm3",
    ".dm4": "ncempy/dm4_synthetic_nonsquare_diff_pixel_size.dm4",
    ".emi": "rsciio/tia_STEM_nanoparticles_5frames.emi",
    ".ser": "rsciio/tia_STEM_nanoparticles_5frames_1.ser",
    ".emd": "ncempy/velox_TEM_Ceta_512.emd",
    ".mrc": "rsciio/mrc_velox_HAADF_16.mrc",
}


def _raises_quickly(path, error=CorruptFileError):
    start = time.perf_counter()
    with pytest.raises(error) as info:
        atomscope.load(path)
    assert time.perf_counter() - start < 5
    assert path.name in str(info.value)
    with pytest.raises(AtomscopeError):
        read_signals(path)


@pytest.mark.parametrize("ext", EXTENSIONS)
@pytest.mark.parametrize("size", [5, 600, 70_000])
def test_random_bytes_raise_corrupt_file_error(tmp_path, ext, size):
    path = tmp_path / f"random{ext}"
    path.write_bytes(np.random.default_rng(size).bytes(size))
    _raises_quickly(path)


@pytest.mark.parametrize("ext", EXTENSIONS)
@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.9])
def test_truncated_copies_raise_corrupt_file_error(shared_data, tmp_path, ext, fraction):
    data = (shared_data / TRUNCATE[ext]).read_bytes()
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[: max(1, int(len(data) * fraction))])
    _raises_quickly(path)


def test_headers_claiming_huge_data_raise_without_allocating(tmp_path):
    # MRC: 100000^3 uint16 voxels announced, 2 kB present
    head = bytearray(1024)
    struct.pack_into("<4i", head, 0, 100_000, 100_000, 100_000, 6)
    head[208:212] = b"MAP "
    head[212:214] = b"\x44\x44"
    mrc = tmp_path / "huge.mrc"
    mrc.write_bytes(bytes(head) + bytes(1024))
    _raises_quickly(mrc)
    # SER: 2^31 - 1 elements announced
    ser = tmp_path / "huge_1.ser"
    ser.write_bytes(
        struct.pack("<3H4iqi", 0x4949, 0x0197, 0x0220, 0x4122, 0x4152, 2**31 - 1, 2**31 - 1, 34, 0)
        + bytes(64)
    )
    _raises_quickly(ser)
    # DM4: a tag directory of 2^60 bytes announced
    dm = tmp_path / "huge.dm4"
    dm.write_bytes(struct.pack(">IQI", 4, 2**60, 1) + bytes(64))
    _raises_quickly(dm)


def test_dm_image_block_outside_the_file_is_refused(tmp_path):
    from atomscope.io.readers import dm

    path = tmp_path / "small.dm3"
    path.write_bytes(bytes(100))
    tags = {"ImageData.Data.arrayOffset": 40, "ImageData.Data.arraySize": 4 * 10**9}
    with pytest.raises(CorruptFileError, match="truncated"):
        dm._read_block(path, tags, np.dtype("<u4"), 10**9, "image 0")
    tags["ImageData.Data.arraySize"] = 8
    with pytest.raises(CorruptFileError, match="need 4000 bytes"):
        dm._read_block(path, tags, np.dtype("<u4"), 1000, "image 0")


def test_wrong_magic_emd_is_not_hdf5(tmp_path):
    path = tmp_path / "fake.emd"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(3000))
    _raises_quickly(path)


def test_hdf5_without_emd_layout(tmp_path):
    path = tmp_path / "plain.emd"
    with h5py.File(path, "w") as f:
        f["something"] = np.zeros((4, 4))
    _raises_quickly(path)
    assert Path(path).exists()
