"""Data loading and preparation: SFT rows in any common layout (sft), MATH-style RL problems (rl), and the
pipeline's data stage that writes both once as local files (prepare)."""
