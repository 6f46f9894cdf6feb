"""`make sft-then-rl` and `make ablations`: the step runner (runner), the sweep grid (sweep), the checks that say whether
a comparison can mean anything (checks), and the reports that read what the steps wrote (report, sweep_report)."""
