"""`make probes`: the plan's commands, the verdict rule, and the report on results written the way the steps write them."""

import json
import math
import subprocess

import pytest

from profit_rl.pipeline.probes import main as probes_main
from profit_rl.pipeline.probes_report import (ACCURACY, FORGETTING, OWN, REFERENCE, Claim, claims_for, interval,
                                              judge, verdict, write)
from profit_rl.pipeline.sweep import Cell
from profit_rl.pipeline.sweep_report import MissingResultError

from conftest import REPO, folder_held_by_another_pipeline  # noqa: E402  (defined once)


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def dry_run(tmp_path, capsys, *argv) -> list[list[str]]:
    assert probes_main(["--dry-run", "--cpus", "2", "--output-root", str(tmp_path), *argv]) == 0
    out = capsys.readouterr().out
    assert not any(tmp_path.iterdir())  # nothing was run or written
    return [line.split() for line in out.splitlines() if line and not line.startswith("#")], out


def test_make_probes_is_five_seeds_of_four_methods_with_grpo_from_profit_and_sft(tmp_path, capsys):
    out = subprocess.run(["make", "-n", "probes", "DRY_RUN=1"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cmd = out.stdout[out.stdout.index("-m profit_rl.pipeline.probes"):].split()
    assert flag(cmd, "--seeds") == "5" and "--dry-run" in cmd

    commands, text = dry_run(tmp_path, capsys)
    sft = [c for c in commands if "profit_rl.sft" in c]
    grpo = [c for c in commands if "profit_rl.grpo" in c]
    assert len(sft) == 4 * 5 and len(grpo) == 2 * 5
    assert {flag(c, "--config").split("/")[-1] for c in sft} == {"profit.yaml", "sft.yaml", "profit-protected.yaml"}
    assert sorted(flag(c, "--selection") for c in sft if flag(c, "--selection")) == ["dft"] * 5
    assert {flag(c, "--output_dir").split("/probes/")[1].split("/")[0] for c in grpo} == {"profit", "sft"}
    # every model (base, 20 SFT, 10 GRPO) gets the in-distribution eval and the four probe steps
    models = 1 + 20 + 10
    evals = [c for c in commands if "profit_rl.evals.evaluate" in c]
    assert sum(flag(c, "--benchmarks") == "embedded" for c in evals) == models
    assert sum(flag(c, "--benchmarks") == "embedded-long,embedded-surface" for c in evals) == models
    retention = [c for c in evals if flag(c, "--benchmarks") == "embedded-retention"]
    assert len(retention) == models and all("--no-chat-template" in c for c in retention)
    forgetting = [c for c in commands if "forgetting" in c]
    assert len(forgetting) == models and {flag(c, "--base-model") for c in forgetting} == {
        str(tmp_path / "embedded" / "base" / "model")}
    probes_dir = str(tmp_path / "embedded" / "sweep" / "probes" / "probe-data")
    reference = [c for c in commands if "profit_rl.embedded.reference_nll" in c]
    assert len(reference) == models and {flag(c, "--probes-dir") for c in reference} == {probes_dir}
    assert {flag(c, "--base-dir") for c in reference} == {str(tmp_path / "embedded" / "base")}
    assert all(flag(c, "--data-dir") == probes_dir for c in evals if flag(c, "--benchmarks") != "embedded")
    build, = [c for c in commands if "build" in c and "profit_rl.embedded.probe_sets" in c]
    assert flag(build, "--out-dir") == probes_dir
    report = commands[-1]
    assert "profit_rl.pipeline.probes_report" in report and flag(report, "--grpo-methods") == "profit,sft"
    assert text.splitlines()[0].startswith("# 189 steps on 2 CPU slots")


def test_the_plan_refuses_what_it_cannot_probe(tmp_path, capsys):
    assert probes_main(["--dry-run", "--model", "Qwen3-0.6B-Base", "--output-root", str(tmp_path)]) == 2
    assert "profit-rl probes: --model Qwen3-0.6B-Base: the probes are sets of the embedded task" in capsys.readouterr().err
    assert probes_main(["--dry-run", "--methods", "profit,sft", "--grpo-methods", "dft", "--output-root",
                        str(tmp_path)]) == 2
    assert "--grpo-methods dft: not in --methods" in capsys.readouterr().err
    commands, _ = dry_run(tmp_path, capsys, "--methods", "profit,sft", "--grpo-methods", "", "--seeds", "2")
    assert not [c for c in commands if "profit_rl.grpo" in c] and len([c for c in commands if "profit_rl.sft" in c]) == 4


def test_probes_refuse_while_a_pipeline_holds_the_models_folder(tmp_path, capsys):
    """The probes share outputs/embedded/base (the data step) with the pipeline and the sweep: one lock for all three."""
    with folder_held_by_another_pipeline(tmp_path / "embedded"):
        code = probes_main(["--methods", "sft", "--grpo-methods", "", "--seeds", "1", "--output-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "in use by" in err and "profit-rl pipeline" in err, err
    assert not (tmp_path / "embedded" / "base").exists()  # nothing ran


def test_the_verdict_follows_the_95_percent_t_interval():
    ci = interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, sample std sqrt(2.5), t(0.975, 4) = 2.776
    assert ci["mean"] == 3.0 and ci["high"] - 3.0 == pytest.approx(2.776 * math.sqrt(2.5) / math.sqrt(5))
    assert verdict(ci, +1) == "agrees" and verdict(ci, -1) == "disagrees"
    assert verdict(interval([-1.0, 1.0, 0.5]), +1) == "cannot tell"
    assert verdict(interval([-3.0, -2.0, -2.5]), -1) == "agrees"
    assert verdict(interval([5.0]), +1) == "cannot tell"  # one seed: no interval


def test_claims_pair_by_seed_and_the_gap_is_a_difference_of_differences():
    values = {}
    for seed, (p_id, s_id, p_long, s_long) in enumerate([(0.70, 0.80, 0.50, 0.55), (0.72, 0.81, 0.52, 0.50),
                                                          (0.69, 0.80, 0.49, 0.51)]):
        values.update({("profit", "sft", seed, "in_distribution"): p_id, ("sft", "sft", seed, "in_distribution"): s_id,
                       ("profit", "sft", seed, "long"): p_long, ("sft", "sft", seed, "long"): s_long})
    claims = [Claim("a", "", "in_distribution", +1), Claim("b", "", "long", +1),
              Claim("c", "", "long", +1, gap_probe="in_distribution")]
    rows = {r["claim"]["name"]: r for r in judge(values, claims, seeds=3)}
    assert [r["stage"] for r in rows.values()] == ["sft"] * 3  # no GRPO values: no GRPO rows
    assert rows["a"]["difference"]["values"] == pytest.approx([-0.10, -0.09, -0.11])
    assert rows["a"]["verdict"] == "disagrees"
    assert rows["b"]["verdict"] == "cannot tell"
    assert rows["c"]["difference"]["values"] == pytest.approx([0.05, 0.11, 0.09])
    assert rows["c"]["verdict"] == "agrees"
    names = [c.name for c in claims_for(("profit", "sft", "profit-protected"))]
    assert "above-dft-long" not in names and "retention (protected)" in names


def png_size(path) -> tuple[int, int]:
    """Width and height of a PNG, from its header."""
    head = path.read_bytes()[16:24]
    return int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")


def write_results(folder, benchmark, avg, own=None):
    folder.mkdir(parents=True, exist_ok=True)
    run = json.loads((folder / "results.json").read_text()) if (folder / "results.json").is_file() else {
        "benchmarks": {}}
    result = run["benchmarks"].setdefault(benchmark, {"k": 4, "n_problems": 200})
    if own:
        result.setdefault("own_metrics", {}).update(own)
    else:
        result["avg_at_k"] = avg
    (folder / "results.json").write_text(json.dumps(run))


def write_model(id_eval, probe_folder, acc: dict, nll: float, kl: float, ref: dict | None = None):
    for probe, (sub, benchmark) in ACCURACY.items():
        write_results(id_eval if sub is None else probe_folder / sub, benchmark, acc[probe])
    for probe, (sub, benchmark, metric) in OWN.items():
        write_results(probe_folder / sub, benchmark, None, {metric: acc[probe] / 2})
    (probe_folder / "forgetting").mkdir(parents=True, exist_ok=True)
    (probe_folder / "forgetting" / "forgetting.json").write_text(json.dumps(
        {"nll_per_token": nll, "kl_from_base_per_token": kl, "base_nll_per_token": 0.5}))
    ref = ref or {name: nll for name in ("in_distribution", "long", "surface", "long6")}
    (probe_folder / "reference-nll").mkdir(parents=True, exist_ok=True)
    (probe_folder / "reference-nll" / "reference_nll.json").write_text(json.dumps(
        {"sets": {name: {"core_nll_per_token": ref[name], "core_nll_by_step": [0.1] * 5 + [ref["long6"], 0.1]}
                  for name in ("in_distribution", "long", "surface")}}))


def test_report_writes_the_claim_table_the_json_and_the_figure(tmp_path):
    root = tmp_path / "sweep" / "probes"
    write_model(root / "base-model" / "eval", root / "base-model",
                {p: 0.3 for p in (*ACCURACY, *OWN)}, nll=0.5, kl=0.0)
    for seed in range(3):
        for method, shift in (("profit", 0.05), ("sft", 0.0)):
            folder = Cell("probes", method, seed).folder(root.parent)
            acc = {p: 0.6 + shift + 0.01 * seed for p in (*ACCURACY, *OWN)}
            # reference NLL: ProFit 0.02 lower on longer chains, level in distribution and on unseen surface
            ref = {"in_distribution": 0.1 + 0.01 * seed, "surface": 0.3 + 0.01 * seed,
                   "long": 0.2 - 0.4 * shift + 0.001 * seed, "long6": 0.5 + shift + 0.001 * seed}
            write_model(folder / "eval", folder / "probes-sft", acc, nll=0.6 - shift, kl=0.1 - shift + 0.001 * seed,
                        ref=ref)
            if method == "profit":  # GRPO from profit only: its claims have no GRPO rows
                write_model(folder / "eval-grpo", folder / "probes-grpo", acc, nll=0.6, kl=0.1)
    path = write(root, ("profit", "sft"), ("profit",), 3)
    text = path.read_text()
    assert "| ProFit above SFT on chains longer than any SFT row | paper | after SFT |" in text
    assert "+5.0 [+5.0, +5.0]" in text and "after GRPO" not in text.split("## Probes")[0]
    data = json.loads((root / "probes.json").read_text())
    verdicts = {r["claim"]["name"]: r["verdict"] for r in data["claims"]}
    assert verdicts["longer-chains"] == "agrees" and verdicts["forgetting-nll"] == "agrees"
    assert verdicts["longer-chains-steps"] == "agrees"  # the own metric, read from the long probe's results
    steps, = [r for r in data["claims"] if r["claim"]["name"] == "longer-chains-steps"]
    assert steps["difference"]["mean"] == pytest.approx(0.025)
    assert verdicts["longer-chains-gap"] == "cannot tell"  # the same gain everywhere: the gap is exactly 0
    assert set(FORGETTING) | set(REFERENCE) <= {v["probe"] for v in data["values"]}
    assert verdicts["longer-chains-likelihood"] == "agrees" and verdicts["longer-chains-likelihood-gap"] == "agrees"
    assert verdicts["unseen-surface-likelihood"] == "cannot tell"  # level: the paired differences are all 0
    assert verdicts["longer-chains-sixth-step"] == "disagrees"  # ProFit's sixth step 0.05 nats above SFT's
    gap, = [r for r in data["claims"] if r["claim"]["name"] == "longer-chains-likelihood-gap"]
    assert gap["difference"]["mean"] == pytest.approx(-0.02)
    assert png_size(root / "report" / "probes.png") == (1200, 360)  # no claim after GRPO (sft had none): one row
    # a missing result stops the report with the folder's name
    (Cell("probes", "sft", 2).folder(root.parent) / "probes-sft" / "forgetting" / "forgetting.json").unlink()
    from profit_rl.pipeline.probes_report import main as report_main

    assert report_main([str(root), "--methods", "profit,sft", "--grpo-methods", "profit", "--seeds", "3"]) == 1
    # a reference_nll.json without the figures by step stops it too, saying what to delete
    write_model(root / "base-model" / "eval", root / "base-model", {p: 0.3 for p in (*ACCURACY, *OWN)}, 0.5, 0.0)
    (root / "base-model" / "reference-nll" / "reference_nll.json").write_text(json.dumps(
        {"sets": {name: {"core_nll_per_token": 0.1} for name in ("in_distribution", "long", "surface")}}))
    with pytest.raises(MissingResultError, match="no long figure for step 6.*delete .*reference-nll"):
        write(root, ("profit", "sft"), ("profit",), 3)


def test_the_smollm2_plan_is_sft_eval_and_forgetting_per_method_and_seed(tmp_path, capsys):
    """`make probes-smollm2`: profit-protected and sft x 3 seeds, the in-distribution eval and the forgetting probe on
    general text for each model and the base model, no GRPO, no embedded-only probe; a dry run needs no weights."""
    out = subprocess.run(["make", "-n", "probes-smollm2", "DRY_RUN=1"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    cmd = out.stdout[out.stdout.index("-m profit_rl.pipeline.probes"):].split()
    assert flag(cmd, "--model") == "smollm2-135m" and flag(cmd, "--seeds") == "3" and "--dry-run" in cmd

    commands, text = dry_run(tmp_path, capsys, "--model", "smollm2-135m", "--grpo-methods", "none")
    root = tmp_path / "smollm2-135m"
    model, probes = str(root / "model"), root / "sweep" / "probes"
    steps = [line.split("]", 1)[1].split(" ->")[0].strip() for line in text.splitlines() if line.startswith("# [")]
    cells = [(m, s) for s in range(3) for m in ("profit-protected", "sft")]
    assert steps == ["data: data/model", "data: data", "data: data/probes", "eval: eval/probes/base",
                     "eval: eval/probes/base/forgetting",
                     *[x for m, s in cells for x in (f"sft: sft/probes/{m}/seed-{s}", f"eval: eval/probes/{m}/seed-{s}",
                                                       f"eval: eval/probes/{m}/seed-{s}/sft/forgetting")],
                     "report: probes/report"]
    sft = [c for c in commands if "profit_rl.sft" in c]
    assert [(flag(c, "--config").split("/")[-2:], flag(c, "--seed")) for c in sft] == [
        (["sft", f"{m}.yaml"], str(s)) for m, s in cells]
    assert all(flag(c, "--model_name_or_path") == model for c in sft)
    evals = [c for c in commands if "profit_rl.evals.evaluate" in c]
    assert len(evals) == 7 and {flag(c, "--benchmarks") for c in evals} == {"embedded"}
    forgetting = [c for c in commands if "forgetting" in c]
    assert len(forgetting) == 7 and {flag(c, "--base-model") for c in forgetting} == {model}
    assert {flag(c, "--data") for c in forgetting} == {str(probes / "probe-data" / "general.jsonl")}
    assert all(flag(c, "--end-token") == "none" for c in forgetting)
    text_step, = [c for c in commands if "profit_rl.data.heldout_text" in c]
    assert flag(text_step, "--out-dir") == str(probes / "probe-data")
    assert not [c for c in commands if "profit_rl.grpo" in c or "embedded-long" in " ".join(c)]
    report = commands[-1]
    assert flag(report, "--model") == "smollm2-135m" and flag(report, "--methods") == "profit-protected,sft"


def test_the_smollm2_report_judges_forgetting_by_seed_and_by_document(tmp_path):
    root = tmp_path / "sweep" / "probes"

    def model(id_eval, probe_folder, acc, nll):
        write_results(id_eval, "embedded", acc)
        docs = [{"id": f"d{i}", "n_tokens": 10, "nll": nll + 0.01 * i, "base_nll": 2.0, "kl": nll - 2.0 + 0.01 * i}
                for i in range(5)]
        (probe_folder / "forgetting").mkdir(parents=True, exist_ok=True)
        (probe_folder / "forgetting" / "forgetting.json").write_text(json.dumps(
            {"nll_per_token": nll + 0.02, "kl_from_base_per_token": nll - 1.98, "base_nll_per_token": 2.0,
             "documents": docs}))

    model(root / "base-model" / "eval", root / "base-model", 0.02, 2.0)
    for seed in range(3):
        for method, nll in (("profit-protected", 2.1 + 0.01 * seed), ("sft", 2.2 - 0.01 * seed)):
            folder = Cell("probes", method, seed).folder(root.parent)
            model(folder / "eval", folder / "probes-sft", 0.2 + 0.01 * seed, nll)
    text = write(root, ("profit-protected", "sft"), (), 3, "smollm2-135m").read_text()
    assert png_size(root / "report" / "probes.png") == (1200, 360)  # no GRPO: one row of panels, none empty
    assert text.startswith("Probes run: in distribution") and "Not run: longer chains, unseen surface" in text
    data = json.loads((root / "probes.json").read_text())
    rows = {r["claim"]["name"]: r for r in data["claims"]}
    assert set(rows) == {"in-distribution (protected)", "forgetting-nll (protected)", "forgetting-kl (protected)",
                         "forgetting-nll (protected) (per document)", "forgetting-kl (protected) (per document)"}
    docs = rows["forgetting-nll (protected) (per document)"]
    # per document: (2.1 + 0.01 s) - (2.2 - 0.01 s) averaged over seeds 0-2 = -0.08, the same on every document
    assert docs["difference"]["n"] == 5 and docs["difference"]["values"] == pytest.approx([-0.08] * 5)
    assert rows["forgetting-nll (protected)"]["verdict"] == "agrees"  # below SFT: what the paper predicts
    assert "ProFit (\\boxed protected)'s NLL on held-out general text below SFT's" in text
    assert "paired by document (5), mean over seeds" in text
