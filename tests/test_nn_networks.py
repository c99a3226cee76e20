"""atomscope.nn.networks: shapes, parameter counts, seeded construction, kernels."""

import numpy as np
import pytest
import torch

from atomscope.errors import ParameterError
from atomscope.nn import (
    ShallowCNN,
    UNet,
    build_model,
    count_parameters,
    first_layer_kernels,
    plot_kernels,
    probabilities,
)


def test_unet_default_is_the_papers_size_and_keeps_any_shape():
    net = UNet()
    assert 50_000 <= count_parameters(net) <= 100_000  # 4 levels, 8-64 channels
    net.eval()
    with torch.inference_mode():
        for h, w in ((64, 64), (37, 50), (5, 7)):
            out = net(torch.zeros(2, 1, h, w))
            assert out.shape == (2, 2, h, w)


@pytest.mark.parametrize(
    "kw",
    [
        {"batch_norm": False},
        {"double_conv": True},
        {"activation": "relu"},
        {"upsample": "bilinear"},
        {"depth": 2, "base_channels": 4, "n_classes": 1},
    ],
)
def test_unet_variants(kw):
    net = build_model("unet", **kw)
    out = net(torch.randn(1, 1, 32, 48))
    assert out.shape == (1, kw.get("n_classes", 2), 32, 48)
    assert net.config[next(iter(kw))] == kw[next(iter(kw))]


def test_double_conv_adds_parameters_and_no_bn_removes_some():
    base = count_parameters(UNet())
    assert count_parameters(UNet(double_conv=True)) > base
    assert count_parameters(UNet(batch_norm=False)) < base


def test_shallow_cnn_is_one_wide_layer_and_its_kernels_are_images():
    net = ShallowCNN()
    assert count_parameters(net) < 5_000
    assert net.kernels().shape == (32, 1, 9, 9)
    assert first_layer_kernels(net).shape == (32, 9, 9)
    assert net(torch.zeros(1, 1, 20, 30)).shape == (1, 2, 20, 30)
    fig = plot_kernels(net, max_kernels=6)
    assert len([a for a in fig.axes if a.images]) == 7  # 6 kernels + their mean


def test_seeded_build_is_reproducible_and_restores_global_state():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = build_model("unet", seed=5, base_channels=4, depth=2)
    after = torch.rand(3)
    assert torch.equal(after, expected)  # global state untouched
    b = build_model("unet", seed=5, base_channels=4, depth=2)
    c = build_model("unet", seed=6, base_channels=4, depth=2)
    for (k, va), vb, _vc in zip(
        a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True
    ):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters(), strict=True))


def test_probabilities_softmax_and_sigmoid():
    logits = torch.randn(2, 3, 4, 4)
    p = probabilities(logits)
    assert torch.allclose(p.sum(dim=1), torch.ones(2, 4, 4), atol=1e-6)
    q = probabilities(torch.zeros(1, 1, 2, 2))
    assert np.allclose(q.numpy(), 0.5)


def test_bad_settings_are_parameter_errors():
    with pytest.raises(ParameterError):
        build_model("transformer")
    with pytest.raises(ParameterError):
        UNet(kernel_size=4)
    with pytest.raises(ParameterError):
        UNet(activation="swishy")
    with pytest.raises(ParameterError):
        ShallowCNN(n_filters=0)
