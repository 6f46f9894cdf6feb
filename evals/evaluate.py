"""`profit-rl eval`: sample and score benchmarks (Avg@k, Pass@k), or score `--responses` made elsewhere.

    profit-rl eval --model Qwen/Qwen3-0.6B --protocol paper --backend vllm     # the paper's Table 1 settings
    profit-rl eval --protocol paper --print-prompts --data-dir /path/to/data  # show each first prompt, no model
    profit-rl eval --model outputs/tiny --data-dir /path/to/data --k 4 --limit 10
    profit-rl eval --responses completions.jsonl --benchmarks math500 --data-dir /path/to/data
    profit-rl eval --rescore outputs/eval/my-model --data-dir /path/to/data   # saved completions, both protocols
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

from . import markdown as md
from . import metrics
from .benchmarks import REGISTRY, Problem, get_benchmark
from profit_rl.core.dtypes import DTYPE_HELP, DTYPES
from profit_rl.core.errors import UsageError, command_errors
from .export import EXPORTS, default_logging_dir, eval_scalars, lm_eval_results, log_scalars, run_step, write_lm_eval
from profit_rl.core.flags import accept_snake_case, positive_int
from profit_rl.core.folders import inside, output_folder
from profit_rl.core.identity import weights_identity
from profit_rl.core.io import DataError, InputError, looks_like_hub_id, read_file
from profit_rl.core.model_folders import check_model_path
from .protocols import DEFAULT_PROTOCOL, PROTOCOLS, deviations, get_protocol
from .results import RESULTS_FILE, TABLE_FILE, markdown_table
from .benchmark_runner import model_identity, run_benchmark, score_responses
from .sampling import SamplingSettings, build_sampler
from profit_rl.core.state import write_json_atomic, write_text_atomic

DEFAULT_ROOT = Path("outputs/eval")

logger = logging.getLogger("profit_rl.evals")



def add_sampling_args(p: argparse.ArgumentParser):
    """Backend and sampling options, shared by `eval` and `curves`."""
    p.add_argument("--backend", choices=["transformers", "vllm"], default="transformers",
                   help="transformers (CPU or one GPU) or vllm (GPUs; pip install 'profit-rl[vllm]')")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default=DEFAULT_PROTOCOL,
                   help="paper: the ProFit reference's OpenCompass settings (prompts, few-shot turns, answer rules, "
                        "8192 new tokens, k), comparable to its Table 1; boxed: the toolkit's own 0-shot \\boxed{} "
                        "prompts and shorter budgets (`profit-rl docs protocol`). Default: %(default)s")
    d = SamplingSettings()
    g = p.add_argument_group("sampling (defaults are the paper's)")
    g.add_argument("--temperature", type=float, default=d.temperature, help="default: %(default)s; 0 = greedy")
    g.add_argument("--top-p", type=float, default=d.top_p, help="default: %(default)s")
    g.add_argument("--top-k", type=int, default=d.top_k, help="default: %(default)s; 0 = no limit")
    g.add_argument("--max-new-tokens", type=int, default=None,
                   help="default: per benchmark and protocol (paper: 8192; boxed: math500 4096, gsm8k 2048, aime24 "
                        "8192, gpqa 4096, ifeval 2048)")
    g.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    g.add_argument("--no-chat-template", action="store_true", help="send raw question text, no chat template")
    g.add_argument("--end-of-turn-token", default=None,
                   help="the token that ends an assistant turn, for a chat template that does not show it "
                        "(default: read from the template)")
    g.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                   help="transformers: prompts per generate() call, each with k sequences (default: %(default)s)")
    g.add_argument("--cpu-threads", type=int, default=None,
                   help="transformers on CPU: torch threads (default: torch's; use 1 on a CPU shared with other jobs)")
    g.add_argument("--dtype", default=d.dtype, choices=DTYPES, help=DTYPE_HELP + " (default: %(default)s)")
    g.add_argument("--tensor-parallel-size", type=int, default=d.tensor_parallel_size, help="vllm (default: 1)")
    g.add_argument("--data-parallel-size", type=int, default=d.data_parallel_size, help="vllm (default: 1)")
    g.add_argument("--gpu-memory-utilization", type=float, default=d.gpu_memory_utilization,
                   help="vllm (default: %(default)s)")
    g.add_argument("--vllm-chunk", type=int, default=d.vllm_chunk,
                   help="vllm: prompts per generate() call, i.e. how often samples are saved (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    """The `profit-rl eval` argument parser (every kebab-case flag also accepted in snake_case)."""
    p = argparse.ArgumentParser(
        prog="profit-rl eval",
        description="Sample k completions per problem and report Avg@k and unbiased Pass@k with 95%% bootstrap CIs. "
                    "Samples are cached per problem in <output-dir>/<benchmark>/samples.jsonl: a rerun with the same "
                    "model and settings generates only what is missing.",
    )
    p.add_argument("--model", help="hub id or local checkpoint (not needed with --responses)")
    p.add_argument("--benchmarks", default=None,
                   help=f"comma-separated, from {','.join(REGISTRY)} (default: the protocol's: "
                        + "; ".join(f"{n}: {','.join(p.benchmarks)}" for n, p in PROTOCOLS.items()) + ")")
    p.add_argument("--print-prompts", action="store_true",
                   help="dry run: print the first prompt of each benchmark under --protocol (every turn; rendered "
                        "with the chat template of --model's tokenizer when --model is given), then exit")
    p.add_argument("--k", type=positive_int, default=None,
                   help="samples per problem (default: the benchmark's, 8, and 32 on aime24); "
                        "with --responses, default: the fewest responses any problem has")
    p.add_argument("--data-dir", default=None,
                   help="local data, one folder per benchmark (math500/test.jsonl, gsm8k/test.jsonl, ...; "
                        "`profit-rl docs evals`); default: the hub ids")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N problems of each benchmark")
    p.add_argument("--output-dir", default=None, help="default: outputs/eval/<model name>")
    p.add_argument("--overwrite", action="store_true", help="discard cached samples instead of resuming")
    p.add_argument("--logging-dir", default=None,
                   help="TensorBoard folder for the eval numbers (default: <run>/runs/profit-rl-eval when the model "
                        "is a training run's output or checkpoint with a runs/ folder; 'none': never)")
    p.add_argument("--export", choices=EXPORTS, default="lm-eval",
                   help="lm-eval: also write lm-evaluation-harness's own files (results_<time>.json and "
                        "samples_<benchmark>_<time>.jsonl in <output-dir>/<model name, sanitized>/), which its "
                        "make_table, W&B logger and zeno script read; none: only results.json (default: %(default)s)")
    p.add_argument("--responses", default=None,
                   help="score completions from this JSONL instead of generating: one row per completion "
                        "{id, completion} or per problem {id, completions: [...]}, or the IFEval reference's "
                        "{prompt, response} rows (matched by exact prompt text); optional 'benchmark' field")
    p.add_argument("--rescore", default=None, metavar="RUN_DIR",
                   help="score the completions an earlier eval run saved (RUN_DIR/<benchmark>/samples.jsonl) again "
                        "under both protocols, without generating, and compare them sample by sample; writes "
                        "RUN_DIR/rescore/ (or --output-dir)")
    add_sampling_args(p)
    p.add_argument("--bootstrap", type=positive_int, default=metrics.DEFAULT_BOOTSTRAP,
                   help="bootstrap replicates for the CIs (default: %(default)s)")
    return accept_snake_case(p)


def settings_from_args(args) -> SamplingSettings:
    """The SamplingSettings of parsed `profit-rl eval` arguments; `--protocol paper` with a chat template renders and
    stops as OpenCompass does (`opencompass_chat`)."""
    return SamplingSettings(
        temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, max_new_tokens=args.max_new_tokens,
        seed=args.seed, chat_template=not args.no_chat_template, end_of_turn_token=args.end_of_turn_token,
        batch_size=args.batch_size, dtype=args.dtype, cpu_threads=args.cpu_threads,
        tensor_parallel_size=args.tensor_parallel_size, data_parallel_size=args.data_parallel_size,
        gpu_memory_utilization=args.gpu_memory_utilization, vllm_chunk=args.vllm_chunk,
        opencompass_chat=args.protocol == "paper" and not args.no_chat_template,
    )


def read_responses(path: str, problems: dict[str, list[Problem]]) -> dict[str, dict[str, list[str]]]:
    """benchmark -> problem id -> completions, from one row per completion or one row per problem. Every row names a
    problem of a benchmark asked for (`problems`), else it is an error naming its line.

    A row names its problem by `problem_id` (or `id`, `unique_id`), or by the problem's exact prompt text in `prompt`:
    the IFEval reference's own `{"prompt": ..., "response": ...}` rows. Prompt-keyed rows follow the reference: one
    response per prompt, a later row for the same prompt replacing an earlier one (the count is logged)."""
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    skipped: dict[str, int] = defaultdict(int)
    ids = {name: {p.id for p in group} for name, group in problems.items()}
    by_prompt = {name: {p.question: p.id for p in group} for name, group in problems.items()}
    replaced = 0
    for row in read_file(path):
        bench = row.text("benchmark", required=False)
        if bench is None:
            if len(problems) != 1:
                raise row.error("benchmark", f"expected the benchmark's name, as --benchmarks names {len(problems)} "
                                "benchmarks; add the field or pass one benchmark")
            bench = next(iter(problems))
        if bench not in problems:
            skipped[bench] += 1  # rows for benchmarks not asked for: counted and reported below
            continue
        id_field, _ = row.pick("problem_id", "id", "unique_id", expected="a problem id", required=False)
        by_text = id_field is None and isinstance(row.get("prompt"), str)
        if by_text:
            pid = by_prompt[bench].get(row["prompt"])
            if pid is None:
                raise row.error("prompt", f"expected the exact text of a prompt of {bench} (a row names its problem by "
                                "'problem_id' or by its prompt text), found none that matches")
        else:
            id_field, _ = row.pick("problem_id", "id", "unique_id", expected="a problem id (or the prompt text)")
            pid = row.scalar(id_field)
            if pid not in ids[bench]:
                raise row.error(id_field, f"expected a problem id of {bench} (as it loads with these --data-dir and "
                                f"--limit), found {pid!r}")
        if row.get("completions") is not None or row.get("responses") is not None:
            out[bench][pid].extend(row.string_list("completions", "responses"))
        else:
            if by_text and out[bench][pid]:
                replaced += 1
                out[bench][pid].clear()
            out[bench][pid].append(row.text("completion", "response", empty=True))
    for bench, n in skipped.items():
        logger.warning("%s: %d rows for benchmark %r skipped (not in --benchmarks)", path, n, bench)
    if replaced:
        logger.warning("%s: %d rows repeat an earlier prompt; the later response is used, as the IFEval reference "
                       "does", path, replaced)
    return out


def print_prompts(benchmarks: dict, problems: dict, model: str | None, settings) -> None:
    """The first prompt of each benchmark, turn by turn, and as the model will see it when a tokenizer is at hand."""
    tokenizer = None
    if model:
        from transformers import AutoTokenizer, GenerationConfig

        from .sampling import chat_format, render_prompt, stop_token_ids

        tokenizer = AutoTokenizer.from_pretrained(model)  # the tokenizer only: no weights are loaded
        try:
            generation_config = GenerationConfig.from_pretrained(model)
        except (OSError, ValueError):
            generation_config = None
        chat = chat_format(tokenizer, settings.chat_template, settings.end_of_turn_token, settings.opencompass_chat)
        stops = stop_token_ids(tokenizer, chat, generation_config)
        print(f"generation stops at: {', '.join(repr(tokenizer.convert_ids_to_tokens(i)) for i in stops)}\n")
    for name, bench in benchmarks.items():
        if not problems[name]:
            continue
        messages = bench.prompt(problems[name][0])
        print(f"===== {bench.title} ({name}), protocol {bench.protocol}: {bench.describe()}")
        print(f"----- first problem {problems[name][0].id!r}: {len(messages)} message(s)")
        for message in messages:
            print(f"[{message['role']}]\n{message['content']}")
        if tokenizer is not None:
            print(f"----- rendered with {model}'s chat template:")
            print(render_prompt(tokenizer, messages, settings.chat_template, settings.end_of_turn_token,
                                settings.opencompass_chat))
        print()


def default_output_dir(args) -> Path:
    """outputs/eval/<name>: the model folder's own name (resolved: `a/b/..` is `a`), a hub id's model name, or the
    --responses file's stem; always a folder inside outputs/eval."""
    if args.responses:
        name = Path(args.responses).stem
    elif looks_like_hub_id(args.model) and not Path(args.model).exists():
        name = args.model.split("/")[-1]
    else:
        name = Path(args.model).resolve().name
    path = DEFAULT_ROOT / name
    inside(DEFAULT_ROOT, path, "the default output folder of --model")
    if path.resolve() == DEFAULT_ROOT.resolve():
        raise InputError(f"cannot name an output folder after {args.model or args.responses!r}; pass --output-dir")
    return path


@command_errors("eval")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl eval`: rescore an earlier run (--rescore), print prompts (--print-prompts), or sample or read
    completions, score them and write the results; returns the exit code (2 for a usage error)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    protocol = get_protocol(args.protocol)
    names = ([n.strip() for n in args.benchmarks.split(",") if n.strip()] if args.benchmarks
             else list(protocol.benchmarks))
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise UsageError(f"unknown benchmark(s) {unknown}; choose from {','.join(REGISTRY)}")
    if args.rescore:
        from .rescore import main as rescore_main

        return rescore_main(args)
    if not args.model and not args.responses and not args.print_prompts:
        raise UsageError("pass --model (to generate) or --responses (to score a file)")
    try:
        benchmarks = {name: get_benchmark(name, protocol.name) for name in names}
    except ValueError as err:  # a benchmark without this protocol
        raise UsageError(str(err)) from err
    settings = settings_from_args(args)
    if args.model and not args.responses:
        check_model_path(args.model)
    problems = {}
    for name, bench in benchmarks.items():
        problems[name] = bench.load(args.data_dir)[: args.limit]  # load all first: a missing file fails early
    if args.print_prompts:
        print_prompts(benchmarks, problems, args.model, settings)
        return 0
    out_dir = Path(args.output_dir) if args.output_dir else default_output_dir(args)
    responses = read_responses(args.responses, problems) if args.responses else None
    with output_folder(out_dir, "profit-rl eval " + " ".join(sys.argv[1:] if argv is None else argv)):
        run = evaluate(args, benchmarks, problems, responses, settings, out_dir)
    print(md.terminal(markdown_table(run)))  # the file keeps the markdown escapes; the terminal reads plain text
    exported = f"  lm-eval: {run['lm_eval_results']}" if run.get("lm_eval_results") else ""
    print(f"results: {out_dir / RESULTS_FILE}  table: {out_dir / TABLE_FILE}{exported}")
    return 0


def evaluate(args, benchmarks, problems, responses, settings, out_dir: Path) -> dict:
    """Sample (or read) and score every benchmark into out_dir; write results.json and results.md; return the run."""
    sampler = None
    started = time.time()

    def sampler_factory():
        nonlocal sampler
        if sampler is None:
            sampler = build_sampler(args.backend, args.model, settings)
        return sampler

    summaries = {}
    for name, bench in benchmarks.items():
        if responses is not None:
            if not responses.get(name):
                raise DataError(args.responses, f"expected responses for {name}, found none")
            summaries[name] = score_responses(bench, problems[name], responses[name], out_dir, args.k,
                                              args.responses, n_boot=args.bootstrap)
        else:
            k = args.k or bench.default_k
            summaries[name] = run_benchmark(bench, problems[name], args.model, settings, k, out_dir,
                                            sampler_factory, overwrite=args.overwrite, n_boot=args.bootstrap)
    ks = {name: (s["k"], benchmarks[name].default_k) for name, s in summaries.items()}
    protocol = get_protocol(args.protocol)
    if args.responses:
        reasons = [f"responses scored from {args.responses}: how they were generated is not recorded here",
                   *deviations(protocol, {}, ks, args.limit, False)]
    else:
        reasons = deviations(protocol, settings.fingerprint(), ks, args.limit, args.max_new_tokens is not None)
    run = {
        "protocol": protocol.name,
        "not_comparable_because": reasons,
        "model": model_identity(args.model) if args.model else None,
        "weights": weights_identity(args.model) if args.model and not args.responses else None,
        "responses": args.responses,
        "backend": None if args.responses else args.backend,
        # max_new_tokens is per benchmark unless given: each benchmark's results.json has the value it used
        "settings": {} if args.responses else {k: v for k, v in settings.fingerprint().items()
                                                if not (k == "max_new_tokens" and v is None)},
        "benchmarks": {name: {key: v for key, v in s.items() if key not in ("per_problem", "problem_hashes")}
                       for name, s in summaries.items()},
        "average": metrics.average_over_benchmarks(summaries, n_boot=args.bootstrap) if summaries else None,
    }
    write_json_atomic(out_dir / RESULTS_FILE, run)
    if args.export == "lm-eval":
        document, samples = lm_eval_results(run, summaries, benchmarks, problems, out_dir, started, time.time(), args)
        results_file, _ = write_lm_eval(out_dir, document, samples)
        run = dict(run, lm_eval_results=str(results_file))
    write_text_atomic(out_dir / TABLE_FILE, markdown_table(run))
    logging_dir = default_logging_dir(args.model) if args.logging_dir is None else args.logging_dir
    if logging_dir and str(logging_dir).lower() != "none":  # the numbers beside the training run's own curves
        step = run_step(args.model) if args.model and Path(args.model).exists() else 0
        log_scalars(logging_dir, [(step, eval_scalars(summaries))])
    return run


if __name__ == "__main__":
    sys.exit(main())
