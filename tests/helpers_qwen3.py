"""The rigged Qwen3 twin, shared by tests/models/test_qwen3.py and scripts/vllm_cpu_check.py (no pytest import: the vLLM
venv has none). It says "Hello", then <|im_end|>, then " world", then "Hello" again: a generator that ignores the end
of the turn runs on ("Hello worldHello world...")."""

from pathlib import Path

IM_END, ENDOFTEXT, HELLO, WORLD = 151645, 151643, 9707, 1879  # Qwen's ids of <|im_end|>, <|endoftext|>, Hello, " world"
SAY_HELLO = [{"role": "user", "content": "Say hello."}]


def rig(twin_dir: Path, out: Path) -> Path:
    """The twin with its residual stream reduced to the token's embedding (every block's output projections zeroed)
    and an untied lm_head of three non-zero rows: after the generation prompt's last token it says Hello, after Hello
    <|im_end|>, after <|im_end|> " world", after " world" Hello again."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from profit_rl.core.chat import ChatFormat

    tokenizer = AutoTokenizer.from_pretrained(twin_dir)
    model = AutoModelForCausalLM.from_pretrained(twin_dir, dtype=torch.float32)
    prompt_end = tokenizer(ChatFormat(tokenizer).prompt(SAY_HELLO))["input_ids"][-1]
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = model.model.embed_tokens.weight
        basis = torch.eye(embed.shape[1])
        for i, token in enumerate((prompt_end, HELLO, IM_END, WORLD)):
            embed[token] = basis[i]
        head = torch.zeros_like(embed)
        head[HELLO] = 10 * (basis[0] + basis[3])
        head[IM_END] = 10 * basis[1]
        head[WORLD] = 10 * basis[2]
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(head)
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (out / name).write_bytes((twin_dir / name).read_bytes())
    return out
