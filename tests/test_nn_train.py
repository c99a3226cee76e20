"""atomscope.nn training loop and model files."""

import json

import numpy as np
import pytest
import torch

from atomscope.errors import CorruptFileError, MissingFileError, ParameterError
from atomscope.nn import (
    Augmentation,
    build_model,
    list_models,
    load_model,
    pixel_scores,
    read_manifest,
    save_model,
    train_model,
)


def _toy_data(n=4, size=48, seed=0):
    rng = np.random.default_rng(seed)
    images, targets = [], []
    yy, xx = np.mgrid[:size, :size]
    for _ in range(n):
        t = np.zeros((size, size), np.int64)
        for _ in range(3):
            cy, cx, r = rng.uniform(8, size - 8), rng.uniform(8, size - 8), rng.uniform(3, 7)
            t[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        images.append((-2.0 * t + 0.3 * rng.standard_normal((size, size))).astype(np.float32))
        targets.append(t)
    return images, targets


def _train(seed, epochs=1):
    images, targets = _toy_data()
    net = build_model("unet", seed=seed, base_channels=4, depth=2)
    hist = train_model(
        net,
        images,
        targets,
        epochs=epochs,
        steps_per_epoch=2,
        batch_size=2,
        patch_size=32,
        seed=seed,
        val_fraction=0.25,
        show_progress=False,
        augmentation=Augmentation(noise=0.2, blur=1.0),
        n_threads=1,
    )
    return net, hist


def test_same_seed_same_weights_after_one_epoch_and_global_rng_untouched():
    torch.manual_seed(99)
    expected = torch.rand(4)
    torch.manual_seed(99)
    a, ha = _train(seed=3)
    assert torch.equal(torch.rand(4), expected)
    b, _ = _train(seed=3)
    c, _ = _train(seed=4)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters(), strict=True))
    rec = ha.records[0]
    assert rec["epoch"] == 1 and rec["train_loss"] > 0 and rec["val_loss"] is not None
    assert 0 <= rec["val_f1"] <= 1
    assert ha.split["val"] and ha.summary()["epochs"] == 1


def test_training_learns_the_toy_problem():
    images, targets = _toy_data(n=6)
    net = build_model("shallow", seed=0, n_filters=8, kernel_size=5)
    hist = train_model(
        net,
        images,
        targets,
        epochs=8,
        steps_per_epoch=6,
        batch_size=4,
        patch_size=32,
        lr=1e-2,
        seed=0,
        show_progress=False,
        loss="ce_dice",
        n_threads=1,
    )
    assert hist.records[-1]["train_loss"] < hist.records[0]["train_loss"]
    assert hist.records[-1]["val_f1"] > 0.8
    assert len(hist.to_frame()) == 8


def test_early_stopping_and_bad_settings():
    images, targets = _toy_data(n=4)
    net = build_model("shallow", seed=0, n_filters=2, kernel_size=3)
    hist = train_model(
        net,
        images,
        targets,
        epochs=30,
        steps_per_epoch=1,
        batch_size=2,
        patch_size=16,
        lr=1e-7,
        early_stopping=1,
        seed=0,
        show_progress=False,
    )
    assert hist.stopped_early and len(hist.records) < 30
    with pytest.raises(ParameterError):
        train_model(net, images, targets, loss="bce", show_progress=False)
    with pytest.raises(ParameterError):
        train_model(net, images, targets[:2], show_progress=False)


def test_model_files_round_trip_and_detect_tampering(tmp_path):
    net = build_model("unet", seed=1, base_channels=4, depth=2)
    path = save_model(net, tmp_path / "toy.pt", manifest={"task": "test", "metrics": {"f1": 1}})
    assert path.exists() and path.with_suffix(".json").exists()
    manifest = read_manifest(path)
    assert manifest["architecture"] == "unet" and manifest["config"]["depth"] == 2
    assert manifest["task"] == "test" and len(manifest["sha256"]) == 64
    loaded, m2 = load_model(tmp_path / "toy.json")
    x = torch.randn(1, 1, 24, 24)
    net.eval()
    with torch.inference_mode():
        assert torch.allclose(net(x), loaded(x))
    folder = save_model(net, tmp_path / "dir")
    assert folder.name == "model.pt" and load_model(tmp_path / "dir")[1]["name"] == "model"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError):
        load_model(path)
    with pytest.raises(MissingFileError):
        load_model(tmp_path / "absent.pt")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    (tmp_path / "bad.pt").write_bytes(b"")
    with pytest.raises(CorruptFileError):
        load_model(tmp_path / "bad.pt")


def test_shipped_models_are_registered_and_load():
    models = list_models()
    assert {"particles-unet", "particles-shallow", "atoms-unet"} <= set(models)
    for name, manifest in models.items():
        net, m = load_model(name)
        assert m["sha256"] == manifest["sha256"]
        task = name.split("-")[0]
        assert m["training"]["command"].startswith(f"atomscope train {task}")
        assert not net.training


def test_classical_analyses_do_not_import_torch():
    # batch workers running the classical recipes should not pay for a PyTorch import
    import subprocess
    import sys

    code = (
        "import sys, atomscope, atomscope.particles, atomscope.atoms, atomscope.nn; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_pixel_scores_accept_arrays_and_tensors():
    pred = np.array([[1, 1, 0], [0, 0, 0]], bool)
    truth = np.array([[1, 0, 0], [1, 0, 0]], bool)
    s = pixel_scores(pred, truth)
    assert s == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "iou": 1 / 3})
    assert pixel_scores(torch.from_numpy(pred), torch.from_numpy(truth)) == s
