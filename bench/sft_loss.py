"""Speed and memory of the ProFit loss on a Qwen3-0.6B-shaped LM head (vocab 151,936, hidden 1,024).

One forward+backward of the loss from the final hidden states, for three implementations:
  nll         TRL 1.16's fused LM head (chunked log-probs, entropy, top-1 as SFTTrainer asks) -> mean NLL
  profit      the same fused head -> token_weights + selection_loss + selection_stats summed on device (what the trainer adds)
  full_logits (batch, T, vocab) fp32 logits -> log_softmax -> ProFit mask, the paper's reference code's way

With --layers N the step starts from token ids instead: the embedding (tied to the head, as in Qwen3-0.6B-Base),
N Qwen3 decoder layers of Qwen3-0.6B-Base's shape (16 query / 8 key-value heads, head dim 128, MLP 3,072) and the
final norm run forward and backward too, so the figures include a real model's activations and its embedding gradient.

Peak memory: each (implementation, T) in a fresh subprocess, so the peak is that step's alone (CUDA's peak allocator
counter on GPU, peak RSS above the pre-step RSS on CPU). Time: medians over --reps steps in one process, the three
implementations interleaved so clock and load drift hit them alike; on CPU it is the process's CPU time, which other
jobs on a shared machine do not inflate as they do wall time.

    python bench/sft_loss.py                   # CPU here (fp32), GPU when one is visible (bf16)
    python bench/sft_loss.py --seq-lens 2048 4096 --reps 5
    python bench/sft_loss.py --device cpu --layers 1 --seq-lens 1024 2048 --reps 3   # docs/qwen3.md
    python bench/sft_loss.py --model-config ../shared/models/qwen3-base-twin/config.json --seq-lens 2048 8192 \
        --json loss.json        # all 28 layers of a random-weight Qwen3-0.6B-Base (make gpu-check)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

VOCAB, HIDDEN, TAU = 151_936, 1024, 0.1
# Qwen3-0.6B-Base's decoder shape (../shared/models/qwen3-base-twin/config.json), for --layers
QWEN3_LAYER = dict(intermediate_size=3072, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                   rms_norm_eps=1e-6, rope_theta=1_000_000, tie_word_embeddings=True)
MODEL_CONFIG: dict | None = None  # --model-config: a config.json whose shape replaces the constants above


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_steps(seq_len: int, device: str, layers: int = 0) -> dict:
    """One closure per implementation, each doing one forward+backward of the loss on the same inputs."""
    import torch
    from trl.kernels import ChunkedLogProbFunction

    from profit_rl.losses import selection_stats, token_weights

    torch.manual_seed(0)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    labels = torch.randint(0, VOCAB, (seq_len,), device=device)
    if layers:
        from transformers import Qwen3Config, Qwen3Model

        if MODEL_CONFIG:
            config = Qwen3Config(**{**MODEL_CONFIG, "num_hidden_layers": layers})
        else:
            config = Qwen3Config(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=layers, **QWEN3_LAYER)
        body = Qwen3Model(config).to(device=device, dtype=dtype)
        weight = body.embed_tokens.weight  # tied head
        ids = torch.randint(0, VOCAB, (1, seq_len), device=device)
        forward = lambda: body(input_ids=ids).last_hidden_state[0]  # noqa: E731
        with torch.no_grad():
            start = forward()
    else:
        leaf = (torch.randn(seq_len, HIDDEN, device=device) * 0.5).to(dtype).requires_grad_()
        weight = (torch.randn(VOCAB, HIDDEN, device=device) * 0.02).to(dtype).requires_grad_()
        forward = lambda: leaf  # noqa: E731
        start = leaf.detach()
    # Make half the labels likely, as after pretraining, so tau really splits the tokens.
    with torch.no_grad():
        scale = 0.3 if not layers else 10.0 / HIDDEN  # a normed hidden state has |h|^2 ~ HIDDEN: logit ~ 10
        weight[labels[: seq_len // 2]] += start[: seq_len // 2].to(dtype) * scale
    mask = torch.ones(1, seq_len, dtype=torch.bool, device=device)
    mask[:, : seq_len // 8] = False  # a prompt: unsupervised
    n = mask.sum()
    stats = torch.zeros(6, device=device)

    def fused_log_probs():
        # Exactly TRL's fused-head call (SFTTrainer asks for entropy and top-1 too), scattered back to (1, T).
        hidden = forward()
        per_token = ChunkedLogProbFunction.apply(
            hidden[mask[0]], weight, None, labels[mask[0]], 1.0, 32768, None, 1.0, ("log_probs", "entropy", "is_top1")
        )
        return [x.new_zeros(mask.shape).masked_scatter(mask, x) for x in per_token[:2]]

    def nll():
        log_probs, _ = fused_log_probs()
        (-log_probs.sum() / n).backward()  # TRL's nll reduction

    def profit():
        log_probs, entropy = fused_log_probs()
        w = token_weights(log_probs, mask, "profit", tau=TAU, entropy=entropy)
        stats.add_(selection_stats(log_probs, mask, w))  # the trainer's metrics: summed on device until `log`
        (-(log_probs * w).sum() / n).backward()  # what TRL reduces once the trainer has weighted the log-probs

    def full_logits():
        logits = (forward().unsqueeze(0) @ weight.T).float()
        log_probs = logits.log_softmax(-1).gather(-1, labels.view(1, -1, 1)).squeeze(-1)
        keep = (log_probs.detach().exp() > TAU) & mask
        (-(log_probs * keep).sum() / n).backward()

    params = list(body.parameters()) if layers else [leaf, weight]

    def wrap(fn):
        def step():
            fn()
            for p in params:
                p.grad = None

        return step

    return {"nll": wrap(nll), "profit": wrap(profit), "full_logits": wrap(full_logits)}


def peak_memory(impl: str, seq_len: int, device: str, layers: int = 0) -> int:
    """Extra peak memory of one step, in a process that ran nothing else."""
    import torch

    step = make_steps(seq_len, device, layers)[impl]
    if device == "cuda":
        step()  # warm-up (Triton compile), then the peak of one clean step
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    base = current_rss_bytes()
    step()  # ru_maxrss only grows, so the first step is the measured one
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base


def step_times(seq_len: int, reps: int, device: str, layers: int = 0) -> dict:
    """Median step time of each implementation, interleaved so clock drift hits all three alike."""
    import torch

    steps = make_steps(seq_len, device, layers)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    clock = time.perf_counter if device == "cuda" else time.process_time
    for step in steps.values():
        step()  # warm-up
    times = {impl: [] for impl in steps}
    for _ in range(reps):
        for impl, step in steps.items():
            sync()
            t0 = clock()
            step()
            sync()
            times[impl].append(clock() - t0)
    return {impl: sorted(t)[len(t) // 2] for impl, t in times.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--no-memory", action="store_true", help="time only (skip the peak-memory subprocesses)")
    parser.add_argument("--layers", type=int, default=0,
                        help="Qwen3-0.6B-shaped decoder layers before the head (0: the head alone, from hidden states)")
    parser.add_argument("--model-config", default=None, help="a model's config.json (e.g. the Qwen3 twin's): its vocab, "
                        "hidden size and decoder shape; --layers defaults to all its layers")
    parser.add_argument("--json", default=None, help="also write the figures (peak MiB, step s, tokens/s) here")
    parser.add_argument("--_child", nargs=2, metavar=("IMPL", "T"), help=argparse.SUPPRESS)
    return parser


def use_model_config(path: str) -> int:
    """Take the vocab, hidden size and decoder shape from a config.json; returns its layer count."""
    global MODEL_CONFIG, VOCAB, HIDDEN
    MODEL_CONFIG = json.loads(open(path).read())
    VOCAB, HIDDEN = MODEL_CONFIG["vocab_size"], MODEL_CONFIG["hidden_size"]
    return MODEL_CONFIG["num_hidden_layers"]


def main() -> int:
    args = build_parser().parse_args()
    if args.model_config:
        layers = use_model_config(args.model_config)
        if "--layers" not in sys.argv:
            args.layers = layers
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args._child:
        print(peak_memory(args._child[0], int(args._child[1]), device, args.layers))
        return 0

    peaks, medians = {}, {}
    for seq_len in args.seq_lens:
        for impl in ("nll", "profit", "full_logits"):
            if args.no_memory:
                peaks[impl, seq_len] = float("nan")
                continue
            cmd = [sys.executable, __file__, "--_child", impl, str(seq_len), "--device", device,
                   "--layers", str(args.layers), *(["--model-config", args.model_config] if args.model_config else [])]
            peaks[impl, seq_len] = int(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()[-1])
        medians[seq_len] = step_times(seq_len, args.reps, device, args.layers)
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({os.cpu_count()} cores)"
    body = f"{args.layers} Qwen3 layer(s) + tied head" if args.layers else "head only"
    print(f"device: {name}; dtype {'bf16' if device == 'cuda' else 'fp32'}; vocab {VOCAB}, hidden {HIDDEN}; {body}; "
          f"median of {args.reps} steps ({'wall' if device == 'cuda' else 'CPU'} time); "
          f"torch threads {torch.get_num_threads()}")
    print("| T | nll step | profit step | full-logits step | profit/nll time | profit/nll peak mem | profit/full-logits peak mem |")
    print("|---|---|---|---|---|---|---|")
    for seq_len in args.seq_lens:
        t, m = medians[seq_len], {i: peaks[i, seq_len] for i in ("nll", "profit", "full_logits")}
        print(
            f"| {seq_len} | {t['nll'] * 1e3:.1f} ms | {t['profit'] * 1e3:.1f} ms | {t['full_logits'] * 1e3:.1f} ms "
            f"| {t['profit'] / t['nll']:.3f}x | {m['profit'] / m['nll']:.3f}x | {m['profit'] / m['full_logits']:.3f}x |"
        )
    if not args.no_memory:
        print("peak MiB:", {f"{i}@{t}": round(b / 2**20) for (i, t), b in peaks.items()})
    if args.json:
        rows = [{"T": t, "loss": impl, "peak_mib": None if args.no_memory else round(peaks[impl, t] / 2**20),
                 "step_s": medians[t][impl], "tokens_per_s": t / medians[t][impl]}
                for t in args.seq_lens for impl in ("nll", "profit", "full_logits")]
        with open(args.json, "w") as f:
            json.dump({"device": name, "dtype": "bf16" if device == "cuda" else "fp32", "vocab": VOCAB,
                       "hidden": HIDDEN, "layers": args.layers, "reps": args.reps, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
