"""Probes of generalisation and forgetting in the embedded task: held-out sets beyond the SFT data (docs/probes.md).

    python -m profit_rl.embedded.probe_sets build --base-dir outputs/embedded/base --out-dir DIR   # the probe sets
    python -m profit_rl.embedded.probe_sets forgetting --model M --base-model B --data DIR/forgetting.jsonl --output-dir O

The paper argues that single-reference SFT overfits to replaceable wording, so that dropping the low-probability tokens
generalises better beyond the SFT data and keeps more of what the base model knew. The in-distribution test set
(`test.jsonl` of the build, benchmark `embedded`) is where it predicts the least; these sets are where it predicts more:

| probe | file | benchmark | what differs from the SFT rows |
|---|---|---|---|
| longer chains | `long.jsonl` | `embedded-long` | 6 events (all six roles); SFT and pretraining have 2-5 |
| unseen surface | `surface.jsonl` | `embedded-surface` | names, items, start sentences and questions no SFT row uses |
| retention | `retention.jsonl` | `embedded-retention` | the base model's own pretraining layout, no chat template |
| forgetting | `forgetting.jsonl` | (`forgetting` below) | held-out pretraining documents: per-token NLL, KL from the base |

Every probe problem is new: its arithmetic (`Problem.key`, start and events) is in none of the build's test, GRPO and
SFT sets, in none of the other probes, and in none of the first `corpus_bound` problems of the pretraining corpus
stream, which bounds the ones the base model was pretrained on. `build.json` of the probes folder records the counts.
The event verbs stay the task's six: a verb that neither pretraining nor SFT used carries no sign (+ or -) a model
could know, so an unseen verb would measure guessing, not generalisation.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from profit_rl.core.state import read_json_state, write_json_atomic

from . import task as T

FORMAT_VERSION = 1
# A pretraining document of the shipped tokenizer is at least 95 tokens (4,000 documents measured, <|im_end|>
# <|endoftext|> included); 60 leaves room for a tokenizer pretrained here, so the bound errs towards excluding more.
MIN_DOCUMENT_TOKENS = 60

# The unseen surface: none of these words occurs in the task's banks (a test checks it against every SFT row).
SURFACE_NAMES = [
    ("Hugo", "he"), ("Iris", "she"), ("Felix", "he"), ("Greta", "she"), ("Oscar", "he"), ("Clara", "she"),
    ("Victor", "he"), ("Hazel", "she"), ("Rufus", "he"), ("Wanda", "she"), ("Boris", "he"), ("Tessa", "she"),
]
SURFACE_ITEMS = ["pebbles", "badges", "magnets", "ribbons", "crayons", "feathers", "walnuts", "buckets", "lanterns",
                 "kites", "acorns", "spoons"]
SURFACE_STARTS = ["{Name} stores {a} {items} in a crate.", "A crate of {Name}'s contains {a} {items}."]
SURFACE_QUESTIONS = ["What number of {items} stays with {name} after all of it?",
                     "Once everything is over, how large is {name}'s stash of {items}?",
                     "After all of this, what is {name}'s tally of {items}?"]
# The verbs of the start sentences and questions above, none of them in an SFT row (the event verbs stay the task's).
SURFACE_VERBS = ["stores", "contains", "stays"]

# What the paper predicts on each probe, for ProFit against plain SFT (docs/probes.md states the rule of each verdict).
PREDICTIONS = {
    "in_distribution": "no loss, the least gain of all probes: the test prompts share the SFT rows' distribution",
    "long": "ProFit above SFT, by more than in distribution: SFT fitted the reference's wording of 2-5 steps",
    "surface": "ProFit above SFT, by more than in distribution: SFT fitted the words of its rows",
    "retention": "ProFit keeps more of the base model's own layout than SFT (a smaller drop from the base model)",
    "forgetting": "ProFit stays closer to the base model on pretraining text: lower NLL and KL than SFT",
    "reference": "ProFit gives the right solutions of the in-distribution, longer-chain and unseen-surface problems a "
                 "lower NLL per core token than SFT, by more beyond the SFT data (embedded.reference_nll)",
}


@dataclass(frozen=True)
class ProbeConfig:
    """The probe sets' sizes and shapes.

    Args:
        n_long, n_surface, n_retention, n_forgetting: problems (documents for forgetting) per probe.
        long_ops: events per longer-chain problem; above the task's max_ops, at most its six roles.
        seed: the probes' own draws (the build's seed decides what they must avoid).
    """

    n_long: int = 200
    n_surface: int = 200
    n_retention: int = 200
    n_forgetting: int = 200
    long_ops: int = 6
    seed: int = 0


def corpus_bound(config, tokens: int | None = None) -> int:
    """How many problems of the pretraining corpus stream the base model can have seen: its pretraining tokens over
    the shortest document, per phrasing (`config`: an `EmbeddedConfig`)."""
    tokens = tokens if tokens is not None else config.pretrain_steps * config.batch_size * config.seq_len
    return tokens // MIN_DOCUMENT_TOKENS // max(1, config.task.phrasings_per_problem) + 1


def reserved_keys(config, seed: int, splits: T.Splits) -> set[tuple]:
    """Every problem key a probe must avoid: the build's splits and the pretraining problems the base model saw."""
    keys = {p.key for p in splits.test + splits.grpo + splits.sft}
    stream = T.corpus_problems(seed, config.task, keys)
    corpus = {next(stream).key for _ in range(corpus_bound(config))}
    return keys | corpus


def draw(rng: random.Random, n: int, task: T.TaskConfig, taken: set[tuple], what: str) -> list[T.Problem]:
    """`n` problems of `task` with keys outside `taken` and pairwise distinct; adds their keys to `taken`."""
    out, attempts = [], 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"probe {what}: cannot draw {n} problems outside the reserved ones from {task}")
        problem = T.sample_problem(rng, task)
        if problem.key not in taken:
            taken.add(problem.key)
            out.append(problem)
    return out


def resurface(problem: T.Problem, rng: random.Random) -> T.Problem:
    """The same arithmetic told with the unseen names, items, start sentences and questions."""
    name, pron = rng.choice(SURFACE_NAMES)
    return T.state_problem(rng, problem.start, problem.events, name, pron, rng.choice(SURFACE_ITEMS),
                           starts=SURFACE_STARTS, questions=SURFACE_QUESTIONS)


@dataclass(frozen=True)
class ProbeSets:
    """The probe problems, one list per probe of the module doc: long chains, unseen surface, retention and
    forgetting."""
    long: list[T.Problem]
    surface: list[T.Problem]
    retention: list[T.Problem]
    forgetting: list[T.Problem]

    def all(self) -> dict[str, list[T.Problem]]:
        """The probe sets by name, in field order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def make_probes(config, seed: int, probe: ProbeConfig = ProbeConfig()) -> tuple[ProbeSets, dict]:
    """The probe problems of the build with `config` (an `EmbeddedConfig`) and `seed`, and what `build.json` records."""
    from .build import make_splits_for

    if not config.task.max_ops < probe.long_ops <= len(T.ROLES):
        raise ValueError(f"long_ops must be above the task's max_ops ({config.task.max_ops}) and at most "
                         f"{len(T.ROLES)} (the task's roles), got {probe.long_ops}")
    splits = make_splits_for(config, seed)
    taken = reserved_keys(config, seed, splits)
    n_reserved = len(taken)
    rng = random.Random(f"embedded-probes-{seed}-{probe.seed}")
    long_task = dataclasses.replace(config.task, min_ops=probe.long_ops, max_ops=probe.long_ops)
    sets = ProbeSets(
        long=draw(rng, probe.n_long, long_task, taken, "long"),
        surface=[resurface(p, rng) for p in draw(rng, probe.n_surface, config.task, taken, "surface")],
        retention=draw(rng, probe.n_retention, config.task, taken, "retention"),
        forgetting=draw(rng, probe.n_forgetting, config.task, taken, "forgetting"),
    )
    info = {"format_version": FORMAT_VERSION, "seed": seed, "probe": dataclasses.asdict(probe),
            "reserved_keys": n_reserved, "corpus_bound": corpus_bound(config), "predictions": PREDICTIONS}
    return sets, info


def rows(problems: list[T.Problem], prefix: str) -> list[dict]:
    """The GRPO/test layout (`id`, `problem`, `answer`), ids prefixed so no probe id equals a test id."""
    return [{**row, "id": f"{prefix}-{row['id']}"} for row in T.test_rows(problems)]


def retention_rows(problems: list[T.Problem]) -> list[dict]:
    """Test rows plus `prompt`: the raw pretraining-layout text the `embedded-retention` benchmark sends."""
    return [{**row, "prompt": T.pretraining_prompt(p.statement)} for row, p in zip(rows(problems, "ret"), problems)]


def forgetting_rows(problems: list[T.Problem], seed: int) -> list[dict]:
    """Held-out pretraining documents, one freshly drawn phrasing each, as the corpus writes them."""
    rng = random.Random(f"embedded-probes-forgetting-{seed}")
    return [{"id": f"fgt-{p.id}", "text": T.pretraining_document(p, T.solution_text(T.render_solution(p, rng)))}
            for p in problems]


def write_probes(base_dir: Path, out_dir: Path, probe: ProbeConfig = ProbeConfig()) -> dict:
    """The probe files for the build in `base_dir` (its `build.json` gives the settings and seed)."""
    from ..data.prepare import write_jsonl
    from .build import EmbeddedConfig

    path = base_dir / "build.json"
    if not path.is_file():
        raise SystemExit(f"{path} not found: build the base model first (`python -m profit_rl.embedded.build "
                         f"--out-dir {base_dir}`)")
    info = read_json_state(path, "embedded build record",
                           f"rebuild it: `python -m profit_rl.embedded.build --out-dir {base_dir} --force`")
    config, seed = EmbeddedConfig.from_dict(info["config"]), info["seed"]
    sets, record = make_probes(config, seed, probe)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / "long.jsonl", [{**row, "n_events": len(p.events)}
                                         for row, p in zip(rows(sets.long, "long"), sets.long)])
    write_jsonl(out_dir / "surface.jsonl", rows(sets.surface, "surf"))
    write_jsonl(out_dir / "retention.jsonl", retention_rows(sets.retention))
    write_jsonl(out_dir / "forgetting.jsonl", forgetting_rows(sets.forgetting, probe.seed))
    record = {**record, "base_dir": str(base_dir), "base_cache_key": info.get("cache_key"),
              "sizes": {name: len(problems) for name, problems in sets.all().items()}}
    write_json_atomic(out_dir / "build.json", record)
    return record


# ----------------------------------------------------------------------------------------------------- forgetting


# The end-of-document token of the embedded pretraining corpus: every document ends with it, so the base model has
# learnt to predict it and its NLL there is part of what forgetting moves.
IM_END = "<|im_end|>"


def end_token_id(tokenizer, end: str | None) -> int | None:
    """The token appended to each document: `end` by name, `eos` for the tokenizer's EOS, None (or `none`) for none."""
    if end is None or end == "none":
        return None
    if end == "eos":
        if tokenizer.eos_token_id is None:
            raise SystemExit("--end-token eos: the tokenizer has no EOS token")
        return tokenizer.eos_token_id
    token = tokenizer.convert_tokens_to_ids(end)
    if token is None or token == tokenizer.unk_token_id:
        raise SystemExit(f"--end-token {end}: not a token of the tokenizer")
    return token


def forgetting_stats(model, base, tokenizer, texts: list[str], batch_size: int = 16, end: str | None = IM_END,
                     ids: list[str] | None = None) -> dict:
    """Per-token NLL of `model` and of `base` on `texts`, and the mean per-token KL(base || model) over the same
    positions; `documents` gives the same per document (`ids`, else their index), for paired comparisons.

    `end` (a token name, `eos`, or None) is appended to each text: the embedded corpus ends its documents with
    `<|im_end|>`, so its probe scores that prediction too; text cut from a longer source (the general-text probe) has no
    document end a model could predict, so it takes none. `model is base` scores one forward pass (KL 0)."""
    import torch

    end_id = end_token_id(tokenizer, end)
    tail = [] if end_id is None else [end_id]
    pad = next((t for t in (tokenizer.pad_token_id, end_id, tokenizer.eos_token_id) if t is not None), 0)
    ids = ids or [str(i) for i in range(len(texts))]
    documents = []
    with torch.no_grad():
        for lo in range(0, len(texts), batch_size):
            rows = [tokenizer(t, add_special_tokens=False)["input_ids"] + tail for t in texts[lo : lo + batch_size]]
            width = max(map(len, rows))
            input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in rows])
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in rows])
            logp = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float().log_softmax(-1)
            base_logp = logp if base is model else (
                base(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float().log_softmax(-1))
            target, keep = input_ids[:, 1:, None], mask[:, 1:].float()
            nll = -(logp.gather(-1, target).squeeze(-1) * keep).sum(-1)
            base_nll = -(base_logp.gather(-1, target).squeeze(-1) * keep).sum(-1)
            kl = ((base_logp.exp() * (base_logp - logp)).sum(-1) * keep).sum(-1)
            for i, n in enumerate(keep.sum(-1).tolist()):
                documents.append({"id": ids[lo + i], "n_tokens": int(n), "nll": nll[i].item(),
                                  "base_nll": base_nll[i].item(), "kl": kl[i].item()})
    n_tokens = sum(d["n_tokens"] for d in documents)
    total = {key: sum(d[key] for d in documents) / n_tokens for key in ("nll", "base_nll", "kl")}
    for d in documents:  # sums -> per-token means of the document
        d.update({key: d[key] / max(1, d["n_tokens"]) for key in ("nll", "base_nll", "kl")})
    return {"nll_per_token": total["nll"], "base_nll_per_token": total["base_nll"],
            "kl_from_base_per_token": total["kl"], "n_tokens": n_tokens, "n_documents": len(texts),
            "end_token": end, "documents": documents}


def score_forgetting(model_path: str, base_path: str, data: Path, output_dir: Path, end: str | None = IM_END,
                     batch_size: int = 16) -> dict:
    """`forgetting.json` in `output_dir`: `forgetting_stats` of the model against the base model on `data` (rows with
    `text`, and `id` where they have one)."""
    import torch
    from transformers import AutoTokenizer

    from profit_rl.core.io import read_file
    from profit_rl.evals.sampling import load_causal_lm

    rows = list(read_file(data))
    texts = [row.text("text") for row in rows]
    if not texts:
        raise SystemExit(f"{data}: no documents")
    ids = [str(row.get("id", i)) for i, row in enumerate(rows)]
    tokenizer, base_tokenizer = AutoTokenizer.from_pretrained(model_path), AutoTokenizer.from_pretrained(base_path)
    if tokenizer.get_vocab() != base_tokenizer.get_vocab():
        raise SystemExit(f"{model_path} and {base_path} have different vocabularies: their per-token NLL and KL "
                         "cannot be compared")
    model = load_causal_lm(model_path, torch.float32).eval()
    same = Path(model_path).resolve() == Path(base_path).resolve()
    base = model if same else load_causal_lm(base_path, torch.float32).eval()
    stats = {"model": model_path, "base_model": base_path, "data": str(data),
             **forgetting_stats(model, base, tokenizer, texts, batch_size, end, ids)}
    write_json_atomic(output_dir / "forgetting.json", stats)
    return stats


def main(argv: list[str] | None = None) -> int:
    """`python -m profit_rl.embedded.probe_sets build | forgetting`: write the probe sets of a built base model, or score
    a model's forgetting (NLL and KL from the base model) on held-out pretraining text."""
    parser = argparse.ArgumentParser(prog="python -m profit_rl.embedded.probe_sets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the probe sets for a built base model")
    b.add_argument("--base-dir", default="outputs/embedded/base", help="a finished `embedded.build` (%(default)s)")
    b.add_argument("--out-dir", required=True)
    d = ProbeConfig()
    for name in ("n_long", "n_surface", "n_retention", "n_forgetting", "long_ops", "seed"):
        b.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    f = sub.add_parser("forgetting", help="per-token NLL and KL from the base model on held-out pretraining text")
    f.add_argument("--model", required=True)
    f.add_argument("--base-model", required=True)
    f.add_argument("--data", required=True, help="forgetting.jsonl of a probes folder, or general.jsonl of "
                   "`python -m profit_rl.data.heldout_text`")
    f.add_argument("--output-dir", required=True)
    f.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the build)")
    f.add_argument("--end-token", default=IM_END, help="appended to each document: a token, `eos` or `none` "
                   "(default %(default)s, as the embedded corpus ends its documents)")
    f.add_argument("--batch-size", type=int, default=16, help="documents per forward pass (default %(default)s)")
    args = parser.parse_args(argv)
    if args.command == "build":
        probe = ProbeConfig(**{name: getattr(args, name) for name in
                               ("n_long", "n_surface", "n_retention", "n_forgetting", "long_ops", "seed")})
        try:
            record = write_probes(Path(args.base_dir), Path(args.out_dir), probe)
        except ValueError as err:
            raise SystemExit(f"probes: {err}") from None
        print(json.dumps(record["sizes"]), "->", args.out_dir)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    stats = score_forgetting(args.model, args.base_model, Path(args.data), Path(args.output_dir), args.end_token,
                             args.batch_size)
    print(json.dumps({k: stats[k] for k in ("nll_per_token", "base_nll_per_token", "kl_from_base_per_token")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
