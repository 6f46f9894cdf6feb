"""Read a `profit-rl eval --export lm-eval` folder with lm-evaluation-harness's own code. Run it in a venv of its own
(lm-eval pulls ~60 packages and changes python-dateutil, so it is no test dependency of the project):

    python3 -m venv /tmp/lmeval && /tmp/lmeval/bin/pip install torch==2.13.0 lm-eval==0.4.13   # CPU torch first
    profit-rl eval ... --output-dir OUT                     # in the project's venv
    /tmp/lmeval/bin/python scripts/lm_eval_check.py OUT

It checks, with lm-eval's functions: results- and sample-file discovery under OUT (`get_results_filenames`,
`get_sample_results_filenames`, `get_file_task_name`, `get_latest_filename`, as its zeno script finds them),
`make_table`, the W&B logger's sample table (`WandbLogger._generate_dataset`), that `EvaluationTracker`
writes the same sample lines and task hash from the same samples, and that every key of its `EvalResults` and
`SampleResult` schemas is present; then the fields scripts/zeno_visualize.py reads (`config.model_args`,
`configs[task].output_type/metric_list/filter_list`, `doc_id`, `filter`, `target`, `arguments.gen_args_0.arg_0`,
`filtered_resps[0]`, each metric of `metric_list`). It prints OK or stops at the first mismatch.
"""

import json
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from lm_eval.loggers.evaluation_tracker import EvaluationTracker
from lm_eval.loggers.wandb_logger import WandbLogger
from lm_eval.result_schema import EvalResults, SampleResult
from lm_eval.utils import (get_file_task_name, get_latest_filename, get_results_filenames,
                           get_sample_results_filenames, make_table)

# optional in lm-eval's schema and absent from a run like ours: groups, the env and tokenizer fields
OPTIONAL = {"groups", "samples", "pretty_env_info", "lm_eval_version", "tokenizer_pad_token", "tokenizer_eos_token",
            "tokenizer_bos_token", "eot_token_id", "max_length"}


def files_in(folder: Path) -> list[str]:
    return [p.as_posix() for p in folder.iterdir() if p.is_file()]


def main(root: Path) -> None:
    print(f"lm-eval {version('lm_eval')}")
    folders = [d for d in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
               if get_results_filenames(files_in(d))]
    assert len(folders) == 1, f"expected one model folder with results_*.json under {root}, found {folders}"
    folder = folders[0]
    latest = get_latest_filename(get_results_filenames(files_in(folder)))
    results = json.loads(Path(latest).read_text(encoding="utf-8"))
    print(f"{Path(latest).relative_to(root)}\n{make_table(results)}")
    missing = set(EvalResults.__annotations__) - set(results) - OPTIONAL
    assert not missing, f"EvalResults keys missing: {sorted(missing)}"
    assert isinstance(results["config"]["model_args"], (str, dict))
    for task, config in results["configs"].items():
        sample_files = [f for f in get_sample_results_filenames(files_in(folder))
                        if get_file_task_name(Path(f).name) == task]
        path = get_latest_filename(sample_files)
        rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
        missing = set(SampleResult.__annotations__) - set(rows[0])
        assert not missing, f"{path}: SampleResult keys missing: {sorted(missing)}"
        assert config["output_type"] == "generate_until" and config["filter_list"]
        metrics = [m["metric"] for m in config["metric_list"]]
        for row in rows:  # what the zeno script reads of each line
            _ = (f"{row['doc_id']}.{row['filter']}", row["target"], row["arguments"]["gen_args_0"]["arg_0"],
                 str(row["filtered_resps"][0]), [row[m] for m in metrics])
        # the W&B logger and the tracker take the samples as lm-eval's evaluator holds them: arguments as lists
        in_memory = [dict(r, arguments=[list(a.values()) for a in r["arguments"].values()]) for r in rows]
        table = WandbLogger._generate_dataset(None, in_memory, config)
        assert len(table) == len(rows) and set(metrics) <= set(table.columns)
        with tempfile.TemporaryDirectory() as tmp:
            tracker = EvaluationTracker(output_path=tmp)
            tracker.general_config_tracker.model_name_sanitized = results["model_name_sanitized"]
            tracker.date_id = "check"
            tracker.save_results_samples(task, [dict(r) for r in in_memory])
            written = Path(tmp) / results["model_name_sanitized"] / f"samples_{task}_check.jsonl"
            theirs = [json.loads(line) for line in written.read_text(encoding="utf-8").splitlines()]
            assert theirs == rows, f"{task}: EvaluationTracker writes other sample lines"
            tracker.save_results_aggregated({"results": {}}, samples={task: in_memory})
            document = json.loads(next(written.parent.glob("results_*.json")).read_text(encoding="utf-8"))
            assert document["task_hashes"][task] == results["task_hashes"][task], f"{task}: another task hash"
        print(f"{task}: {Path(path).name}, {len(rows)} lines: the tracker writes the same lines and task hash; "
              f"W&B table columns {list(table.columns)}")
    print("OK")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
