"""The base layer every part of profit-rl may import: reading data, folders, run identity, flags and the chat format.

    core.io             read_rows, read_file and their one error type (DataError, an InputError)
    core.errors         command_errors: a user error becomes "profit-rl CMD: message" and an exit code
    core.state          atomic writes and reads of the JSON state files every output folder keeps
    core.folders        output folders and their locks
    core.identity       what a run was made from: weights by content, data and settings (inputs.json)
    core.model_folders  model folders: local or hub, adapters, truncated weights, the embedded build hint
    core.flags          argparse helpers: --snake_case aliases, --no-X help, positive_int
    core.dtypes         dtype names as TRL spells them, and the torch dtype for a device
    core.chat           ChatFormat: the one chat format of a tokenizer and its end-of-turn rule
    core.logs           setup_training_logging: a training process's log level, ours on the main process only

It imports nothing from the rest of profit_rl (a test checks the layers: tests/test_layers.py).
"""
