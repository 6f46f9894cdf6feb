"""`make gpu-check`: the GPU acceptance run, one command for the minutes a lent GPU gives (<= 10 min on one H100).

    python bench/gpu_check.py [--out outputs/gpu-check] [--data-dir ../shared/data] [--parts loss,grpo-vllm,...]
    python bench/gpu_check.py --dry-run        # on CPU: every command parses, every file it needs exists (CI)

Parts, in order (each its own process, so one failure does not hide the others):
  model      a random-weight Qwen3-0.6B-Base (28 layers, vocab 151,936) from the Qwen3 twin's config
             (profit_rl.models.twin), and its rigged copy (tests/helpers_qwen3.py: "Hello", then <|im_end|>)
  loss       bench/sft_loss.py on the twin's config, all 28 layers: ProFit, TRL's nll and the reference's full-logits
             loss at T = 2,048 and 8,192 in bf16, peak memory and tokens/s in one run
  grpo-vllm  5 GRPO steps of the rigged model with vLLM colocated (math.yaml): a weight sync before each generation,
             completions that stop at <|im_end|> (clipped ratio 0, ~2 tokens), the reward logged every step
  eval-vllm  `profit-rl eval --backend vllm --protocol paper --limit 4` on every benchmark of the paper's protocol
  sft-zero2, sft-zero3, sft-fsdp
             one ProFit SFT step through recipes/accelerate_configs/<config>.yaml (bench/distributed_sft.py)

Writes <out>/gpu_check.json and <out>/gpu_check.md. The markdown's first line says whether every part passed; a part
that could not run (no GPU, vLLM or DeepSpeed not installed) is a failure there, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # profit_rl from this checkout; tests.helpers_qwen3 (the rig)

TWIN_SOURCE = REPO.parent / "shared" / "models" / "qwen3-base-twin"
DATA_DIR = REPO.parent / "shared" / "data"
GRPO_RECIPE = REPO / "recipes" / "Qwen3-0.6B-Base" / "grpo" / "math.yaml"
SFT_CONFIGS = ("zero2", "zero3", "fsdp")
PARTS = ("model", "loss", "grpo-vllm", "eval-vllm", *(f"sft-{c}" for c in SFT_CONFIGS))


@dataclass
class Part:
    """One command of the check. `needs`: files that must exist before it runs; `modules`: what it imports on the
    GPU machine beyond this package (checked before it runs); `parse`: the dry run's argument parse of `argv`."""

    name: str
    argv: list[str]
    timeout: int
    needs: list[Path] = field(default_factory=list)
    modules: tuple[str, ...] = ()
    parse: object = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def twin_shape():
    """The twin source's config as a TwinShape: Qwen3-0.6B-Base's real transformer, not the shrunk default."""
    from profit_rl.models.twin import TwinShape

    c = json.loads((TWIN_SOURCE / "config.json").read_text())
    return TwinShape(layers=c["num_hidden_layers"], hidden=c["hidden_size"], intermediate=c["intermediate_size"],
                     heads=c["num_attention_heads"], kv_heads=c["num_key_value_heads"], head_dim=c["head_dim"])


def parts(out: Path, data_dir: Path) -> list[Part]:
    model, rigged = out / "model" / "qwen3-0.6b-random", out / "model" / "qwen3-0.6b-rigged"
    rl_data = data_dir / "math_train12k" / "train.jsonl"
    built = [
        Part("model", [sys.executable, str(Path(__file__).resolve()), "--_build-model", str(model), str(rigged)], 300,
             [TWIN_SOURCE / "config.json", REPO / "tests" / "helpers_qwen3.py"], parse=parse_build),
        Part("loss", [sys.executable, str(REPO / "bench" / "sft_loss.py"), "--device", "cuda",
                      "--model-config", str(TWIN_SOURCE / "config.json"), "--seq-lens", "2048", "8192",
                      "--reps", "5", "--json", str(out / "loss.json")], 240,
             [TWIN_SOURCE / "config.json"], parse=parse_sft_loss),
        Part("grpo-vllm", [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port",
                           str(free_port()), "-m", "profit_rl.grpo", "--config", str(GRPO_RECIPE),
                           "--model_name_or_path", str(rigged), "--dataset_name", str(rl_data),
                           "--decontaminate_against", "none", "--max_train_samples", "64", "--max_steps", "5",
                           "--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "1",
                           "--num_generations", "8", "--max_completion_length", "64", "--vllm_max_model_length",
                           "2048", "--save_strategy", "no", "--report_to", "none", "--logging_steps", "1",
                           "--output_dir", str(out / "grpo")], 300,
             [GRPO_RECIPE, rl_data], ("vllm",), parse=parse_torchrun_grpo),
        # the rig stops at once; --max-new-tokens bounds a prompt whose last token the rig was not built for
        Part("eval-vllm", [sys.executable, "-m", "profit_rl.evals.evaluate", "--model", str(rigged), "--backend", "vllm",
                           "--protocol", "paper", "--limit", "4", "--max-new-tokens", "512", "--data-dir",
                           str(data_dir), "--output-dir", str(out / "eval"), "--logging-dir", "none"], 240,
             [data_dir], ("vllm",), parse=parse_eval),
    ]
    for config in SFT_CONFIGS:
        built.append(Part(f"sft-{config}", [sys.executable, str(REPO / "bench" / "distributed_sft.py"), "--configs",
                                            config, "--steps", "1"], 180,
                          [REPO / "recipes" / "accelerate_configs" / f"{config}.yaml"],
                          ("deepspeed",) if config.startswith("zero") else (), parse=parse_distributed_sft))
    return built


# ---------------------------------------------------------------------------------------------- the dry run's parses


def load_path(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def trl_parse(dataclass_types, argv: list[str]) -> None:
    """TRL's parse of `argv` (the recipe's keys as defaults, every flag's name and type) up to the dataclasses'
    own checks, which need the GPU (bf16 on a machine without one stops there) and run on the GPU machine."""
    import yaml
    from trl import TrlParser

    parser, argv = TrlParser(dataclass_types), list(argv)
    if "--config" in argv:
        i = argv.index("--config")
        config = yaml.safe_load(Path(argv[i + 1]).read_text())
        del argv[i:i + 2]
        unknown = parser.set_defaults_with_config(**config)
        if unknown:
            raise SystemExit(f"the recipe's keys {unknown[0::2]} are not fields")
    argparse.ArgumentParser.parse_args(parser, argv)


def parse_build(argv: list[str]) -> None:
    twin_shape()


def parse_sft_loss(argv: list[str]) -> None:
    args = load_path(REPO / "bench" / "sft_loss.py", "sft_loss").build_parser().parse_args(argv[2:])
    config = json.loads(Path(args.model_config).read_text())
    assert config["num_hidden_layers"] == 28 and config["vocab_size"] == 151_936, "not Qwen3-0.6B-Base's shape"


def parse_torchrun_grpo(argv: list[str]) -> None:
    from torch.distributed.run import get_args_parser
    from trl import GRPOConfig, ModelConfig

    from profit_rl.configs import GRPOScriptArguments

    torchrun = get_args_parser().parse_args(argv[3:])
    assert torchrun.module and torchrun.training_script == "profit_rl.grpo", torchrun
    trl_parse((GRPOScriptArguments, GRPOConfig, ModelConfig), torchrun.training_script_args)


def parse_eval(argv: list[str]) -> None:
    from profit_rl.evals import evaluate

    args = evaluate.build_parser().parse_args(argv[3:])
    # every benchmark of the protocol loads from --data-dir: its prompts, printed into a buffer (GPQA stays unseen)
    with contextlib.redirect_stdout(io.StringIO()):
        code = evaluate.main(["--protocol", args.protocol, "--print-prompts", "--data-dir", args.data_dir,
                         "--limit", str(args.limit)])
    assert code == 0, f"profit-rl eval --print-prompts exited {code}"


def parse_distributed_sft(argv: list[str]) -> None:
    from accelerate.commands.launch import launch_command_parser

    from profit_rl.configs import SFTDataArguments
    from profit_rl.trainer import ProFitConfig
    from trl import ModelConfig

    bench = load_path(REPO / "bench" / "distributed_sft.py", "distributed_sft")
    config = argv[argv.index("--configs") + 1]
    cmd = bench.command(config, "MODEL", "DATA.jsonl", "OUT", 1, 1)  # the exact argv, with placeholder paths
    launch = launch_command_parser().parse_args(cmd[3:])
    import yaml

    kind = yaml.safe_load(Path(launch.config_file).read_text())["distributed_type"]
    assert kind == ("FSDP" if config == "fsdp" else "DEEPSPEED"), f"{launch.config_file}: {kind}"
    assert launch.module and launch.training_script == "profit_rl.sft", launch
    trl_parse((SFTDataArguments, ProFitConfig, ModelConfig), launch.training_script_args)


def dry_run(todo: list[Part]) -> int:
    failed = 0
    for part in todo:
        missing = [str(p) for p in part.needs if not p.exists()]
        problems = [f"missing files: {', '.join(missing)}"] if missing else []
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):  # argparse's own message, for the report
                part.parse(part.argv)
        except (Exception, SystemExit) as err:  # noqa: BLE001 - every part is checked and reported
            said = stderr.getvalue().strip().splitlines()[-1:]
            problems.append(f"{type(err).__name__}: {err}" + (f" ({said[0]})" if said else ""))
        problem = "; ".join(problems)
        failed += bool(problem)
        print(f"{'FAILED' if problem else 'ok':6s} {part.name}: {problem or 'parses; its files exist'}")
        print(f"       $ {' '.join(part.argv)}")
    print(f"dry run: {len(todo) - failed} of {len(todo)} parts ready" + ("" if not failed else "; see FAILED above"))
    return 1 if failed else 0


# ------------------------------------------------------------------------------------------------------- the real run


def build_model(model: Path, rigged: Path) -> None:
    """The random-weight Qwen3-0.6B-Base and its rig (run as the `model` part, in its own process)."""
    from profit_rl.models.twin import build_twin
    from tests.helpers_qwen3 import rig

    build_twin(model, twin_shape(), TWIN_SOURCE)
    rigged.mkdir(parents=True, exist_ok=True)
    # the rig keeps the twin's generation_config (EOS <|endoftext|>): only the stop at <|im_end|> ends its turn
    rig(model, rigged)


def figures(part: Part, out: Path, stdout: str) -> tuple[bool, dict]:
    """What the part measured, and whether it shows what the part checks."""
    if part.name == "loss":
        rows = json.loads((out / "loss.json").read_text())["rows"]
        return True, {f"{r['loss']}@{r['T']}": {"peak_mib": r["peak_mib"], "tokens_per_s": round(r["tokens_per_s"])}
                      for r in rows}
    if part.name == "grpo-vllm":
        logs = [h for h in json.loads((out / "grpo" / "trainer_state.json").read_text())["log_history"] if "reward" in h]
        found = {"steps_logged": len(logs), "reward": [h["reward"] for h in logs],
                 "clipped_ratio": [h.get("completions/clipped_ratio") for h in logs],
                 "mean_length": [h.get("completions/mean_length") for h in logs]}
        stops = all(c == 0 for c in found["clipped_ratio"]) and all(m is not None and m <= 3 for m in found["mean_length"])
        found["stops_at_end_of_turn"] = stops
        return len(logs) == 5 and stops, found
    if part.name == "eval-vllm":
        run = json.loads((out / "eval" / "results.json").read_text())
        return True, {"benchmarks": sorted(run["benchmarks"]), "backend": run["backend"]}
    if part.name.startswith("sft-"):
        config = part.name.removeprefix("sft-")
        line = next((l for l in stdout.splitlines() if l.startswith(config)), "")
        return f"{config} " in line and " ok in " in line, {"line": line.strip()}
    return True, {}


def run_part(part: Part, out: Path) -> dict:
    missing = [str(p) for p in part.needs if not p.exists()]
    absent = [m for m in part.modules if importlib.util.find_spec(m) is None]
    if missing or absent:
        why = "; ".join(filter(None, [missing and f"missing files: {', '.join(missing)}",
                                      absent and f"not installed: {', '.join(absent)}"]))
        return {"part": part.name, "status": "not run", "why": why, "command": part.argv}
    log = out / "logs" / f"{part.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    try:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",  # this checkout, without an install too
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run(part.argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=part.timeout)
        code, stdout = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        code, stdout = "timeout", (err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else str(err.stdout or "")
    seconds = round(time.time() - t0, 1)
    log.write_text(stdout)
    row = {"part": part.name, "seconds": seconds, "command": part.argv, "log": str(log)}
    if code != 0:
        return {**row, "status": "failed", "why": f"exit {code}; last line: {stdout.strip().splitlines()[-1:]}"}
    try:
        ok, found = figures(part, out, stdout)
    except (OSError, KeyError, ValueError, StopIteration) as err:
        return {**row, "status": "failed", "why": f"its output could not be read: {err}"}
    return {**row, "status": "ok" if ok else "failed", "figures": found,
            **({} if ok else {"why": "the output does not show what the part checks (figures)"})}


def markdown(report: dict) -> str:
    rows = report["parts"]
    bad = [r["part"] for r in rows if r["status"] != "ok"]
    head = (f"# make gpu-check: all {len(rows)} parts passed" if not bad else
            f"# make gpu-check: INCOMPLETE, {len(bad)} of {len(rows)} parts did not pass ({', '.join(bad)})")
    lines = [head, "", f"{report['device']}, {report['date']}, {report['seconds']:.0f} s in all", "",
             "| part | status | seconds | figures / why |", "|---|---|---|---|"]
    for r in rows:
        shown = r.get("why") or json.dumps({k: v for k, v in r.get("figures", {}).items() if "@" not in k})
        lines.append(f"| {r['part']} | {r['status']} | {r.get('seconds', '-')} | {shown} |")
    loss = next((r for r in rows if r["part"] == "loss" and r["status"] == "ok"), None)
    if loss:
        lines += ["", "| T | loss | peak MiB | tokens/s |", "|---|---|---|---|"]
        for key, v in loss["figures"].items():
            impl, t = key.split("@")
            lines.append(f"| {t} | {impl} | {v['peak_mib']} | {v['tokens_per_s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(REPO / "outputs" / "gpu-check"), help="default: %(default)s")
    p.add_argument("--data-dir", default=str(DATA_DIR), help="the benchmark files (layout of ../shared/data)")
    p.add_argument("--parts", default=",".join(PARTS), help="comma-separated, from: " + ",".join(PARTS))
    p.add_argument("--dry-run", action="store_true", help="parse every command and check its files; run nothing")
    p.add_argument("--_build-model", nargs=2, dest="build_model", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.build_model:
        build_model(*map(Path, args.build_model))
        return 0
    names = [n for n in args.parts.split(",") if n]
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        p.error(f"--parts: unknown {unknown}; choose from {','.join(PARTS)}")
    out = Path(args.out).resolve()
    todo = [part for part in parts(out, Path(args.data_dir).resolve()) if part.name in names]
    if args.dry_run:
        return dry_run(todo)

    import torch

    from profit_rl.core.state import write_json_atomic, write_text_atomic

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    t0 = time.time()
    results = []
    for part in todo:
        if device is None:
            results.append({"part": part.name, "status": "not run", "why": "no CUDA device visible"})
            continue
        print(f"=== {part.name}: {' '.join(part.argv)}", flush=True)
        results.append(run_part(part, out))
        print(f"=== {part.name}: {results[-1]['status']} {results[-1].get('why', '')}", flush=True)
    report = {"device": device or "no GPU", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "seconds": time.time() - t0, "torch": torch.__version__, "parts": results}
    write_json_atomic(out / "gpu_check.json", report)
    table = markdown(report)
    write_text_atomic(out / "gpu_check.md", table)
    print(table)
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
