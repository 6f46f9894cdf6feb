"""Score a file of responses the way the reference's `evaluation_main` does.

    python -m evals.ifeval --responses responses.jsonl [--input-data google/IFEval | path/to/input_data.jsonl]
                           [--data-dir ../shared/data] [--output ifeval.json] [--output-dir eval_results/]

`responses.jsonl` holds `{"prompt": ..., "response": ...}` rows, matched to the prompts by prompt text. The four
metrics are printed and written (with per-row results) to `--output`; `--output-dir` also writes the reference's own
`eval_results_strict.jsonl` and `eval_results_loose.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from evals.ifeval.data import HUB_ID, IFEvalDataError, load_prompts, read_responses
from evals.ifeval.scoring import METRIC_NAMES, aggregate, score_response

logger = logging.getLogger("evals.ifeval")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals.ifeval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--responses", required=True, help="JSONL of {'prompt': ..., 'response': ...} rows")
    parser.add_argument("--input-data", default=HUB_ID, help=f"hub id or input_data.jsonl path (default {HUB_ID})")
    parser.add_argument("--data-dir", help="directory with input_data.jsonl (or an ifeval/ subfolder holding it)")
    parser.add_argument("--output", help="write the metrics and per-row results to this JSON file")
    parser.add_argument("--output-dir", help="write eval_results_{strict,loose}.jsonl in the reference's format")
    parser.add_argument(
        "--allow-missing",
        action="store_true",
        help="score prompts without a response as empty (not followed) instead of failing",
    )
    return parser


def _input_source(args: argparse.Namespace) -> str:
    if not args.data_dir:
        return args.input_data
    data_dir = Path(args.data_dir)
    return str(data_dir / "ifeval" if (data_dir / "ifeval").is_dir() else data_dir)


def _reference_row(prompt, response: str, followed: list[bool]) -> str:
    # The reference writes the OutputExample fields in alphabetical order.
    return json.dumps(
        {
            "follow_all_instructions": all(followed),
            "follow_instruction_list": followed,
            "instruction_id_list": prompt.instruction_id_list,
            "prompt": prompt.prompt,
            "response": response,
        }
    )


def run(args: argparse.Namespace) -> dict:
    source = _input_source(args)
    prompts = load_prompts(source)
    responses = read_responses(args.responses)
    missing = [prompt for prompt in prompts if prompt.prompt not in responses]
    if missing and not args.allow_missing:
        keys = ", ".join(str(prompt.key) for prompt in missing[:10])
        raise IFEvalDataError(
            f"{args.responses}: no response for {len(missing)} of {len(prompts)} prompts of {source} (keys {keys}"
            f"{', ...' if len(missing) > 10 else ''}); responses are matched by exact prompt text. "
            "Pass --allow-missing to score them as empty."
        )
    known = {prompt.prompt for prompt in prompts}
    unmatched = sum(1 for text in responses if text not in known)
    if unmatched:
        logger.warning("%s: %d responses match no prompt of %s and are ignored", args.responses, unmatched, source)
    if missing:
        logger.warning("%d prompts have no response and are scored as empty", len(missing))

    rows, strict_lines, loose_lines, scores = [], [], [], []
    for prompt in prompts:
        response = responses.get(prompt.prompt, "")
        score = score_response(prompt, response)
        scores.append(score)
        rows.append({"prompt": prompt.prompt, "response": response, **score.to_dict()})
        strict_lines.append(_reference_row(prompt, response, score.strict))
        loose_lines.append(_reference_row(prompt, response, score.loose))
    result = {
        **aggregate(scores),
        "num_missing_responses": len(missing),
        "num_unmatched_responses": unmatched,
        "input_data": source,
        "responses": str(args.responses),
        "rows": rows,
    }
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    if args.output_dir:
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "eval_results_strict.jsonl").write_text("".join(line + "\n" for line in strict_lines))
        (out_dir / "eval_results_loose.jsonl").write_text("".join(line + "\n" for line in loose_lines))
    return result


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        result = run(args)
    except (IFEvalDataError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"IFEval: {result['num_prompts']} prompts, {result['num_instructions']} instructions ({args.responses})")
    for name in METRIC_NAMES:
        print(f"  {name:<24} {100 * result[name]:6.2f}")
    if result["num_checker_errors"]:
        print(f"  checker errors (scored as not followed): {result['num_checker_errors']}")
    for path in filter(None, [args.output, args.output_dir]):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
