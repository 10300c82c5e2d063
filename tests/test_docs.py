"""The documentation: generated pages (docs/hooks.py) and the strict MkDocs build.

The hook tests need nothing beyond the package. The full ``mkdocs build --strict`` (the
same build as ``make docs`` in CI) runs when MkDocs, mkdocs-material and mkdocstrings are
installed (``pip install -e ".[docs]"``) and is skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import vireid_zoo as vz
from vireid_zoo.core.contract import PretrainedConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
HOOKS_FILE = REPO_ROOT / "docs" / "hooks.py"
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    name = "vireid_zoo_docs_hooks"
    spec = importlib.util.spec_from_file_location(name, HOOKS_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


def method_folders() -> list[str]:
    models = REPO_ROOT / "src" / "vireid_zoo" / "models"
    return sorted(p.parent.name for p in models.glob("*/__init__.py"))


def test_every_method_folder_is_discovered(hooks: ModuleType) -> None:
    assert hooks.discover_methods() == method_folders()


def test_a_new_method_folder_is_picked_up(hooks: ModuleType, tmp_path: Path) -> None:
    for name in ("agw", "newmethod", "_private", "__pycache__"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "notes").mkdir()  # not a package
    (tmp_path / "registry.py").write_text("")
    assert hooks.discover_methods(tmp_path) == ["agw", "newmethod"]


def test_zoo_page_lists_every_registered_architecture(hooks: ModuleType) -> None:
    infos = hooks.registry_infos()
    assert [info.name for info in infos] == vz.list_models()
    assert {info.method for info in infos} <= set(method_folders())
    page = hooks.zoo_markdown(infos, {}, {m: f"{m}.md" for m in method_folders()})
    for info in infos:
        row = next(line for line in page.splitlines() if line.startswith(f"| `{info.name}` |"))
        assert f"({info.parameters:,})" in row and f"| {info.embedding_dim} |" in row
        assert info.embedding_dim > 0 and info.parameters > 0
        if info.paper:
            assert " ".join(info.paper.split()) in page
        assert f"[{info.method_name}]({info.method}.md)" in page
    assert "No pretrained weights are published yet" in page


def test_parameter_count_matches_a_real_network(hooks: ModuleType) -> None:
    # The zoo counts parameters on PyTorch's meta device; a real network has as many.
    info = hooks.architecture_info("agw_resnet18")
    network = vz.create_model("agw_resnet18", num_classes=0)
    assert info.parameters == sum(p.numel() for p in network.parameters())
    assert info.embedding_dim == network.embedding_dim == 512
    assert info.paper == type(network).paper and info.method == "agw"


def test_zoo_page_shows_published_weights(hooks: ModuleType) -> None:
    name = "agw_resnet18.docs_test"
    config = PretrainedConfig(
        "agw_resnet18",
        embedding_dim=512,
        dataset="sysu_mm01",
        metrics={"sysu_mm01/all/mAP": 0.5},
        hub_id="org/agw-docs-test",
        revision="v1",
    )
    page = hooks.zoo_markdown([hooks.architecture_info("agw_resnet18")], {name: config}, {})
    assert "No pretrained weights" not in page
    assert "`hf-hub:org/agw-docs-test@v1`" in page and "sysu_mm01/all/mAP 50.00" in page
    assert f"| `{name}` |" in page


def test_every_method_gets_a_page(hooks: ModuleType) -> None:
    pages = hooks._generated_pages(hooks.discover_methods())
    assert "models/index.md" in pages
    for method in method_folders():
        content, origin = pages[f"models/{method}.md"]
        readme = REPO_ROOT / "src" / "vireid_zoo" / "models" / method / "README.md"
        assert origin == f"src/vireid_zoo/models/{method}/README.md"
        if readme.is_file():
            assert content.startswith(readme.read_text(encoding="utf-8").rstrip())
        assert f"::: vireid_zoo.models.{method}" in content


def test_links_are_rewritten_for_the_site(hooks: ModuleType) -> None:
    pages = {"index.md", "datasets.md", "changelog.md", "models/index.md", "models/agw.md"}
    readme = "\n".join(
        [
            "See [datasets](docs/datasets.md#sysu-mm01),",
            "[AGW](src/vireid_zoo/models/agw/README.md),",
            "[changes](CHANGELOG.md), [a config](src/vireid_zoo/configs/agw/sysu_mm01.yaml),",
            "[web](https://x.y/z),",
            "[top](#set-up), `[code](not/a/link.md)` and [gone](no/such/file.md).",
            "```",
            "[fenced](docs/datasets.md)",
            "```",
        ]
    )
    text, missing = hooks.rewrite_links(readme, "README.md", "index.md", pages)
    assert "[datasets](datasets.md#sysu-mm01)" in text
    assert "[AGW](models/agw.md)" in text and "[changes](changelog.md)" in text
    blob = f"{hooks.DEFAULT_REPO_URL}/blob/main/src/vireid_zoo/configs/agw/sysu_mm01.yaml"
    assert f"[a config]({blob})" in text
    assert "[web](https://x.y/z)" in text and "[top](#set-up)" in text
    assert "`[code](not/a/link.md)`" in text and "[fenced](docs/datasets.md)" in text
    assert missing == ["no/such/file.md"]

    # From a method README (src/vireid_zoo/models/agw/) shown as models/agw.md.
    text, missing = hooks.rewrite_links(
        "[data](../../../../docs/datasets.md) [code](model.py) [zoo](../../../../README.md)",
        "src/vireid_zoo/models/agw/README.md",
        "models/agw.md",
        pages,
    )
    model_py = f"{hooks.DEFAULT_REPO_URL}/blob/main/src/vireid_zoo/models/agw/model.py"
    assert text == f"[data](../datasets.md) [code]({model_py}) [zoo](../index.md)"
    assert missing == []


def test_sphinx_roles_of_docstrings_become_optional_cross_references(
    hooks: ModuleType,
) -> None:
    html = (
        "see :class:<code>~vireid_zoo.models.agw.module.AGWModule</code> and "
        ":func:<code>evaluate</code>, :meth:<code>~a.B.c()</code>"
    )
    assert hooks.sphinx_roles_to_links(html) == (
        'see <autoref identifier="vireid_zoo.models.agw.module.AGWModule" optional>'
        "<code>AGWModule</code></autoref> and "
        '<autoref identifier="evaluate" optional><code>evaluate</code></autoref>, '
        '<autoref identifier="a.B.c" optional><code>c()</code></autoref>'
    )


def _missing_docs_packages() -> list[str]:
    missing = []
    for name in DOCS_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


@pytest.mark.slow
@pytest.mark.skipif(
    bool(_missing_docs_packages()) and not os.environ.get("CI"),
    reason=f"the docs tools are not installed ({', '.join(_missing_docs_packages())} "
    "missing): pip install -e '.[docs]' to run the strict MkDocs build",
)
def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_MKDOCS_2_WARNING": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, f"mkdocs build --strict failed:\n{completed.stderr[-8000:]}"
    zoo = (site / "models" / "index.html").read_text(encoding="utf-8")
    for name in vz.list_models():
        assert name in zoo
    for method in method_folders():
        assert (site / "models" / method / "index.html").is_file()
    for page in ("getting-started", "datasets", "protocols", "training", "hub", "api/data"):
        assert (site / page / "index.html").is_file(), page
    assert not (site / "hooks.py").exists()
