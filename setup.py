"""Build step: a wheel carries the repository's top-level `recipes/` as package data, `profit_rl/recipe_files/` (a
name apart from the module `profit_rl/recipes.py` that reads it), and the guides, `docs/` and the README, as
`profit_rl/docs/` and `profit_rl/README.md` (their relative links still resolve).

Everything else about the package is in pyproject.toml. `profit_rl.recipes.recipes_root()` reads the copy through
importlib.resources in an installed wheel, and `recipes/` in place in a checkout or an editable install (which this
step leaves alone).
"""

import shutil
from pathlib import Path

from setuptools import find_namespace_packages, find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RECIPES = ROOT / "recipes"
DOCS = ROOT / "docs"


class BuildPyWithRecipes(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        package = Path(self.build_lib) / "profit_rl"
        copies = [(source, package / "recipe_files" / source.relative_to(RECIPES)) for source in RECIPES.rglob("*.yaml")]
        copies += [(source, package / "docs" / source.name)
                   for pattern in ("*.md", "*.png") for source in DOCS.glob(pattern)]
        copies.append((ROOT / "README.md", package / "README.md"))
        for source, dest in sorted(copies):
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)


# profit_rl's own packages (its data folders embedded/base_model and inspect/templates among them), and evals/ and
# rewards/ under the names pyproject.toml's package-dir gives them
PACKAGES = find_namespace_packages(include=["profit_rl", "profit_rl.*"], exclude=["*__pycache__"]) + [
    f"profit_rl.{name}" for name in find_packages(include=["evals", "evals.*", "rewards", "rewards.*"])]

setup(packages=PACKAGES, cmdclass={"build_py": BuildPyWithRecipes})
