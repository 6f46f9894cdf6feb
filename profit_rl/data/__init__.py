"""Data loading and preparation: SFT rows in any common layout (sft_rows), MATH-style RL problems (rl), held-out
general text for the forgetting probe (heldout_text), and the pipeline's data stage that writes them once as local
files (prepare)."""
