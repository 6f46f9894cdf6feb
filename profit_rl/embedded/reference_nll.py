"""The probes' reference likelihood: how much probability a model gives each probe problem's reference solution,
teacher-forced, on the tokens the problem determines (docs/probes.md).

    python -m profit_rl.embedded.reference_nll --model M --probes-dir outputs/embedded/sweep/probes/probe-data \
        --base-dir outputs/embedded/base --output-dir OUT      # -> OUT/reference_nll.json

Sampled accuracy on the longer chains sits at the floor for every model (a plain SFT model writes five steps and
stops), so it cannot tell methods apart. The likelihood of the right six-step solution has no floor: for each problem
of the in-distribution test set, the longer chains and the unseen surface, one reference phrasing (`task.
render_solution`, seeded) is scored in the chat layout SFT trains on, and the mean NLL per token is taken over its
core tokens (the events, numbers, operators, the concluding "So", the box and the end of turn: what the problem
determines, `task.segment_core_chars`) and, apart, over its phrasing tokens. The problems are drawn again from the
build's and the probes' `build.json` (pure and seeded), and their ids must equal those of the probe files.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from profit_rl.core.io import read_file
from profit_rl.core.state import read_json_state, write_json_atomic

from . import task as T

SETS = ("in_distribution", "long", "surface")  # the probes whose problems have a reference; their file ids' prefixes:
ID_PREFIX = {"in_distribution": "", "long": "long-", "surface": "surf-"}
EQUATION = re.compile(r" = \d+")  # one per event in `task.render_solution`: "a op b = c"


@dataclass(frozen=True)
class Reference:
    """One problem's chat prompt, its reference completion and, per character of the completion, whether the problem
    determines it (core) or it is a phrasing choice."""

    id: str
    prompt: list[dict]
    completion: str
    core_chars: list[bool]


def references(problems: list[T.Problem], prefix: str, seed: int) -> list[Reference]:
    """One seeded reference phrasing per problem, in the SFT rows' layout (`task.sft_examples`)."""
    rng = random.Random(f"embedded-probes-reference-{seed}")
    out = []
    for p in problems:
        segments = T.render_solution(p, rng)
        out.append(Reference(prefix + p.id, [{"role": "user", "content": T.user_message(p.statement)}],
                             T.solution_text(segments), T.segment_core_chars(segments)))
    return out


def probe_references(probes_dir: Path, base_dir: Path | None = None) -> dict[str, list[Reference]]:
    """The references of every set in SETS, for the probes written to `probes_dir` from the build in `base_dir` (by
    default the folder its build.json names, a path relative to where the probes were built)."""
    from .build import EmbeddedConfig, make_splits_for
    from .probe_sets import ProbeConfig, make_probes

    how = f"rebuild the probe sets: delete {probes_dir} and rerun `make probes`"
    probe_info = read_json_state(probes_dir / "build.json", "probe sets record", how)
    base_dir = Path(base_dir or probe_info["base_dir"])
    build = read_json_state(base_dir / "build.json", "embedded build record", how)
    config, seed, probe = EmbeddedConfig.from_dict(build["config"]), build["seed"], ProbeConfig(**probe_info["probe"])
    sets, _ = make_probes(config, seed, probe)
    problems = {"in_distribution": make_splits_for(config, seed).test, "long": sets.long, "surface": sets.surface}
    files = {"in_distribution": base_dir / "test.jsonl", "long": probes_dir / "long.jsonl",
             "surface": probes_dir / "surface.jsonl"}
    out = {}
    for name in SETS:
        refs = references(problems[name], ID_PREFIX[name], probe.seed)
        written = [row.text("id") for row in read_file(files[name])]  # a bad row is named by file, row and field
        if written != [r.id for r in refs]:
            raise SystemExit(f"{files[name]}: its problem ids are not the ones its build.json draws; {how}")
        out[name] = refs
    return out


def scored_tokens(tokenizer, fmt, ref: Reference) -> tuple[list[int], list[int], list[bool], list[int]]:
    """The reference in the chat layout (`fmt`: a `ChatFormat`): its token ids, the positions scored (the completion's
    tokens and the end of turn), whether each is core, and its step (the equations the reference finished before it:
    an equation finishes with its result)."""
    prompt = fmt.prompt(ref.prompt)
    text = fmt.conversation(ref.prompt + [{"role": "assistant", "content": ref.completion}])
    if not text.startswith(prompt + ref.completion):
        raise SystemExit(f"{ref.id}: the chat template does not render the reference after the generation prompt")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, scored, core, step = enc["input_ids"], [], [], []
    ends = [m.end() for m in EQUATION.finditer(ref.completion)]  # where each equation's result ends
    for i, (lo, hi) in enumerate(enc["offset_mapping"]):
        lo, hi = lo - len(prompt), hi - len(prompt)  # offsets in the completion
        if lo < 0:
            continue
        if lo >= len(ref.completion):  # past the reference: its end of turn, then stop
            if ids[i] == fmt.end_of_turn_id:
                scored.append(i)
                core.append(True)
                step.append(len(ends))
            break
        scored.append(i)
        core.append(any(ref.core_chars[lo:hi]))
        step.append(sum(end <= lo for end in ends))
    return ids, scored, core, step


def reference_stats(model, tokenizer, refs: list[Reference], batch_size: int = 16) -> dict:
    """Teacher-forced NLL of each reference after its chat prompt: per token over the core tokens (a token overlapping
    a core character, and the end of turn), over the phrasing tokens, and over all; per problem and token-weighted
    over the set. `core_nll_by_step[n]` is the core NLL per token of the tokens written after n equations (step n + 1
    of the chain; the last entry: the conclusion, the box and the end of turn)."""
    import torch

    from profit_rl.core.chat import ChatFormat

    fmt = ChatFormat(tokenizer)
    rows = [(*scored_tokens(tokenizer, fmt, ref),) for ref in refs]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else fmt.end_of_turn_id
    problems = []
    with torch.no_grad():
        for lo in range(0, len(rows), batch_size):
            batch = rows[lo : lo + batch_size]
            width = max(len(row[0]) for row in batch)
            input_ids = torch.tensor([row[0] + [pad] * (width - len(row[0])) for row in batch])
            mask = torch.tensor([[1] * len(row[0]) + [0] * (width - len(row[0])) for row in batch])
            logp = model(input_ids=input_ids, attention_mask=mask).logits.float().log_softmax(-1)
            for j, (ids, scored, core, step) in enumerate(batch):
                nll = [-logp[j, i - 1, ids[i]].item() for i in scored]  # token i is predicted at position i - 1
                kinds = {"core": [x for x, c in zip(nll, core) if c],
                         "phrasing": [x for x, c in zip(nll, core) if not c]}
                by_step = [[x for x, c, k in zip(nll, core, step) if c and k == n] for n in range(max(step) + 1)]
                problems.append({"id": refs[lo + j].id, "n_tokens": len(nll), "n_core": len(kinds["core"]),
                                 "nll": sum(nll) / len(nll), **{f"{k}_nll": sum(v) / max(1, len(v))
                                                               for k, v in kinds.items()},
                                 "core_nll_sum_by_step": [sum(v) for v in by_step],
                                 "core_tokens_by_step": [len(v) for v in by_step]})
    total = lambda key, n: sum(p[key] * p[n] for p in problems) / max(1, sum(p[n] for p in problems))  # noqa: E731
    steps = max(len(p["core_tokens_by_step"]) for p in problems)
    by_step = [(sum(p["core_nll_sum_by_step"][n] for p in problems if n < len(p["core_tokens_by_step"])),
                sum(p["core_tokens_by_step"][n] for p in problems if n < len(p["core_tokens_by_step"])))
               for n in range(steps)]
    return {"core_nll_per_token": total("core_nll", "n_core"), "nll_per_token": total("nll", "n_tokens"),
            "core_nll_by_step": [s / max(1, n) for s, n in by_step], "core_tokens_by_step": [n for _, n in by_step],
            "n_problems": len(problems), "n_tokens": sum(p["n_tokens"] for p in problems),
            "n_core_tokens": sum(p["n_core"] for p in problems), "problems": problems}


def score(model_path: str, probes_dir: Path, output_dir: Path, batch_size: int = 16, base_dir: Path | None = None
          ) -> dict:
    """`reference_nll.json` in `output_dir`: `reference_stats` of the model on every set of SETS."""
    import torch
    from transformers import AutoTokenizer

    from profit_rl.evals.sampling import load_causal_lm

    refs = probe_references(probes_dir, base_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = load_causal_lm(model_path, torch.float32).eval()
    stats = {"model": model_path, "probes_dir": str(probes_dir),
             "sets": {name: reference_stats(model, tokenizer, refs[name], batch_size) for name in SETS}}
    write_json_atomic(output_dir / "reference_nll.json", stats)
    return stats


def main(argv: list[str] | None = None) -> int:
    """`python -m profit_rl.embedded.reference_nll`: score a model's reference likelihood on the probe sets."""
    parser = argparse.ArgumentParser(prog="python -m profit_rl.embedded.reference_nll",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--probes-dir", required=True, help="a probes folder (`probe_sets build --out-dir`)")
    parser.add_argument("--base-dir", default=None, help="the embedded build the probes were drawn for (default: the "
                        "one their build.json names)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the build)")
    parser.add_argument("--batch-size", type=int, default=16, help="problems per forward pass (default %(default)s)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    stats = score(args.model, Path(args.probes_dir), Path(args.output_dir), args.batch_size,
                  args.base_dir and Path(args.base_dir))
    print(json.dumps({name: round(s["core_nll_per_token"], 4) for name, s in stats["sets"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
