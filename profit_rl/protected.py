"""Protected strings: the supervised tokens every selection rule keeps at weight 1 (`ProFitConfig.protected_strings`).

A p rule drops whatever the model gives a low probability, including format tokens the model must learn: a base model
that never saw `\\boxed` gives its first token p < tau in every row, so ProFit never trains it, and the SFT model never
boxes an answer. Protecting a string is a departure from the paper's rule, which has no exceptions.

A string is found where the data actually has it: in the decoded text of each tokenised row, mapped back to the tokens
that cover it. A BPE tokenizer splits the same string differently by context (`" \\boxed"` can be `" \\"` + `"boxed"`
in one row and `"\\boxed"` in another), so tokenising the string on its own would miss occurrences; matching on the
text of the row's own tokens does not. Every token whose text overlaps an occurrence is protected.
"""

from __future__ import annotations

import numpy as np
import torch

# The batch key under which `ProtectingCollator` hands the mask to the trainer, which removes it before the forward.
PROTECTED_KEY = "protected_mask"


def validate_protected_strings(strings) -> None:
    """Raise a ValueError naming the entry when a protected string cannot mean anything."""
    if isinstance(strings, str):
        raise ValueError(f"protected_strings must be a list of strings, got the string {strings!r}")
    for i, s in enumerate(strings):
        if not isinstance(s, str) or not s:
            raise ValueError(f"protected_strings[{i}] is {s!r}: each protected string must be a non-empty string")


def token_pieces(tokenizer, ids: list[int], start: int) -> list[str]:
    """The text of each token ids[start:] as it reads in the running text.

    Decoding tokens one by one breaks multi-byte characters (byte-level BPE) and drops SentencePiece's leading spaces,
    so each piece is the growth of the decoded text over a short window instead; a token that ends inside a
    character gets "" and the next one carries the character. The pieces concatenate to the decoded completion.
    """
    pieces = []
    prefix, read = max(0, start - 4), start
    for i in range(start, len(ids)):
        before = tokenizer.decode(ids[prefix:read])
        now = tokenizer.decode(ids[prefix : i + 1])
        if now.endswith("\ufffd") and i + 1 < len(ids):
            pieces.append("")
            continue
        pieces.append(now[len(before) :] if now.startswith(before) else tokenizer.decode(ids[read : i + 1]))
        prefix, read = read, i + 1
    return pieces


class TokenText:
    """`token_pieces` for one tokenizer, with a fast path for byte-level BPE tokenizers (GPT-2, Qwen, Llama 3 style).

    There each token stands for fixed bytes, so a row's pieces follow from the bytes' character boundaries without
    decoding token by token (which costs about as much per token as a small model's training step on a GPU). A token
    gets the characters it completes, so one that ends inside a character gets "" and the next one carries that
    character. Each row checks that its bytes decode to the tokenizer's own text; any other tokenizer, or a row that
    fails the check, takes `token_pieces`.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.token_bytes = _token_bytes(tokenizer)

    def pieces(self, ids: list[int], start: int) -> list[str]:
        """The text piece of each token ids[start:], as `token_pieces` gives it, by the byte-level fast path where it
        applies."""
        if self.token_bytes is not None and start < len(ids):
            pieces = self._byte_level_pieces(ids, start)
            if pieces is not None:
                return pieces
        return token_pieces(self.tokenizer, ids, start)

    def _byte_level_pieces(self, ids: list[int], start: int) -> list[str] | None:
        try:
            parts = [self.token_bytes[i] for i in ids[start:]]
        except IndexError:  # an id past the tokenizer's vocabulary
            return None
        blob = b"".join(parts)
        text = self.tokenizer.decode(ids[start:])
        if text.encode("utf-8") != blob:  # not a plain concatenation of the tokens' bytes here
            return None
        # A token's piece ends at the last character it completes: "" for one that ends inside a character.
        ends = np.cumsum([0] + [len(p) for p in parts])
        is_start = np.append((np.frombuffer(blob, dtype=np.uint8) & 0xC0) != 0x80, True)
        starts_before = np.concatenate([[0], np.cumsum(is_start[:-1])])
        chars = starts_before[ends] - ~is_start[ends]
        return [text[a:b] for a, b in zip(chars[:-1].tolist(), chars[1:].tolist())]


def _token_bytes(tokenizer) -> list[bytes] | None:
    """The bytes of every token id of a byte-level BPE tokenizer (added tokens: their UTF-8 text); None otherwise."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_of = {char: byte for byte, char in bytes_to_unicode().items()}
    added = {token_id: text.encode("utf-8") for text, token_id in tokenizer.get_added_vocab().items()}
    table = []
    for token_id, token in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        if token_id in added:
            table.append(added[token_id])
        elif token is None or any(c not in byte_of for c in token):
            return None  # not byte-level (SentencePiece's "▁", a WordPiece "##"): the general path
        else:
            table.append(bytes(byte_of[c] for c in token))
    return table


def string_token_mask(pieces: list[str], strings) -> np.ndarray:
    """True for each token (given by its text, in order) whose characters overlap an occurrence of any string.

    Occurrences may overlap each other. A token that carries no text of its own (the first bytes of a multi-byte
    character, whose piece is "") is protected when the character it starts is.
    """
    text = "".join(pieces)
    covered = np.zeros(len(text) + 1, dtype=np.int64)  # +1 at an occurrence's start, -1 past its end
    for s in strings:
        at = text.find(s)
        while at >= 0:
            covered[at] += 1
            covered[at + len(s)] -= 1
            at = text.find(s, at + 1)
    inside = np.cumsum(covered)[: len(text)] > 0
    mask = np.zeros(len(pieces), dtype=bool)
    start = 0
    for i, piece in enumerate(pieces):
        end = start + len(piece)
        # an empty piece belongs to the character the next piece carries
        mask[i] = bool(inside[start:end].any()) if end > start else start < len(text) and bool(inside[start])
        start = end
    return mask


def _supervised_runs(supervised: list[bool]) -> list[tuple[int, int]]:
    """[start, end) of each run of consecutive supervised positions."""
    runs, start = [], None
    for i, s in enumerate(supervised + [False]):
        if s and start is None:
            start = i
        elif not s and start is not None:
            runs.append((start, i))
            start = None
    return runs


def protected_token_mask(text: TokenText, input_ids: torch.Tensor, labels: torch.Tensor, strings) -> torch.Tensor:
    """Bool mask shaped like `input_ids`: the supervised tokens (labels != -100) covered by a protected string.

    Each run of supervised tokens (a completion; a packed row holds several) is decoded on its own, so no match spans
    two completions. Runs whose text cannot contain any string skip the per-token decoding.
    """
    mask = torch.zeros(input_ids.shape, dtype=torch.bool)
    if not strings:
        return mask
    # whitespace-stripped, so that a tokenizer which drops a leading space when decoding cannot hide a match
    cores = [s.strip() for s in strings]
    for b, (row_ids, row_labels) in enumerate(zip(input_ids.tolist(), labels.tolist())):
        for start, end in _supervised_runs([label != -100 for label in row_labels]):
            if not any(core in text.tokenizer.decode(row_ids[start:end]) for core in cores):
                continue
            pieces = text.pieces(row_ids[:end], start)
            mask[b, start:end] = torch.from_numpy(string_token_mask(pieces, strings))
    return mask


class ProtectingCollator:
    """Wraps a data collator: each batch also carries `protected_mask`, computed on the CPU where batches are built.

    Finding the strings needs the token ids on the host; doing it here, in the data loader, keeps that work off the
    training step and away from any device synchronisation.
    """

    def __init__(self, collator, text: TokenText, strings):
        self.collator, self.text, self.strings = collator, text, list(strings)

    def __call__(self, examples):
        batch = self.collator(examples)
        batch[PROTECTED_KEY] = protected_token_mask(self.text, batch["input_ids"], batch["labels"], self.strings)
        return batch

    def __getattr__(self, name):
        if name == "collator":  # not set yet while unpickling in a data-loader worker: no recursion
            raise AttributeError(name)
        return getattr(self.collator, name)
