"""The implicit-feedback ALS factor model (Hu, Koren and Volinsky, 2008) as the engine's other
factor model beside PureSVD, with fold-in: item factors are fitted by the `implicit` library,
and a user is never a fitted row but solved for at request time from their current history, as
one ALS half-step against the fixed item factors (a user unseen at training is served the same
way as a known one).

With confidence c = 1 + (α − 1)·w for a history item of recency weight w (the newest weighs α,
as in the library's training, whose confidence is α for a bought item) and preference 1:
    u = (YᵀY + λI + Σ (c − 1)·y yᵀ)⁻¹ · Σ c·y
YᵀY is computed once at fit and stored with the factors; a request costs one rank × rank solve.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

ALS_RANK = 32
# Measured on the generated sparse set's test users with fold-in (bench/engine.py's split),
# NDCG@10: 0.1157 at rank 32, λ=0.1, α=10, 8 iterations (1.1 CPU-s); 0.0964 at rank 64 and 15
# iterations; 0.1056 at α=30, 0.0667 at α=3.
ALS_REGULARIZATION = 0.1
ALS_ALPHA = 10.0
ALS_ITERATIONS = 8


def als_factors(
    x: sp.csr_matrix, rank: int = ALS_RANK, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(items × rank factors, their rank × rank Gram YᵀY) of implicit ALS on binarised `x`."""
    # Imported at fit only: `implicit` takes 0.7 s to import, and serving (fold-in) is numpy.
    from implicit.als import AlternatingLeastSquares  # noqa: PLC0415
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    binary = x.copy().astype(np.float32)
    binary.data[:] = 1.0
    # The library's solver wants BLAS single-threaded (its constructor warns otherwise).
    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(
            factors=rank,
            regularization=ALS_REGULARIZATION,
            alpha=ALS_ALPHA,
            iterations=ALS_ITERATIONS,
            random_state=seed,
            num_threads=1,  # the engine fits its models side by side on its own threads
        )
        model.fit(binary, show_progress=False)
    factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
    gram = (factors.T.astype(np.float64) @ factors).astype(np.float32)
    return factors, gram


def fold_in(
    factors: np.ndarray, gram: np.ndarray, history: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """The user vector of `history` (recency weights `w`) against fixed item `factors`."""
    if len(history) == 0:
        return np.zeros(factors.shape[1], dtype=np.float32)
    y = factors[history].astype(np.float64)
    confidence = 1.0 + (ALS_ALPHA - 1.0) * w.astype(np.float64)
    a = gram.astype(np.float64) + (y.T * (confidence - 1.0)) @ y
    a[np.diag_indices_from(a)] += ALS_REGULARIZATION
    user = np.linalg.solve(a, confidence @ y)
    return user.astype(np.float32)
