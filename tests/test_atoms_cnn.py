"""The learned column detector: shipped model, find_atoms(method="cnn"), CLI, fine-tuning."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from atomscope.atoms import find_atoms
from atomscope.atoms.cnn import (
    TARGET_NN_PX,
    column_mask,
    find_peaks,
    load_atom_model,
    prepare_input,
    probability_map,
    to_original,
    to_resampled,
)
from atomscope.atoms.train import match_columns, read_positions, train_atoms
from atomscope.cli import main
from atomscope.errors import ParameterError
from atomscope.nn import list_models, shipped_model_path
from atomscope.simulate import simulate_haadf


def run_cli(*args, expect=0):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
        raise SystemExit(0)
    assert exc.value.code == expect, f"exit {exc.value.code} != {expect}"


@pytest.fixture(scope="module")
def sto():
    """A fresh SrTiO3 [001] image (seed never used in training) and its visible columns."""
    sim = simulate_haadf(
        "SrTiO3", size=192, pixel_size=0.02, dose=3e4, rotation=21.0, shift=(0.4, -0.2), seed=4242
    )
    cols = sim.truth.columns
    return sim, cols[cols.species != "O"][["x", "y"]].to_numpy()


def test_shipped_model_loads_with_its_manifest():
    assert "atoms-unet" in list_models()
    path = shipped_model_path("atoms-unet")
    assert path.stat().st_size <= 5 * 2**20
    net, manifest = load_atom_model()
    assert manifest["task"] == "atoms" and manifest["architecture"] == "unet"
    assert manifest["training"]["command"].startswith("atomscope train atoms")
    assert manifest["training"]["seed"] == 0
    assert manifest["training"]["data"]["kind"] == "simulated"
    assert manifest["metrics"]["heldout_simulated"]["n_images"] > 0
    assert manifest["preprocessing"]["target_nn_px"] == TARGET_NN_PX
    assert not net.training
    assert load_atom_model()[0] is net  # cached


def test_resampling_maps_positions_both_ways():
    xy = np.array([[0.0, 0.0], [10.3, 4.7], [99.0, 63.0]])
    img = np.zeros((64, 100), np.float32)
    x, factors = prepare_input(img + np.random.default_rng(0).random(img.shape), 20.0)
    assert x.shape == (round(64 * TARGET_NN_PX / 20), round(100 * TARGET_NN_PX / 20))
    np.testing.assert_allclose(to_original(to_resampled(xy, factors), factors), xy, atol=1e-9)
    m = column_mask((40, 40), np.array([[10.0, 10.0], [30.2, 20.7]]), 2.0)
    assert m.dtype == np.uint8 and m.sum() == 2 * 13


def test_find_peaks_one_per_blob():
    yy, xx = np.mgrid[0:40, 0:40]
    logits = np.full((40, 40), -8.0, np.float32)
    for cx, cy, a in ((10.2, 12.0, 6.0), (28.0, 25.6, 3.0), (29.0, 26.0, 2.9)):
        logits = np.maximum(logits, a - ((xx - cx) ** 2 + (yy - cy) ** 2) / 2.0)
    xy, p = find_peaks(logits, min_distance=3.0)
    assert len(xy) == 2
    assert np.hypot(*(xy[0] - [10.2, 12.0])) < 0.5 and p[0] > p[1] > 0.9


def test_cnn_finds_columns_on_a_fresh_simulated_image(sto):
    sim, truth = sto
    res = find_atoms(sim.image, method="cnn")
    m = match_columns(res.xy, truth, 0.3 * 13.8, sim.image.shape, 13.8)
    assert m["precision"] >= 0.99 and m["recall"] >= 0.99
    assert m["rmse_px"] < 0.2
    assert res.optimization is None  # nothing tuned
    assert res.parameters == {"threshold": 0.5}
    assert res.settings["model"]["name"] == "atoms-unet"
    pm = probability_map(sim.image.data, res.lattice.nn_distance_px)
    assert pm.shape == sim.image.shape and 0 <= pm.min() and pm.max() <= 1
    ij = np.rint(truth).astype(int)
    assert np.median(pm[ij[:, 1], ij[:, 0]]) > 0.9


def test_dark_columns_and_threshold(sto):
    sim, truth = sto
    abf = -sim.image.data
    res = find_atoms(abf, method="cnn", dark=True, parameters={"threshold": 0.7})
    m = match_columns(res.xy, truth, 0.3 * 13.8, abf.shape, 13.8)
    assert m["recall"] >= 0.98 and m["precision"] >= 0.98
    assert res.parameters == {"threshold": 0.7}


def test_cnn_needs_an_available_device(sto):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ParameterError, match="CUDA"):
        find_atoms(sto[0].image, method="cnn", device="cuda")


def test_cli_atoms_method_cnn(sto, tmp_path, capsys):
    sim, truth = sto
    path = tmp_path / "image.npy"
    np.save(path, sim.image.data)
    out = tmp_path / "out"
    run_cli("atoms", path, "-o", out, "--method", "cnn")
    assert "columns found" in capsys.readouterr().out
    table = pd.read_csv(out / "atoms.csv")
    assert abs(len(table) - len(truth)) <= 0.05 * len(truth)
    report = json.loads((out / "report.json").read_text())
    assert "cnn" in json.dumps(report)


def test_fine_tuning_on_positions_changes_the_weights(sto, tmp_path):
    sim, truth = sto
    csv = tmp_path / "atoms.csv"
    pd.DataFrame({"x": truth[:, 0], "y": truth[:, 1]}).to_csv(csv, index=False)
    np.testing.assert_allclose(read_positions(csv), truth)
    trained = train_atoms(
        image=sim.image,
        positions=csv,
        epochs=1,
        steps_per_epoch=2,
        batch_size=2,
        patch_size=64,
        out=tmp_path,
        evaluate=False,
        show_progress=False,
        n_threads=1,
    )
    assert trained.path == tmp_path / "atoms-finetuned.pt" and trained.path.is_file()
    base, _ = load_atom_model()
    tuned, manifest = load_atom_model(trained.path)
    assert manifest["training"]["source"] == "user positions"
    assert manifest["training"]["data"]["base_model"]["name"] == "atoms-unet"
    diff = max(
        float((a - b).abs().max())
        for a, b in zip(base.state_dict().values(), tuned.state_dict().values(), strict=True)
        if a.dtype.is_floating_point
    )
    assert diff > 0
    res = find_atoms(sim.image, method="cnn", model=trained.path)
    assert res.settings["model"]["name"] == "atoms-finetuned"


def test_cli_train_atoms_from_positions(sto, tmp_path, capsys):
    sim, truth = sto
    img = tmp_path / "image.npy"
    np.save(img, sim.image.data)
    csv = tmp_path / "atoms.csv"
    pd.DataFrame({"x": truth[:, 0], "y": truth[:, 1]}).to_csv(csv, index=False)
    out = tmp_path / "model"
    run_cli(
        "train",
        "atoms",
        "--from-positions",
        csv,
        img,
        "-o",
        out,
        "--epochs",
        1,
        "--steps",
        1,
        "--batch-size",
        2,
        "--patch-size",
        64,
        "--no-evaluate",
        "--no-progress",
        "--threads",
        1,
    )
    assert "Model written" in capsys.readouterr().out
    manifest = json.loads((out / "atoms-finetuned.json").read_text())
    assert manifest["training"]["command"].startswith(
        f"atomscope train atoms --from-positions {csv} {img}"
    )


def test_bad_inputs(sto, tmp_path, capsys):
    sim, truth = sto
    img = tmp_path / "image.npy"
    np.save(img, sim.image.data)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"col": [1, 2, 3], "row": [4, 5, 6]}).to_csv(bad, index=False)
    with pytest.raises(ParameterError, match="'x' and 'y'"):
        read_positions(bad)
    run_cli(
        "train",
        "atoms",
        "--from-positions",
        bad,
        img,
        "-o",
        tmp_path / "m",
        "--no-progress",
        expect=2,
    )
    assert "'x' and 'y'" in capsys.readouterr().err
    run_cli("train", "atoms", "--from-positions", bad, "-o", tmp_path / "m", expect=2)
    far = tmp_path / "far.csv"
    pd.DataFrame({"x": [1e4, 2e4, 3e4], "y": [1e4, 2e4, 3e4]}).to_csv(far, index=False)
    with pytest.raises(ParameterError, match="inside"):
        train_atoms(
            image=sim.image,
            positions=far,
            epochs=1,
            steps_per_epoch=1,
            evaluate=False,
            show_progress=False,
        )
    with pytest.raises(ParameterError, match="both"):
        train_atoms(positions=truth)
    with pytest.raises(Exception, match="atoms-nope"):
        find_atoms(sim.image, method="cnn", model="atoms-nope")


def test_synthetic_benchmark_image(shared_data):
    z = np.load(shared_data / "synthetic-atomfind-benchmark" / "sq_pois100.npz")
    img, xy, nn = z["image"], z["xy"], float(z["nn_spacing"])
    res = find_atoms(img[:256, :256], method="cnn")
    m = match_columns(res.xy, xy, 0.3 * nn, (256, 256), nn)
    assert m["precision"] >= 0.99 and m["recall"] >= 0.99
    assert m["rmse_px"] < 0.09
