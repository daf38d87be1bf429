"""How the factor model's defaults were chosen: NDCG@10 on validation users of the generated
50k-item set (a split of the training users only, as for every default here), for the rank
(`hidden_dimension`, SPARSE_RANK in user_personalization.py) and `factor_blend`.

    .venv/bin/python bench/factor_rank.py [--ranks 0 32 48 64] [--blends 0.5 0.7 0.8 0.9 1.0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from synthetic import generate  # noqa: E402

from chalicelib.engine.data import Interactions  # noqa: E402
from chalicelib.engine.evaluation import evaluate, split  # noqa: E402
from chalicelib.engine.recipes import RECIPES  # noqa: E402
from chalicelib.engine.recipes.user_personalization import SPARSE_RANK  # noqa: E402
from chalicelib.engine.solution import fit  # noqa: E402

NDCG10 = "normalized_discounted_cumulative_gain_at_10"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ranks", type=int, nargs="+", default=[0, 32, 48, 64])
    parser.add_argument("--blends", type=float, nargs="+", default=[0.5, 0.7, 0.8, 0.9, 1.0])
    args = parser.parse_args()
    data = Interactions.from_rows(generate(50_000, 400_000))
    # The test users of bench/engine.py (seed 42) are left out; validation is a split of the rest.
    validation = split(split(data, seed=42).train, seed=7)
    params = RECIPES["user-personalization"].Params

    def ndcg(**values: float) -> str:
        started = time.perf_counter()
        model = fit("user-personalization", params.model_validate(values), validation.train)
        metrics = evaluate(model.recommend_indices, validation, data.n_items)
        seconds = time.perf_counter() - started
        return (
            f"NDCG@10 {metrics[NDCG10]:.4f}  coverage {metrics['coverage']:.3f}  ({seconds:.1f} s)"
        )

    default_blend = params.model_fields["factor_blend"].default
    print(f"rank (factor_blend {default_blend}, the default):")
    for rank in args.ranks:
        print(f"  {rank:4d}  {ndcg(hidden_dimension=rank)}", flush=True)
    print(f"factor_blend (rank {SPARSE_RANK}, the default above dense_item_limit):")
    for blend in args.blends:
        print(
            f"  {blend:4.2f}  {ndcg(hidden_dimension=SPARSE_RANK, factor_blend=blend)}", flush=True
        )


if __name__ == "__main__":
    main()
