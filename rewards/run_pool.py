"""The verifier pool of one training run: started before the model takes memory, closed with its totals on disk.

    pool = start_run_pool(num_workers=None, timeout=5.0)     # the shared pool (`rewards.pool`), its workers forked
    ...                                                      # the rewards score on it during training
    close_run_pool(pool, output_dir, rank, world_size)       # reward_stats/rank{N}.json, then the workers stop

Each rank scores its own completions on its own pool, so each writes its own totals: nothing is hidden by a mean.
"""

from __future__ import annotations

import logging
from pathlib import Path

from profit_rl.core.state import write_json_atomic

from .pool import VerifierPool, configure_default_pool, get_default_pool

logger = logging.getLogger(__name__)


def start_run_pool(num_workers: int | None, timeout: float) -> VerifierPool:
    """The shared verifier pool with these settings, its workers started (a small fork, cheap before the model
    loads)."""
    configure_default_pool(num_workers=num_workers, timeout=timeout)
    return get_default_pool().start()


def close_run_pool(pool: VerifierPool, output_dir: str | Path, rank: int, world_size: int) -> dict:
    """Write the pool's totals to `output_dir/reward_stats/rank{rank}.json`, log them, and close the pool; returns
    the totals."""
    totals = {"rank": rank, "world_size": world_size, **pool.totals.as_dict()}
    logger.info("reward verifier totals (rank %d): %s", rank, totals)
    stats_dir = Path(output_dir) / "reward_stats"
    stats_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(stats_dir / f"rank{rank}.json", totals)
    pool.close()
    return totals
