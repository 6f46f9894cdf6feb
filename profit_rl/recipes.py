"""The shipped recipes (YAML per model and stage, and the accelerate configs), wherever profit-rl is installed.

    profit-rl recipes                                    # list them
    profit-rl recipes copy Qwen3-0.6B-Base/sft/profit.yaml my_recipes/    # copy one out to edit
    profit-rl recipes copy Qwen3-0.6B-Base my_recipes/                    # or a model's whole folder
    profit-rl recipes path zero2                                         # a shipped file's path (configs by name)

The repository keeps them in its top-level `recipes/` folder. A wheel carries that folder as package data,
`profit_rl/recipe_files/` (`setup.py` copies it in at build time; a name apart from this module's), read through
`importlib.resources`; a checkout or an editable install reads `recipes/` in place. `recipes_root()` is the one place
that decides which.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib import resources
from pathlib import Path

from profit_rl.core.errors import command_errors
from profit_rl.core.io import InputError

RECIPE_SUFFIX = ".yaml"
ACCELERATE_CONFIGS = "accelerate_configs"  # the folder of the shipped `accelerate launch --config_file` files


def recipes_root() -> Path:
    """The folder holding the recipes: the installed package data, else the checkout's `recipes/`."""
    shipped = resources.files("profit_rl").joinpath("recipe_files")
    if shipped.is_dir():
        # A wheel installs plain files; the pipeline prints and passes these paths to other processes.
        return Path(str(shipped))
    checkout = Path(__file__).resolve().parents[1] / "recipes"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"no recipes: neither {shipped} (an installed wheel's package data) nor {checkout} (a checkout) exists; "
        "reinstall profit-rl"
    )


def list_recipes() -> list[str]:
    """Every recipe, as a path relative to `recipes_root()` ("Qwen3-0.6B-Base/sft/profit.yaml", ...)."""
    root = recipes_root()
    return sorted(str(path.relative_to(root)) for path in root.rglob(f"*{RECIPE_SUFFIX}"))


def recipe_path(name: str) -> Path:
    """The shipped recipe (or recipe folder) `name`, relative to the recipes root; an error lists what exists."""
    root = recipes_root()
    path = root / name
    if not path.exists() or root.resolve() not in path.resolve().parents:  # "../x" names nothing shipped
        folders = sorted({recipe.split("/")[0] for recipe in list_recipes()})
        raise FileNotFoundError(f"no shipped recipe {name!r} in {root}; folders: {', '.join(folders)} "
                                "(`profit-rl recipes` lists every file)")
    return path


def accelerate_config(name: str | Path) -> Path:
    """An accelerate config by path (an existing file), or a shipped one by name: "zero2", "zero2.yaml" or
    "accelerate_configs/zero2.yaml"; an error names the shipped ones."""
    path = Path(name)
    if path.is_file():
        return path
    folder = recipes_root() / ACCELERATE_CONFIGS
    shipped = folder / (path.name if path.suffix == RECIPE_SUFFIX else path.name + RECIPE_SUFFIX)
    if shipped.is_file() and len(path.parts) <= 2 and path.parts[0] in (path.name, ACCELERATE_CONFIGS):
        return shipped
    names = ", ".join(sorted(p.stem for p in folder.glob(f"*{RECIPE_SUFFIX}")))
    raise FileNotFoundError(f"accelerate config {str(name)!r}: no such file, nor a shipped config ({names})")


def copy_recipe(name: str, dest_dir: str | Path, force: bool = False) -> Path:
    """Copy a shipped recipe file (into `dest_dir`) or folder (to `dest_dir/<folder>`) out for editing."""
    source = recipe_path(name)
    target = Path(dest_dir) / source.name
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=force)
    else:
        shutil.copyfile(source, target)
    return target


@command_errors("recipes")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl recipes [list | copy NAME DIR | path NAME]`: list the shipped recipes, copy one out to edit, or print
    a recipe's or an accelerate config's path."""
    from profit_rl.core.flags import accept_snake_case

    parser = argparse.ArgumentParser(prog="profit-rl recipes", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action")
    sub.add_parser("list", help="list the shipped recipes (the default)")
    copy = sub.add_parser("copy", help="copy a recipe file or a model's recipe folder out to edit")
    copy.add_argument("name", help="a path from `profit-rl recipes`, or a folder such as Qwen3-0.6B-Base")
    copy.add_argument("dest_dir", metavar="DIR", help="where the copy goes")
    copy.add_argument("--force", action="store_true", help="overwrite an existing copy")
    where = sub.add_parser("path", help="print a shipped recipe's path; an accelerate config by its name (zero2)")
    where.add_argument("name", help="a path from `profit-rl recipes`, or ddp, fsdp, zero2, zero3")
    args = accept_snake_case(parser).parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.action == "copy":
            print(copy_recipe(args.name, args.dest_dir, force=args.force))
            return 0
        if args.action == "path":
            shipped = recipes_root() / args.name
            print((shipped if shipped.is_file() else accelerate_config(args.name)).resolve())
            return 0
        print(f"# {recipes_root()}")
        print("\n".join(list_recipes()))
    except (FileNotFoundError, FileExistsError) as err:  # a name the user gave: one line, exit 1 (command_errors)
        raise InputError(str(err)) from err
    return 0


if __name__ == "__main__":
    sys.exit(main())
