"""Data stage of the pipeline: the SFT selection and the decontaminated RL problems, written once as local files.

    python -m profit_rl.data.prepare --sft-recipe recipes/Qwen3-0.6B-Base/sft/sft.yaml \
        --rl-recipe recipes/Qwen3-0.6B-Base/grpo/math.yaml --out-dir outputs/Qwen3-0.6B-Base/data \
        [--decontaminate-against data/math500/test.jsonl]

Every SFT method then trains on the same rows (`sft.jsonl`), and every GRPO run on the same problems (`rl.jsonl`,
`problem` + normalised `answer`); `data_report.json` records what was selected and what was dropped, and why.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from profit_rl.configs import GRPOScriptArguments, SFTDataArguments, recipe_arguments, without_none
from profit_rl.core.errors import command_errors
from profit_rl.core.state import write_bytes_atomic, write_json_atomic


def write_jsonl(path: Path, rows) -> None:
    """Write `rows` as JSON lines, atomically: a killed run (or a full disk) never leaves half a file that looks
    complete."""
    # atomic: a killed run (or a full disk) never leaves half a file that looks complete
    write_bytes_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8"))


def recipe_data_args(recipe: str, dataset_name: str | None = None) -> SFTDataArguments:
    """The recipe's SFT data fields only: choosing rows needs no training config (nor its GPU checks)."""
    data_args = recipe_arguments(SFTDataArguments, recipe, "--sft-recipe")
    if dataset_name:
        data_args.dataset_name = dataset_name
    return data_args


@command_errors("prepare")
def main(argv: list[str] | None = None) -> int:
    """`python -m profit_rl.data.prepare`: parse the flags and write the pipeline's data files (`prepare`)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sft-recipe", required=True, help="an SFT recipe: its dataset_name, num_samples, score_column...")
    p.add_argument("--sft-dataset", default=None,
                   help="the SFT data (hub id, URL or file) instead of the recipe's dataset_name; the pipeline passes "
                        "the recipe's own, so that its command names the data and reruns when the data changes")
    p.add_argument("--num-samples", type=int, default=None, help="SFT rows to keep instead of the recipe's num_samples")
    p.add_argument("--rl-recipe", required=True, help="a GRPO recipe: its dataset_name, fields, decontamination sets")
    p.add_argument("--rl-dataset", default=None, help="the RL problems (hub id or file) instead of the recipe's dataset_name")
    p.add_argument("--decontaminate-against", nargs="*", default=None,
                   help="evaluation sets to remove from the RL problems (default: the recipe's)")
    p.add_argument("--out-dir", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    prepare(args)
    return 0


def prepare(args) -> None:
    """Write sft.jsonl (the SFT recipe's selected rows), rl.jsonl (the GRPO recipe's problems, decontaminated against
    the evaluation sets) and data_report.json (what was kept and dropped) into `args.out_dir`."""
    from .rl import DataReport, decontaminate, load_math_rows, load_reference_problems
    from .sft_rows import load_sft_dataset

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_args = recipe_data_args(args.sft_recipe, dataset_name=args.sft_dataset)
    if args.num_samples:
        data_args.num_samples = args.num_samples
    sft_rows = load_sft_dataset(data_args)
    write_jsonl(out / "sft.jsonl", sft_rows)

    script_args = recipe_arguments(GRPOScriptArguments, args.rl_recipe, "--rl-recipe")
    if args.rl_dataset:
        script_args.dataset_name = args.rl_dataset
    report = DataReport(source=script_args.dataset_name)
    rows = load_math_rows(script_args.dataset_name, script_args.dataset_train_split,
                          problem_field=script_args.problem_field, answer_field=script_args.answer_field,
                          bad_gold=script_args.bad_gold, report=report)
    against = without_none(args.decontaminate_against if args.decontaminate_against is not None
                           else script_args.decontaminate_against)
    if against:
        rows, report.decontaminated = decontaminate(rows, load_reference_problems(against, script_args.decontamination_split))
        report.decontamination_sources = against
    report.kept = len(rows)
    write_jsonl(out / "rl.jsonl", ({"problem": r.problem, "answer": r.answer, "source_row": r.row} for r in rows))
    summary = {
        "sft": {"source": data_args.dataset_name, "rows": len(sft_rows), "num_samples": data_args.num_samples,
                "score_column": data_args.score_column, "sample_seed": data_args.sample_seed,
                "supervised_turns": data_args.supervised_turns},
        "rl": report.as_dict(),
    }
    write_json_atomic(out / "data_report.json", summary)
    print(f"SFT: {len(sft_rows)} rows -> {out / 'sft.jsonl'}; RL: {report.kept} problems "
          f"({report.decontaminated} removed as in {', '.join(against) or 'nothing'}) -> {out / 'rl.jsonl'}")


if __name__ == "__main__":
    sys.exit(main())
