"""`profit-rl eval`: sample and score benchmarks (Avg@k, Pass@k), or score `--responses` made elsewhere.

    profit-rl eval --model Qwen/Qwen3-0.6B --benchmarks math500,gsm8k,aime24,gpqa --backend vllm
    profit-rl eval --model outputs/tiny --data-dir ../shared/data --k 4 --limit 10
    profit-rl eval --responses completions.jsonl --benchmarks math500 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from pathlib import Path

from . import metrics
from .benchmarks import DEFAULT_BENCHMARKS, REGISTRY, MissingDataError, RowError, get_benchmark
from .results import RESULTS_FILE, TABLE_FILE, CacheMismatchError, markdown_table, write_json
from .runner import model_identity, run_benchmark, score_responses
from .sampling import SamplingSettings, build_sampler

logger = logging.getLogger("evals")


def add_sampling_args(p: argparse.ArgumentParser):
    """Backend and sampling options, shared by `eval` and `curves`."""
    p.add_argument("--backend", choices=["transformers", "vllm"], default="transformers",
                   help="transformers (CPU or one GPU) or vllm (GPUs; pip install -e '.[vllm]')")
    d = SamplingSettings()
    g = p.add_argument_group("sampling (defaults are the paper's)")
    g.add_argument("--temperature", type=float, default=d.temperature, help="default: %(default)s; 0 = greedy")
    g.add_argument("--top-p", type=float, default=d.top_p, help="default: %(default)s")
    g.add_argument("--top-k", type=int, default=d.top_k, help="default: %(default)s; 0 = no limit")
    g.add_argument("--max-new-tokens", type=int, default=None,
                   help="default: per benchmark (math500 4096, gsm8k 2048, aime24 8192, gpqa 4096)")
    g.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    g.add_argument("--no-chat-template", action="store_true", help="send raw question text, no chat template")
    g.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="transformers: prompts per generate() call, each with k sequences (default: %(default)s)")
    g.add_argument("--cpu-threads", type=int, default=None,
                   help="transformers on CPU: torch threads (default: torch's; use 1 on a CPU shared with other jobs)")
    g.add_argument("--dtype", default=d.dtype, choices=["auto", "bf16", "fp16", "fp32"], help="default: %(default)s")
    g.add_argument("--tensor-parallel-size", type=int, default=d.tensor_parallel_size, help="vllm (default: 1)")
    g.add_argument("--data-parallel-size", type=int, default=d.data_parallel_size, help="vllm (default: 1)")
    g.add_argument("--gpu-memory-utilization", type=float, default=d.gpu_memory_utilization,
                   help="vllm (default: %(default)s)")
    g.add_argument("--vllm-chunk", type=int, default=d.vllm_chunk,
                   help="vllm: prompts per generate() call, i.e. how often samples are saved (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="profit-rl eval",
        description="Sample k completions per problem and report Avg@k and unbiased Pass@k with 95%% bootstrap CIs. "
                    "Samples are cached per problem in <output-dir>/<benchmark>/samples.jsonl: a rerun with the same "
                    "model and settings generates only what is missing.",
    )
    p.add_argument("--model", help="hub id or local checkpoint (not needed with --responses)")
    p.add_argument("--benchmarks", default=",".join(DEFAULT_BENCHMARKS),
                   help=f"comma-separated, from {','.join(REGISTRY)} (default: %(default)s)")
    p.add_argument("--k", type=int, default=None,
                   help="samples per problem (default: the benchmark's, 8, and 32 on aime24); "
                        "with --responses, default: the fewest responses any problem has")
    p.add_argument("--data-dir", default=None,
                   help="local data laid out like ../shared/data (math500/test.jsonl, ...); default: the hub ids")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems of each benchmark")
    p.add_argument("--output-dir", default=None, help="default: outputs/eval/<model name>")
    p.add_argument("--overwrite", action="store_true", help="discard cached samples instead of resuming")
    p.add_argument("--responses", default=None,
                   help="score completions from this JSONL instead of generating: one row per completion "
                        "{id, completion} or per problem {id, completions: [...]}; optional 'benchmark' field")
    add_sampling_args(p)
    p.add_argument("--bootstrap", type=int, default=metrics.DEFAULT_BOOTSTRAP,
                   help="bootstrap replicates for the CIs (default: %(default)s)")
    return p


def settings_from_args(args) -> SamplingSettings:
    return SamplingSettings(
        temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, max_new_tokens=args.max_new_tokens,
        seed=args.seed, chat_template=not args.no_chat_template, batch_size=args.batch_size, dtype=args.dtype,
        cpu_threads=args.cpu_threads,
        tensor_parallel_size=args.tensor_parallel_size, data_parallel_size=args.data_parallel_size,
        gpu_memory_utilization=args.gpu_memory_utilization, vllm_chunk=args.vllm_chunk,
    )


def read_responses(path: str, benchmark_names: list[str]) -> dict[str, dict[str, list[str]]]:
    """benchmark -> problem id -> completions, from one row per completion or one row per problem."""
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    skipped: dict[str, int] = defaultdict(int)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path} line {lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise RowError(f"{where}: not valid JSON ({err})") from None
            bench = row.get("benchmark")
            if bench is None:
                if len(benchmark_names) != 1:
                    raise RowError(f"{where}: no 'benchmark' field, and --benchmarks names {len(benchmark_names)} "
                                   "benchmarks; add the field or pass one benchmark")
                bench = benchmark_names[0]
            if bench not in benchmark_names:
                skipped[bench] += 1  # rows for benchmarks not asked for: counted and reported below
                continue
            pid = next((row[key] for key in ("problem_id", "id", "unique_id") if key in row), None)
            if pid is None:
                raise RowError(f"{where}: missing field 'problem_id' (or 'id')")
            if "completions" in row or "responses" in row:
                completions = row.get("completions", row.get("responses"))
                if not isinstance(completions, list) or not all(isinstance(c, str) for c in completions):
                    raise RowError(f"{where}: field 'completions' must be a list of strings")
                out[bench][str(pid)].extend(completions)
            else:
                completion = next((row[key] for key in ("completion", "response") if key in row), None)
                if not isinstance(completion, str):
                    raise RowError(f"{where}: missing string field 'completion' (or 'response', or a list "
                                   "'completions')")
                out[bench][str(pid)].append(completion)
    for bench, n in skipped.items():
        logger.warning("%s: %d rows for benchmark %r skipped (not in --benchmarks)", path, n, bench)
    return out


def default_output_dir(args) -> Path:
    if args.responses:
        return Path("outputs/eval") / Path(args.responses).stem
    return Path("outputs/eval") / Path(args.model.rstrip("/")).name


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    names = [n.strip() for n in args.benchmarks.split(",") if n.strip()]
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"profit-rl eval: unknown benchmark(s) {unknown}; choose from {','.join(REGISTRY)}", file=sys.stderr)
        return 2
    if not args.model and not args.responses:
        print("profit-rl eval: pass --model (to generate) or --responses (to score a file)", file=sys.stderr)
        return 2
    out_dir = Path(args.output_dir) if args.output_dir else default_output_dir(args)
    settings = settings_from_args(args)

    try:
        benchmarks = {name: get_benchmark(name) for name in names}
        problems = {}
        for name, bench in benchmarks.items():
            problems[name] = bench.load(args.data_dir)[: args.limit]  # load all first: a missing file fails early
        responses = read_responses(args.responses, names) if args.responses else None

        sampler = None

        def sampler_factory():
            nonlocal sampler
            if sampler is None:
                sampler = build_sampler(args.backend, args.model, settings)
            return sampler

        summaries = {}
        for name, bench in benchmarks.items():
            if responses is not None:
                if not responses.get(name):
                    raise RowError(f"{args.responses}: no responses for {name}")
                summaries[name] = score_responses(bench, problems[name], responses[name], out_dir, args.k,
                                                  args.responses, n_boot=args.bootstrap)
            else:
                k = args.k or bench.default_k
                summaries[name] = run_benchmark(bench, problems[name], args.model, settings, k, out_dir,
                                                sampler_factory, overwrite=args.overwrite, n_boot=args.bootstrap)
    except (MissingDataError, RowError, CacheMismatchError) as err:
        print(f"profit-rl eval: {err}", file=sys.stderr)
        return 1

    run = {
        "model": model_identity(args.model) if args.model else None,
        "responses": args.responses,
        "backend": None if args.responses else args.backend,
        # max_new_tokens is per benchmark unless given: each benchmark's results.json has the value it used
        "settings": {} if args.responses else {k: v for k, v in settings.fingerprint().items()
                                                if not (k == "max_new_tokens" and v is None)},
        "benchmarks": {name: {key: v for key, v in s.items() if key != "per_problem"} for name, s in summaries.items()},
        "average": metrics.average_over_benchmarks(summaries, n_boot=args.bootstrap) if summaries else None,
    }
    write_json(out_dir / RESULTS_FILE, run)
    table = markdown_table(run)
    (out_dir / TABLE_FILE).write_text(table, encoding="utf-8")
    print(table)
    print(f"results: {out_dir / RESULTS_FILE}  table: {out_dir / TABLE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
