"""`profit-rl curves RUN_DIR [RUN_DIR ...] --benchmark math500 --k 4`: Avg@k and Pass@k against training step.

Every `checkpoint-N` folder of every run is evaluated (or read from its cache: samples live in
`<RUN_DIR>/eval/checkpoint-N/<benchmark>/samples.jsonl`, so a rerun, or a rerun after more checkpoints appear, only
samples what is new). `--base-models` adds each run's starting model at step 0. Writes `curves.csv` (one row per run, checkpoint and benchmark) and `curves.png` (Avg@k and
Pass@k against step, one labelled line per run with its 95% CI band): the paper's Figure 7, ProFit-init vs
baseline-init GRPO.

One line is one base model: a run whose checkpoints (or whose --base-models entry) come from different base models,
by their config's architecture and shape, is refused with the checkpoints named. The output never replaces a
curves.csv/png of other runs unless `--force` is given, and the default output folder is never the file system's root.
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import json
import logging
import os
import sys
from pathlib import Path

from . import metrics
from .benchmarks import REGISTRY, get_benchmark
from profit_rl.core.flags import positive_int

from .evaluate import add_sampling_args, settings_from_args
from .compare import unique_labels
from profit_rl.core.errors import UsageError, command_errors
from .export import TENSORBOARD_RUN, log_scalars
from profit_rl.core.flags import accept_snake_case
from profit_rl.core.folders import folder_name, inside, output_folder
from profit_rl.core.io import InputError
from profit_rl.core.model_folders import base_model_identity, check_model_path, checkpoint_dirs, is_adapter_dir
from .benchmark_runner import run_benchmark
from .sampling import build_sampler
from profit_rl.core.state import write_bytes_atomic, write_text_atomic

logger = logging.getLogger(__name__)

CSV_FIELDS = ["run", "run_dir", "step", "checkpoint", "benchmark", "k", "n_problems", "avg_at_k", "avg_at_k_low",
              "avg_at_k_high", "pass_at_k", "pass_at_k_low", "pass_at_k_high", "n_errors"]


def find_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint-N folder holding a model or an adapter, by step."""
    # a full model, or a LoRA adapter (the sampler merges it into the base model its config names)
    return [(step, path) for step, path in checkpoint_dirs(run_dir)
            if (path / "config.json").is_file() or is_adapter_dir(path)]


def check_one_base_model(run_dir: Path, checkpoints: list[tuple[int, Path]]) -> None:
    """Refuse a line whose points come from different base models (another model's run wrote checkpoints into this
    folder, or --base-models names another model than the run trained): they are not one curve."""
    seen: dict[str, tuple[dict, list[str]]] = {}
    for _, ckpt in checkpoints:
        identity = base_model_identity(ckpt)
        if identity is not None:
            seen.setdefault(json.dumps(identity, sort_keys=True), (identity, []))[1].append(ckpt.name)
    if len(seen) > 1:
        (first, names_a), (second, names_b) = list(seen.values())[:2]
        fields = ", ".join(f"{key} {first.get(key)!r} vs {second.get(key)!r}" for key in first
                           if first.get(key) != second.get(key))
        raise InputError(f"{run_dir}: its checkpoints come from different base models ({', '.join(names_a)} vs "
                         f"{', '.join(names_b)}: {fields}), so they are not one curve. Point RUN_DIR at one run's "
                         "folder (and --base-models at the model it started from)")


def curves_output(out_dir: Path, run_dirs: list[Path], force: bool) -> None:
    """Refuse an output folder whose curves.csv/png hold other runs' curves (or another command's files), unless
    `force`: a rerun over the same runs replaces its own."""
    csv_path, png_path = out_dir / "curves.csv", out_dir / "curves.png"
    if force or not (csv_path.exists() or png_path.exists()):
        return
    ours = {str(d.resolve()) for d in run_dirs}
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            found = {str(Path(row["run_dir"]).resolve()) for row in csv.DictReader(f)}
    except (OSError, KeyError, TypeError, ValueError, csv.Error):
        found = None
    if found is None or not found <= ours:
        what = "the curves of other runs" if found else "files that profit-rl curves did not write"
        raise InputError(f"{out_dir} already holds {what} (curves.csv / curves.png); choose another --output-dir, or "
                         "pass --force to replace them")


def evaluate_run(run_dir: Path, label: str, benchmarks, problems, k_arg, settings, backend, cache_root, n_boot,
                 base_model: str | None = None, base_cache: Path | None = None):
    """Evaluate every checkpoint-N of one training run (and its base model at step 0 when given) on `benchmarks`: one
    row per checkpoint and benchmark, with Avg@k and Pass@k and their CIs. Samples are cached per checkpoint, and
    each checkpoint's weights are freed before the next is loaded."""
    checkpoints = find_checkpoints(run_dir)
    if not checkpoints:
        raise FileNotFoundError(f"{run_dir}: no checkpoint-N folders with a config.json or adapter_config.json (is "
                                "this a training output dir? TRL saves checkpoint-N there every save_steps)")
    if base_model:  # the model the run started from, drawn at step 0
        checkpoints = [(0, Path(base_model))] + [(step, ckpt) for step, ckpt in checkpoints if step != 0]
    check_one_base_model(run_dir, checkpoints)
    rows = []
    for step, ckpt in checkpoints:
        name = "base" if base_model and step == 0 else ckpt.name
        # under --cache-dir, runs are told apart by label (two runs are often both called "grpo")
        if cache_root:
            cache_dir = inside(cache_root, cache_root / folder_name(label, "--labels entry") / name, "--labels entry")
        else:
            cache_dir = run_dir / "eval" / name
        if step == 0 and base_model and base_cache:  # the step-0 model's own eval output: its samples are reused
            cache_dir = base_cache
        holder = {}

        def factory(ckpt=ckpt, holder=holder):
            if "sampler" not in holder:
                holder["sampler"] = build_sampler(backend, str(ckpt), settings)
            return holder["sampler"]

        with output_folder(cache_dir, "profit-rl curves " + " ".join(sys.argv[1:])):
            summaries = [run_benchmark(bench, problems[bench.name], str(ckpt), settings, k_arg or bench.default_k,
                                       cache_dir, factory, n_boot=n_boot) for bench in benchmarks]
        for bench, s in zip(benchmarks, summaries):
            k = k_arg or bench.default_k
            rows.append({
                "run": label, "run_dir": str(run_dir), "step": step, "checkpoint": str(ckpt), "benchmark": bench.name,
                "k": k, "n_problems": s["n_problems"],
                "avg_at_k": s["avg_at_k"], "avg_at_k_low": s["avg_at_k_ci"][0], "avg_at_k_high": s["avg_at_k_ci"][1],
                "pass_at_k": s["pass_at_k"], "pass_at_k_low": s["pass_at_k_ci"][0],
                "pass_at_k_high": s["pass_at_k_ci"][1], "n_errors": s["n_errors"],
            })
        sampler = holder.pop("sampler", None)
        if sampler is not None:  # free this checkpoint's weights before loading the next
            if hasattr(sampler, "close"):
                sampler.close()
            del sampler
            gc.collect()
    return rows


def write_csv(rows: list[dict], path: Path):
    """Write the curve rows to a CSV file (columns CSV_FIELDS), atomically."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, text.getvalue())


def legend_label(label: str) -> str:
    """A run label as matplotlib shows it literally: `$` would start mathtext, a leading `_` hides the line."""
    label = label.replace("$", r"\$")
    return " " + label if label.startswith("_") else label


def plot(rows: list[dict], path: Path):
    """Plot Avg@k and Pass@k against training step, one row of panels per benchmark and one line per run with its CI
    band, to a PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmarks = list(dict.fromkeys(r["benchmark"] for r in rows))
    runs = list(dict.fromkeys(r["run"] for r in rows))
    fig, axes = plt.subplots(len(benchmarks), 2, figsize=(10, 3.6 * len(benchmarks)), squeeze=False)
    for i, bench in enumerate(benchmarks):
        for j, (metric, name) in enumerate((("avg_at_k", "Avg"), ("pass_at_k", "Pass"))):
            ax = axes[i][j]
            for run in runs:
                pts = sorted((r for r in rows if r["run"] == run and r["benchmark"] == bench), key=lambda r: r["step"])
                if not pts:
                    continue
                steps = [r["step"] for r in pts]
                line, = ax.plot(steps, [100 * r[metric] for r in pts], marker="o", label=legend_label(run))
                ax.fill_between(steps, [100 * r[f"{metric}_low"] for r in pts],
                                [100 * r[f"{metric}_high"] for r in pts], color=line.get_color(), alpha=0.15)
            k = next(r["k"] for r in rows if r["benchmark"] == bench)
            ax.set_title(f"{bench}: {name}@{k}")
            ax.set_xlabel("training step")
            ax.set_ylabel(f"{name}@{k} (%)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, dpi=120, format="png")
    plt.close(fig)
    write_bytes_atomic(path, image.getvalue())


def log_curves(rows: list[dict], run_dirs: list[Path], labels: list[str], logging_dir: str | None) -> list[Path]:
    """Each run's curve points to TensorBoard, at their steps: into `<run>/runs/profit-rl-eval` when the run has a
    TensorBoard folder (so they sit beside its training curves), or into `<logging_dir>/<label>` when given."""
    written = []
    for run_dir, label in zip(run_dirs, labels):
        if logging_dir is not None:
            target = Path(logging_dir) / label.replace("/", "__")
        elif (run_dir / "runs").is_dir():
            target = run_dir / "runs" / TENSORBOARD_RUN
        else:
            continue
        points = [(r["step"], {f"eval/{r['benchmark']}/avg@{r['k']}": r["avg_at_k"],
                               f"eval/{r['benchmark']}/pass@{r['k']}": r["pass_at_k"]})
                  for r in rows if r["run"] == label]
        written.append(log_scalars(target, points))
    return written


@command_errors("curves")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl curves RUN_DIR...`: evaluate every checkpoint of each run, write curves.csv and curves.png, log the
    points to TensorBoard (unless `--logging-dir none`), and return the exit code."""
    p = argparse.ArgumentParser(prog="profit-rl curves", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="training output dirs holding checkpoint-N folders")
    p.add_argument("--benchmark", default="math500", help=f"one or more (comma-separated) of {','.join(REGISTRY)}")
    p.add_argument("--k", type=positive_int, default=None, help="samples per problem (default: the benchmark's)")
    p.add_argument("--data-dir", default=None,
                   help="local data, one folder per benchmark (`profit-rl docs evals`); default: hub ids")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N problems")
    p.add_argument("--labels", default=None, help="comma-separated line labels, one per RUN_DIR")
    p.add_argument("--output-dir", default=None,
                   help="where curves.csv/png go (default: RUN_DIR/eval for one run, else <common parent>/curves)")
    p.add_argument("--cache-dir", default=None,
                   help="root for per-checkpoint samples (default: RUN_DIR/eval/checkpoint-N/)")
    p.add_argument("--base-models", default=None,
                   help="comma-separated, one per RUN_DIR: the model each run started from (e.g. its SFT "
                        "checkpoint), evaluated and drawn at step 0")
    p.add_argument("--base-cache-dirs", default=None,
                   help="comma-separated, one per --base-models entry: an eval output dir of that model (profit-rl "
                        "eval --output-dir) whose cached samples serve step 0; the sampling settings must match, "
                        "else the cache refuses")
    p.add_argument("--bootstrap", type=positive_int, default=metrics.DEFAULT_BOOTSTRAP, help="bootstrap replicates")
    p.add_argument("--logging-dir", default=None,
                   help="TensorBoard root: each run's points go to <logging-dir>/<label> (default: <RUN_DIR>/runs/"
                        "profit-rl-eval for a run with a runs/ folder; 'none': never)")
    p.add_argument("--force", action="store_true",
                   help="replace curves.csv/png in --output-dir that hold other runs' curves (default: refuse)")
    add_sampling_args(p)
    args = accept_snake_case(p).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    run_dirs = [Path(d) for d in args.run_dirs]
    labels = args.labels.split(",") if args.labels else unique_labels(run_dirs)
    if len(labels) != len(run_dirs):
        raise UsageError(f"{len(labels)} labels for {len(run_dirs)} runs")
    bases = args.base_models.split(",") if args.base_models else [None] * len(run_dirs)
    if len(bases) != len(run_dirs):
        raise UsageError(f"{len(bases)} --base-models for {len(run_dirs)} runs")
    base_caches = [Path(d) for d in args.base_cache_dirs.split(",")] if args.base_cache_dirs else [None] * len(bases)
    if len(base_caches) != len(bases) or (args.base_cache_dirs and not args.base_models):
        raise UsageError("--base-cache-dirs needs one dir per --base-models entry")
    if args.output_dir:
        out_dir = Path(args.output_dir)
    elif len(run_dirs) == 1:
        out_dir = run_dirs[0] / "eval"
    else:
        parent = Path(os.path.commonpath([d.resolve() for d in run_dirs]))
        if parent == Path(parent.anchor):
            raise UsageError(f"the runs share no folder but {parent}, and nothing is written there: pass --output-dir")
        out_dir = parent / "curves"
    curves_output(out_dir, run_dirs, args.force)
    settings = settings_from_args(args)
    try:
        for base in bases:
            if base is not None:
                check_model_path(base, "--base-models entry")
        benchmarks = [get_benchmark(n.strip(), args.protocol) for n in args.benchmark.split(",") if n.strip()]
        problems = {b.name: b.load(args.data_dir)[: args.limit] for b in benchmarks}
        with output_folder(out_dir, "profit-rl curves " + " ".join(sys.argv[1:] if argv is None else argv)):
            rows = []
            for run_dir, label, base, base_cache in zip(run_dirs, labels, bases, base_caches):
                rows += evaluate_run(run_dir, label, benchmarks, problems, args.k, settings, args.backend,
                                     Path(args.cache_dir) if args.cache_dir else None, args.bootstrap,
                                     base_model=base, base_cache=base_cache)
            write_csv(rows, out_dir / "curves.csv")
            plot(rows, out_dir / "curves.png")
            logged = log_curves(rows, run_dirs, labels, args.logging_dir) if args.logging_dir != "none" else []
    except (InputError, FileNotFoundError, ValueError) as err:  # exit 1 here, a usage error's 2 included
        raise InputError(str(err)) from err
    for r in rows:
        print(f"{r['run']:<24} step {r['step']:>6}  {r['benchmark']}  Avg@{r['k']} {100 * r['avg_at_k']:5.1f}  "
              f"Pass@{r['k']} {100 * r['pass_at_k']:5.1f}")
    print(f"written: {out_dir / 'curves.csv'} and {out_dir / 'curves.png'}")
    for folder in logged:
        print(f"TensorBoard: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
