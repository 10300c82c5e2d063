"""The packaged recipes: ``--config agw/sysu_mm01`` and ``vireid-zoo recipe``.

Every method's recipe for every dataset ships inside the package (``vireid_zoo/configs/
<method>/<dataset>.yaml``), so ``pip install vireid-zoo`` users train and test with
``vireid-zoo fit --config agw/sysu_mm01`` exactly as users of a clone do. A ``--config``
value that names an existing file is that file; otherwise a ``<method>/<dataset>`` name is
the packaged recipe.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:  # importlib.resources.abc is Python 3.11+
        from importlib.abc import Traversable

RECIPE_NAME = re.compile(r"^(?P<method>[a-z0-9_]+)/(?P<dataset>[a-z0-9_]+)(\.ya?ml)?$")
CONFIG_FLAGS = ("--config", "-c")


def recipes_folder() -> Traversable:
    """The folder of the packaged recipes."""
    return files("vireid_zoo") / "configs"


def list_recipes() -> list[str]:
    """Every packaged recipe as ``<method>/<dataset>``, sorted."""
    return sorted(
        f"{method.name}/{recipe.name.removesuffix('.yaml')}"
        for method in recipes_folder().iterdir()
        if method.is_dir()
        for recipe in method.iterdir()
        if recipe.name.endswith(".yaml")
    )


def recipe_path(name: str) -> Path:
    """The file of the packaged recipe ``<method>/<dataset>``.

    Raises:
        ValueError: no packaged recipe has that name (the message lists them).
    """
    match = RECIPE_NAME.match(name)
    if match is not None:
        candidate = recipes_folder() / match["method"] / f"{match['dataset']}.yaml"
        if candidate.is_file():
            return Path(str(candidate))
    raise ValueError(
        f"{name!r} is neither a config file nor a packaged recipe; the recipes are "
        f"{', '.join(list_recipes())} (e.g. --config agw/sysu_mm01), and "
        "'vireid-zoo recipe METHOD DATASET' prints one"
    )


def resolve_config_arguments(argv: Sequence[str]) -> list[str]:
    """``argv`` with every ``--config NAME`` of a packaged recipe replaced by its file."""
    resolved: list[str] = []
    arguments = list(argv)
    for index, argument in enumerate(arguments):
        flag, equals, value = argument.partition("=")
        if equals and flag in CONFIG_FLAGS:
            resolved.append(f"{flag}={_config_file(value)}")
        elif index > 0 and arguments[index - 1] in CONFIG_FLAGS:
            resolved.append(_config_file(argument))
        else:
            resolved.append(argument)
    return resolved


def _config_file(value: str) -> str:
    if Path(value).expanduser().is_file() or not RECIPE_NAME.match(value):
        return value  # a file (or not a recipe name: jsonargparse reports it)
    return str(recipe_path(value))


def print_recipe(args: argparse.Namespace) -> None:
    """``vireid-zoo recipe [METHOD [DATASET]] [-o FILE]``: list, print or copy a recipe."""
    if args.method is None:
        print("\n".join(list_recipes()))
        return
    if args.dataset is None:
        print("\n".join(r for r in list_recipes() if r.startswith(f"{args.method}/")))
        return
    text = recipe_path(f"{args.method}/{args.dataset}").read_text()
    if args.output is None:
        sys.stdout.write(text)
        return
    if args.output.exists():
        raise FileExistsError(f"{args.output} exists; choose another --output (never overwritten)")
    args.output.write_text(text)
    print(f"wrote {args.output}: edit it, then 'vireid-zoo fit --config {args.output}'")


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add ``vireid-zoo recipe`` to the CLI's subcommands."""
    recipe = commands.add_parser(
        "recipe", help="list the packaged recipes, print one, or copy it to edit"
    )
    recipe.add_argument("method", nargs="?", help="e.g. agw (omit: list every recipe)")
    recipe.add_argument("dataset", nargs="?", help="sysu_mm01, regdb or llcm")
    recipe.add_argument("-o", "--output", type=Path, help="write the recipe to this new file")
    recipe.set_defaults(run=print_recipe)
