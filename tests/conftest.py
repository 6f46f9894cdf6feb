"""Shared fixtures: everything offline, one tiny Qwen3 (config + locally trained tokenizer) per test session."""

import contextlib
import os
import subprocess
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
QWEN3_TWIN_SOURCE = REPO.parent / "shared" / "models" / "qwen3-base-twin"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised tiny Qwen3 with a ChatML template, saved like a hub checkpoint."""
    from profit_rl.embedded.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3"), seed=0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def qwen3_twin_dir(tmp_path_factory) -> Path:
    """A random-weight Qwen3 with Qwen3-Base's real tokenizer, template and EOS settings at vocab 151,936 (2 layers,
    hidden 64, head dim 32), built once per session by `profit_rl.models.twin`."""
    if not QWEN3_TWIN_SOURCE.exists():
        pytest.skip(f"Qwen3 twin files not found at {QWEN3_TWIN_SOURCE}")
    from profit_rl.models.twin import build_twin

    return build_twin(tmp_path_factory.mktemp("qwen3-twin") / "model", source=QWEN3_TWIN_SOURCE)


@contextlib.contextmanager
def folder_held_by_another_pipeline(folder: Path):
    """Another process holds `folder`'s lock as `profit-rl pipeline` would, until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from profit_rl.core.folders import output_folder\n"
        "with output_folder(sys.argv[1], 'profit-rl pipeline'):\n"
        "    print('held', flush=True); time.sleep(120)"), str(folder)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()
