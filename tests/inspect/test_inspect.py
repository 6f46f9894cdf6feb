"""`profit-rl inspect`: the statistics on hand-made cases, and the report against an independent forward pass."""

import csv
import json
import math
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from profit_rl.inspect.command import build_parser, main, read_labels, run
from profit_rl.inspect.options import InspectConfig
from profit_rl.inspect.stats import (
    average_ranks,
    class_stats,
    core_char_mask,
    kept_summary,
    mann_whitney_u,
    protection_candidates,
    token_core_labels,
)

# ------------------------------------------------------------------------------------------------- statistics


def test_average_ranks_share_ties():
    ranks, ties = average_ranks(np.array([3.0, 1.0, 2.0, 2.0, 3.0, 2.0]))
    # sorted: 1 | 2 2 2 | 3 3 -> ranks 1 | 3 3 3 | 5.5 5.5
    assert ranks.tolist() == [5.5, 1.0, 3.0, 3.0, 5.5, 3.0]
    assert sorted(ties.tolist()) == [1, 2, 3]


def test_mann_whitney_hand_computed_with_ties():
    # x = [1, 2, 2, 3], y = [2, 3, 4]. Pairs with x > y count 1, ties 1/2:
    #   1: 0;  2: 0.5 (vs 2);  2: 0.5;  3: 1 (vs 2) + 0.5 (vs 3)  ->  U = 2.5
    # Ties: one group of 3 (the 2s), one of 2 (the 3s): sum(t^3 - t) = 24 + 6 = 30, n = 7.
    # var = 4*3/12 * (8 - 30/42) = 7.285714...;  z = (|2.5 - 6| - 0.5) / sqrt(var) = 1.111437...
    # p = erfc(z / sqrt 2) = 0.266379...  (scipy.stats.mannwhitneyu(..., method="asymptotic"): 0.2663799233424825)
    r = mann_whitney_u([1, 2, 2, 3], [2, 3, 4])
    assert r["u"] == 2.5
    assert r["effect"] == pytest.approx(2.5 / 12)
    assert r["z"] == pytest.approx(3.0 / math.sqrt(8 - 30 / 42), rel=1e-12)
    assert r["p"] == pytest.approx(0.2663799233424825, rel=1e-9)
    # U of y against x is the complement; the test is symmetric
    r_yx = mann_whitney_u([2, 3, 4], [1, 2, 2, 3])
    assert r_yx["u"] == 12 - 2.5 and r_yx["p"] == pytest.approx(r["p"])


def test_mann_whitney_without_ties_and_degenerate_cases():
    r = mann_whitney_u([1, 2, 3], [4, 5])  # every x below every y: U = 0, sigma^2 = 3*2*6/12 = 3
    assert r["u"] == 0 and r["z"] == pytest.approx(2.5 / math.sqrt(3))
    assert r["p"] == pytest.approx(0.14891467317876572, rel=1e-9)  # scipy, method="asymptotic"
    assert math.isnan(mann_whitney_u([], [1.0])["p"])
    assert math.isnan(mann_whitney_u([0.5, 0.5], [0.5])["p"])  # all tied: no evidence, not p = 1 by accident
    big = mann_whitney_u(np.linspace(0.5, 1, 5000), np.linspace(0, 0.5, 5000) - 1e-9)
    assert big["effect"] == 1.0 and big["p"] < 1e-300


def test_mann_whitney_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x, y = rng.random(300).round(2), (rng.random(200) ** 2).round(2)  # rounding makes many ties
    ours = mann_whitney_u(x, y)
    theirs = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
    assert ours["u"] == theirs.statistic and ours["p"] == pytest.approx(theirs.pvalue, rel=1e-9)


def test_core_heuristic():
    text = "She sold 48/2 = 24 clips. A well-known and/or **bold** fact. It costs $100 and $15. So $x^2 + \\frac{a}{b}$ is 5-3."
    core = core_char_mask(text)
    marked = "".join(c if k else "_" for c, k in zip(text, core))
    assert "48/2_=_24" in marked  # digits and operators between numbers (spaces outside math are not core)
    assert "well-known" not in marked and "and/or" not in marked and "**" not in marked  # prose punctuation
    assert "$100 and $15" not in marked and "100" in marked  # currency is not a formula, its digits are core
    assert "$x^2 + \\frac{a}{b}$" in marked and "5-3" in marked
    # per token: any non-space core character makes the token core; a space token inside math is core
    assert token_core_labels([" the", " 72", " apples", "$x", " ", "+1$", " so"]) == [
        False,
        True,
        False,
        True,
        True,
        True,
        False,
    ]


def test_class_and_kept_statistics_by_hand():
    p = np.array([0.9, 0.05, 0.5, 0.2, 0.08])
    is_core = np.array([True, False, True, False, True])
    kept = p > 0.1
    stats = class_stats(p, is_core, kept)
    assert stats["core"]["tokens"] == 3 and stats["core"]["mean_p"] == pytest.approx((0.9 + 0.5 + 0.08) / 3)
    assert stats["trivial"]["mean_p"] == pytest.approx(0.125)
    assert stats["core"]["dropped_fraction"] == pytest.approx(1 / 3)  # 0.08
    assert stats["trivial"]["dropped_fraction"] == pytest.approx(1 / 2)  # 0.05
    assert stats["trivial_share_of_dropped"] == pytest.approx(1 / 2)
    summary = kept_summary(p, kept.astype(float), is_core)
    nll = -np.log(p)
    assert summary["kept_fraction"] == pytest.approx(3 / 5) and summary["weight_mass"] == pytest.approx(3 / 5)
    assert summary["loss_mass_kept"] == pytest.approx(nll[kept].sum() / nll.sum())
    assert summary["mean_p_dropped"] == pytest.approx((0.05 + 0.08) / 2)
    dft = kept_summary(p, p)  # DFT weights: weight mass is the mean p
    assert dft["weight_mass"] == pytest.approx(p.mean()) and dft["kept_fraction"] == 1.0


def test_protection_candidates_by_hand():
    # token 7: in all 4 rows, every occurrence dropped in 3 -> candidate; token 8: in all rows, kept in 3 -> not;
    # token 9: dropped everywhere but in 2 rows of 4 -> not at min_rows 0.9; token 5: kept once of twice in row 0
    ids = [[7, 8, 5, 5], [7, 8, 9], [7, 7, 8, 9], [7, 8]]
    kept = [[0, 1, 1, 0], [0, 0, 0], [0, 1, 1, 0], [1, 1]]
    found = protection_candidates(ids, [np.array(k, bool) for k in kept], min_rows=0.9, min_dropped=0.5)
    # row 2 keeps one of its two 7s, so 7 is dropped in rows 0 and 1 only: 2 of 4 = 0.5
    assert found == [{"token_id": 7, "rows": 4, "row_share": 1.0, "dropped_rows": 2, "dropped_share": 0.5}]
    assert protection_candidates(ids, [np.array(k, bool) for k in kept], min_rows=0.9, min_dropped=0.6) == []
    loose = protection_candidates(ids, [np.array(k, bool) for k in kept], min_rows=0.5, min_dropped=0.5)
    assert [c["token_id"] for c in loose] == [9, 7]  # the largest dropped share first


def test_config_is_the_command_line():
    (config,) = build_parser().parse_args_into_dataclasses(
        args=["--model", "m", "--data", "d", "--tau", "0.1", "0.2", "--protected-strings", "\\boxed", "####",
              "--keep-end-of-turn", "--max-length", "64", "--skip-bad-rows"],
        look_for_args_file=False,
    )
    assert config.taus == [0.1, 0.2] and config.tau == 0.1
    assert config.protected_strings == ["\\boxed", "####"] and config.keep_end_of_turn and config.skip_bad_rows
    assert config.max_length == 64 and config.limit == 200  # a default from the dataclass
    with pytest.raises(ValueError, match="candidate-min-rows"):
        InspectConfig(model="m", data="d", candidate_min_rows=0.0)
    with pytest.raises(ValueError, match=r"protected_strings\[0\]"):
        InspectConfig(model="m", data="d", protected_strings=[""])


def test_read_labels_names_file_line_and_field(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("row,position,class\n0,5,core\n0,6,Trivial\n1,7,maybe\n")
    with pytest.raises(ValueError, match=r"labels.csv, line 4, field 'class': expected one of .*, found str 'maybe'"):
        read_labels(str(path))
    path.write_text("row,position,class\n0,5,core\n0,x,trivial\n")
    with pytest.raises(ValueError, match=r"line 3, field 'position': expected an integer >= 0, found str 'x'"):
        read_labels(str(path))
    path.write_text("row,position,class\n0,5,core\n0,6,Trivial\n")
    assert read_labels(str(path)) == {(0, 5): True, (0, 6): False}


# ------------------------------------------------------------------------------------------------- the report

TAU = 0.002  # about 1/vocab: the random tiny model's p straddles it, so the report has kept AND dropped tokens


class TokenSpans(HTMLParser):
    """Collects the token spans of each example article."""

    def __init__(self):
        super().__init__()
        self.examples: dict[int, list[dict]] = {}
        self.current = None
        self.external = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key) and not attrs[key].startswith(("data:", "#")):
                self.external.append(attrs[key])
        if tag == "article":
            self.current = int(attrs["data-row"])
            self.examples[self.current] = []
        elif tag == "span" and "tok" in attrs.get("class", "").split() and self.current is not None:
            self.examples[self.current].append(attrs)


@pytest.fixture(scope="module")
def report(tiny_model_dir, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect")
    config = InspectConfig(
        model=str(tiny_model_dir),
        data=str(shared_data / "sft_mix" / "train.jsonl"),
        taus=[TAU, 0.1],
        limit=4,
        show=4,
        max_length=512,
        batch_size=2,
        output_dir=str(out),
    )
    paths = run(config)
    with open(paths["csv"], newline="") as f:
        tokens = list(csv.DictReader(f))
    return config, paths, tokens


def test_html_has_one_span_per_supervised_token_with_the_rule_marks(report):
    _config, paths, tokens = report
    html = paths["html"].read_text()
    parser = TokenSpans()
    parser.feed(html)
    assert parser.external == []  # opens with no network: no external script, style or image
    assert "data:image/png;base64," in html
    assert parser.examples, "no example rendered"
    kept_total = dropped_total = 0
    for row, spans in parser.examples.items():
        expected = [t for t in tokens if int(t["row"]) == row]
        assert len(spans) == len(expected) > 0
        for span, token in zip(spans, expected):
            p = float(token["p"])
            assert float(span["data-p"]) == pytest.approx(p, abs=5e-5)
            dropped = "dropped" in span["class"].split()
            assert dropped == (p <= TAU)  # ProFit keeps p > tau strictly
            assert dropped == (float(token["w_profit"]) == 0)  # the CSV's weight is the trainer's token_weights
            # one flag per tabulated tau, in table order: 0.002, 0.05, 0.1, 0.2, 0.3, 0.5
            assert span["data-k"] == "".join("1" if p > t else "0" for t in (TAU, 0.05, 0.1, 0.2, 0.3, 0.5))
            kept_total += not dropped
            dropped_total += dropped
    assert kept_total > 0 and dropped_total > 0


def test_p_matches_an_independent_forward_pass(report, tiny_model_dir):
    """The supervised tokens are the completion of the chat-templated row, and p is softmax of the full logits."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from profit_rl.inspect.token_scores import load_rows

    config, _paths, tokens = report
    rows = load_rows(config)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    row = int(tokens[0]["row"])
    prompt_ids = tok.apply_chat_template(
        rows[row]["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    full_ids = tok.apply_chat_template(rows[row]["prompt"] + rows[row]["completion"], tokenize=True, return_dict=True)[
        "input_ids"
    ]
    full_ids = full_ids[: config.max_length]
    with torch.no_grad():
        log_probs = model(torch.tensor([full_ids])).logits[0].float().log_softmax(-1)
    mine = [t for t in tokens if int(t["row"]) == row]
    assert [int(t["position"]) for t in mine] == list(range(len(prompt_ids), len(full_ids)))
    assert [int(t["token_id"]) for t in mine] == full_ids[len(prompt_ids) :]
    expected = [log_probs[pos - 1, full_ids[pos]].item() for pos in range(len(prompt_ids), len(full_ids))]
    assert [float(t["log_p"]) for t in mine] == pytest.approx(expected, abs=1e-4)
    assert "".join(t["token"] for t in mine) == tok.decode(full_ids[len(prompt_ids) :])


def test_summary_matches_the_csv(report):
    _config, paths, tokens = report
    summary = json.loads(paths["json"].read_text())
    p = np.array([float(t["p"]) for t in tokens])
    assert summary["supervised_tokens"] == len(tokens)
    by_tau = {row["tau"]: row for row in summary["table"]}
    assert sorted(by_tau) == [TAU, 0.05, 0.1, 0.2, 0.3, 0.5]
    assert by_tau[TAU]["kept_fraction"] == pytest.approx((p > TAU).mean(), abs=1e-6)
    core = np.array([t["class"] == "core" for t in tokens])
    assert summary["classes"]["core"]["tokens"] == core.sum() > 0
    assert summary["classes"]["core"]["mean_p"] == pytest.approx(p[core].mean(), rel=1e-4)
    eos = np.array([t["token"] == "<|im_end|>" for t in tokens])  # the tiny model's end-of-turn token
    assert summary["eos"]["tokens"] == eos.sum() > 0
    assert summary["eos"]["dropped_fraction"] == pytest.approx((p[eos] <= TAU).mean())
    # the CSV rounds p to 6 digits, which can tie a few pairs the full-precision run does not
    assert summary["classes"]["mann_whitney"]["u"] == pytest.approx(mann_whitney_u(p[core], p[~core])["u"], rel=1e-4)


def test_protection_candidates_match_the_csv(report):
    _config, paths, tokens = report
    summary = json.loads(paths["json"].read_text())
    rows = {}
    for t in tokens:  # per row: token id -> whether any of its occurrences is kept by profit at the report's tau
        kept = rows.setdefault(t["row"], {})
        kept[t["token_id"]] = kept.get(t["token_id"], False) or float(t["w_profit"]) > 0
    n = len(rows)
    ids = {i for kept in rows.values() for i in kept}
    expected = set()
    for i in ids:
        containing = [kept[i] for kept in rows.values() if i in kept]
        if len(containing) >= 0.9 * n and sum(not k for k in containing) >= 0.5 * len(containing):
            expected.add(int(i))
    assert expected, "the tiny model's report should propose something at this tau"
    assert {c["token_id"] for c in summary["protect_candidates"]} == expected
    for c in summary["protect_candidates"]:
        assert c["token"] in c["context"] and 0 <= c["mean_p"] <= 1
    assert summary["protected_tokens"] == 0 and all(t["protected"] == "0" for t in tokens)
    html = paths["html"].read_text()
    assert "Tokens to consider protecting" in html and html.count("<code>") > len(expected)


@pytest.mark.slow
def test_cli_end_to_end_with_a_user_labelling(report, tiny_model_dir, shared_data, tmp_path, capsys):
    _config, _paths, tokens = report
    # The user's labelling: the first run's token_stats.csv with every token relabelled "core" except the first row.
    labels = tmp_path / "labels.csv"
    first = tokens[0]["row"]
    with open(labels, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "position", "class"])
        for t in tokens:
            writer.writerow([t["row"], t["position"], "trivial" if t["row"] == first else "core"])
    out = tmp_path / "out"
    argv = [
        "--model",
        str(tiny_model_dir),
        "--data",
        str(shared_data / "sft_mix" / "train.jsonl"),
        "--limit",
        "4",
        "--tau",
        str(TAU),
        "--max-length",
        "512",
        "--labels",
        str(labels),
        "--output-dir",
        str(out),
        "--show",
        "2",
        "--protected-strings",
        "\\boxed",
        "--keep-end-of-turn",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [
        str(out / name) for name in ("inspect.html", "token_stats.csv", "p_histogram.png", "summary.json")
    ]
    summary = json.loads((out / "summary.json").read_text())
    n_first = sum(t["row"] == first for t in tokens)
    assert summary["classes"]["trivial"]["tokens"] == n_first
    assert summary["classes"]["core"]["tokens"] == len(tokens) - n_first
    assert summary["unlabelled_tokens"] == 0
    assert (out / "p_histogram.png").read_bytes()[:4] == b"\x89PNG"

    # protection: the tokens covering "\\boxed" and the end-of-turn token keep weight 1 under every rule
    with open(out / "token_stats.csv", newline="") as f:
        protected_run = list(csv.DictReader(f))
    assert [t["token"] for t in protected_run] == [t["token"] for t in tokens]
    by_row = {}
    for t in protected_run:
        by_row.setdefault(t["row"], []).append(t)
    boxed_rows = 0
    for row in by_row.values():
        text = "".join(t["token"] for t in row)
        marked = "".join(t["token"] if t["protected"] == "1" and t["token"] != "<|im_end|>" else "|" for t in row)
        assert all(t["protected"] == "1" for t in row if t["token"] == "<|im_end|>")  # truncated rows have none
        assert marked.count("\\boxed") == text.count("\\boxed")  # every occurrence, covered by protected tokens
        assert all("\\boxed" in part for part in marked.split("|") if part)  # and nothing else
        boxed_rows += "\\boxed" in text
    assert boxed_rows > 0 and any(t["token"] == "<|im_end|>" for t in protected_run)
    weights = [name for name in protected_run[0] if name.startswith("w_")]
    assert all(float(t[w]) == 1 for t in protected_run if t["protected"] == "1" for w in weights)
    n_protected = sum(t["protected"] == "1" for t in protected_run)
    assert summary["protected_tokens"] == n_protected
    assert summary["eos"]["dropped_fraction"] == 0
    kept = sum(float(t["p"]) > TAU or t["protected"] == "1" for t in protected_run)
    first = summary["table"][0]
    assert first["tau"] == TAU and first["kept_fraction"] == pytest.approx(kept / len(tokens))
