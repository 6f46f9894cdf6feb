"""Eval results in the shapes other tools read: an lm-eval-style results file, and TensorBoard scalars.

`profit-rl eval` writes `<output-dir>/results_lm_eval.json` beside its own results.json: lm-evaluation-harness's
layout (`results[task]["metric,filter"]`, `versions`, `n-samples`, `higher_is_better`, `configs`, a `config` block
with the package versions, `git_hash`, `date`), so leaderboard scripts and lm-eval's own table code read it. The
metrics are Avg@k and Pass@k (with the standard error of the mean over problems, lm-eval's `_stderr`), Pass@j for the
smaller j, and a benchmark's own metrics (IFEval's four).

When the evaluated model belongs to a training run with a TensorBoard folder (`<output_dir>/runs/`, what
`report_to: tensorboard` writes), `profit-rl eval` and `profit-rl curves` also log their numbers there, under
`runs/profit-rl-eval/`, at the run's step, so they sit beside the training curves.
"""

from __future__ import annotations

import logging
import math
import subprocess
import time
from pathlib import Path

logger = logging.getLogger(__name__)

LM_EVAL_FILE = "results_lm_eval.json"
TENSORBOARD_RUN = "profit-rl-eval"  # the TensorBoard run (a folder under runs/) that eval and curve numbers go to
VERSIONED = ("profit-rl", "torch", "transformers", "trl", "vllm", "datasets", "math-verify", "nltk", "langdetect")


def stderr(values: list[float]) -> float | str:
    """Standard error of the mean (sample standard deviation / sqrt(n)), lm-eval's `_stderr`; "N/A" for n < 2, as
    lm-eval writes it."""
    n = len(values)
    if n < 2:
        return "N/A"
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def git_hash() -> str | None:
    """The commit of the profit-rl source that ran, when it runs from a git checkout (None from a wheel)."""
    # resolve(): in a checkout this file is reached through the profit_rl/evals symlink, and its real folder's parent
    # is the repository root; in a wheel the parent is site-packages/profit_rl, which holds no .git
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def lm_eval_results(run: dict, summaries: dict[str, dict], task_versions: dict[str, str]) -> dict:
    """The lm-eval-style document for one `profit-rl eval` run (`run` as written to results.json, `summaries` the
    per-benchmark summaries with their per-problem values, `task_versions` each benchmark's prompt version)."""
    results, higher, n_samples, configs = {}, {}, {}, {}
    for name, s in summaries.items():
        k = s["k"]
        avgs = [p["avg"] for p in s["per_problem"].values()]
        passes = [p["pass"] for p in s["per_problem"].values()]
        task = {"alias": s.get("title", name),
                f"avg@{k},none": s["avg_at_k"], f"avg@{k}_stderr,none": stderr(avgs),
                f"pass@{k},none": s["pass_at_k"], f"pass@{k}_stderr,none": stderr(passes)}
        task.update({f"pass@{j},none": value for j, value in s.get("pass_at", {}).items() if int(j) != k})
        task.update({f"{metric},none": value for metric, value in s.get("own_metrics", {}).items()})
        results[name] = task
        higher[name] = {key.split(",")[0]: True for key in task if key != "alias" and "_stderr" not in key}
        n_samples[name] = {"original": s["n_problems"], "effective": s["n_problems"]}
        configs[name] = {"task": name, "repeats": k, "samples": s.get("samples"),
                         "generation_kwargs": s.get("settings"), "errors_scored_zero": s.get("n_errors", 0)}
    versions, commit = package_versions(), git_hash()
    return {
        "results": results,
        "versions": {name: task_versions.get(name) for name in summaries},
        "higher_is_better": higher,
        "n-samples": n_samples,
        "configs": configs,
        "config": {
            "model": "profit-rl" if run.get("model") else "responses",
            "model_args": f"pretrained={run['model']}" if run.get("model") else f"responses={run.get('responses')}",
            "backend": run.get("backend"),
            "generation_settings": run.get("settings"),
            "versions": versions,
            "git_hash": commit,
        },
        "git_hash": commit,
        "date": time.time(),
        "transformers_version": versions.get("transformers"),
        "model_name": run.get("model") or run.get("responses"),
    }


# ---------------------------------------------------------------------------------------------------------------------
# TensorBoard


def training_run_dir(model: str | Path) -> Path | None:
    """The training output dir a local model belongs to: the model folder itself, or the run holding it as
    `checkpoint-N`; None for a hub id or a folder outside any run with a TensorBoard `runs/` folder."""
    path = Path(model)
    candidates = [path, path.parent] if path.name.startswith("checkpoint-") else [path]
    return next((candidate for candidate in candidates if (candidate / "runs").is_dir()), None)


def run_step(model: str | Path) -> int:
    """The training step a local model stands for: its trainer_state.json's global_step, else the N of its (or its
    newest) checkpoint-N folder, else 0 (a base model)."""
    import json

    path = Path(model)
    state = path / "trainer_state.json"
    if state.is_file():
        return int(json.loads(state.read_text()).get("global_step", 0))
    if path.name.startswith("checkpoint-") and path.name[len("checkpoint-"):].isdigit():
        return int(path.name[len("checkpoint-"):])
    steps = [int(p.name.split("-", 1)[1]) for p in path.glob("checkpoint-*") if p.name.split("-", 1)[1].isdigit()]
    return max(steps, default=0)


def eval_scalars(summaries: dict[str, dict]) -> dict[str, float]:
    """TensorBoard tags -> values: `eval/<benchmark>/avg@k`, `.../pass@k` and the benchmark's own metrics."""
    scalars = {}
    for name, s in summaries.items():
        scalars[f"eval/{name}/avg@{s['k']}"] = s["avg_at_k"]
        scalars[f"eval/{name}/pass@{s['k']}"] = s["pass_at_k"]
        scalars.update({f"eval/{name}/{metric}": value for metric, value in s.get("own_metrics", {}).items()})
    return scalars


def log_scalars(logging_dir: str | Path, points: list[tuple[int, dict[str, float]]]) -> Path:
    """Write (step, {tag: value}) points to TensorBoard under `logging_dir`; returns the folder written."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(logging_dir))
    try:
        for step, scalars in points:
            for tag, value in scalars.items():
                writer.add_scalar(tag, value, step)
    finally:
        writer.close()
    logger.info("logged %d points to TensorBoard in %s", len(points), logging_dir)
    return Path(logging_dir)


def default_logging_dir(model: str | None) -> Path | None:
    """`<run>/runs/profit-rl-eval` for a model inside a training run with a TensorBoard folder, else None."""
    run = training_run_dir(model) if model and Path(model).exists() else None
    return run / "runs" / TENSORBOARD_RUN if run else None
