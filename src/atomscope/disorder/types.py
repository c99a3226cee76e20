"""Atom types from patch appearance: PCA, then a trimmed Gaussian mixture.

Crystalline columns of one kind look alike, so their patches form tight clusters in PCA space;
columns inside a disordered region look unlike each other. The mixture is therefore fitted by
**trimmed likelihood** (TCLUST-like): at every EM step the fraction ``alpha`` of atoms that fit
the mixture worst is left out of the M-step, so a disordered fraction up to ``alpha`` cannot pull
the means or inflate the covariances. A one-step reweighting then takes back every atom whose
Mahalanobis distance is within the 99.9 % point of the χ² distribution (consistency-corrected
for the trimming): on a perfect crystal almost every atom is an inlier.

Types are found on rotation- and mirror-invariant patch features
(:func:`~atomscope.disorder.patches.invariant_features`), so that mirror-related sites of one
species (the two Ba sites of YBa2Cu3O7) are one type, as in the paper's four YBCO clusters
(CuO2 planes, CuO chains, Ba, Y). The number of types, when not given, minimises the BIC of the
trimmed likelihood. Types are numbered like :class:`~atomscope.atoms.AtomTable` sublattices:
0 = brightest (mean patch-centre intensity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import logsumexp

from ..errors import ParameterError

__all__ = [
    "AtomTypes",
    "TrimmedMixture",
    "classify_types",
    "crystalline_core",
    "pca_features",
    "principal_axes",
    "trimmed_gmm",
]


@dataclass
class TrimmedMixture:
    """A full-covariance Gaussian mixture fitted by trimmed likelihood.

    Attributes
    ----------
    weights, means, covariances : ndarray
        Component parameters, shapes (k,), (k, d), (k, d, d).
    labels : ndarray of int (n,)
        Most probable component of every point.
    inliers : ndarray of bool (n,)
        Points within the 99.9 % χ² region of their component (after reweighting).
    trimmed_loglik : float
        Log-likelihood of the ``1 − alpha`` best-fitting points.
    bic : float
        BIC of the trimmed likelihood.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    labels: np.ndarray
    inliers: np.ndarray
    trimmed_loglik: float
    bic: float

    @property
    def n_components(self) -> int:
        return len(self.weights)

    def mahalanobis(self, Z: np.ndarray) -> np.ndarray:
        """(n, k) squared Mahalanobis distances of *Z* to every component."""
        return _mahalanobis(Z, self.means, self.covariances)


def _mahalanobis(Z: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    out = np.empty((len(Z), len(means)))
    for j, (mu, c) in enumerate(zip(means, covs, strict=True)):
        chol = np.linalg.cholesky(c)
        sol = np.linalg.solve(chol, (Z - mu).T)
        out[:, j] = np.sum(sol**2, axis=0)
    return out


def _log_dens(Z: np.ndarray, w: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    d = Z.shape[1]
    out = np.empty((len(Z), len(w)))
    for j in range(len(w)):
        chol = np.linalg.cholesky(covs[j])
        sol = np.linalg.solve(chol, (Z - means[j]).T)
        logdet = 2.0 * np.sum(np.log(np.diag(chol)))
        out[:, j] = (
            np.log(max(w[j], 1e-300))
            - 0.5 * (d * np.log(2 * np.pi) + logdet)
            - 0.5 * np.sum(sol**2, axis=0)
        )
    return out


def _kmeanspp(Z: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [Z[rng.integers(len(Z))]]
    d2 = np.sum((Z - centres[0]) ** 2, axis=1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(Z), 1.0 / len(Z))
        centres.append(Z[rng.choice(len(Z), p=p)])
        d2 = np.minimum(d2, np.sum((Z - centres[-1]) ** 2, axis=1))
    return np.array(centres)


def _trim(logp: np.ndarray, alpha: float, min_size: int) -> np.ndarray:
    """Keep the ``1 − alpha`` points of highest mixture density, plus the ``min_size`` best
    members of every component (so a small but genuine type is never trimmed away whole)."""
    n = len(logp)
    lmix = logsumexp(logp, axis=1)
    keep = np.zeros(n, bool)
    keep[np.argsort(-lmix)[: max(1, int(np.ceil((1.0 - alpha) * n)))]] = True
    lab = np.argmax(logp, axis=1)
    own = logp[np.arange(n), lab]
    for j in range(logp.shape[1]):
        idx = np.flatnonzero(lab == j)
        if idx.size:
            keep[idx[np.argsort(-own[idx])[:min_size]]] = True
    return keep


def _trimmed_kmeans_starts(
    Z: np.ndarray,
    k: int,
    alpha: float,
    n_best: int,
    rng: np.random.Generator,
    n_seeds: int = 24,
    n_lloyd: int = 12,
) -> list[np.ndarray]:
    """Labels of the *n_best* of *n_seeds* trimmed k-means runs (lowest trimmed SSE).

    EM from k-means++ seeds alone often stops in a local optimum (two types merged, one split);
    trimmed k-means is cheap enough to try many starts and keeps outliers from placing centres.
    """
    n = len(Z)
    n_keep = max(k, int(np.ceil((1.0 - alpha) * n)))
    runs = []
    for _ in range(n_seeds):
        centres = _kmeanspp(Z, k, rng)
        for _ in range(n_lloyd):
            d2 = ((Z[:, None, :] - centres[None]) ** 2).sum(-1)
            lab = np.argmin(d2, axis=1)
            dmin = d2[np.arange(n), lab]
            keep = np.zeros(n, bool)
            keep[np.argsort(dmin)[:n_keep]] = True
            new = np.array(
                [
                    Z[keep & (lab == j)].mean(axis=0) if np.any(keep & (lab == j)) else centres[j]
                    for j in range(k)
                ]
            )
            if np.allclose(new, centres):
                break
            centres = new
        d2 = ((Z[:, None, :] - centres[None]) ** 2).sum(-1)
        lab = np.argmin(d2, axis=1)
        sse = float(np.sort(d2[np.arange(n), lab])[:n_keep].sum())
        runs.append((sse, lab))
    runs.sort(key=lambda r: r[0])
    out, seen = [], set()
    for _, lab in runs:
        key = tuple(np.bincount(lab, minlength=k))
        if key in seen:
            continue
        seen.add(key)
        out.append(lab)
        if len(out) == n_best:
            break
    return out


def _m_step(Z: np.ndarray, resp: np.ndarray, reg: float):
    nk = resp.sum(axis=0) + 1e-12
    means = (resp.T @ Z) / nk[:, None]
    d = Z.shape[1]
    covs = np.empty((len(nk), d, d))
    for j in range(len(nk)):
        D = Z - means[j]
        covs[j] = (D * resp[:, j : j + 1]).T @ D / nk[j] + reg * np.eye(d)
    return nk / nk.sum(), means, covs


def trimmed_gmm(
    Z: np.ndarray,
    k: int,
    *,
    alpha: float = 0.3,
    n_init: int = 3,
    n_iter: int = 40,
    reg: float = 1e-3,
    seed: int = 0,
) -> TrimmedMixture:
    """Fit a k-component full-covariance mixture by trimmed likelihood, then reweight.

    Parameters
    ----------
    Z : ndarray (n, d)
        Features, roughly unit scale (e.g. PCA scores divided by the first component's std).
    k : int
        Number of components.
    alpha : float
        Fraction of worst-fitting points left out of every M-step (must exceed the expected
        disordered fraction for full robustness).
    n_init : int
        EM runs, started from the best distinct of 24 trimmed k-means solutions; the run with
        the highest trimmed likelihood is kept.
    n_iter : int
        EM iterations per start.
    reg : float
        Added to the covariance diagonals (in units of *Z*²).
    seed : int
        Seed of the starts.

    Returns
    -------
    TrimmedMixture
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    rng = np.random.default_rng(seed)
    n_keep = max(int(np.ceil((1.0 - alpha) * n)), min(n, k * (d + 1)))
    best = None
    # a component needs enough members to have a covariance; smaller ones are re-seeded
    # (a component on a handful of identical points would otherwise win on likelihood)
    min_size = max(d + 1, int(0.01 * n), 3)
    for lab in _trimmed_kmeans_starts(Z, k, alpha, n_init, rng):
        resp = np.eye(k)[lab]
        w, means, covs = _m_step(Z, resp, reg)
        prev = -np.inf
        reseeds = 0
        for _ in range(n_iter):
            logp = _log_dens(Z, w, means, covs)
            lmix = logsumexp(logp, axis=1)
            keep = _trim(logp, alpha, min_size)
            tll = float(lmix[keep].sum())
            resp = np.exp(logp - lmix[:, None]) * keep[:, None]
            small = np.flatnonzero(resp.sum(axis=0) < min_size)
            if small.size and reseeds < 3 * k:
                reseeds += 1
                worst = np.argsort(lmix)[: max(min_size * 4, n // 10)]
                for j in small:
                    centre = Z[rng.choice(worst)]
                    near = np.argsort(((Z - centre) ** 2).sum(axis=1))[: min_size * 2]
                    resp[:, j] = 0.0
                    resp[near, :] = 0.0
                    resp[near, j] = 1.0
                w, means, covs = _m_step(Z, resp, reg)
                prev = -np.inf
                continue
            w, means, covs = _m_step(Z, resp, reg)
            if abs(tll - prev) < 1e-6 * max(1.0, abs(tll)):
                break
            prev = tll
        logp = _log_dens(Z, w, means, covs)
        lmix = logsumexp(logp, axis=1)
        tll = float(lmix[_trim(logp, alpha, min_size)].sum())
        if best is None or tll > best[0]:
            best = (tll, w, means, covs)
    tll, w, means, covs = best
    # one-step reweighting: take back every point inside the 99.9 % region of its component
    d2 = _mahalanobis(Z, means, covs)
    lab = np.argmin(d2 - 2.0 * np.log(np.maximum(w, 1e-300))[None, :], axis=1)
    dmin = d2[np.arange(n), lab]
    q_trim = stats.chi2.ppf(0.5 * (1.0 - alpha), d)
    kept = np.argsort(dmin)[:n_keep]
    c = float(np.median(dmin[kept])) / max(q_trim, 1e-12)
    inl = dmin / max(c, 1e-12) < stats.chi2.ppf(0.999, d)
    if inl.sum() >= k * (d + 1):
        resp = np.eye(k)[lab] * inl[:, None]
        if np.all(resp.sum(axis=0) >= 2):
            w, means, covs = _m_step(Z, resp, reg)
            d2 = _mahalanobis(Z, means, covs)
            lab = np.argmin(d2 - 2.0 * np.log(np.maximum(w, 1e-300))[None, :], axis=1)
    n_par = k * d + k * d * (d + 1) / 2 + (k - 1)
    bic = -2.0 * tll + n_par * np.log(n_keep)
    return TrimmedMixture(w, means, covs, lab, inl, tll, float(bic))


@dataclass
class AtomTypes:
    """Result of :func:`classify_types`.

    Attributes
    ----------
    labels : ndarray of int, shape (n,)
        Type of each atom (0 = brightest).
    inliers : ndarray of bool, shape (n,)
        Atoms that fit their type (used to fit the crystalline models).
    n_types : int
        Number of types.
    brightness : ndarray, shape (n_types,)
        Mean patch-centre intensity per type (image normalised to [0, 1]).
    bic : dict of int -> float
        Trimmed-likelihood BIC per number of types tried (empty when the number was given).
    """

    labels: np.ndarray
    inliers: np.ndarray
    n_types: int
    brightness: np.ndarray
    bic: dict[int, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "n_types": int(self.n_types),
            "counts": {int(t): int((self.labels == t).sum()) for t in range(self.n_types)},
            "brightness": [float(b) for b in self.brightness],
            "bic": {int(k): float(v) for k, v in self.bic.items()},
            "inlier_fraction": float(self.inliers.mean()) if self.inliers.size else 0.0,
        }


def principal_axes(X: np.ndarray, k: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Leading *k* principal axes (rows) of the centred matrix *X* and their singular values.

    Randomised SVD (a few power iterations, seeded) when the matrix is large, exact otherwise:
    a full SVD of 5000 patches × 800 px costs seconds on a busy 2-core machine.
    """
    k = int(max(1, min(k, X.shape[0] - 1 if X.shape[0] > 1 else 1, X.shape[1])))
    if min(X.shape) > 4 * k + 20:
        from sklearn.utils.extmath import randomized_svd

        _, s, vt = randomized_svd(X, k, n_oversamples=20, n_iter=4, random_state=seed)
    else:
        _, s, vt = np.linalg.svd(X, full_matrices=False)
        s, vt = s[:k], vt[:k]
    return vt, s


def pca_features(
    X: np.ndarray,
    n_components: int,
    *,
    fit_rows: np.ndarray | None = None,
    standardise: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Scores of the rows of *X* on the leading principal axes of ``X[fit_rows]``, scaled so
    that the first score has unit standard deviation (over the fitted rows).

    With ``standardise=True`` every column of *X* is first scaled to unit variance (for
    feature vectors that mix quantities of different size).
    """
    X = np.asarray(X, dtype=np.float64)
    rows = np.ones(len(X), bool) if fit_rows is None else np.asarray(fit_rows, bool)
    if rows.sum() < 2:
        rows = np.ones(len(X), bool)
    if standardise:
        sd = X[rows].std(axis=0)
        X = X / np.where(sd > 1e-12, sd, 1.0)
    mean = X[rows].mean(axis=0)
    vt, s = principal_axes(X[rows] - mean, n_components, seed=seed)
    Z = (X - mean) @ vt.T
    sd0 = s[0] / np.sqrt(max(rows.sum() - 1, 1)) if s.size else 1.0
    return Z / max(sd0, 1e-12)


def classify_types(
    features: np.ndarray,
    centre_intensity: np.ndarray,
    *,
    core: np.ndarray | None = None,
    n_types: int | None = None,
    max_types: int = 6,
    alpha: float = 0.1,
    seed: int = 0,
) -> AtomTypes:
    """Cluster atoms into types by a trimmed Gaussian mixture on their features.

    The mixture is fitted on the *core* atoms (those that look crystalline, see
    :func:`crystalline_core`) and every atom is then given its most probable type.

    Parameters
    ----------
    features : ndarray (n, d)
        Features of every atom (PCA scores of the invariant patch descriptors).
    centre_intensity : ndarray (n,)
        Brightness of each column (only used to number the types, brightest first).
    core : ndarray of bool (n,), optional
        Atoms the mixture is fitted on (default: all).
    n_types : int, optional
        Number of types; chosen by trimmed BIC between 1 and *max_types* when None.
    max_types : int
        Largest number of types tried.
    alpha : float
        Trimmed fraction of the core (see :func:`trimmed_gmm`).
    seed : int
        Seed of the mixture starts.

    Returns
    -------
    AtomTypes
        ``inliers`` are the core atoms that also fit their type.

    Raises
    ------
    ParameterError
        When *n_types* is given and there are fewer than three core atoms per type.
    """
    Z = np.asarray(features, dtype=np.float64)
    n = len(Z)
    core = np.ones(n, bool) if core is None else np.asarray(core, bool)
    if n_types is not None and int(n_types) < 1:
        raise ParameterError(f"n_types must be at least 1, got {n_types!r}")
    nc = int(core.sum())
    if n == 0 or nc == 0:
        return AtomTypes(
            np.zeros(n, int),
            np.zeros(n, bool),
            1 if n else 0,
            np.array([float(np.mean(centre_intensity))]) if n else np.zeros(0),
        )
    if n_types is not None and int(n_types) * 3 > nc:
        raise ParameterError(
            f"{nc} crystalline-looking atoms (away from the image edge) are too few to tell "
            f"{n_types} atom types apart: at least 3 per type are needed. Give fewer types or "
            "a larger field."
        )
    d = Z.shape[1]
    if n_types is not None:
        candidates = [int(n_types)]
    else:
        k_max = int(max(1, min(max_types, nc // max(3 * (d + 1), 6))))
        candidates = list(range(1, k_max + 1))
    Zc = Z[core]
    fits = {k: trimmed_gmm(Zc, k, alpha=alpha, seed=seed) for k in candidates}
    bic = {k: f.bic for k, f in fits.items()} if n_types is None else {}
    k_best = min(bic, key=bic.get) if bic else candidates[0]
    fit = fits[k_best]
    logp = _log_dens(Z, fit.weights, fit.means, fit.covariances)
    raw = np.argmax(logp, axis=1)
    comps = [c for c in range(k_best) if np.any(raw == c)]
    order = sorted(comps, key=lambda c: -float(np.mean(centre_intensity[raw == c])))
    remap = np.full(k_best, -1)
    for i, c in enumerate(order):
        remap[c] = i
    labels = remap[raw]
    inliers = np.zeros(n, bool)
    inliers[np.flatnonzero(core)[fit.inliers]] = True
    brightness = np.array(
        [float(np.mean(centre_intensity[labels == t])) for t in range(len(order))]
    )
    return AtomTypes(labels, inliers, len(order), brightness, bic)


def crystalline_core(features: np.ndarray, *, k: int = 8, factor: float = 1.5) -> np.ndarray:
    """Atoms whose patch has close twins elsewhere in the image.

    In a crystal every column has many look-alikes (the other columns on its site), so the
    distance to its *k*-th nearest neighbour in patch space is small; a column in a disordered
    region has none. Atoms within *factor* × the median k-NN distance form the core on which
    types and crystalline models are fitted, so a large disordered fraction does not become
    "the model".

    Parameters
    ----------
    features : ndarray (n, d)
        PCA scores of the full patches.
    k : int
        Neighbour rank.
    factor : float
        Multiple of the median k-NN distance.

    Returns
    -------
    ndarray of bool (n,)
    """
    from scipy.spatial import cKDTree

    Z = np.asarray(features, dtype=np.float64)
    n = len(Z)
    if n <= k + 1:
        return np.ones(n, bool)
    dk = cKDTree(Z).query(Z, k + 1)[0][:, -1]
    return dk <= factor * float(np.median(dk))


def translation_partners(
    xy: np.ndarray, vectors: np.ndarray, shape: tuple[int, int], *, tolerance: float
) -> np.ndarray:
    """Fraction of each atom's lattice-translation partners (at ±a, ±b) that exist.

    Every column of a crystal repeats one lattice vector away, whatever the motif; a column of
    an amorphous region, or one displaced from its site, mostly does not. This catches a
    disordered region that is large and uniform enough to have look-alike patches (so that
    :func:`crystalline_core` alone would take it for a crystal type).

    Parameters
    ----------
    xy : ndarray (n, 2)
        Column positions (x, y) in px.
    vectors : ndarray (2, 2)
        Lattice basis vectors a and b (rows, (x, y) px).
    shape : (int, int)
        Image shape (H, W); partners that would lie outside are not counted.
    tolerance : float
        Largest distance (px) between a translated column and its partner.

    Returns
    -------
    ndarray (n,)
        Found / expected partners, NaN where no partner falls inside the image.
    """
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, dtype=np.float64)
    v = np.asarray(vectors, dtype=np.float64)
    h, w = shape
    tree = cKDTree(xy)
    found = np.zeros(len(xy))
    expected = np.zeros(len(xy))
    for t in (v[0], -v[0], v[1], -v[1]):
        target = xy + t
        inside = (
            (target[:, 0] >= 0)
            & (target[:, 0] <= w - 1)
            & (target[:, 1] >= 0)
            & (target[:, 1] <= h - 1)
        )
        d, _ = tree.query(target, distance_upper_bound=tolerance)
        expected += inside
        found += inside & np.isfinite(d)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, found / np.maximum(expected, 1), np.nan)
