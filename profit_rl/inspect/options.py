"""The options of `profit-rl inspect`: one dataclass the command line is built from, checked before any model loads."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field

from profit_rl.core.dtypes import DTYPE_HELP, DTYPES

from ..losses import SELECTIONS, validate_selection
from ..protected import validate_protected_strings


def _option(default=MISSING, help="", factory=MISSING, **argparse):
    """A config field whose help text (and argparse extras: `aliases`, `choices`) the command line is built from."""
    return field(default=default, default_factory=factory, metadata={"help": help, **argparse})


@dataclass
class InspectConfig:
    """Options of `profit-rl inspect`. The command line is built from these fields (`--help` lists them)."""

    model: str = _option(help="Hub id or local checkpoint folder (model + tokenizer).")
    data: str = _option(help="SFT data: hub id or local .jsonl/.json/.parquet (any layout profit-rl sft reads).")
    taus: list[float] = _option(
        factory=lambda: [0.1],
        aliases=["--tau"],
        help="Threshold(s): the first drives the kept/dropped marks; all are tabulated and marked on the histogram.",
    )
    selection: str = _option("profit", "Rule whose kept/dropped tokens the report shows.", choices=list(SELECTIONS))
    tau_high: float | None = _option(None, "Upper threshold of the band rule.")
    top_ratio: float = _option(0.2, "Fraction kept by the entropy and random rules.")
    protected_strings: list[str] = _option(
        factory=list, help="Strings whose tokens every rule keeps, as ProFitConfig.protected_strings (not the paper's)."
    )
    keep_end_of_turn: bool = _option(False, "Keep the end-of-turn token(s), as ProFitConfig.keep_end_of_turn.")
    candidate_min_rows: float = _option(0.9, "A token is proposed for protection when this share of rows has it...")
    candidate_min_dropped: float = _option(0.5, "...and the rule drops it in at least this share of those rows.")
    limit: int | None = _option(200, "Rows to inspect (a seeded sample, as the trainer's num_samples).")
    show: int = _option(12, "Rows rendered token by token in the HTML.")
    labels: str | None = _option(
        None, "CSV with row, position, class (core|trivial), e.g. an edited token_stats.csv; default: a heuristic."
    )
    output_dir: str = _option("outputs/inspect", "Where the four files go.")
    data_config: str | None = _option(None, "Hub dataset config.")
    split: str = _option("train", "Hub dataset split.")
    skip_bad_rows: bool = _option(False, "Skip (and count) rows with missing fields instead of failing.")
    batch_size: int = _option(8, "Rows per forward pass.")
    max_length: int | None = _option(1024, "The trainer's max_length (truncation).")
    device: str = _option("cpu", "cpu, cuda, cuda:1, mps, ...")
    dtype: str = _option("auto", DTYPE_HELP + ".", choices=list(DTYPES))
    seed: int = _option(0, "Seed of the row sample and of the random rule.")

    @property
    def tau(self) -> float:
        """The tau the report's kept/dropped marks use: the first one given."""
        return self.taus[0]

    def __post_init__(self):
        # Fail when the config is built (the command line included), before any model is loaded.
        if not self.taus:
            raise ValueError("--tau needs at least one value")
        for tau in self.taus:
            validate_selection(self.selection, tau, self.tau_high, self.top_ratio)
        validate_protected_strings(self.protected_strings)
        for name in ("candidate_min_rows", "candidate_min_dropped"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"--{name.replace('_', '-')} must be in (0, 1], got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")
