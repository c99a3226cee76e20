"""The crystalline model of each atom type and the per-atom disorder score.

For every atom type the inlier patches (see :mod:`.types`) define a Gaussian in PCA space,
with one of the four covariance structures of a Gaussian mixture (the paper's action space):

``full``       one full covariance per type;
``tied``       one full covariance shared by all types (pooled within-type scatter);
``diag``       per-type variances of the principal components, no correlations;
``spherical``  one variance per type.

An atom's raw score is its squared Mahalanobis distance to its type's model, plus the part of
its patch that the crystalline principal components cannot express (the reconstruction
residual, one extra coordinate). It is calibrated to its type's inliers (median matched to
the χ² median, then a Wilson–Hilferty transform to a z value).

**One-sided scores.** A crystalline column next to an amorphous region has a patch that is half
crystal, half disorder; a full-patch score flags it and the detected region grows by about
one column all round. With ``one_sided=True`` the score is computed for eight half-patches
(the centre column plus the neighbours on one side, at 45° steps) and the atom's score is the
*least* disordered of them: a column is disordered only when no side of its neighbourhood looks
crystalline. Columns inside a region are unlike the crystal on every side; columns at its edge
keep one crystalline side.

The final score is standardised on the inliers (median 0, robust standard deviation 1), so a
threshold means the same in every covariance type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ..errors import ParameterError

__all__ = ["COVARIANCE_TYPES", "DisorderModel", "ScoreMixture", "half_plane_masks", "view_validity"]

COVARIANCE_TYPES: tuple[str, ...] = ("full", "tied", "diag", "spherical")


def half_plane_masks(half_size: int, nn_px: float, n_sides: int = 8) -> list[np.ndarray]:
    """Boolean (s, s) masks: the centre column plus everything on one side, at 360°/n steps."""
    g = np.arange(-half_size, half_size + 1, dtype=float)
    X, Y = np.meshgrid(g, g)
    out = []
    for k in range(n_sides):
        th = 2 * np.pi * k / n_sides
        out.append(X * np.cos(th) + Y * np.sin(th) >= -0.25 * nn_px)
    return out


def _wilson_hilferty(x: np.ndarray, dof: int) -> np.ndarray:
    """z value of a χ²(dof) variate (accurate to a few % for dof ≥ 3)."""
    c = 2.0 / (9.0 * dof)
    return (np.cbrt(np.maximum(x, 0.0) / dof) - (1.0 - c)) / np.sqrt(c)


def _project(F: np.ndarray, fit_rows: np.ndarray, n_components: int, seed: int = 0) -> np.ndarray:
    """PCA scores on the inliers' principal axes plus the reconstruction residual."""
    from .types import principal_axes

    mean = F[fit_rows].mean(axis=0)
    basis, _ = principal_axes(F[fit_rows] - mean, n_components, seed=seed)
    C = F - mean
    Z = C @ basis.T
    resid = np.sqrt(np.maximum((C**2).sum(axis=1) - (Z**2).sum(axis=1), 0.0))
    return np.column_stack([Z, resid])


def view_validity(
    centres: np.ndarray, masks: list[np.ndarray], shape: tuple[int, int]
) -> np.ndarray:
    """(n, n_views) bool: the view's pixels around each centre all lie inside the image."""
    xy = np.asarray(centres, float).reshape(-1, 2)
    H, W = shape
    out = np.zeros((len(xy), len(masks)), bool)
    for k, m in enumerate(masks):
        h = m.shape[0] // 2
        rows, cols = np.nonzero(m)
        dx0, dx1 = cols.min() - h, cols.max() - h
        dy0, dy1 = rows.min() - h, rows.max() - h
        out[:, k] = (
            (xy[:, 0] + dx0 >= 0)
            & (xy[:, 0] + dx1 <= W - 1)
            & (xy[:, 1] + dy0 >= 0)
            & (xy[:, 1] + dy1 <= H - 1)
        )
    return out


@dataclass
class DisorderModel:
    """Crystalline models of every atom type and calibrated disorder scores.

    Within each type the inlier patches may form several clusters (mirror-related sites, the
    paper's Ba1 and Ba2); they are found by a trimmed Gaussian mixture (1–3 clusters, BIC) on
    the full patches. Each cluster is one Gaussian of the crystalline model, and an atom's
    distance is to the nearest cluster of any type (a column is crystalline when it looks like
    some crystalline column). Everything is precomputed per covariance type, so
    the optimiser's evaluations only threshold cached numbers.

    Atoms near the image edge are scored on the half-patches that fit inside the image
    (``one_sided=True``), calibrated on the inliers' scores over the same half-patches.

    Parameters
    ----------
    data : ndarray (n, s, s)
        Patches of the atoms to score (values outside the image are never used).
    labels : ndarray of int (n,)
        Type of every atom; -1 for atoms whose full patch is not inside the image.
    inliers : ndarray of bool (n,)
        Crystalline atoms the models are fitted on (full patches only).
    n_types : int
        Number of types.
    valid : ndarray of bool (n, n_views)
        Views that lie inside the image, per atom (see :func:`view_validity`).
    nn_px : float
        Nearest-neighbour distance in px (sets the half-patch geometry).
    n_components : int
        Principal components per view.
    one_sided : bool
        Score the least disordered of eight half-patches (see module notes) instead of the
        full patch.
    max_clusters : int
        Largest number of clusters per type.
    seed : int
        Seed of the cluster fits.
    """

    data: np.ndarray
    labels: np.ndarray
    inliers: np.ndarray
    n_types: int
    valid: np.ndarray
    nn_px: float
    n_components: int = 10
    one_sided: bool = True
    max_clusters: int = 3
    seed: int = 0
    _cache: dict[str, np.ndarray] = field(init=False, repr=False, default_factory=dict)

    @staticmethod
    def view_masks(half_size: int, nn_px: float, one_sided: bool) -> list[np.ndarray]:
        if one_sided:
            return half_plane_masks(half_size, nn_px)
        return [np.ones((2 * half_size + 1,) * 2, bool)]

    def __post_init__(self) -> None:
        from .types import trimmed_gmm

        P = np.asarray(self.data, dtype=np.float64)
        n = len(P)
        labels = np.asarray(self.labels, int)
        full = labels >= 0
        inl = np.asarray(self.inliers, bool) & full
        if n and inl.sum() < 2:
            inl = full.copy() if full.sum() >= 2 else np.ones(n, bool)
        self._inliers = inl
        self._labels = labels
        flat = P.reshape(n, -1)
        half = P.shape[1] // 2 if n else 0
        self.cluster = np.full(n, -1)
        self.n_clusters: list[int] = []
        self.cluster_type: list[int] = []
        if n:
            # clusters within each type, on the full patches
            Zfull = _project(flat, inl, self.n_components, self.seed)[:, :-1]
            Zfull = Zfull / max(float(Zfull[inl, 0].std()), 1e-12)
            offset = 0
            for t in range(self.n_types):
                rows = np.flatnonzero(labels == t)
                fit_rows = rows[inl[rows]]
                d = Zfull.shape[1]
                k_max = int(min(self.max_clusters, len(fit_rows) // max(3 * (d + 1), 6)))
                if k_max < 2:
                    self.cluster[rows] = offset
                    k_best = 1
                else:
                    fits = {
                        k: trimmed_gmm(Zfull[fit_rows], k, alpha=0.1, seed=self.seed)
                        for k in range(1, k_max + 1)
                    }
                    k_best = min(fits, key=lambda k: fits[k].bic)
                    d2 = fits[k_best].mahalanobis(Zfull[rows])
                    self.cluster[rows] = offset + np.argmin(d2, axis=1)
                self.n_clusters.append(k_best)
                self.cluster_type += [t] * k_best
                offset += k_best
        self._n_total = int(sum(self.n_clusters))
        masks = self.view_masks(half, self.nn_px, self.one_sided) if n else []
        self._views = [_project(P[:, m], inl, self.n_components, self.seed) for m in masks]
        valid = np.asarray(self.valid, bool).reshape(n, -1) if n else np.zeros((0, 1), bool)
        if valid.shape[1] != len(masks) and n:
            raise ParameterError(f"valid has {valid.shape[1]} views, the model {len(masks)}")
        self._valid = valid
        # every atom is compared with every crystalline cluster: an atom is crystalline when
        # it matches any of them. (Comparing only with its own type's clusters failed at
        # region boundaries: a column next to an amorphous blob gets the wrong type from
        # its contaminated surroundings, and then matches nothing.)
        self._allowed = np.ones((n, self._n_total), bool)

    @property
    def fitted_on(self) -> np.ndarray:
        """Atoms the crystalline models were fitted on (bool per atom)."""
        return self._inliers

    @property
    def n_scored(self) -> int:
        """Atoms with at least one valid view."""
        return int(self._valid.any(axis=1).sum())

    @property
    def scored(self) -> np.ndarray:
        return self._valid.any(axis=1)

    def _cluster_models(self, Z: np.ndarray, covariance: str):
        if covariance not in COVARIANCE_TYPES:
            raise ParameterError(
                f"covariance must be one of {', '.join(COVARIANCE_TYPES)}, not {covariance!r}"
            )
        inl = self._inliers
        d = Z.shape[1]
        means, covs = [], []
        pooled = np.zeros((d, d))
        n_pool = 0
        for c in range(self._n_total):
            rows = inl & (self.cluster == c)
            if rows.sum() < 2:
                rows = self.cluster == c
            if rows.sum() < 2:
                rows = inl
            Zc = Z[rows]
            means.append(Zc.mean(axis=0))
            C = np.atleast_2d(np.cov(Zc.T, ddof=1)) if len(Zc) > 1 else np.eye(d)
            covs.append(C)
            pooled += C * max(len(Zc) - 1, 1)
            n_pool += max(len(Zc) - 1, 1)
        pooled /= max(n_pool, 1)
        out = []
        for C in covs:
            M = {
                "full": C,
                "tied": pooled,
                "diag": np.diag(np.diag(C)),
                "spherical": np.eye(d) * np.trace(C) / d,
            }[covariance]
            # a little shrinkage keeps small clusters (and flat directions) invertible
            scale = np.trace(M) / d if np.trace(M) > 0 else 1.0
            out.append(M + 1e-3 * scale * np.eye(d))
        return means, out

    def _view_z(self, Z: np.ndarray, covariance: str) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated z of every atom to its nearest allowed cluster, and that cluster."""
        inl = self._inliers
        means, covs = self._cluster_models(Z, covariance)
        d = Z.shape[1]
        med_chi2 = stats.chi2.ppf(0.5, d)
        zc = np.empty((len(Z), self._n_total))
        for c in range(self._n_total):
            chol = np.linalg.cholesky(covs[c])
            sol = np.linalg.solve(chol, (Z - means[c]).T)
            d2 = np.sum(sol**2, axis=0)
            ref = inl & (self.cluster == c)
            med = np.median(d2[ref]) if ref.sum() >= 2 else np.median(d2[inl])
            zc[:, c] = _wilson_hilferty(d2 * med_chi2 / max(med, 1e-12), d)
        zc = np.where(self._allowed, zc, np.inf)
        best = np.argmin(zc, axis=1)
        return zc[np.arange(len(Z)), best], best

    def view_scores(self, covariance: str) -> np.ndarray:
        """(n, n_views) calibrated z values; inf where a view leaves the image."""
        if not self._views:
            self._cluster_models(np.zeros((1, 1)), covariance)  # validates the name
            return np.zeros((0, 1))
        V = np.column_stack([self._view_z(Z, covariance)[0] for Z in self._views])
        return np.where(self._valid, V, np.inf)

    def scores(self, covariance: str) -> np.ndarray:
        """Standardised disorder score of every atom (0 ≈ typical crystal, robust σ 1; NaN for
        atoms without a valid view).

        The least disordered valid view is standardised against the inliers' least disordered
        view over the *same* set of views, so edge atoms (fewer views, a higher minimum by
        chance) are not flagged more readily than the rest.
        """
        if covariance in self._cache:
            return self._cache[covariance]
        V = self.view_scores(covariance)
        n = len(V)
        s = np.full(n, np.nan)
        inl = self._inliers
        if n:
            patterns, inverse = np.unique(self._valid, axis=0, return_inverse=True)
            inverse = np.asarray(inverse).reshape(-1)
            for k, pat in enumerate(patterns):
                if not pat.any():
                    continue
                rows = inverse == k
                ref = V[inl][:, pat].min(axis=1)
                med = float(np.median(ref))
                mad = float(np.median(np.abs(ref - med))) * 1.4826
                s[rows] = (V[rows][:, pat].min(axis=1) - med) / max(mad, 1e-9)
        self._cache[covariance] = s
        return s

    def best_types(self, covariance: str = "full") -> tuple[np.ndarray, np.ndarray]:
        """Type and cluster of every atom by its best-matching cluster over the valid views
        (-1 without a valid view).

        For crystalline columns this is the type of the mixture on invariant features; for
        columns next to a disordered region it is more reliable (their best half-patch is
        clean), and for columns at the image edge it is the only type there is.
        """
        out = self._labels.copy()
        if not self._views:
            return out, self.cluster.copy()
        best_z = np.full(len(out), np.inf)
        best_c = np.full(len(out), -1)
        for k, Z in enumerate(self._views):
            z, c = self._view_z(Z, covariance)
            better = self._valid[:, k] & (z < best_z)
            best_z[better] = z[better]
            best_c[better] = c[better]
        ctype = np.asarray(self.cluster_type, int)
        out = np.where(best_c >= 0, ctype[np.maximum(best_c, 0)], -1)
        return out, best_c


@dataclass
class ScoreMixture:
    """A two-component model of the score distribution: crystal (null) + disorder.

    The crystal component starts as N(0, 1) (the scores are standardised on the inliers), the
    disorder component at the upper tail; both are refined by EM on the one-dimensional scores.
    ``posterior`` is each atom's probability of belonging to the disorder component.
    When no atom is beyond the crystal distribution (no score above ``min_separation``
    robust σ), there is no disorder component: the posterior is zero everywhere.
    """

    scores: np.ndarray
    min_separation: float = 4.0
    weight: float = field(init=False, default=0.0)
    mean: tuple[float, float] = field(init=False, default=(0.0, np.nan))
    std: tuple[float, float] = field(init=False, default=(1.0, np.nan))
    posterior: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = np.asarray(self.scores, dtype=float)
        n = len(s)
        self.posterior = np.zeros(n)
        high = s > self.min_separation
        if n < 3 or not high.any():
            return
        m0, s0 = 0.0, 1.0
        m1 = float(np.mean(s[high]))
        s1 = float(max(np.std(s[high]), 1.0))
        w = float(np.clip(high.mean(), 1.0 / n, 0.5))
        for _ in range(200):
            l0 = np.log1p(-w) + stats.norm.logpdf(s, m0, s0)
            l1 = np.log(w) + stats.norm.logpdf(s, m1, s1)
            r = np.exp(l1 - np.logaddexp(l0, l1))
            w_new = float(np.clip(r.mean(), 1e-9, 1 - 1e-9))
            r0 = 1 - r
            m0 = float(np.sum(r0 * s) / max(r0.sum(), 1e-12))
            s0 = float(np.sqrt(np.sum(r0 * (s - m0) ** 2) / max(r0.sum(), 1e-12)))
            s0 = max(s0, 0.5)
            m1 = float(np.sum(r * s) / max(r.sum(), 1e-12))
            s1 = float(max(np.sqrt(np.sum(r * (s - m1) ** 2) / max(r.sum(), 1e-12)), 1.0))
            done = abs(w_new - w) < 1e-7
            w = w_new
            if done:
                break
        if m1 <= m0 + 2 * s0:  # the "disorder" component is only the crystal's tail
            return
        self.weight, self.mean, self.std = w, (m0, m1), (s0, s1)
        # disorder raises the score: a wide disorder component must not claim the lower tail
        self.posterior = np.where(s > m0, r, 0.0)

    @property
    def expected_disordered(self) -> float:
        return float(self.posterior.sum())

    def summary(self) -> dict[str, float]:
        return {
            "disorder_weight": float(self.weight),
            "crystal_mean": float(self.mean[0]),
            "crystal_std": float(self.std[0]),
            "disorder_mean": float(self.mean[1]),
            "disorder_std": float(self.std[1]),
            "expected_disordered_atoms": self.expected_disordered,
        }
