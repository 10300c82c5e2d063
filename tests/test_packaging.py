"""The wheel is what `pip install vireid-zoo` users get: it must carry the recipes."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

from vireid_zoo.cli import main
from vireid_zoo.cli.recipes import list_recipes, recipe_path, resolve_config_arguments

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("agw", "mhn", "emif", "cscl")
DATASETS = ("sysu_mm01", "regdb", "llcm")


def test_every_method_has_a_recipe_per_dataset() -> None:
    assert list_recipes() == sorted(f"{m}/{d}" for m in METHODS for d in DATASETS)


def test_recipe_names_resolve_and_files_stay_files(tmp_path: Path) -> None:
    own = tmp_path / "agw" / "sysu_mm01"  # a file that looks like a recipe name wins
    own.parent.mkdir()
    own.write_text("seed_everything: 1\n")
    packaged = str(recipe_path("agw/sysu_mm01"))
    assert resolve_config_arguments(["fit", "--config", "agw/sysu_mm01"]) == [
        "fit",
        "--config",
        packaged,
    ]
    assert resolve_config_arguments(["test", "-c=mhn/regdb.yaml"]) == [
        "test",
        f"-c={recipe_path('mhn/regdb')}",
    ]
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert resolve_config_arguments(["fit", "--config", "agw/sysu_mm01"])[2] == "agw/sysu_mm01"
    finally:
        os.chdir(cwd)


def test_an_unknown_recipe_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--config", "agw/sysu", "--print_config"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'agw/sysu' is neither a config file" in err[0]
    assert "agw/sysu_mm01" in err[0] and "vireid-zoo recipe" in err[0]


def test_recipe_command_lists_prints_and_copies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recipe"]) == 0
    assert capsys.readouterr().out.split() == list_recipes()
    assert main(["recipe", "emif"]) == 0
    assert capsys.readouterr().out.split() == [f"emif/{d}" for d in sorted(DATASETS)]
    assert main(["recipe", "cscl", "llcm"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "vireid_zoo.models.CSCLModule"
    copy = tmp_path / "mine.yaml"
    assert main(["recipe", "agw", "regdb", "-o", str(copy)]) == 0
    assert copy.read_text() == recipe_path("agw/regdb").read_text()
    assert main(["recipe", "agw", "regdb", "-o", str(copy)]) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err


@pytest.mark.slow
def test_the_wheel_installs_and_runs_a_packaged_recipe_outside_the_repository(
    tmp_path: Path,
) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("vireid_zoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for recipe in list_recipes():
        assert f"vireid_zoo/configs/{recipe}.yaml" in names
    assert {f"vireid_zoo/models/{m}/README.md" for m in METHODS} <= set(names)
    assert "vireid_zoo/py.typed" in names

    # A fresh environment outside the repository: the wheel, and this environment's
    # dependencies (never this checkout's sources) on its path.
    fresh = tmp_path / "env"
    venv.create(fresh, with_pip=False)
    bin_dir = fresh / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # Nothing of the caller's PYTHONPATH (a worktree's sources, say) reaches the new env.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q"]
        + [str(wheel)],
        check=True,
        capture_output=True,
        env=env,
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    run = {"cwd": outside, "env": env, "capture_output": True, "text": True, "timeout": 300}
    where = subprocess.run(
        [str(python), "-c", "import vireid_zoo; print(vireid_zoo.__file__)"], **run
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(fresh), where.stdout
    helped = subprocess.run([str(bin_dir / "vireid-zoo"), "--help"], **run)
    assert helped.returncode == 0 and "recipe" in helped.stdout, helped.stderr
    printed = subprocess.run(
        [str(bin_dir / "vireid-zoo"), "fit", "--config", "agw/sysu_mm01", "--print_config"],
        **run,
    )
    assert printed.returncode == 0, printed.stderr
    config = yaml.safe_load(printed.stdout)
    assert config["model"]["class_path"] == "vireid_zoo.models.AGWModule"
    assert config["model"]["init_args"]["network"]["init_args"]["arch"] == "resnet50"
