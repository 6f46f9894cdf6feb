"""The built wheel works from any directory: recipes ship as package data, the pipeline plans with them.

The wheel is built from the source files with the installed setuptools (no network, no build isolation) and installed
without dependencies into a fresh virtual environment that reuses this environment's installed packages through a
.pth file, so nothing is downloaded.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from profit_rl.resources import list_recipes, recipe_path

from conftest import REPO  # noqa: E402  (the repository root, defined once)
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "profit_rl", "evals", "rewards", "recipes")
# The one top-level import name the wheel installs: evals/ and rewards/ ship inside it (docs/development.md#packaging)
PACKAGES = {"profit_rl"}
RECIPE_FLAGS = ("--config", "--config_file", "--sft-recipe", "--rl-recipe")


def run(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the profit-rl wheel installed; returns its bin/ folder."""
    root = tmp_path_factory.mktemp("package")
    source = root / "source"  # a copy, so the build's egg-info and build/ never land in the checkout
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            # symlinks=True: the build sees profit_rl/evals -> ../evals as a checkout has it
            shutil.copytree(REPO / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(REPO / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--wheel-dir", str(root / "dist"), str(source)])
    wheel = next((root / "dist").glob("profit_rl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == PACKAGES
    for package in ("evals", "rewards"):  # real copies of the top-level folders, every module
        modules = {str(p.relative_to(REPO)) for p in (REPO / package).rglob("*.py") if "__pycache__" not in p.parts}
        assert {f"profit_rl/{m}" for m in modules} <= set(names) and len(modules) > 5
    # package data beside the code that reads it: the inspect page's template and the embedded base model
    data = {str(p.relative_to(REPO)) for d in ("profit_rl/inspect/templates", "profit_rl/embedded/base_model")
            for p in (REPO / d).iterdir()}
    assert data <= set(names) and "profit_rl/inspect/templates/inspect.html.j2" in data
    shipped = {n.removeprefix("profit_rl/recipes/") for n in names if n.startswith("profit_rl/recipes/")}
    assert shipped == set(list_recipes())
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "Requires-Python: >=3.11" in metadata and "License-Expression: Apache-2.0" in metadata
    assert re.search(r"^Requires-Dist: tensorboard$", metadata, re.M) and "Requires-Dist: nltk>=3.9.1" in metadata

    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # clean_env: with this checkout on PYTHONPATH, pip would take its profit-rl metadata for an installed copy
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        env=clean_env())
    # Then this environment's third-party packages (torch, trl, ...), after the venv's own site-packages: nothing is
    # downloaded. (Added after the install, or pip would see this checkout's editable profit-rl and skip the wheel.)
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "shared_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir / "bin"


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return dict(env, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def test_installed_wheel_plans_the_pipeline_from_any_directory(installed, tmp_path):
    code = ("import importlib.util, profit_rl.evals.cli, profit_rl.rewards.worker; "
            "print(profit_rl.evals.cli.__file__, profit_rl.rewards.worker.__file__); "
            "print(importlib.util.find_spec('evals'), importlib.util.find_spec('rewards'))")
    where = run([str(installed / "python"), "-c", code], cwd=tmp_path, env=clean_env()).splitlines()
    assert all(str(installed.parent) in path for path in where[0].split())  # the wheel's code, not this checkout's
    assert where[1] == "None None"  # the PyPI names `evals` and `rewards` stay free
    plan = run([str(installed / "profit-rl"), "pipeline", "--model", "Qwen3-0.6B-Base", "--num-gpus", "8", "--dry-run"],
               cwd=tmp_path, env=clean_env())
    argvs = [line.split() for line in plan.splitlines() if line and not line.startswith("#")]
    recipes = [argv[i + 1] for argv in argvs for i, arg in enumerate(argv[:-1]) if arg in RECIPE_FLAGS]
    assert len(recipes) >= 6 and any("accelerate_configs/zero2.yaml" in r for r in recipes)
    missing = [r for r in recipes if not (tmp_path / r).is_file()]  # relative paths would be relative to the cwd
    assert missing == [] and all(str(installed.parent) in r for r in recipes)
    assert "--output_dir outputs/Qwen3-0.6B-Base/profit/sft" in plan  # ./outputs: the steps run in the cwd
    assert "Qwen/Qwen3-0.6B-Base" in plan  # the recipe's hub id, not a local path guessed from the name


def yaml_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.yaml"))


def test_installed_wheel_lists_and_copies_recipes(installed, tmp_path):
    listed = run([str(installed / "profit-rl"), "recipes"], cwd=tmp_path, env=clean_env()).splitlines()
    assert listed[1:] == list_recipes() and str(installed.parent) in listed[0]
    copied = run([str(installed / "profit-rl"), "recipes", "copy", "Qwen3-0.6B-Base/sft/profit.yaml", "mine"],
                 cwd=tmp_path, env=clean_env()).strip()
    assert Path(tmp_path / copied).read_text() == recipe_path("Qwen3-0.6B-Base/sft/profit.yaml").read_text()
    run([str(installed / "profit-rl"), "recipes", "copy", "smollm2-135m", "mine"], cwd=tmp_path, env=clean_env())
    copied_folder = yaml_files(tmp_path / "mine" / "smollm2-135m")
    assert copied_folder == yaml_files(REPO / "recipes" / "smollm2-135m") and "sft/profit.yaml" in copied_folder


def test_recipes_resolve_in_a_checkout(tmp_path, capsys):
    from profit_rl.resources import copy_recipe, main, recipes_root

    assert recipes_root() == REPO / "recipes"
    assert "Qwen3-0.6B-Base/sft/profit.yaml" in list_recipes() and "accelerate_configs/zero3.yaml" in list_recipes()
    with pytest.raises(FileNotFoundError, match="no shipped recipe 'Qwen3-1B'.*Qwen3-0.6B-Base"):
        recipe_path("Qwen3-1B")
    with pytest.raises(FileNotFoundError):
        recipe_path("../pyproject.toml")
    copy_recipe("embedded/sft/sft.yaml", tmp_path)
    with pytest.raises(FileExistsError, match="--force"):
        copy_recipe("embedded/sft/sft.yaml", tmp_path)
    assert main(["copy", "nope.yaml", str(tmp_path)]) == 1 and "no shipped recipe" in capsys.readouterr().err


@pytest.mark.parametrize("bare, right", [("evals", "profit_rl.evals"), ("rewards", "profit_rl.rewards")])
def test_the_folders_refuse_their_bare_top_level_names(bare, right):
    """A checkout's root is on sys.path (as here), so evals/ and rewards/ are visible as top-level packages too; the
    bare name must fail loudly, naming the right import, instead of loading a second copy of every module."""
    import importlib

    assert (REPO / bare / "__init__.py").is_file() and (REPO / "profit_rl" / bare).resolve() == REPO / bare
    with pytest.raises(ImportError, match=rf"`{right}`"):
        importlib.import_module(f"{bare}.io" if bare == "evals" else f"{bare}.answers")
    assert bare not in sys.modules and importlib.import_module(right).__name__ == right


def test_python_m_with_a_bare_folder_name_says_what_to_run():
    done = subprocess.run([sys.executable, "-m", "evals.ifeval", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env=dict(clean_env(), PYTHONPATH=str(REPO)))
    assert done.returncode != 0 and "python -m profit_rl.evals.ifeval" in done.stderr
