"""The embedded base model and its data, the offline default of `make sft-then-rl`, built once into a folder.

    profit-rl embedded build [--out-dir outputs/embedded/base]   # the shipped base model + the task data
    profit-rl embedded build --pretrain [--seed S] --out-dir DIR   # pretrain a base model from scratch
    profit-rl embedded build --data-only --out-dir DIR            # only the task files (a pretrained model)

(`python -m profit_rl.embedded.build` is the same command.)

The repository ships its pretrained base model in `profit_rl/embedded/base_model/`, with `MANIFEST.json` beside it:
each file's sha256, the settings and seed, the command that rebuilds it bit for bit, and its health check. Learning
to copy the amounts from the problem is a phase transition that float rounding can push either way, so a model
pretrained on another machine may not learn it; the shipped one has, and the same files give the same model anywhere.

A build (`build_embedded`), in stages (`build_into`):
1. `write_task_data`: the disjoint test / GRPO / SFT problems of the seed, and the SFT references with their
   core/trivial segments (`task.sft_examples`); written as `sft.jsonl`, `grpo.jsonl`, `test.jsonl` (pure Python RNG);
2. `base_model`: `load_shipped` (checksums checked; `embedded.shipped`), or `train_base_tokenizer` +
   `pretrain_base_model` on a corpus of other problems (`embedded.pretrain`);
3. `measure_base`, on this machine: the premise (p of the SFT references' core vs trivial tokens) and the health check
   (greedy accuracy in the pretraining layout), into `build.json`.

`build.json` records a cache key: the settings, the seed, FORMAT_VERSION and the model's origin (the shipped weights'
checksum, or pretrained here). A folder with the same key is reused; another is rebuilt, in a staging folder that
replaces `out_dir` only when complete (`replace_folder`), so a killed build is rebuilt, never half-used.

Maintainers: `--pretrain --seed S --ship` pretrains and replaces the shipped files and manifest; rerun the manifest's
`rebuild` command and `git status` shows whether the files came out bit for bit the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..data.prepare import write_jsonl  # atomic: a killed build never leaves half a file
from profit_rl.core.state import read_json_state, write_json_atomic
from . import task as T
# Stage 2's two sources; their names stay importable from here.
from .pretrain import pack_corpus, pretrain, pretrain_base_model, train_base_tokenizer
from .shipped import MANIFEST, MODEL_FILES, SHIPPED_DIR, SHIPPED_REL, load_shipped, sha256, ship, shipped_manifest

logger = logging.getLogger(__name__)

# Bump when what a build writes changes in a way the settings do not capture (task wording, file layout, the training
# loop): a folder built under another version is rebuilt.
FORMAT_VERSION = 2
DEFAULT_OUT_DIR = Path("outputs/embedded/base")


@dataclass(frozen=True)
class EmbeddedConfig:
    """Everything that defines the embedded base model and its data; it is part of the cache key.

    Args:
        task: the problem distribution (`task.TaskConfig`).
        n_test, n_grpo, n_sft: sizes of the held-out test set, the GRPO prompt set and the single-reference SFT set.
        vocab_size: BPE vocabulary trained on the corpus (plus the chat special tokens).
        tokenizer_documents: corpus documents the tokenizer is trained on.
        hidden_size, num_hidden_layers, intermediate_size, num_attention_heads, num_key_value_heads, head_dim:
            the Qwen3 shape.
        pretrain_steps, batch_size, seq_len: pretraining budget, in packed sequences of `seq_len` tokens. Learning to
            copy the amounts from the problem is a phase transition near this budget: some seeds make it and some
            do not, and on another machine the same seed can land on the other side (hence the shipped model).
        learning_rate, warmup_steps, min_lr_ratio, weight_decay: AdamW with linear warmup and cosine decay to
            `min_lr_ratio * learning_rate`.
        premise_rows: SFT references scored for the premise measurement in `build.json`.
        check_problems: test problems the base model solves greedily, in its pretraining layout, as a health check
            (`base_plain_greedy_accuracy` in `build.json`; the pipeline's check step judges it).
    """

    task: T.TaskConfig = field(default_factory=T.TaskConfig)
    n_test: int = 200
    n_grpo: int = 1000
    n_sft: int = 2000
    vocab_size: int = 768
    tokenizer_documents: int = 4000
    hidden_size: int = 128
    num_hidden_layers: int = 2
    intermediate_size: int = 256
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32
    pretrain_steps: int = 1000
    batch_size: int = 32
    seq_len: int = 128
    learning_rate: float = 3e-3
    warmup_steps: int = 40
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    premise_rows: int = 256
    check_problems: int = 64

    @classmethod
    def from_dict(cls, values: dict) -> "EmbeddedConfig":
        """Inverse of `dataclasses.asdict` (as stored in `build.json` and the manifest)."""
        return cls(**{**values, "task": T.TaskConfig(**values["task"])})

    def cache_key(self, seed: int, origin: str = "pretrained") -> str:
        """`origin`: "pretrained" (here) or "shipped:<sha256 of the shipped weights>"."""
        blob = json.dumps({"config": dataclasses.asdict(self), "seed": seed, "format": FORMAT_VERSION,
                           "origin": origin}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class EmbeddedPaths:
    """Where a finished build put things."""

    root: Path
    model_dir: Path
    sft: Path
    grpo: Path
    test: Path
    build_info: Path


def paths_for(root: Path) -> EmbeddedPaths:
    """Where a build in `root` puts its model, data files and build.json."""
    return EmbeddedPaths(root=root, model_dir=root / "model", sft=root / "sft.jsonl", grpo=root / "grpo.jsonl",
                         test=root / "test.jsonl", build_info=root / "build.json")


# ------------------------------------------------------------------------------------------------------ 1. task data


@dataclass(frozen=True)
class TaskData:
    """The problems of one seed and the SFT references written for them."""

    splits: T.Splits
    sft: list[T.SftExample]

    @property
    def reserved(self) -> set[tuple]:
        """The keys the pretraining corpus must not contain."""
        return {p.key for p in self.splits.test + self.splits.grpo + self.splits.sft}


def make_splits_for(config: EmbeddedConfig, seed: int) -> T.Splits:
    """The test / GRPO / SFT problems of a build (the same ones its jsonl files hold). Test first, so resizing the
    SFT or GRPO set never changes the test problems."""
    return T.make_splits(seed, config.task, config.n_test, config.n_grpo, config.n_sft)


def task_data(config: EmbeddedConfig, seed: int) -> TaskData:
    """The problem splits of `seed` and the SFT references written for them (nothing is written to disk)."""
    splits = make_splits_for(config, seed)
    return TaskData(splits, T.sft_examples(splits.sft, seed))


def write_task_data(paths: EmbeddedPaths, config: EmbeddedConfig, seed: int) -> TaskData:
    """Write the task's SFT, GRPO and test files (no model): what `--data-only` gives a pretrained model such as
    SmolLM2-135M, so it trains and is evaluated on exactly the problems of the embedded default with the same seed."""
    data = task_data(config, seed)
    paths.root.mkdir(parents=True, exist_ok=True)
    write_jsonl(paths.sft, [example.row for example in data.sft])
    write_jsonl(paths.grpo, T.grpo_rows(data.splits.grpo))
    write_jsonl(paths.test, T.test_rows(data.splits.test))
    return data


# -------------------------------------------------------------------------------------------------------- 3. measure


def measure_base(model, tokenizer, data: TaskData, config: EmbeddedConfig) -> dict:
    """The premise, measured on the SFT references in the chat layout ProFit scores them in, and whether pretraining
    taught the model to read the problem at all (`premise.plain_format_accuracy`)."""
    from .premise import plain_format_accuracy, premise_stats, reference_token_probs

    n = min(config.premise_rows, len(data.sft))
    probs, is_core = reference_token_probs(model, tokenizer, [e.row["prompt"] for e in data.sft[:n]],
                                           [e.segments for e in data.sft[:n]])
    return {"premise_base_model": premise_stats(probs, is_core),
            "base_plain_greedy_accuracy": plain_format_accuracy(model, tokenizer,
                                                                data.splits.test[: config.check_problems])}


# ------------------------------------------------------------------------------------------------------------ build


def cached_key(out_dir: str | Path) -> str | None:
    """The cache key of a finished build in `out_dir`, or None."""
    info = Path(out_dir) / "build.json"
    if not info.exists():
        return None
    return read_json_state(info, "build record", f"Delete {info} to build again.").get("cache_key")


def shipped_origin(config: EmbeddedConfig, seed: int) -> str:
    """The cache key's origin of the shipped model, once checked that it is the model these settings ask for."""
    manifest = shipped_manifest()
    if EmbeddedConfig.from_dict(manifest["config"]) != config or manifest["seed"] != seed:
        raise SystemExit(f"the shipped base model was built with seed {manifest['seed']} and the default settings; "
                         "for other settings (--task, --pretrain-steps, another --seed) pretrain one: --pretrain")
    return "shipped:" + manifest["files"]["model.safetensors"]


def base_model(model_dir: Path, data: TaskData, config: EmbeddedConfig, seed: int, pretrain: bool):
    """Stage 2: the model and tokenizer, saved in `model_dir`, and what `build.json` records of them (a pretrained
    model's size, loss log and timings; the shipped model's size and loss log, from its manifest)."""
    if not pretrain:
        model, tokenizer = load_shipped(model_dir)
        manifest = shipped_manifest()
        return model, tokenizer, {"n_params": manifest["n_params"], "pretrain_log": manifest["pretrain_log"]}
    tokenizer = train_base_tokenizer(data, config, seed)
    model, record = pretrain_base_model(tokenizer, data, config, seed)
    model_dir.mkdir(parents=True)
    tokenizer.save_pretrained(model_dir)
    model.save_pretrained(model_dir)
    return model, tokenizer, record


def build_into(paths: EmbeddedPaths, config: EmbeddedConfig, seed: int, pretrain: bool, record: dict) -> dict:
    """The three stages into the empty folder `paths.root`, then `build.json`: `record` (seed, cache key, origin)
    plus what each stage reports. Returns what `build.json` holds."""
    t0 = time.time()
    data = write_task_data(paths, config, seed)
    info = {**record, "config": dataclasses.asdict(config)}
    timings: dict = {"data_s": round(time.time() - t0, 1)}
    model, tokenizer, model_info = base_model(paths.model_dir, data, config, seed, pretrain)
    timings.update(model_info.pop("timings", {}))
    info.update(model_info)
    t1 = time.time()
    info.update(measure_base(model, tokenizer, data, config))
    timings["measure_s"] = round(time.time() - t1, 1)
    info["timings"] = timings
    info["files"] = {"model_dir": "model", "sft": "sft.jsonl", "grpo": "grpo.jsonl", "test": "test.jsonl"}
    write_json_atomic(paths.build_info, info)
    return info


def replace_folder(staging: Path, final: Path) -> None:
    """Put the finished `staging` folder at `final`; an older build there is moved aside first, so `final` never
    holds a mix of two builds."""
    if final.exists():
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        final.rename(old)
        shutil.rmtree(old)
    staging.rename(final)


def build_embedded(out_dir: str | Path = DEFAULT_OUT_DIR, seed: int | None = None,
                   config: EmbeddedConfig | None = None, force: bool = False, pretrain: bool = False) -> EmbeddedPaths:
    """Build the embedded base model and data into `out_dir`, or return the finished build already there.

    `pretrain=False` takes the shipped model, which exists for the default settings and the manifest's seed only
    (`seed=None`: that seed). Returns the paths of the model folder, the three jsonl files and `build.json`.
    """
    config = config or EmbeddedConfig()
    if seed is None:
        seed = shipped_manifest()["seed"]
    origin = "pretrained" if pretrain else shipped_origin(config, seed)
    final = Path(out_dir)
    key = config.cache_key(seed, origin)
    found = cached_key(final)
    if found == key and not force:
        logger.info("embedded model %s already built in %s", key, final)
        return paths_for(final)
    if found is not None:
        logger.info("%s holds embedded build %s, settings now give %s: rebuilding", final, found, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    t0 = time.time()
    info = build_into(paths_for(staging), config, seed, pretrain, {"seed": seed, "cache_key": key, "origin": origin})
    replace_folder(staging, final)
    logger.info("embedded model at %s in %.0fs; health: %.0f%% greedy in the pretraining layout", final,
                time.time() - t0, 100 * info["base_plain_greedy_accuracy"])
    return paths_for(final)


def task_config(overrides: list[str]) -> T.TaskConfig:
    """`["max_ops=3", "max_value=99"]` -> a TaskConfig with those fields changed (and validated by it)."""
    fields = {f.name: f.type for f in dataclasses.fields(T.TaskConfig)}
    values = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or name not in fields:
            raise SystemExit(f"--task {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(fields)}")
        try:
            values[name] = float(value) if "float" in str(fields[name]) else int(value)
        except ValueError:
            raise SystemExit(f"--task {item!r}: {value!r} is not a number") from None
    try:
        return T.TaskConfig(**values)
    except ValueError as err:
        raise SystemExit(f"--task: {err}") from None


def main(argv: list[str] | None = None, prog: str = "python -m profit_rl.embedded.build") -> int:
    """`profit-rl embedded build`: the shipped (or a freshly pretrained) base model and the task data into
    `--out-dir`, or only the data with `--data-only`; prints the paths and the base model's health figures."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT_DIR), help="where the model and data go (%(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="the problems' (and a pretrained model's) seed; default: the shipped model's")
    parser.add_argument("--pretrain", action="store_true",
                        help="pretrain a base model here instead of taking the shipped one (minutes)")
    parser.add_argument("--pretrain-steps", type=int, default=None, help="override the pretraining budget")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--task", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a task.TaskConfig field (repeatable), e.g. --task max_ops=3 --task max_value=99")
    parser.add_argument("--data-only", action="store_true",
                        help="write only sft.jsonl, grpo.jsonl and test.jsonl (seconds; for a pretrained model)")
    parser.add_argument("--ship", action="store_true",
                        help=f"maintainers: make this build the shipped base model ({SHIPPED_DIR})")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch intra-op threads (default 1: tiny models are all small-op overhead, and spin-waiting threads "
             "on a shared machine slow them down)",
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = EmbeddedConfig()
    if args.pretrain_steps is not None:
        config = dataclasses.replace(config, pretrain_steps=args.pretrain_steps)
    if args.task:
        config = dataclasses.replace(config, task=task_config(args.task))
    if args.data_only:
        paths = paths_for(Path(args.out_dir))
        seed = shipped_manifest()["seed"] if args.seed is None else args.seed
        splits = write_task_data(paths, config, seed).splits
        print(f"{len(splits.sft)} SFT, {len(splits.grpo)} GRPO, {len(splits.test)} test problems -> {paths.root}")
        return 0
    if args.ship and not args.pretrain:
        raise SystemExit("--ship replaces the shipped model with a pretrained one: add --pretrain")
    paths = build_embedded(args.out_dir, seed=args.seed, config=config, force=args.force or args.ship,
                           pretrain=args.pretrain)
    if args.ship:
        seed = json.loads(paths.build_info.read_text())["seed"]
        rebuild = (f"OMP_NUM_THREADS=1 python -m profit_rl.embedded.build --pretrain --seed {seed} --threads "
                   f"{args.threads} --out-dir {args.out_dir} --ship  # then: git status --short {SHIPPED_REL}")
        print(f"shipped: {ship(paths, rebuild)}")
    info = json.loads(paths.build_info.read_text())
    print(json.dumps({k: str(v) for k, v in dataclasses.asdict(paths).items()}, indent=2))
    print(json.dumps({"base_plain_greedy_accuracy": info["base_plain_greedy_accuracy"],
                      "premise_base_model": info["premise_base_model"]}, indent=2))
    return 0


__all__ = [
    "DEFAULT_OUT_DIR", "FORMAT_VERSION", "MANIFEST", "MODEL_FILES", "SHIPPED_DIR", "SHIPPED_REL", "EmbeddedConfig",
    "EmbeddedPaths", "TaskData", "base_model", "build_embedded", "build_into", "cached_key", "load_shipped", "main",
    "make_splits_for", "measure_base", "pack_corpus", "paths_for", "pretrain", "pretrain_base_model", "replace_folder",
    "sha256", "ship", "shipped_manifest", "shipped_origin", "task_config", "task_data", "train_base_tokenizer",
    "write_task_data",
]

if __name__ == "__main__":
    raise SystemExit(main())
