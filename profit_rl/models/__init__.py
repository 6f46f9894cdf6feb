"""Model folders the toolkit builds for itself: the Qwen3-Base twin (random weights, real tokenizer and vocabulary)."""
