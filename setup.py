"""Build step: a wheel carries the repository's top-level `recipes/` as package data, `profit_rl/recipes/`.

Everything else about the package is in pyproject.toml. `profit_rl.resources.recipes_root()` reads the copy through
importlib.resources in an installed wheel, and `recipes/` in place in a checkout or an editable install (which this
step leaves alone).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RECIPES = Path(__file__).resolve().parent / "recipes"


class BuildPyWithRecipes(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "profit_rl" / "recipes"
        for source in sorted(RECIPES.rglob("*.yaml")):
            dest = target / source.relative_to(RECIPES)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)


setup(cmdclass={"build_py": BuildPyWithRecipes})
