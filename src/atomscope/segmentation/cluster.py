"""PCA, seeded k-means, the automatic choice of the number of clusters, Fisher separability.

PCA (paper Sec. II B) keeps the directions of largest variance; the paper's observation is that
in these descriptors variance and separability go together, which is what makes the method
work without labels (:func:`fisher_separability` reports both so a user can check it on their
image). K-means (Sec. II C, implemented here: k-means++ seeding and Lloyd iterations) is seeded
and restarted ``n_init`` times, so the same image always
gives the same labels (pySTEM's k-means was unseeded).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ParameterError

__all__ = [
    "FittedPCA",
    "fit_pca",
    "block_scales",
    "kmeans",
    "choose_k",
    "fisher_separability",
    "silhouette",
    "squared_distances",
    "K_METHODS",
]

K_METHODS = ("silhouette", "bic")

#: total feature variance below this counts as "no texture": one segment
MIN_VARIANCE = 1e-10


@dataclass
class FittedPCA:
    """Feature scaling + principal axes: ``Z = ((X · scale) − mean) @ components.T``."""

    scale: np.ndarray  # (F,)
    mean: np.ndarray  # (F,)
    components: np.ndarray  # (n, F)
    explained_variance: np.ndarray  # (n,)
    explained_variance_ratio: np.ndarray  # (n,)

    def transform(self, X: np.ndarray) -> np.ndarray:
        Xs = np.asarray(X, dtype=np.float32) * self.scale.astype(np.float32)
        return ((Xs - self.mean.astype(np.float32)) @ self.components.T.astype(np.float32)).astype(
            np.float32
        )

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])


def block_scales(X: np.ndarray, slices: dict[str, slice]) -> np.ndarray:
    """Per-feature factors that give every descriptor block unit total variance (so a block
    with 100 channels does not outweigh one with 40). One block: all ones (the plain PCA of the
    paper)."""
    scale = np.ones(X.shape[1], np.float64)
    if len(slices) <= 1:
        return scale
    for sl in slices.values():
        total = float(X[:, sl].astype(np.float64).var(axis=0).sum())
        if total > MIN_VARIANCE:
            scale[sl] = 1.0 / np.sqrt(total)
    return scale


def single_threaded() -> Any:
    """Limit BLAS/OpenMP to one thread: the PCA and k-means problems here are small, and on a
    shared machine thread spinning makes them several times slower, never faster."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def fit_pca(
    X: np.ndarray, n_components: int, *, scale: np.ndarray | None = None, seed: int = 0
) -> FittedPCA:
    """Principal axes of the scaled features.

    Up to 512 features: eigendecomposition of the float64 covariance matrix (exact, one pass
    over the data). More (power spectrum): seeded randomized SVD of the centred data. Fewer
    components are kept when the data have fewer; none when the features have no variance
    (blank image). Signs are fixed (largest loading positive) so that results are reproducible.
    """
    n, f = X.shape
    scale = np.ones(f) if scale is None else np.asarray(scale, dtype=np.float64)
    Xs = np.asarray(X, np.float32) * scale.astype(np.float32)
    mean = Xs.mean(axis=0, dtype=np.float64)
    Xc = Xs - mean.astype(np.float32)
    with single_threaded():
        # float32 products, float64 eigendecomposition: the features are O(1) correlations
        cov = (Xc.T @ Xc).astype(np.float64) / max(n - 1, 1) if f <= 512 else None
    total = (
        float(np.trace(cov))
        if cov is not None
        else float(np.einsum("ij,ij->", Xc, Xc, dtype=np.float64) / max(n - 1, 1))
    )
    if total <= MIN_VARIANCE or n < 2:
        return FittedPCA(scale, mean, np.zeros((0, f)), np.zeros(0), np.zeros(0))
    nc = int(max(1, min(n_components, f, n - 1)))
    with single_threaded():
        if cov is not None:
            evals, evecs = np.linalg.eigh(cov)
            order = np.argsort(evals)[::-1][:nc]
            var, comps = evals[order], evecs[:, order].T
        else:
            from sklearn.utils.extmath import randomized_svd

            _, sv, comps = randomized_svd(Xc, nc, n_oversamples=20, n_iter=4, random_state=seed)
            var = sv.astype(np.float64) ** 2 / (n - 1)
    keep = var > MIN_VARIANCE * max(total, 1.0)
    comps, var = comps[keep], var[keep]
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    signs[signs == 0] = 1
    return FittedPCA(scale, mean, comps * signs[:, None], var, var / total)


def squared_distances(Z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(N, k) squared Euclidean distances."""
    Z = np.asarray(Z, np.float64)
    c = np.asarray(centres, np.float64)
    d = (Z * Z).sum(1)[:, None] - 2 * Z @ c.T + (c * c).sum(1)[None]
    return np.maximum(d, 0.0)


def _kmeans_pp(Z: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (D² sampling, 2 + log k candidates per step, the best kept)."""
    n = len(Z)
    n_trials = 2 + int(np.log(k))
    centres = [Z[rng.integers(n)]]
    d2 = ((Z - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:
            centres.append(Z[rng.integers(n)])
            continue
        cand = np.searchsorted(np.cumsum(d2), rng.random(n_trials) * total)
        cand = np.minimum(cand, n - 1)
        cand_d2 = np.minimum(d2[None], ((Z[None] - Z[cand][:, None]) ** 2).sum(-1))
        best = int(np.argmin(cand_d2.sum(1)))
        centres.append(Z[cand[best]])
        d2 = cand_d2[best]
    return np.array(centres)


def _lloyd(
    Z: np.ndarray,
    centres: np.ndarray,
    max_iter: int = 300,
    tol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd iterations from *centres* until the labels stop changing or the centres move
    less than ``tol`` × the mean feature variance (squared, summed; scikit-learn's rule); an
    emptied cluster takes the farthest point."""
    n, d = Z.shape
    k = len(centres)
    zz = (Z * Z).sum(1)
    limit = tol * float(Z.var(axis=0).mean())
    labels = np.full(n, -1, np.int64)
    for _ in range(max_iter):
        dist = zz[:, None] - 2 * Z @ centres.T + (centres * centres).sum(1)[None]
        previous, labels = labels, dist.argmin(1)
        if np.array_equal(previous, labels):
            break
        counts = np.bincount(labels, minlength=k)
        new = (
            np.stack([np.bincount(labels, weights=Z[:, j], minlength=k) for j in range(d)], axis=1)
            / np.maximum(counts, 1)[:, None]
        )
        for c in np.flatnonzero(counts == 0):
            far = int(dist[np.arange(n), labels].argmax())
            new[c] = Z[far]
            labels[far] = c
        shift = float(((new - centres) ** 2).sum())
        centres = new
        if shift <= limit:
            break
    dist = zz[:, None] - 2 * Z @ centres.T + (centres * centres).sum(1)[None]
    labels = dist.argmin(1)
    inertia = float(np.maximum(dist[np.arange(n), labels], 0).sum())
    return centres, labels, inertia


def kmeans(
    Z: np.ndarray, k: int, *, n_init: int = 5, seed: int = 0, restart_sample: int = 10000
) -> tuple[np.ndarray, np.ndarray, float]:
    """Seeded k-means: k-means++ seeding, Lloyd iterations, ``n_init`` restarts from one
    ``numpy.random.Generator(seed)``; the lowest inertia wins. With more than
    2 × ``restart_sample`` points the restarts run on a seeded subsample of that size and the
    winner is then iterated to convergence on all points.

    Returns centres sorted by cluster size (largest first), labels in that order, inertia.
    """
    if k < 1:
        raise ParameterError(f"n_clusters must be ≥ 1, got {k}")
    Z = np.asarray(Z, np.float64)
    n = len(Z)
    if n == 0:
        raise ParameterError("no descriptor centres to cluster")
    if k == 1 or Z.shape[1] == 0:
        centre = Z.mean(axis=0, keepdims=True) if Z.shape[1] else np.zeros((1, 0))
        inertia = float(((Z - centre) ** 2).sum()) if Z.shape[1] else 0.0
        return centre, np.zeros(n, np.int64), inertia
    if k > n:
        raise ParameterError(f"n_clusters={k} exceeds the {n} descriptor centres")
    rng = np.random.default_rng(seed)
    Zr = Z
    if n > 2 * restart_sample:
        Zr = Z[np.sort(rng.choice(n, size=restart_sample, replace=False))]
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    with single_threaded():
        for _ in range(max(1, n_init)):
            run = _lloyd(Zr, _kmeans_pp(Zr, k, rng))
            if best is None or run[2] < best[2] - 1e-9 * abs(best[2]):
                best = run
        assert best is not None
        centres, labels, inertia = best if Zr is Z else _lloyd(Z, best[0])
    counts = np.bincount(labels, minlength=k)
    order = np.lexsort((np.arange(k), -counts))  # largest first; ties by index
    rank = np.empty(k, np.int64)
    rank[order] = np.arange(k)
    return centres[order], rank[labels], inertia


def silhouette(Z: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient (Euclidean): (b − a) / max(a, b) per point, a the mean
    distance to its own cluster, b to the nearest other cluster; 0 for singletons.
    O(n²) memory: call it on a subsample of a few thousand points."""
    Z = np.asarray(Z, np.float64)
    labels = np.asarray(labels)
    uniq, inv = np.unique(labels, return_inverse=True)
    if len(uniq) < 2:
        return 0.0
    zz = (Z * Z).sum(1)
    D = np.sqrt(np.maximum(zz[:, None] - 2 * Z @ Z.T + zz[None], 0.0))
    onehot = np.zeros((len(Z), len(uniq)))
    onehot[np.arange(len(Z)), inv] = 1
    counts = onehot.sum(0)
    sums = D @ onehot  # (n, k): summed distance to each cluster
    own = counts[inv]
    a = sums[np.arange(len(Z)), inv] / np.maximum(own - 1, 1)
    other = sums / counts[None]
    other[np.arange(len(Z)), inv] = np.inf
    b = other.min(1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""

    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        _, inv, cnt = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inv, weights=r)
        return sums[inv] / cnt[inv]

    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else 0.0


def choose_k(
    Z: np.ndarray,
    k_range: tuple[int, int] = (2, 8),
    *,
    method: str = "silhouette",
    n_init: int = 3,
    seed: int = 0,
    sample_size: int = 2000,
    fit_size: int = 10000,
) -> tuple[int, dict[int, float]]:
    """Pick the number of clusters.

    ``silhouette``: k-means for each k in ``k_range`` (inclusive) on a seeded subsample of
    ``fit_size`` centres, mean silhouette on ``sample_size`` of them; the largest wins (k ≥ 2).
    ``bic``: Gaussian mixtures (full covariance) on the subsample for k from
    ``min(k_range[0], 1)``; the lowest Bayesian information criterion wins (can choose 1).

    Returns the chosen k and the score of every k tried.
    """
    if method not in K_METHODS:
        raise ParameterError(f"k method must be one of {K_METHODS}, got {method!r}")
    lo, hi = int(k_range[0]), int(k_range[1])
    if lo < 1 or hi < lo:
        raise ParameterError(f"k_range must be (min, max) with 1 ≤ min ≤ max, got {k_range}")
    rng = np.random.default_rng(seed)
    if len(Z) > fit_size:
        Z = Z[np.sort(rng.choice(len(Z), size=fit_size, replace=False))]
    n = len(Z)
    idx = np.sort(rng.choice(n, size=sample_size, replace=False)) if n > sample_size else None
    Zs = Z[idx] if idx is not None else Z
    scores: dict[int, float] = {}
    if method == "silhouette":
        for k in range(max(lo, 2), min(hi, n - 1) + 1):
            _, labels, _ = kmeans(Z, k, n_init=n_init, seed=seed)
            lab = labels[idx] if idx is not None else labels
            if len(np.unique(lab)) < 2:
                scores[k] = -1.0
                continue
            with single_threaded():
                scores[k] = silhouette(Zs, lab)
        if not scores:
            return 1, scores
        best = max(scores, key=lambda k: (scores[k], -k))
        return best, scores
    from sklearn.mixture import GaussianMixture

    for k in range(min(lo, 1), min(hi, len(Zs) - 1) + 1):
        with warnings.catch_warnings(), single_threaded():
            warnings.simplefilter("ignore")
            gm = GaussianMixture(
                k, covariance_type="full", random_state=seed, n_init=1, reg_covar=1e-6
            ).fit(Zs)
        scores[k] = float(gm.bic(Zs))
    best = min(scores, key=lambda k: (scores[k], k))
    return best, scores


def fisher_separability(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Fisher separability of each feature for the given classes (paper eq. 4, any number of
    classes): Σ_c N_c (μ_c − μ)² / Σ_c N_c σ_c². 0 for a constant feature; inf when the
    classes are perfectly separated by a feature with zero within-class spread."""
    X = np.asarray(X, np.float64)
    labels = np.asarray(labels)
    mu = X.mean(axis=0)
    between = np.zeros(X.shape[1])
    within = np.zeros(X.shape[1])
    for c in np.unique(labels):
        sel = labels == c
        xc = X[sel]
        mc = xc.mean(axis=0)
        between += sel.sum() * (mc - mu) ** 2
        within += sel.sum() * xc.var(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(
            within > 0,
            between / np.where(within > 0, within, 1.0),
            np.where(between > 0, np.inf, 0.0),
        )
    return s


def summarize_separability(
    X: np.ndarray, Z: np.ndarray, labels: np.ndarray, names: list[str], top: int = 5
) -> dict[str, Any]:
    """Separability and variance of the raw features and the PCA features (paper Fig. 5):
    the best raw features, the PCA features' separabilities, and the rank correlation between
    variance and separability over the raw features."""
    if len(np.unique(labels)) < 2:
        return {}
    s_raw = fisher_separability(X, labels)
    v_raw = np.asarray(X, np.float64).var(axis=0)
    s_pca = fisher_separability(Z, labels) if Z.shape[1] else np.zeros(0)
    finite = np.isfinite(s_raw) & (v_raw > 0)
    rho = _spearman(v_raw[finite], s_raw[finite]) if finite.sum() > 2 else None
    order = np.argsort(-np.where(np.isfinite(s_raw), s_raw, np.finfo(float).max))[:top]
    return {
        "pca_features": [float(v) for v in s_pca],
        "best_raw_features": [
            {"feature": names[i], "separability": float(s_raw[i]), "variance": float(v_raw[i])}
            for i in order
        ],
        "max_raw": float(np.nanmax(np.where(np.isfinite(s_raw), s_raw, np.nan)))
        if np.isfinite(s_raw).any()
        else None,
        "variance_separability_spearman": rho,
    }
