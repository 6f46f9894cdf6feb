"""Score a file of responses the way the reference's `evaluation_main` does.

    python -m profit_rl.evals.ifeval --responses responses.jsonl [--input-data google/IFEval | path/to/input_data.jsonl]
                           [--data-dir /path/to/data] [--output ifeval.json] [--output-dir eval_results/]

`responses.jsonl` holds `{"prompt": ..., "response": ...}` rows, matched to the prompts by prompt text. The four
metrics are printed and written (with per-row results) to `--output`; `--output-dir` also writes the reference's own
`eval_results_strict.jsonl` and `eval_results_loose.jsonl`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from profit_rl.evals.ifeval.data import HUB_ID, IFEvalDataError
from profit_rl.evals.ifeval.response_file import score_response_file
from profit_rl.evals.ifeval.scoring import METRIC_NAMES


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m profit_rl.evals.ifeval`, which scores a file of responses."""
    parser = argparse.ArgumentParser(prog="python -m profit_rl.evals.ifeval", description=__doc__.split("\n\n")[0])
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


def main(argv: list[str] | None = None) -> int:
    """Score a JSONL of responses with IFEval, print the four metrics and the files written, and return the exit code
    (2 for bad data, a missing file or a hub that cannot be reached)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        result = score_response_file(
            args.responses, _input_source(args), args.output, args.output_dir, allow_missing=args.allow_missing
        )
    except (IFEvalDataError, FileNotFoundError, ConnectionError) as error:
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
