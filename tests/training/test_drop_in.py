"""ProFitSFTTrainer as a drop-in for TRL's SFTTrainer: a plain SFTConfig trains exactly as TRL, loss_type="dft" is the
DFT rule, and a rule that keeps (almost) no token stops the run instead of training nothing in silence."""

import logging

import pytest
import torch
from trl import SFTConfig, SFTTrainer

from profit_rl import ProFitConfig, ProFitSFTTrainer
from profit_rl.trainer import EMPTY_SELECTION_STEPS, EmptySelectionError

from tests.training.test_trainer import MIXED_TAU, assert_same, config, first_batch_loss_and_grads, params, sft_rows


@pytest.mark.parametrize("loss_type, rule", [("nll", "all"), ("dft", "dft")])
def test_a_plain_sft_config_trains_exactly_as_trl_and_says_which_rule(tiny_model_dir, tmp_path, caplog, loss_type,
                                                                      rule):
    caplog.set_level(logging.INFO, logger="profit_rl.trainer")
    args = config(tmp_path / "a", SFTConfig, loss_type=loss_type, max_steps=2)
    ours = ProFitSFTTrainer(str(tiny_model_dir), args=args, train_dataset=sft_rows())
    said = [r.getMessage() for r in caplog.records if r.name == "profit_rl.trainer"]
    assert len(said) == 1 and f"selection={rule!r}" in said[0] and "SFTConfig" in said[0], said
    assert ours.rule.selection == rule and type(ours.args) is SFTConfig
    trl = SFTTrainer(str(tiny_model_dir), args=config(tmp_path / "b", SFTConfig, loss_type=loss_type, max_steps=2),
                     train_dataset=sft_rows())
    loss_ours, grads_ours = first_batch_loss_and_grads(ours)
    loss_trl, grads_trl = first_batch_loss_and_grads(trl)
    assert torch.equal(loss_ours, loss_trl)
    assert_same(grads_ours, grads_trl, atol=0)
    ours.model.zero_grad(), trl.model.zero_grad()
    ours.train(), trl.train()
    assert_same(params(ours.model), params(trl.model), atol=0)
    logged = ours.state.log_history[0]
    assert logged["loss"] == trl.state.log_history[0]["loss"]
    assert logged["profit/kept_fraction"] == 1.0  # the rule's metrics are there too: every token kept


def test_training_arguments_are_trls_too(tiny_model_dir, tmp_path):
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / "t"), report_to=[], use_cpu=True)
    trainer = ProFitSFTTrainer(str(tiny_model_dir), args=args, train_dataset=sft_rows(4))
    assert type(trainer.args) is SFTConfig and trainer.rule.selection == "all"  # TRL's conversion, TRL's loss


def test_loss_type_dft_is_the_dft_rule(tmp_path):
    args = config(tmp_path, selection="all", loss_type="dft")
    assert (args.selection, args.loss_type) == ("dft", "nll")  # TRL's loss must not weight by p a second time
    with pytest.raises(ValueError, match="selection='profit'.*selection='dft'"):
        config(tmp_path, loss_type="dft")  # ProFit's rule and DFT's weighting are two rules, not one


def test_dft_loss_type_in_a_profit_config_equals_trl_dft(tiny_model_dir, tmp_path):
    ours = ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path, selection="all", loss_type="dft"),
                            train_dataset=sft_rows())
    trl = SFTTrainer(str(tiny_model_dir), args=config(tmp_path, SFTConfig, loss_type="dft"), train_dataset=sft_rows())
    loss_ours, grads_ours = first_batch_loss_and_grads(ours)
    loss_trl, grads_trl = first_batch_loss_and_grads(trl)
    torch.testing.assert_close(loss_ours, loss_trl)
    assert_same(grads_ours, grads_trl)


# ------------------------------------------------------------------------------------------ a rule that keeps nothing


def test_a_rule_that_keeps_nothing_stops_the_run_with_what_to_do(tiny_model_dir, tmp_path):
    # tau 0.5 drops every token of a random model; accumulation 2: the verdict is per optimizer step
    trainer = ProFitSFTTrainer(
        str(tiny_model_dir), args=config(tmp_path, tau=0.5, max_steps=6, per_device_train_batch_size=2,
                                         gradient_accumulation_steps=2, learning_rate=1e-3),
        train_dataset=sft_rows())
    with pytest.raises(EmptySelectionError) as err:
        trainer.train()
    assert trainer.state.global_step == EMPTY_SELECTION_STEPS
    message = str(err.value)
    for said in ("tau=0.5", "kept 0.00%", f"last {EMPTY_SELECTION_STEPS} optimizer step", "Lower tau",
                 "model matches the data", "selection='all'", "allow_empty_selection=True"):
        assert said in message, (said, message)
    # the count is the supervised tokens of all 3 x 2 micro-batches
    loader = trainer.get_train_dataloader()
    supervised = sum(int((b["labels"][:, 1:] != -100).sum()) for b, _ in zip(loader, range(2 * EMPTY_SELECTION_STEPS)))
    assert f"(0 of {supervised})" in message


def test_a_short_run_that_keeps_nothing_stops_too_and_the_flag_trains_on(tiny_model_dir, tmp_path):
    with pytest.raises(EmptySelectionError, match="over the last 1 optimizer step"):
        ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path / "a", tau=0.5), train_dataset=sft_rows()).train()
    trainer = ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path / "b", tau=0.5, allow_empty_selection=True,
                                                               max_steps=4, learning_rate=1e-3),
                               train_dataset=sft_rows())
    trainer.train()
    assert trainer.state.global_step == 4
    assert all(log["profit/kept_fraction"] == 0.0 for log in trainer.state.log_history if "loss" in log)


def test_the_verdict_is_over_all_ranks_and_a_kept_step_resets_it(tiny_model_dir, tmp_path):
    trainer = ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path, tau=MIXED_TAU), train_dataset=sft_rows())

    def step(supervised, kept, other_rank=None):
        trainer._step_sums = torch.tensor([supervised, 0.0, kept, 0.0, 0.0, 0.0])
        if other_rank is not None:  # what gather returns with a second rank that saw `other_rank`
            trainer.accelerator.gather = lambda t: torch.cat([t, torch.tensor(other_rank, dtype=t.dtype)])
        trainer._check_selection_not_empty(max_steps=100)

    trainer._empty_streak = []
    step(100, 0)
    step(100, 0)
    step(100, 50)  # a step that kept tokens: the streak starts again
    assert trainer._empty_streak == []
    step(100, 0)
    step(100, 0, other_rank=[100.0, 60.0])  # this rank kept nothing, the other kept 60%: all ranks go on
    assert trainer._empty_streak == []
    step(0, 0, other_rank=[0.0, 0.0])  # nothing supervised anywhere: no verdict either way
    step(100, 0, other_rank=[100.0, 0.0])
    step(100, 0, other_rank=[100.0, 0.0])
    with pytest.raises(EmptySelectionError, match=r"\(0 of 600\)"):
        step(100, 0, other_rank=[100.0, 0.0])


@pytest.mark.slow
def test_two_ranks_stop_together_with_the_same_one_line_error(tiny_model_dir, tmp_path):
    """Both gloo ranks reach the verdict at the same step and exit with the message: no rank waits on a dead one."""
    import os
    import subprocess
    import sys

    from tests.training.test_ddp import sft_command, write_data

    data = tmp_path / "data.jsonl"
    write_data(data)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    cmd = sft_command(tiny_model_dir, data, tmp_path / "out", 2, 2)
    cmd[cmd.index("--tau") + 1] = "0.5"
    result = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                             "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                             "--main_process_port", "29527", *cmd],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    said = [line for line in result.stderr.splitlines() if line.startswith("profit-rl sft: selection='profit'")]
    assert len(said) == 2 and said[0] == said[1], result.stderr[-3000:]
    assert "over the last 2 optimizer step(s)" in said[0]
