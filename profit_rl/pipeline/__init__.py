"""`make sft-then-rl`, `make ablations` and `make probes`: the pipeline's steps and the commands that run them.

The command (runner) plans a model's profile (profiles) as a graph of steps (plan, steps), which the scheduler runs
within the CPU and GPU budget (scheduler) or SLURM runs as jobs (slurm); the sweep and probe grids (sweep, probes), the
checks that say whether a comparison can mean anything (checks), and the reports that read what the steps wrote
(report, sweep_report, probes_report)."""
