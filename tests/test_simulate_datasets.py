import numpy as np
from benchmarks import datasets


def test_every_suite_generates_deterministically():
    for name in datasets.SUITES:
        a = datasets.generate(name, quick=True)
        assert a and all(r.image.data.size for r in a)
        if name in ("dose_ladder", "amorphous_patches"):
            b = datasets.generate(name, quick=True)
            for x, y in zip(a, b, strict=True):
                np.testing.assert_array_equal(x.image.data, y.image.data)


def test_weak_b_brightness():
    res = datasets.weak_b_perovskite(0.35, doses=(1e5,), size=64)[0]
    w = res.truth.columns.groupby("species").weight.first()
    assert abs(w["Ti+O"] / w["Sr"] - 0.35) < 1e-9


def test_amorphous_fractions_in_range():
    res = datasets.amorphous_patches((0.05, 0.3), size=96)
    fr = [r.truth.masks["amorphous"].mean() for r in res]
    assert min(fr) >= 0.049 and max(fr) <= 0.301
