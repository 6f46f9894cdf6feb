"""Protected strings: which tokens a string covers, found in the tokenised rows as the trainer sees them."""

import pytest
import torch

from profit_rl.protected import (
    PROTECTED_KEY,
    ProtectingCollator,
    TokenText,
    protected_token_mask,
    string_token_mask,
    token_pieces,
    validate_protected_strings,
)


def test_string_token_mask_by_hand():
    pieces = ["So", " 9", ".", " \\", "boxed", "{", "9", "}"]
    assert string_token_mask(pieces, ["\\boxed"]).tolist() == [0, 0, 0, 1, 1, 0, 0, 0]
    # a string inside one token protects that token; overlapping occurrences; several strings
    assert string_token_mask(pieces, ["ox"]).tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
    assert string_token_mask(["a", "aa", "b"], ["aa"]).tolist() == [1, 1, 0]
    assert string_token_mask(pieces, ["9}", "So"]).tolist() == [1, 0, 0, 0, 0, 0, 1, 1]
    # an empty piece (the first bytes of a multi-byte character) goes with the character the next piece carries
    assert string_token_mask(["a", "", "é", "b"], ["é"]).tolist() == [0, 1, 1, 0]
    assert string_token_mask(["a", "", "é", "b"], ["a"]).tolist() == [1, 0, 0, 0]
    assert string_token_mask(pieces, ["absent"]).tolist() == [0] * len(pieces)
    assert string_token_mask(pieces, []).tolist() == [0] * len(pieces)


@pytest.mark.parametrize("bad, message", [("\\boxed", "list of strings"), (["ok", ""], r"protected_strings\[1\]")])
def test_validation_names_the_entry(bad, message):
    with pytest.raises(ValueError, match=message):
        validate_protected_strings(bad)


def covered_by_prefix_decoding(tok, ids, start, end, string):
    """Independent reference: each token's characters from decoding growing prefixes of the run (ASCII text)."""
    text = tok.decode(ids[start:end])
    spans = [(len(tok.decode(ids[start:t])), len(tok.decode(ids[start : t + 1]))) for t in range(start, end)]
    hits = [i for i in range(len(text)) if text.startswith(string, i)]
    return [any(a < h + len(string) and h < b for h in hits) for a, b in spans]


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_a_string_is_matched_whatever_tokens_it_became(tok):
    # " \boxed" and "x\boxed" tokenise the backslash differently: matching on the row's own tokens finds both
    prompt = tok("Q: add them")["input_ids"]
    runs = ["So 3 + 6 = 9. \\boxed{9}", "x\\boxed{12} and \\boxed{3}<|im_end|>"]
    ids, labels, bounds = list(prompt), [-100] * len(prompt), []
    for text in runs:  # a packed row: prompt, completion, prompt, completion
        completion = tok(text)["input_ids"]
        bounds.append((len(ids), len(ids) + len(completion)))
        ids += completion
        labels += completion
        ids += prompt
        labels += [-100] * len(prompt)
    input_ids, label_tensor = torch.tensor([ids, ids]), torch.tensor([labels, [-100] * len(ids)])
    mask = protected_token_mask(TokenText(tok), input_ids, label_tensor, ["\\boxed"])
    assert mask.shape == input_ids.shape and not mask[1].any()  # nothing supervised, nothing protected
    expected = [False] * len(ids)
    for start, end in bounds:
        expected[start:end] = covered_by_prefix_decoding(tok, ids, start, end, "\\boxed")
    assert mask[0].tolist() == expected
    pieces = [tok.decode([i]) for i in ids]
    assert sorted({p for p, m in zip(pieces, mask[0].tolist()) if m}) == [" \\", "\\", "boxed"]
    assert sum(expected) == 6  # three occurrences, two tokens each


def test_no_match_across_completions_or_into_the_prompt(tok):
    first, middle, last = tok("\\bo")["input_ids"], tok("x")["input_ids"], tok("ed")["input_ids"]
    ids = first + middle + last
    assert tok.decode(ids) == "\\boxed"
    labels = first + [-100] * len(middle) + last  # two supervised runs: "\bo" | "ed"
    mask = protected_token_mask(TokenText(tok), torch.tensor([ids]), torch.tensor([labels]), ["\\boxed"])
    assert not mask.any()
    labels = ids  # one run: the whole string is there
    mask = protected_token_mask(TokenText(tok), torch.tensor([ids]), torch.tensor([labels]), ["\\boxed"])
    assert mask.all()


def test_special_tokens_and_the_collator(tok):
    ids = tok("Done.<|im_end|>")["input_ids"]
    end = tok.convert_tokens_to_ids("<|im_end|>")
    collator = ProtectingCollator(
        lambda rows: {"input_ids": torch.tensor(rows), "labels": torch.tensor(rows)}, TokenText(tok), ["<|im_end|>"]
    )
    batch = collator([ids])
    assert batch[PROTECTED_KEY].tolist() == [[i == end for i in ids]]


def test_token_pieces_rebuild_the_text(tok):
    text = "Compute 12 + 7 = 19. Café ∑ déjà vu\nso the answer is \\boxed{19}. 日本語"
    ids = tok("Q: " + text)["input_ids"]
    start = len(tok("Q:")["input_ids"])
    fast = TokenText(tok)
    assert fast.token_bytes is not None  # the tiny tokenizer is byte-level BPE: the fast path
    general = TokenText(tok)
    general.token_bytes = None  # the path of any other tokenizer
    for pieces in (token_pieces(tok, ids, start), fast.pieces(ids, start), general.pieces(ids, start)):
        assert len(pieces) == len(ids) - start
        assert "".join(pieces) == tok.decode(ids[start:])  # multi-byte characters survive the split
    assert fast._byte_level_pieces(ids, start) == fast.pieces(ids, start)  # it did take the fast path
    # where no token ends inside a character the two paths agree token for token
    ascii_ids = tok("Q: So 3 + 6 = 9. \\boxed{9}<|im_end|>")["input_ids"]
    assert fast.pieces(ascii_ids, 2) == token_pieces(tok, ascii_ids, 2)
    # a row cut inside a character does not decode to its bytes: the general path
    cuts = [k for k in range(start + 1, len(ids)) if tok.decode(ids[:k]).endswith("\ufffd")]
    assert cuts, "the text has characters split across tokens"
    assert fast._byte_level_pieces(ids[: cuts[0]], start) is None
    assert "".join(fast.pieces(ids[: cuts[0]], start)) == tok.decode(ids[start : cuts[0]])
