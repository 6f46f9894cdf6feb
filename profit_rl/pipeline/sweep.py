"""`profit-rl sweep`: the paper's ablations as one grid of pipeline steps (SFT, eval, optionally GRPO), then a table
and figures with each point's spread over seeds.

    profit-rl sweep                                         # the three studies on the embedded default, 3 seeds
    profit-rl sweep --studies tau --taus 0.05,0.2 --seeds 2 --dry-run
    make ablations [DRY_RUN=1]

Three studies, each a set of SFT runs per seed (`--seeds N`: seeds 0..N-1):
- `tau` (the paper's Fig. 5): every rule of `--tau-methods` that reads tau (profit keeps p > tau, inverse p <= tau)
  at every `--taus`; the others (sft, dft, entropy, random) once, drawn as horizontal bands.
- `epochs` (Sec. 5): one `--epochs`-epoch run per method of `--methods`, saved at each epoch end; every epoch's
  checkpoint is evaluated, so epochs 1..N cost one training run, not N.
- `rank`: each method of `--methods` with LoRA (all linear layers, alpha = 2 * rank) at every `--ranks`.

The steps are the pipeline's (`profit_rl.pipeline.plan`, run by `profit_rl.pipeline.scheduler`: same commands, markers,
resume, parallel CPU budget and dry run): a rerun skips finished steps. Runs land in
`outputs/<model>/sweep/<study>/<method>[-tau<t>|-r<rank>]/seed-<s>/`, and the last step writes `sweep/ablations.md`,
`ablations.json` and one figure per study (`profit_rl.pipeline.sweep_report`).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from profit_rl.core.flags import positive_int
from profit_rl.core.errors import command_errors
from profit_rl.core.flags import accept_snake_case
from profit_rl.core.folders import check_name

from .plan import check_steps, curve_args, eval_step, grpo_step, heavy, sft_step
from .profiles import Profile, add_profile_args, resolve_profile
from .scheduler import run_grid
from .steps import Step

STUDIES = ("tau", "epochs", "rank")
TAU_RULES = ("profit", "inverse", "band")  # the selection rules that read tau
BASELINE = "sft"  # the method every study's differences are taken against, where it ran

# A smoke run's epochs: 24 rows at the smoke batch of 8 are 3 steps an epoch; -1 lifts the smoke step cap, which
# would otherwise end training inside the first epoch.
SMOKE_EPOCH_ARGS = ("--max_steps", "-1", "--num_samples", "24")


def reads_tau(method: str) -> bool:
    """Whether a method's selection rule reads tau (profit, inverse, band), so that the tau study varies it."""
    return method in TAU_RULES


@dataclass(frozen=True)
class Cell:
    """One SFT run of the grid (and what is evaluated from it).

    Args:
        study: one of STUDIES.
        method: a recipe name or selection rule, as in the pipeline's `--methods`.
        seed: SFT, GRPO and sampling seed.
        tau: the threshold, for rules that read it; None keeps the rule's own.
        epochs: training epochs; the `epochs` study saves and evaluates each epoch's end.
        rank: LoRA rank; None is full fine-tuning (the recipe's own setting).
        learning_rate: None keeps the recipe's.
    """

    study: str
    method: str
    seed: int
    tau: float | None = None
    epochs: int = 1
    rank: int | None = None
    learning_rate: float | None = None

    @property
    def label(self) -> str:
        """The method and what this study varies in it: `profit-tau0.05`, `sft-r16`, `inverse`."""
        if self.study == "tau" and self.tau is not None:
            return f"{self.method}-tau{self.tau:g}"
        if self.study == "rank":
            return f"{self.method}-r{self.rank}"
        return self.method

    def folder(self, root: Path) -> Path:
        """The cell's folder: `<root>/<study>/<label>/seed-<seed>`."""
        return root / self.study / self.label / f"seed-{self.seed}"

    def sft_args(self) -> list[str]:
        """The recipe overrides that make this cell."""
        argv = ["--tau", f"{self.tau:g}"] if self.tau is not None else []
        if self.study == "epochs":  # a checkpoint at each epoch end, all of them kept
            argv += ["--num_train_epochs", str(self.epochs), "--save_strategy", "epoch",
                     "--save_total_limit", str(self.epochs)]
        if self.rank is not None:
            argv += ["--use_peft", "true", "--lora_r", str(self.rank), "--lora_alpha", str(2 * self.rank),
                     "--lora_dropout", "0", "--lora_target_modules", "all-linear"]
        if self.learning_rate is not None:
            argv += ["--learning_rate", f"{self.learning_rate:g}"]
        return argv


@dataclass(frozen=True)
class Grid:
    """The ablation grid. `argv()` rebuilds it on another command line (the report step's).

    Args:
        studies: which of STUDIES run.
        taus: the tau study's thresholds.
        tau_methods: the tau study's methods; those that read tau run at every threshold, the others once.
        methods: the epochs and rank studies' methods.
        tau: the threshold of the epochs and rank studies' tau-reading methods.
        epochs: the epochs study trains this many epochs and evaluates each one's end.
        ranks: the rank study's LoRA ranks.
        lora_learning_rate: the rank study's learning rate; None keeps the recipe's (a full fine-tuning rate, which
            can be too small for a LoRA adapter to learn the task in the recipe's steps).
        seeds: how many seeds (0..seeds-1) every cell runs with.
        grpo: GRPO from every SFT model (the epochs study: from its last epoch), and an eval of its final model.
    """

    studies: tuple[str, ...] = STUDIES
    taus: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.4)
    tau_methods: tuple[str, ...] = ("profit", "inverse", "sft", "dft", "entropy", "random")
    methods: tuple[str, ...] = ("profit", "inverse", "sft")
    tau: float = 0.1
    epochs: int = 5
    ranks: tuple[int, ...] = (4, 16, 64)
    lora_learning_rate: float | None = None
    seeds: int = 3
    grpo: bool = False

    def __post_init__(self):
        unknown = [s for s in self.studies if s not in STUDIES]
        if unknown or not self.studies:
            raise SystemExit(f"--studies: unknown {unknown}; choose from {', '.join(STUDIES)}")
        if not all(0.0 < t < 1.0 for t in (*self.taus, self.tau)):
            raise SystemExit(f"--taus / --tau: every threshold must be in (0, 1), got {self.taus} and {self.tau}")
        if self.epochs < 1 or self.seeds < 1 or any(r < 1 for r in self.ranks):
            raise SystemExit("--epochs, --seeds and every --ranks value must be at least 1")

    def cells(self) -> list[Cell]:
        """Every cell of the grid, seed by seed: the tau study's (each tau-reading method at every tau, the others
        once), then the epochs and rank studies'."""
        cells = []
        for seed in range(self.seeds):
            if "tau" in self.studies:
                for method in self.tau_methods:
                    for tau in self.taus if reads_tau(method) else (None,):
                        cells.append(Cell("tau", method, seed, tau=tau))
            if "epochs" in self.studies:
                cells += [Cell("epochs", m, seed, self.tau if reads_tau(m) else None, epochs=self.epochs)
                          for m in self.methods]
            if "rank" in self.studies:
                cells += [Cell("rank", m, seed, self.tau if reads_tau(m) else None, rank=r,
                               learning_rate=self.lora_learning_rate)
                          for m in self.methods for r in self.ranks]
        return cells

    def argv(self) -> list[str]:
        """The flags that rebuild this grid on another command line (`add_grid_args`)."""
        return ["--studies", ",".join(self.studies), "--taus", ",".join(f"{t:g}" for t in self.taus),
                "--tau-methods", ",".join(self.tau_methods), "--methods", ",".join(self.methods),
                "--tau", f"{self.tau:g}", "--epochs", str(self.epochs), "--ranks", ",".join(map(str, self.ranks)),
                "--seeds", str(self.seeds), *(["--grpo"] if self.grpo else []),
                *(["--lora-learning-rate", f"{self.lora_learning_rate:g}"] if self.lora_learning_rate else [])]


def split(text: str) -> tuple[str, ...]:
    """The items of a comma- or space-separated list, empty ones dropped."""
    return tuple(item for item in text.replace(",", " ").split() if item)


def add_grid_args(p: argparse.ArgumentParser) -> None:
    """Add the grid's flags (studies, taus, methods, epochs, ranks, seeds, GRPO) to a parser, with Grid's defaults."""
    d = Grid()
    p.add_argument("--studies", default=",".join(d.studies), help="which of tau, epochs, rank (default: all)")
    p.add_argument("--taus", default=",".join(f"{t:g}" for t in d.taus), help="the tau study's thresholds")
    p.add_argument("--tau-methods", default=",".join(d.tau_methods),
                   help="the tau study's methods; profit, inverse (and band) run at every tau, the others once")
    p.add_argument("--methods", default=",".join(d.methods), help="the epochs and rank studies' methods")
    p.add_argument("--tau", type=float, default=d.tau, help="tau of the epochs and rank studies (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=d.epochs,
                   help="the epochs study: train N epochs, evaluate each")
    p.add_argument("--ranks", default=",".join(map(str, d.ranks)), help="the rank study's LoRA ranks")
    p.add_argument("--lora-learning-rate", type=float, default=None,
                   help="the rank study's learning rate (default: the recipe's, a full fine-tuning rate)")
    p.add_argument("--seeds", type=positive_int, default=d.seeds,
                   help="seeds 0..N-1 for every cell (default: %(default)s)")
    p.add_argument("--grpo", action="store_true", help="also GRPO from every SFT model and evaluate its final model")


def grid_from_args(args) -> Grid:
    """The Grid of parsed grid flags; an item of --taus or --ranks that is not a number stops with a one-line error."""
    try:
        return Grid(studies=split(args.studies), taus=tuple(float(t) for t in split(args.taus)),
                    tau_methods=split(args.tau_methods), methods=split(args.methods), tau=args.tau,
                    epochs=args.epochs, ranks=tuple(int(r) for r in split(args.ranks)), seeds=args.seeds,
                    grpo=args.grpo, lora_learning_rate=args.lora_learning_rate)
    except ValueError as err:  # a --taus or --ranks item that is not a number
        raise SystemExit(f"profit-rl sweep: {err}") from err


# -------------------------------------------------------------------------------------------------------------- plan


def cell_steps(profile: Profile, cell: Cell, root: Path, data: tuple[str, ...],
               sft_extra: tuple[str, ...], after: tuple[str, ...] = ()) -> list[Step]:
    """SFT, its eval (every epoch's checkpoint in the epochs study) and, with `--grpo`, GRPO and its final eval."""
    folder, name = cell.folder(root), f"{cell.study}/{cell.label}/seed-{cell.seed}"
    extra = (*cell.sft_args(), *(SMOKE_EPOCH_ARGS if profile.smoke and cell.study == "epochs" else ()), *sft_extra)
    sft = sft_step(profile, f"sft/{name}", cell.method, folder / "sft", data, extra,
                   eta_s=profile.eta.get("sft", 0) * cell.epochs, after=after)
    steps = [sft]
    if cell.study == "epochs":  # `curves` evaluates every checkpoint-N, one per epoch end
        steps.append(Step("eval", f"eval/{name}", [
            sys.executable, "-m", "profit_rl.evals.curves", str(folder / "sft"), "--labels", cell.label,
            "--output-dir", str(folder / "eval"), "--cache-dir", str(folder / "eval"), *curve_args(profile),
        ], folder / "eval", (*data, sft.name), eta_s=profile.eta.get("eval", 0) * cell.epochs, **heavy(profile)))
    else:
        steps.append(eval_step(profile, f"eval/{name}", str(folder / "sft"), folder / "eval", (*data, sft.name)))
    return steps


def grpo_steps(profile: Profile, cell: Cell, root: Path, data: tuple[str, ...]) -> list[Step]:
    """GRPO from a cell's SFT model, and the eval of its final model."""
    folder, name = cell.folder(root), f"{cell.study}/{cell.label}/seed-{cell.seed}"
    grpo = grpo_step(profile, f"grpo/{name}", folder / "sft", folder / "grpo", (*data, f"sft/{name}"))
    return [grpo, eval_step(profile, f"eval/{name}/grpo", str(folder / "grpo"), folder / "eval-grpo",
                            (*data, grpo.name))]


def sweep_root(args) -> Path:
    """`outputs/<model>/sweep`: beside the pipeline's seed-0 run of the same model."""
    return resolve_profile(args, 0).root / "sweep"


def plan(args, grid: Grid, sft_extra: tuple[str, ...] = ()) -> list[Step]:
    """The data steps once, every cell's steps, then the table and figures from all of them."""
    root = sweep_root(args)
    profiles = {seed: resolve_profile(args, seed) for seed in range(grid.seeds)}
    first = profiles[0]
    if any(p.sft_data != first.sft_data or p.base_model != first.base_model for p in profiles.values()):
        raise SystemExit(f"--model {args.model}: the seeds' profiles train on different data or base models, which a "
                         "sweep over seeds cannot compare")
    steps = list(first.data)
    data = tuple(step.name for step in first.data)
    checks = check_steps(first, data)  # the pipeline seed-0 run's base-model health check: the same step
    steps += checks
    for cell in grid.cells():
        steps += cell_steps(profiles[cell.seed], cell, root, data, sft_extra, tuple(c.name for c in checks))
        if grid.grpo:
            steps += grpo_steps(profiles[cell.seed], cell, root, data)
    steps.append(Step("report", "sweep/report", [
        sys.executable, "-m", "profit_rl.pipeline.sweep_report", str(root), *grid.argv(),
        *(["--smoke"] if first.smoke else []),
    ], root / "report", tuple(s.name for s in steps if s.stage == "eval"), eta_s=first.eta.get("report", 0)))
    return steps


# -------------------------------------------------------------------------------------------------------------- main


def parse_args(argv):
    """The `profit-rl sweep` flags: the profile flags, the grid flags and extra SFT flags."""
    p = argparse.ArgumentParser(prog="profit-rl sweep", description=__doc__.split("\n\n")[0])
    add_profile_args(p)
    add_grid_args(p)
    p.add_argument("--sft-args", default="", help="extra flags for every SFT command, e.g. '--learning_rate 3e-3'")
    return accept_snake_case(p).parse_args(argv)


@command_errors("sweep")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl sweep`: plan and run the ablation grid under the pipeline's lock on its output folder, print the
    path of ablations.md, and return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.seed = None  # resolve_profile's per-seed argument decides
    grid = grid_from_args(args)
    for method in {*grid.tau_methods, *grid.methods}:
        check_name(method, "--methods / --tau-methods entry")  # each names a folder under sweep/<study>/
    steps = plan(args, grid, tuple(shlex.split(args.sft_args)))
    return run_grid(args, steps, "profit-rl sweep " + shlex.join(argv), "ablations", sweep_root(args) / "ablations.md")


if __name__ == "__main__":
    sys.exit(main())
