"""`profit-rl docs`: the guides that ship with the package (the repository's docs/ folder and its README).

    profit-rl docs                 # list them, with the folder they are in
    profit-rl docs sft             # print one (markdown): sft.md
    profit-rl docs sft --path      # only its path, e.g. to open it in an editor or a markdown viewer

A wheel carries them as package data, `profit_rl/docs/` and `profit_rl/README.md` (`setup.py` copies them in at build
time), so their relative links resolve there as in the repository; a checkout or an editable install reads `docs/`
in place. Code and recipes name a guide as `profit-rl docs NAME`.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from profit_rl.core.errors import command_errors
from profit_rl.core.io import InputError

README = "readme"  # the name `profit-rl docs` gives the README


def docs_root() -> Path:
    """The folder holding the guides: the installed package data, else the checkout's `docs/`."""
    shipped = resources.files("profit_rl").joinpath("docs")
    if shipped.is_dir():
        return Path(str(shipped))
    checkout = Path(__file__).resolve().parents[1] / "docs"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"no guides: neither {shipped} (an installed wheel's package data) nor {checkout} "
                            "(a checkout) exists; reinstall profit-rl")


def list_docs() -> list[str]:
    """The guides' names: `readme` and each guide's file name without `.md` ("sft", "evals", ...)."""
    return [README] + sorted(path.stem for path in docs_root().glob("*.md"))


def doc_path(name: str) -> Path:
    """The guide `name` ("sft", "sft.md" or "docs/sft.md"; "readme"); an error lists the guides."""
    stem = Path(name).name.removesuffix(".md")
    if stem.lower() == README:
        path = docs_root().parent / "README.md"
    else:
        path = docs_root() / f"{stem}.md"
    if not path.is_file():
        raise FileNotFoundError(f"no guide {name!r}; the guides: {', '.join(list_docs())}")
    return path


@command_errors("docs")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl docs [NAME]`: list the shipped guides, or print one guide (or its path with `--path`)."""
    parser = argparse.ArgumentParser(prog="profit-rl docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", help="a guide, e.g. sft, grpo, evals, pipeline (default: list them)")
    parser.add_argument("--path", action="store_true", help="print the guide's path instead of its text")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.name is None:
            print(f"# {docs_root()}")
            print("\n".join(list_docs()))
            return 0
        path = doc_path(args.name)
    except FileNotFoundError as err:  # a guide the user named: one line, exit 1 (command_errors)
        raise InputError(str(err)) from err
    print(path if args.path else path.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
