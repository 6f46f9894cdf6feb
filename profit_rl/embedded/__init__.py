"""The embedded task: a synthetic math task and a tiny base model that run the whole pipeline offline on a CPU."""
