"""The built wheel works from any directory: recipes ship as package data, the pipeline plans with them.

The wheel is built from the source files with the installed setuptools (no network, no build isolation) and installed
without dependencies into a fresh virtual environment that reuses this environment's installed packages through a
.pth file, so nothing is downloaded.
"""

import json
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

from profit_rl.recipes import list_recipes, recipe_path

from conftest import REPO  # noqa: E402  (the repository root, defined once)
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "profit_rl", "evals", "rewards", "recipes", "docs")
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
    shipped = {n.removeprefix("profit_rl/recipe_files/") for n in names if n.startswith("profit_rl/recipe_files/")}
    assert shipped == set(list_recipes())
    # the guides, beside the README, as in the repository (their relative links resolve); PEP 561's marker
    guides = {n.removeprefix("profit_rl/docs/") for n in names if n.startswith("profit_rl/docs/")}
    assert guides == {p.name for p in (REPO / "docs").iterdir() if p.suffix in (".md", ".png")}
    assert {"profit_rl/README.md", "profit_rl/py.typed"} <= set(names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "Requires-Python: >=3.11" in metadata and "License-Expression: Apache-2.0" in metadata
    import profit_rl

    assert f"\nVersion: {profit_rl.__version__}\n" in metadata  # pyproject reads profit_rl.__version__
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
    code = ("import importlib.util, profit_rl.evals.evaluate, profit_rl.rewards.worker; "
            "print(profit_rl.evals.evaluate.__file__, profit_rl.rewards.worker.__file__); "
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
    from profit_rl.recipes import copy_recipe, main, recipes_root

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

    # the folder is top-level only (pyproject.toml's package-dir maps it under profit_rl), and it is what `right` loads
    assert (REPO / bare / "__init__.py").is_file() and not (REPO / "profit_rl" / bare).exists()
    with pytest.raises(ImportError, match=rf"`{right}`"):
        importlib.import_module(f"{bare}.metrics" if bare == "evals" else f"{bare}.answers")
    assert bare not in sys.modules and importlib.import_module(right).__name__ == right
    assert Path(importlib.import_module(right).__file__) == REPO / bare / "__init__.py"


def test_python_m_with_a_bare_folder_name_says_what_to_run():
    done = subprocess.run([sys.executable, "-m", "evals.ifeval", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env=dict(clean_env(), PYTHONPATH=str(REPO)))
    assert done.returncode != 0 and "python -m profit_rl.evals.ifeval" in done.stderr


# What a user would follow from an installed file: a path into the clone's neighbourhood, an editable-install hint, or
# a guide the wheel does not ship.
SHARED = re.compile(r"\.\./shared")
EDITABLE = re.compile(r"pip install -e")
GUIDE = re.compile(r"docs/([A-Za-z0-9_-]+\.md)")
MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def installed_package(bin_dir: Path) -> Path:
    code = "import profit_rl, pathlib; print(pathlib.Path(profit_rl.__file__).parent)"
    site = run([str(bin_dir / "python"), "-c", code], cwd=bin_dir, env=clean_env()).strip()  # cwd: first on sys.path
    return Path(site)


def test_installed_files_point_at_nothing_the_wheel_does_not_ship(installed):
    package = installed_package(installed)
    assert str(installed.parent) in str(package)
    broken = []
    for path in sorted(package.rglob("*")):
        if path.suffix not in (".py", ".yaml", ".md", ".j2", ".json", ".jinja") or "__pycache__" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(package)
        broken += [f"{where}: ../shared" for _ in SHARED.finditer(text)]
        if path.suffix != ".md":  # the guides may say what a clone's `make install` does; code and recipes may not
            broken += [f"{where}: pip install -e" for _ in EDITABLE.finditer(text)]
        broken += [f"{where}: docs/{m.group(1)}" for m in GUIDE.finditer(text)
                   if not (package / "docs" / m.group(1)).is_file()]
        if path.suffix == ".md":  # the shipped guides' and README's relative links
            broken += [f"{where}: link {target}" for target in MD_LINK.findall(text)
                       if "://" not in target and not (path.parent / target).exists()]
    assert broken == []
    assert (package / "docs" / "sft.md").is_file() and (package / "py.typed").is_file()


def test_version_env_docs_and_an_accelerate_config_by_name_from_the_wheel(installed, tmp_path):
    import profit_rl

    cli = str(installed / "profit-rl")
    assert run([cli, "--version"], cwd=tmp_path, env=clean_env()).strip() == f"profit-rl {profit_rl.__version__}"
    env = run([cli, "env"], cwd=tmp_path, env=clean_env())
    fields = dict(line[2:].split(": ", 1) for line in env.splitlines() if line.startswith("- "))
    assert fields["profit-rl version"] == profit_rl.__version__ and str(installed.parent) in fields["profit-rl location"]
    for name in ("PyTorch", "TRL", "Transformers", "Accelerate", "DeepSpeed", "vLLM", "math-verify"):
        assert fields[f"{name} version"]  # a version, or "not installed"
    assert fields["math-verify version"] != "not installed" and "CUDA (torch build)" in fields
    assert {"accelerator(s)", "HF hub cache", "HF datasets cache"} <= set(fields)
    assert run([cli, "docs", "sft", "--path"], cwd=tmp_path, env=clean_env()).strip().startswith(str(installed.parent))
    assert "# " in run([cli, "docs", "evals"], cwd=tmp_path, env=clean_env())
    plan = run([cli, "pipeline", "--model", "Qwen3-0.6B-Base", "--num-gpus", "8", "--accelerate-config", "zero3",
                "--dry-run"], cwd=tmp_path, env=clean_env())
    configs = {argv.split("--config_file ")[1].split()[0] for argv in plan.splitlines() if "--config_file " in argv}
    assert len(configs) == 1 and configs.pop().endswith("accelerate_configs/zero3.yaml")
    path = run([cli, "recipes", "path", "zero2"], cwd=tmp_path, env=clean_env()).strip()
    assert Path(path).is_file() and str(installed.parent) in path


@pytest.mark.slow
def test_a_wheel_user_builds_the_embedded_model_trains_and_exports_to_lm_eval(installed, tmp_path):
    """From an unrelated folder: copy the embedded recipes, learn from the error which command builds their model,
    build it, train 2 SFT steps from the copied recipe, and evaluate with lm-eval's own files."""
    cli = str(installed / "profit-rl")
    run([cli, "recipes", "copy", "embedded", "mine"], cwd=tmp_path, env=clean_env())
    recipe = "mine/embedded/sft/profit.yaml"
    sft = [cli, "sft", "--config", recipe, "--max_steps", "2", "--per_device_train_batch_size", "4",
           "--output_dir", "runs/sft"]
    early = subprocess.run(sft, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=clean_env())
    assert early.returncode == 1 and "run `profit-rl embedded build --out-dir outputs/embedded/base` first" in early.stderr
    run([cli, "embedded", "build"], cwd=tmp_path, env=clean_env())
    assert (tmp_path / "outputs" / "embedded" / "base" / "model" / "config.json").is_file()
    run(sft, cwd=tmp_path, env=clean_env())
    assert (tmp_path / "runs" / "sft" / "model.safetensors").is_file()
    card = (tmp_path / "runs" / "sft" / "README.md").read_text()  # the model card says what trained it
    assert "- profit-rl" in card and "tau: 0.1" in card and "2601.09195" in card and "[None]" not in card
    run([cli, "eval", "--model", "runs/sft", "--benchmarks", "embedded", "--data-dir", "outputs/embedded/base",
         "--k", "2", "--limit", "3", "--max-new-tokens", "16", "--export", "lm-eval", "--output-dir", "ev"],
        cwd=tmp_path, env=clean_env())
    folder = tmp_path / "ev" / "runs__sft"  # lm-eval's <output>/<model_name_sanitized>/
    (results,) = folder.glob("results_*.json")
    (samples,) = folder.glob("samples_embedded_*.jsonl")
    assert samples.name.removeprefix("samples_embedded_").removesuffix(".jsonl") == \
        results.name.removeprefix("results_").removesuffix(".json")
    document = json.loads(results.read_text())
    assert document["model_name"] == "runs/sft" and document["configs"]["embedded"]["repeats"] == 2
    assert document["results"]["embedded"]["sample_len"] == 3 and document["git_hash"] is None  # a wheel: no git
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert [r["doc_id"] for r in rows] == [0, 1, 2] and all(len(r["resps"][0]) == 2 for r in rows)
