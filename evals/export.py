"""Eval results in the shapes other tools read: lm-evaluation-harness's own files, and TensorBoard scalars.

`profit-rl eval` (`--export lm-eval`, the default) writes what lm-eval 0.4.13's `EvaluationTracker` writes, in its
folder layout, beside its own results.json:

    <output-dir>/<model_name_sanitized>/results_<timestamp>.json
    <output-dir>/<model_name_sanitized>/samples_<benchmark>_<timestamp>.jsonl

The results file has lm-eval's top-level keys (`results[task]["metric,filter"]`, `group_subtasks`, `configs` with
`output_type`, `metric_list`, `num_fewshot`, `filter_list`, `versions`, `n-shot`, `higher_is_better`, `n-samples`,
the `config` block, `git_hash`, `date`, `task_hashes`, the model name and its sanitized form, the times); each
samples line has `doc_id`, `doc`, `target`, `arguments`, `resps`, `filtered_resps`, `filter`, `metrics`, the three
hashes and the per-problem metric values, exactly as the tracker serialises them. So lm-eval's `make_table`, its
results- and sample-file discovery (`get_latest_filename`, ...), its W&B logger and its zeno script read a
profit-rl eval as they read an lm-eval run (tests/evals/test_eval_exports.py pins the schema from lm-eval 0.4.13's
source). The metrics are Avg@k and Pass@k (with the standard error of the mean over problems, lm-eval's `_stderr`),
Pass@j for the smaller j, and a benchmark's own metrics (IFEval's four). A rerun writes a new timestamped pair, as
lm-eval does; readers take the latest.

When the evaluated model belongs to a training run with a TensorBoard folder (`<output_dir>/runs/`, what
`report_to: tensorboard` writes), `profit-rl eval` and `profit-rl curves` also log their numbers there, under
`runs/profit-rl-eval/`, at the run's step, so they sit beside the training curves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import subprocess
from datetime import datetime
from pathlib import Path

logger = logging.getLogger(__name__)

EXPORTS = ("lm-eval", "none")  # `profit-rl eval --export`
FILTER = "none"  # lm-eval's name for the unfiltered responses: metric keys read "avg@4,none"
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
    """Installed versions of the packages an eval's numbers depend on (those installed)."""
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
    # in a checkout this file's folder (evals/) sits in the repository root; in a wheel its parent is
    # site-packages/profit_rl, which holds no .git
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


# lm-eval's own naming rules (lm_eval.utils 0.4.13), restated: what its readers expect of names and paths


def sanitize_model_name(model_name: str) -> str:
    """lm-eval's `sanitize_model_name`: the folder a model's files go to."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", model_name)


def hash_string(text: str) -> str:
    """lm-eval's `hash_string` (sha256 hex), for the per-sample and per-task hashes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def timestamp(when: float) -> str:
    """lm-eval's file timestamp: local ISO time with ':' as '-' (no '_', which its file-name parsers split on)."""
    return datetime.fromtimestamp(when).isoformat().replace(":", "-")


def sanitize_list(value):
    """lm-eval's `sanitize_list`: every leaf of nested lists as a string."""
    if isinstance(value, list):
        return [sanitize_list(item) for item in value]
    if isinstance(value, tuple):
        return tuple(sanitize_list(item) for item in value)
    return str(value)


def prompt_text(messages: list[dict]) -> str:
    """The prompt as one string (lm-eval's `arguments` hold a string): the message itself for a lone user turn, else
    each turn under its role, in order (few-shot turns first)."""
    if len(messages) == 1 and messages[0].get("role") == "user":
        return messages[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


def per_problem_metrics(s: dict) -> list[str]:
    """The metrics with a value per problem (lm-eval's `metric_list`): avg@k, pass@k, pass@j for the smaller j."""
    k = s["k"]
    return [f"avg@{k}", f"pass@{k}"] + [f"pass@{j}" for j in s.get("pass_at", {}) if int(j) != k]


def read_sample_rows(path: Path) -> dict[str, dict[int, dict]]:
    """problem id -> sample index -> row of a benchmark's sample cache (samples.jsonl)."""
    rows: dict[str, dict[int, dict]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                rows.setdefault(str(row["problem_id"]), {})[int(row["sample_index"])] = row
    return rows


def lm_eval_samples(summary: dict, bench, problems: list, out_dir: Path, gen_kwargs: dict) -> list[dict]:
    """One benchmark's samples as lm-eval's evaluator holds them before saving (`arguments` a list of
    (prompt, generation kwargs) per request), one per scored problem; `doc_id` is the problem's position."""
    from . import metrics

    k = summary["k"]
    cached = read_sample_rows(out_dir / bench.name / Path(summary["samples"]).name)
    names = per_problem_metrics(summary)
    samples = []
    for doc_id, problem in enumerate(problems):
        if problem.id not in summary["per_problem"]:
            continue  # --responses without this problem: not scored
        rows = [cached[problem.id][i] for i in range(k)]
        completions = [row["completion"] for row in rows]
        scores = [row["score"] for row in rows]
        doc = {"id": problem.id, "question": problem.question, "gold": problem.gold}
        target = str(problem.gold)
        prompt = prompt_text(bench.prompt(problem))
        values = {f"avg@{k}": metrics.problem_avg(scores), f"pass@{k}": metrics.problem_pass(scores, k)}
        values.update({name: metrics.problem_pass(scores, int(name.split("@")[1])) for name in names[2:]})
        samples.append({
            "doc_id": doc_id,
            "doc": doc,
            "target": target,
            "arguments": [[prompt, gen_kwargs]],
            "resps": [completions],
            "filtered_resps": [completions],  # take_first_k(k): every sample is scored
            "filter": FILTER,
            "metrics": names,
            "doc_hash": hash_string(json.dumps(doc, indent=2, default=str, ensure_ascii=False)),
            "prompt_hash": hash_string(prompt),
            "target_hash": hash_string(target),
            **values,
            # ours beside lm-eval's: each sample's extracted answer, score and error (None, or why it scored 0)
            "extracted": [row.get("extracted") for row in rows],
            "scores": scores,
            "errors": [row.get("error") for row in rows],
        })
    return samples


def saved_sample(sample: dict) -> dict:
    """A sample as lm-eval's `EvaluationTracker.save_results_samples` writes it: `arguments` keyed gen_args_i/arg_j,
    responses as strings, the target a string."""
    saved = dict(sample)
    saved["arguments"] = {f"gen_args_{i}": {f"arg_{j}": value for j, value in enumerate(request)}
                          for i, request in enumerate(sample["arguments"])}
    saved["resps"] = sanitize_list(sample["resps"])
    saved["filtered_resps"] = sanitize_list(sample["filtered_resps"])
    saved["target"] = str(sample["target"])
    return saved


def n_shot(bench, problem) -> int:
    """Few-shot examples in a benchmark's prompt: the assistant turns before the question."""
    return sum(1 for m in bench.prompt(problem) if m.get("role") == "assistant") if problem is not None else 0


def lm_eval_results(run: dict, summaries: dict[str, dict], benchmarks: dict, problems: dict[str, list],
                    out_dir: Path, started: float, ended: float, args=None) -> tuple[dict, dict[str, list[dict]]]:
    """The lm-eval results document for one `profit-rl eval` run and its samples per task (`run` as written to
    results.json, `summaries` the per-benchmark summaries with their per-problem values)."""
    results, higher, n_samples, configs, versions, shots, samples = {}, {}, {}, {}, {}, {}, {}
    settings = run.get("settings") or {}
    for name, s in summaries.items():
        bench, k = benchmarks[name], s["k"]
        avgs = [p["avg"] for p in s["per_problem"].values()]
        passes = [p["pass"] for p in s["per_problem"].values()]
        task = {"name": name, "alias": s.get("title", name), "sample_len": s["n_problems"],
                f"avg@{k},{FILTER}": s["avg_at_k"], f"avg@{k}_stderr,{FILTER}": stderr(avgs),
                f"pass@{k},{FILTER}": s["pass_at_k"], f"pass@{k}_stderr,{FILTER}": stderr(passes)}
        task.update({f"pass@{j},{FILTER}": value for j, value in s.get("pass_at", {}).items() if int(j) != k})
        task.update({f"{metric},{FILTER}": value for metric, value in s.get("own_metrics", {}).items()})
        results[name] = task
        higher[name] = {key.split(",")[0]: True for key in task
                        if "," in key and "_stderr" not in key}
        n_samples[name] = {"original": len(problems[name]), "effective": s["n_problems"]}
        gen_kwargs = {"until": [], "do_sample": settings.get("temperature", 0) > 0, **settings,
                      "max_gen_toks": (s.get("settings") or {}).get("max_new_tokens")}
        shots[name] = n_shot(bench, problems[name][0] if problems[name] else None)
        versions[name] = bench.prompt_version
        samples[name] = lm_eval_samples(s, bench, problems[name], out_dir, gen_kwargs)
        configs[name] = {
            "task": name, "task_alias": s.get("title", name), "dataset_path": bench.name, "test_split": "test",
            "doc_to_text": "question", "doc_to_target": "gold", "unsafe_code": False, "description": "",
            "target_delimiter": " ", "fewshot_delimiter": "\n\n", "num_fewshot": shots[name],
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True}
                            for m in per_problem_metrics(s)],
            "output_type": "generate_until", "generation_kwargs": gen_kwargs, "repeats": k,
            "filter_list": [{"name": FILTER, "filter": [{"function": "take_first_k", "k": k}]}],
            "should_decontaminate": False,
            "metadata": {"version": bench.prompt_version, "protocol": s.get("protocol"), "scorer": bench.scorer,
                         "metric": s.get("metric"), "errors_scored_zero": s.get("n_errors", 0),
                         # relative to --output-dir: the folder can move
                         "profit_rl_samples": f"{name}/{Path(s['samples']).name}"},
        }
    task_hashes = {name: hash_string("".join(x["doc_hash"] + x["prompt_hash"] + x["target_hash"] for x in rows))
                   for name, rows in samples.items()}
    package, commit = package_versions(), git_hash()
    seed = getattr(args, "seed", None) if run.get("model") else None
    # as the user named it, as lm-eval names a model after its `pretrained=` argument
    model_name = (getattr(args, "model", None) or getattr(args, "responses", None) or run.get("model")
                  or run.get("responses"))
    model_args = f"pretrained={run['model']}" if run.get("model") else f"responses={run.get('responses')}"
    document = {
        "results": results,
        "group_subtasks": {name: [] for name in results},
        "configs": dict(sorted(configs.items())),
        "versions": dict(sorted(versions.items())),
        "n-shot": dict(sorted(shots.items())),
        "higher_is_better": dict(sorted(higher.items())),
        "n-samples": n_samples,
        "config": {
            "model": "profit-rl" if run.get("model") else "responses",
            "model_args": model_args,
            "batch_size": getattr(args, "batch_size", None) if run.get("model") else None, "batch_sizes": [],
            "device": None, "use_cache": None,
            "limit": getattr(args, "limit", None), "bootstrap_iters": getattr(args, "bootstrap", None),
            "gen_kwargs": settings or None,
            # one seed draws every sample (evals.sampling.sample_seed); none for scored responses
            "random_seed": seed, "numpy_seed": seed, "torch_seed": seed, "fewshot_seed": None,
            "backend": run.get("backend"), "protocol": run.get("protocol"),
            "not_comparable_because": run.get("not_comparable_because"),
            "versions": package,
            "git_hash": commit,
        },
        "git_hash": commit,
        "date": started,
        "transformers_version": package.get("transformers"),
        "profit_rl_version": package.get("profit-rl"),
        "upper_git_hash": None,
        "task_hashes": task_hashes,
        # lm-eval's GeneralConfigTracker fields
        "model_source": run.get("backend") or "responses",
        "model_name": model_name,
        "model_name_sanitized": sanitize_model_name(str(model_name)),
        "system_instruction": None,
        "system_instruction_sha": None,
        "fewshot_as_multiturn": any(shots.values()),
        "chat_template": None,
        "chat_template_sha": None,
        "start_time": started,
        "end_time": ended,
        "total_evaluation_time_seconds": str(ended - started),
    }
    return document, samples


def write_lm_eval(out_dir: str | Path, document: dict, samples: dict[str, list[dict]]) -> tuple[Path, list[Path]]:
    """Write lm-eval's files into `<out_dir>/<model_name_sanitized>/`; returns (results file, samples files)."""
    from profit_rl.core.state import write_text_atomic

    folder = Path(out_dir) / document["model_name_sanitized"]
    folder.mkdir(parents=True, exist_ok=True)
    stamp = timestamp(document["end_time"])
    results_file = folder / f"results_{stamp}.json"
    sample_files = []
    for name in document["configs"]:
        path = folder / f"samples_{name}_{stamp}.jsonl"
        write_text_atomic(path, "".join(json.dumps(saved_sample(x), default=str, ensure_ascii=False) + "\n"
                                        for x in samples[name]))
        sample_files.append(path)
    write_text_atomic(results_file, json.dumps(document, indent=2, default=str, ensure_ascii=False))
    return results_file, sample_files


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
