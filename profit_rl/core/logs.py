"""Logging set-up for a training process: messages to stdout at the process's level, ours on the main process only.

    setup_training_logging(training_args)    # a TrainingArguments (TRL's GRPOConfig, SFTConfig...)

TrainingArguments already knows each process's level (`log_level` on the main process, `log_level_replica` on the
others); transformers' own logger follows it. The toolkit's progress messages (data counts, the resume point) come
from the main process only, and warnings from every rank.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_training_logging(training_args) -> None:
    """Configure the root logger, transformers' logger and the `profit_rl` loggers for this process."""
    import transformers

    level = training_args.get_process_log_level()
    logging.basicConfig(format=FORMAT, level=level, handlers=[logging.StreamHandler(sys.stdout)])
    transformers.utils.logging.set_verbosity(level)
    logging.getLogger("profit_rl").setLevel(logging.INFO if training_args.should_log else logging.WARNING)
