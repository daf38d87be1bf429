"""Item-to-item kernels: EASE's closed form and popularity-discounted co-occurrence neighbours.

Pure functions on scipy/numpy matrices, so each can be tested on a 4×4 matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

# Up to this many item pairs (a 5k-item catalogue), neighbours are found on a dense matrix.
DENSE_CELLS = 25_000_000


def gram_matrix(x: sp.csr_matrix) -> sp.csr_matrix:
    """XᵀX as a sparse matrix: computed once and shared by EASE and the neighbours (and by every
    λ tried at train) rather than once per model."""
    gram: sp.csr_matrix = (x.T @ x).tocsr()
    return gram


def binary_gram(x: sp.csr_matrix, gram: sp.csr_matrix | None = None) -> sp.csr_matrix:
    """Co-interaction counts (users per item pair): `gram` itself when X is already 0/1."""
    if gram is not None and (len(x.data) == 0 or bool(np.all(x.data == 1.0))):
        return gram
    binary = x.copy().astype(np.float32)
    binary.data[:] = 1.0
    return gram_matrix(binary)


def ease_weights(
    x: sp.csr_matrix, regularization: float, gram: sp.csr_matrix | None = None
) -> np.ndarray:
    """EASE (Steck, 2019): B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹, with diag(B) = 0.

    Memory grows with items², so callers switch to `cooccurrence_neighbours` for large catalogues.
    """
    dense = (gram if gram is not None else gram_matrix(x)).toarray().astype(np.float32, copy=False)
    dense[np.diag_indices_from(dense)] += regularization
    # The inverse from the Cholesky factor (LAPACK potrf + potri, n³ flops) is 1.4x faster than
    # cho_solve against the identity on the 4k-item sample (measured) and half a general inverse.
    factor, info = lapack.spotrf(dense, lower=False, overwrite_a=True, clean=False)
    if info == 0:
        upper, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ValueError(f"EASE: the regularised Gram matrix is not positive definite ({info})")
    weights = _symmetric_from_upper(upper)
    # LAPACK hands back Fortran order; the matrix is symmetric, so its transpose is the same
    # matrix in C order, without the items² copy that converting it would cost (1.1 s at 4k).
    if not weights.flags.c_contiguous:
        weights = weights.T
    weights /= -np.diag(weights).copy()
    weights[np.diag_indices_from(weights)] = 0.0
    return np.ascontiguousarray(weights, dtype=np.float32)


def _symmetric_from_upper(upper: np.ndarray, block: int = 512) -> np.ndarray:
    """The symmetric matrix whose upper triangle is `upper`'s, in place: the lower triangle is
    copied over in square blocks (a whole-matrix transposed add walks memory by columns and cost
    0.3-0.9 s at 4k items; blocks stay in cache)."""
    n = upper.shape[0]
    for i in range(0, n, block):
        diagonal = upper[i : i + block, i : i + block]
        diagonal[...] = np.triu(diagonal) + np.triu(diagonal, 1).T
        for j in range(i + block, n, block):
            upper[j : j + block, i : i + block] = upper[i : i + block, j : j + block].T
    return upper


def cooccurrence_neighbours(
    x: sp.csr_matrix,
    k: int,
    popularity_discount: float,
    min_count: int,
    co: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per item, the `k` items most often bought by the same users, scored
    c_ij / (√n_i · n_j^α): α = 0.5 is cosine, a larger α favours less popular items. `co`, when
    given, is `binary_gram(x)` computed by the caller.

    Returns (indices, scores), each items × k, padded with -1 and 0.
    """
    # Co-interaction counts are counts of users, whatever the event weights.
    co = (co if co is not None else binary_gram(x)).copy()
    counts = co.diagonal().astype(np.float32)
    # Zero the diagonal in place: setdiag inserts an entry for every item nobody bought, which
    # rebuilds the whole sparse structure (0.9 s at 4k items).
    diagonal_rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
    co.data[co.indices == diagonal_rows] = 0
    co.data[co.data < min_count] = 0
    co.eliminate_zeros()
    n = co.shape[0]
    safe = np.maximum(counts, 1.0)
    if n * n <= DENSE_CELLS:
        return _dense_top_k(co, safe, k, popularity_discount)
    rows = np.repeat(np.arange(n), np.diff(co.indptr))
    sims = co.data / (np.sqrt(safe[rows]) * safe[co.indices] ** popularity_discount)
    # Every row's top k at once: order all pairs by (row, -similarity) with one float64 sort key
    # (row + a similarity rank in [0, 0.5]: float64 keeps ~1e-11 of resolution at 50k rows),
    # then keep the first k of each row; faster than a Python loop over items or np.lexsort.
    top = float(sims.max()) if len(sims) else 1.0
    order = np.argsort(rows + 0.5 * (1.0 - sims.astype(np.float64) / top))
    rank = np.arange(len(order)) - co.indptr[rows[order]]
    keep = order[rank < k]
    indices = np.full((n, k), -1, dtype=np.int32)
    scores = np.zeros((n, k), dtype=np.float32)
    indices[rows[keep], rank[rank < k]] = co.indices[keep]
    scores[rows[keep], rank[rank < k]] = sims[keep]
    return indices, scores


def _dense_top_k(
    co: sp.csr_matrix, safe: np.ndarray, k: int, popularity_discount: float, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """The same neighbours, a block of rows at a time made dense: on a few thousand items most
    pairs co-occur, and a row-wise partition beats sorting millions of sparse entries (4x,
    measured); blocks of 512 rows keep the arrays in cache and skip allocating items² floats
    (a whole-matrix pass cost 1.2 s of CPU at 4k items, the blocks 0.14 s)."""
    n = co.shape[0]
    rows_scale = (1.0 / np.sqrt(safe)).astype(np.float32)
    cols_scale = (1.0 / safe**popularity_discount).astype(np.float32)
    take = min(k, n)
    indices = np.full((n, k), -1, dtype=np.int32)
    scores = np.zeros((n, k), dtype=np.float32)
    for start in range(0, n, chunk):
        sims = co[start : start + chunk].toarray().astype(np.float32, copy=False)
        sims *= rows_scale[start : start + chunk, None]
        sims *= cols_scale[None, :]
        idx = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        vals = np.take_along_axis(sims, idx, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
        vals = np.take_along_axis(vals, order, axis=1)
        valid = vals > 0  # pairs that never co-occur are no neighbours
        indices[start : start + chunk, :take] = np.where(valid, idx, -1)
        scores[start : start + chunk, :take] = np.where(valid, vals, 0.0)
    return indices, scores


def neighbour_scores(
    history: np.ndarray,
    indices: np.ndarray,
    scores: np.ndarray,
    n_items: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Sum of the neighbour scores of the items in `history`, each item's row times its weight."""
    out = np.zeros(n_items, dtype=np.float32)
    if len(history) == 0:
        return out
    idx = indices[history].ravel()
    valid = idx >= 0
    rows = scores[history] if weights is None else scores[history] * weights[:, None]
    np.add.at(out, idx[valid], rows.ravel()[valid])
    return out


def item_factors(
    x: sp.csr_matrix, rank: int, seed: int = 0, power_iterations: int = 2, oversample: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """(items × rank factors, per-item input scale) of a PureSVD model (Cremonesi et al., 2010):
    the truncated SVD of the binarised users × items matrix, columns scaled by popularity^-1/4 so
    that best-sellers do not fill every factor. A user's scores are V·(Σ w·scale·V[history]).

    Randomised SVD (Halko et al., 2011) written out here rather than scipy's `svds`, an exact
    Lanczos solver that is slower at these ranks, and rather than scikit-learn's version, which
    would add a dependency for a dozen lines.
    """
    binary = x.copy().astype(np.float32)
    binary.data[:] = 1.0
    counts = np.asarray(binary.sum(axis=0)).ravel()
    scale = (1.0 / np.power(np.maximum(counts, 1.0), 0.25)).astype(np.float32)
    scaled = (binary @ sp.diags(scale)).tocsr()
    rank = min(rank, min(scaled.shape) - 1)
    rng = np.random.default_rng(seed)
    sample = rng.standard_normal((scaled.shape[1], rank + oversample)).astype(np.float32)
    basis = scaled @ sample
    for _ in range(power_iterations):
        basis = scaled @ (scaled.T @ _orthonormal(basis))
    basis = _orthonormal(basis)
    # The right singular vectors of the (rank + oversample) × items projection M from the
    # eigenvectors of the small M·Mᵀ (in float64): V = Mᵀ·U·Σ⁻¹, best first.
    projected = np.asarray(scaled.T @ basis, dtype=np.float64)
    values, vectors = np.linalg.eigh(projected.T @ projected)
    top = np.argsort(values)[::-1][:rank]
    sigma = np.sqrt(np.maximum(values[top], values.max(initial=0.0) * 1e-12 + 1e-30))
    return np.ascontiguousarray((projected @ vectors[:, top]) / sigma, dtype=np.float32), scale


def _orthonormal(a: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the columns of a tall, thin matrix, through the eigenvectors of
    its small Gram matrix in float64 (a GEMM): LAPACK's Householder QR, which numpy's `qr`
    runs, took 0.27 s on 18k users × 74 columns and 0.87 s on 48k items, this 0.02-0.05 s
    (measured under load 6)."""
    wide = np.asarray(a, dtype=np.float64)
    values, vectors = np.linalg.eigh(wide.T @ wide)
    floor = values.max(initial=0.0) * 1e-12 + 1e-30  # a rank-deficient basis stays finite
    return np.asarray(wide @ (vectors / np.sqrt(np.maximum(values, floor))), dtype=np.float32)
