"""Measure ProFit's premise on the embedded task: are the trivial (phrasing) tokens the low-probability ones?

For each single-reference SFT completion we know, character by character, which text is core (numbers, operators,
the boxed answer) and which is a free phrasing choice (`task.render_solution`). This module scores every reference
token with a model, in exactly the chat layout SFT trains on, and splits the probabilities by that label.
"""

from __future__ import annotations

import torch

from .task import segment_core_chars


def _token_labels(offsets, completion_start: int, completion_end: int, core_chars: list[bool], text: str):
    """For each token: None outside the solution text, else True (core) / False (trivial).

    A token is core when any non-space character it covers is core; digits are single tokens, so in practice a
    token is entirely one or the other.
    """
    labels = []
    for start, end in offsets:
        if start >= completion_end or end <= completion_start or end <= start:
            labels.append(None)
            continue
        chars = [
            core_chars[i - completion_start]
            for i in range(max(start, completion_start), min(end, completion_end))
            if not text[i].isspace()
        ]
        labels.append(any(chars) if chars else False)
    return labels


@torch.no_grad()
def reference_token_probs(model, tokenizer, prompts: list[list[dict]], segments: list[list[tuple[str, bool]]],
                          batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """p(reference token | prefix) for every solution token, and whether it is core.

    Args:
        prompts: the chat prompts (lists of messages) of the references.
        segments: `task.render_solution` output of each reference, in the same order.

    Returns:
        (probs, is_core): 1-D float and bool tensors over all solution tokens of all references.
    """
    model.eval()
    all_p, all_core = [], []
    for lo in range(0, len(prompts), batch_size):
        texts, spans = [], []
        for prompt, segs in zip(prompts[lo : lo + batch_size], segments[lo : lo + batch_size]):
            solution = "".join(t for t, _ in segs)
            prefix = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            texts.append(prefix + solution)
            spans.append((len(prefix), len(prefix) + len(solution), segment_core_chars(segs)))
        enc = tokenizer(texts, return_offsets_mapping=True, padding=True, return_tensors="pt")
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.float()
        log_probs = logits[:, :-1].log_softmax(-1).gather(-1, enc["input_ids"][:, 1:, None]).squeeze(-1)
        for row, (start, end, core_chars) in enumerate(spans):
            labels = _token_labels(enc["offset_mapping"][row].tolist(), start, end, core_chars, texts[row])
            for pos, label in enumerate(labels):
                if label is None or pos == 0 or not enc["attention_mask"][row, pos]:
                    continue
                all_p.append(log_probs[row, pos - 1].exp().item())
                all_core.append(label)
    return torch.tensor(all_p), torch.tensor(all_core, dtype=torch.bool)


def premise_stats(probs: torch.Tensor, is_core: torch.Tensor, tau: float = 0.1) -> dict:
    """The numbers docs/embedded.md quotes: mean p of core and trivial tokens, and who sits at or below tau.

    A flat view of `profit_rl.inspect.stats.class_stats` (the statistics `profit-rl inspect` reports) with ProFit's
    rule at tau: a token is dropped when p <= tau."""
    from ..inspect.stats import class_stats

    p, core = probs.double().numpy(), is_core.bool().numpy()
    stats = class_stats(p, core, kept=p > tau)
    return {
        "tau": tau,
        "n_core_tokens": stats["core"]["tokens"],
        "n_trivial_tokens": stats["trivial"]["tokens"],
        "mean_p_core": stats["core"]["mean_p"],
        "mean_p_trivial": stats["trivial"]["mean_p"],
        "median_p_core": stats["core"]["median_p"],
        "median_p_trivial": stats["trivial"]["median_p"],
        "frac_core_at_or_below_tau": stats["core"]["dropped_fraction"],
        "frac_trivial_at_or_below_tau": stats["trivial"]["dropped_fraction"],
        # Of the tokens ProFit drops (p <= tau), the share that is phrasing: the premise says most.
        "trivial_share_of_dropped": stats["trivial_share_of_dropped"],
        "trivial_share_of_all": stats["trivial_share_of_all"],
    }


@torch.no_grad()
def plain_format_accuracy(model, tokenizer, problems, max_new_tokens: int = 128, batch_size: int = 64) -> float:
    """Greedy accuracy of a *base* model in its own pretraining layout ("Problem: ...\nSolution:"), last box vs gold.

    A base model that has learned the task reads each event's amount from the problem; one that has not (pretraining
    too short for the copying circuit to form) still writes fluent solutions with made-up amounts and scores near 0.
    Chat-layout accuracy cannot tell these apart before SFT, this can.
    """
    import re

    from .task import pretraining_document

    boxed = re.compile(r"\\boxed\{([^{}]*)\}")
    eos = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    correct = 0
    try:
        for lo in range(0, len(problems), batch_size):
            chunk = problems[lo : lo + batch_size]
            prompts = [pretraining_document(p, "").rstrip() for p in chunk]
            enc = tokenizer(prompts, return_tensors="pt", padding=True)
            out = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos,
                                 pad_token_id=tokenizer.pad_token_id)
            for problem, text in zip(chunk, tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :])):
                found = boxed.findall(text.split("<|endoftext|>")[0])
                correct += bool(found) and found[-1].strip() == str(problem.answer)
    finally:
        tokenizer.padding_side = side
    return correct / max(1, len(problems))
