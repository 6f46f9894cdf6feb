"""Two "machines" on localhost: `accelerate launch --num_machines 2 --machine_rank {0,1}`, one process each, gloo.

Each rank is its own `accelerate launch` command through a shipped config (recipes/accelerate_configs/), as on two
nodes (docs/multinode.md): `--num_processes` is the total over all machines. ddp.yaml and fsdp.yaml (FSDP2) run on a
machine without GPUs as gloo ranks; the ZeRO configs need DeepSpeed and GPUs (make gpu-check).
The run must reach the same weights as the two-process run on one machine, and every rank must report a world of 2:
a lost rank hangs or fails the launch (the timeout kills it), a rank that ran alone reports a world of 1.

`make test-multinode` runs this file (2 CPU-minutes, mostly process start-up; 4.6 min wall on the shared 2 cores);
`make test` leaves it out.
"""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.multinode]

EMBEDDED_MODEL = REPO / "profit_rl" / "embedded" / "base_model"  # answers some problems: GRPO gets non-zero advantages
PROBLEMS = [  # the embedded task's problems (profit_rl.embedded.build --data-only --seed 0, its first GRPO rows)
    ("Maya has 329 stickers. She loses 8. She buys 9. Then she sells 2. How many stickers does Maya have now?", "328"),
    ("Maya has 671 balloons. She finds 3. Then she buys 1. She gives away 9. Then she wins 2. How many balloons does "
     "Maya have now?", "668"),
    ("Liam has 819 flowers. He loses 1. He buys 1. He wins 3. How many flowers does Liam have now?", "822"),
    ("Tom has 617 tickets. He finds 7. He buys 7. How many tickets does Tom have now?", "631"),
    ("Tom has 306 books. He loses 7. He buys 7. He wins 2. He sells 8. How many books does Tom have now?", "300"),
    ("Nora has 773 cookies. She finds 7. Then she buys 4. She gives away 8. How many cookies does Nora have now?", "776"),
    ("Ava has 841 pencils. She loses 3. She gives away 5. Then she sells 6. How many pencils does Ava have now?", "827"),
    ("Sam has 616 tickets. He finds 5. He buys 8. How many tickets does Sam have now?", "629"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict:
    e = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
             CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def machine(rank: int, port: int, config: str) -> list[str]:
    """The launcher of one machine of two (docs/multinode.md), on localhost; fp32 (the configs say bf16 for GPUs)."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(REPO / "recipes" / "accelerate_configs" / config), "--num_machines", "2", "--num_processes", "2",
            "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
            "--mixed_precision", "no"]


def two_machines(args: list[str], config: str = "ddp.yaml", timeout: float = 300) -> list[str]:
    """Both machines' launches at once; their outputs, rank 0 first. Both must exit 0 within `timeout`."""
    port = free_port()
    procs = [subprocess.Popen(machine(rank, port, config) + args, cwd=REPO, env=env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True) for rank in (0, 1)]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=timeout)[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("a machine did not finish: a rank was lost or never joined")
    for rank, (proc, out) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, f"machine {rank} exited {proc.returncode}:\n{out[-4000:]}"
    return outputs


def one_machine(args: list[str], prefix: list[str]) -> str:
    proc = subprocess.run([sys.executable, *prefix, *args], cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def assert_same_trained_weights(a_dir, b_dir, initial_dir) -> None:
    a, b, initial = (load_file(d / "model.safetensors") for d in (a_dir, b_dir, initial_dir))
    assert any((a[k] - initial[k]).abs().max() > 1e-6 for k in initial), "nothing trained: the comparison is empty"
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4, msg=name)


def test_sft_on_two_machines_matches_two_processes(tiny_model_dir, tmp_path):
    from test_ddp import sft_command, write_data

    data = tmp_path / "data.jsonl"
    write_data(data)
    local = tmp_path / "two-processes"  # test_ddp's two-process run (which matches one process)
    one_machine(sft_command(tiny_model_dir, data, local, 2, 1),
                ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                 "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())])
    for config in ("ddp.yaml", "fsdp.yaml"):
        two = tmp_path / f"two-machines-{config}"
        logs = two_machines(sft_command(tiny_model_dir, data, two, 2, 1), config)
        for rank, log in enumerate(logs):  # each machine's own process, in a world of both
            assert f"SFT process rank {rank} of 2" in log, (config, log[-3000:])
        assert torch.load(two / "training_args.bin", weights_only=False).world_size == 2
        assert_same_trained_weights(two, local, tiny_model_dir)


def test_grpo_on_two_machines_matches_torchrun(tmp_path):
    rl = tmp_path / "rl.jsonl"
    rl.write_text("".join(json.dumps({"problem": p, "answer": a}) + "\n" for p, a in PROBLEMS))
    args = lambda out: [  # noqa: E731
        "-m", "profit_rl.grpo", "--config", str(REPO / "recipes" / "embedded" / "grpo" / "math.yaml"),
        "--model_name_or_path", str(EMBEDDED_MODEL), "--dataset_name", str(rl), "--decontaminate_against", "none",
        "--max_steps", "2", "--save_steps", "2", "--num_generations", "4", "--per_device_train_batch_size", "2",
        "--max_completion_length", "96", "--logging_steps", "1", "--reward_workers", "1", "--warmup_steps", "0",
        "--learning_rate", "1e-3", "--output_dir", str(out)]
    two, local = tmp_path / "two-machines", tmp_path / "torchrun"
    two_machines(args(two))
    one_machine(args(local)[2:], ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                                  str(free_port()), "-m", "profit_rl.grpo"])
    stats = {json.loads(p.read_text())["rank"]: json.loads(p.read_text()) for p in (two / "reward_stats").glob("rank*.json")}
    assert sorted(stats) == [0, 1] and all(s["world_size"] == 2 for s in stats.values()), stats
    assert all(s["items"] == 4 for s in stats.values())  # each rank scored its half of 2 steps x 4 completions
    assert sum(s["correct"] for s in stats.values()) > 0  # some reward: the advantages (and the update) are not zero
    assert_same_trained_weights(two / "checkpoint-2", local / "checkpoint-2", EMBEDDED_MODEL)


def test_a_lost_rank_never_finishes(tiny_model_dir, tmp_path):
    """Machine 0 without machine 1 waits at the rendezvous and writes nothing: `two_machines` times it out and fails,
    instead of a one-rank run passing for a two-machine one."""
    from test_ddp import sft_command, write_data

    data = tmp_path / "data.jsonl"
    write_data(data)
    out = tmp_path / "alone"
    proc = subprocess.Popen(machine(0, free_port(), "ddp.yaml") + sft_command(tiny_model_dir, data, out, 2, 1), cwd=REPO,
                            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "model.safetensors").exists()
