"""The documentation: its pages, the generated zoo table, the link hook and the strict build.

The page and script tests need nothing beyond the package. The full ``mkdocs build
--strict`` (the same build as ``make docs`` in CI) runs when the docs tools are installed
(``pip install -e ".[docs]"``) and is skipped otherwise, except in CI.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

import vireid_zoo as vz
from vireid_zoo.core.contract import PretrainedConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs"
PACKAGE = REPO_ROOT / "src" / "vireid_zoo"
DOCS_PACKAGES = (
    "mkdocs",
    "material",
    "mkdocstrings",
    "mkdocstrings_handlers.python",
    "mkdocs_include_markdown_plugin",
    "mkdocs_gen_files",
    "pymdownx",
)
DIRECTIVE = re.compile(r"^::: (\S+)$", re.MULTILINE)
SPHINX_MARKUP = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc|const|math):|\.\. \w+::"
)


def load_script(name: str) -> ModuleType:
    """Import ``docs/<name>.py`` as a module (not as MkDocs or mkdocs-gen-files run it)."""
    module_name = f"vireid_zoo_docs_{name}"
    spec = importlib.util.spec_from_file_location(module_name, DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen_zoo() -> ModuleType:
    return load_script("gen_zoo")


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    return load_script("hooks")


def method_folders() -> list[str]:
    return sorted(p.parent.name for p in (PACKAGE / "models").glob("*/__init__.py"))


def public_modules() -> list[str]:
    """Every module of the package but the faces (``__init__``) and ``__main__``."""
    return sorted(
        ".".join(("vireid_zoo", *path.relative_to(PACKAGE).with_suffix("").parts))
        for path in PACKAGE.rglob("*.py")
        if not any(part.startswith("_") for part in path.relative_to(PACKAGE).parts)
    )


def documented_modules() -> dict[str, list[str]]:
    """Object named by each ``::: name`` directive of the pages -> the pages naming it."""
    found: dict[str, list[str]] = {}
    for page in sorted(DOCS.rglob("*.md")):
        for name in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            found.setdefault(name, []).append(page.relative_to(DOCS).as_posix())
    return found


def nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return []


# The zoo table (docs/gen_zoo.py) --------------------------------------------------------------


def test_every_method_folder_is_discovered(gen_zoo: ModuleType) -> None:
    assert gen_zoo.discover_methods() == method_folders()


def test_a_new_method_folder_is_picked_up(gen_zoo: ModuleType, tmp_path: Path) -> None:
    for name in ("agw", "newmethod", "_private", "__pycache__"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "notes").mkdir()  # not a package
    (tmp_path / "registry.py").write_text("")
    assert gen_zoo.discover_methods(tmp_path) == ["agw", "newmethod"]


def test_zoo_page_lists_every_registered_architecture(gen_zoo: ModuleType) -> None:
    infos = gen_zoo.registry_infos()
    assert [info.name for info in infos] == vz.list_models()
    assert {info.method for info in infos} <= set(method_folders())
    page = gen_zoo.zoo_page()
    for info in infos:
        row = next(line for line in page.splitlines() if line.startswith(f"| `{info.name}` |"))
        assert f"({info.parameters:,})" in row and f"| {info.embedding_dim} |" in row
        assert info.embedding_dim > 0 and info.parameters > 0
        if info.paper:
            assert " ".join(info.paper.split()) in page
        assert f"[{info.method_name}]({info.method}.md)" in page
    assert "No pretrained weights are published yet" in page


def test_parameter_count_matches_a_real_network(gen_zoo: ModuleType) -> None:
    # The zoo counts parameters on PyTorch's meta device; a real network has as many.
    info = gen_zoo.architecture_info("agw_resnet18")
    network = vz.create_model("agw_resnet18", num_classes=0)
    assert info.parameters == sum(p.numel() for p in network.parameters())
    assert info.embedding_dim == network.embedding_dim == 512
    assert info.paper == type(network).paper and info.method == "agw"


def test_zoo_page_shows_published_weights(gen_zoo: ModuleType) -> None:
    name = "agw_resnet18.docs_test"
    config = PretrainedConfig(
        "agw_resnet18",
        embedding_dim=512,
        dataset="sysu_mm01",
        metrics={"sysu_mm01/all/mAP": 0.5},
        hub_id="org/agw-docs-test",
        revision="v1",
    )
    page = gen_zoo.zoo_markdown([gen_zoo.architecture_info("agw_resnet18")], {name: config}, {})
    assert "No pretrained weights" not in page
    assert "`hf-hub:org/agw-docs-test@v1`" in page and "sysu_mm01/all/mAP 50.00" in page
    assert f"| `{name}` |" in page


# The pages -------------------------------------------------------------------------------------


def test_every_method_has_a_page_with_its_readme_and_modules() -> None:
    config = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    in_nav = nav_pages(config["nav"])
    documented = documented_modules()
    for method in method_folders():
        page = DOCS / "models" / f"{method}.md"
        assert page.is_file(), f"method {method!r} has no page: add docs/models/{method}.md"
        assert f"models/{method}.md" in in_nav, f"add models/{method}.md to mkdocs.yml's nav"
        text = page.read_text(encoding="utf-8")
        readme = f'"../../src/vireid_zoo/models/{method}/README.md"'
        assert f"{{% include-markdown {readme} rewrite-relative-urls=true %}}" in text
        for path in sorted((PACKAGE / "models" / method).glob("[!_]*.py")):
            module = f"vireid_zoo.models.{method}.{path.stem}"
            assert documented.get(module) == [f"models/{method}.md"], module


def test_every_public_module_is_in_the_api_reference_once() -> None:
    documented = documented_modules()
    missing = [module for module in public_modules() if module not in documented]
    assert not missing, f"add '::: MODULE' to its layer's page in docs/api/: {missing}"
    repeated = {name: pages for name, pages in documented.items() if len(pages) > 1}
    assert not repeated, f"documented on several pages (one anchor each): {repeated}"


def test_each_layer_has_its_api_page_in_order() -> None:
    config = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    api = [page for page in nav_pages(config["nav"]) if page.startswith("api/")]
    layers = ["core", "evaluation", "data", "blocks", "losses", "models", "hub", "deploy", "cli"]
    assert api == ["api/index.md", *(f"api/{layer}.md" for layer in layers)]
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(layers)
    for layer in layers:
        names = DIRECTIVE.findall((DOCS / "api" / f"{layer}.md").read_text(encoding="utf-8"))
        assert names and all(name.startswith(f"vireid_zoo.{layer}") for name in names), layer


def test_no_page_or_docstring_cites_a_file_outside_the_repository() -> None:
    sources = [*DOCS.rglob("*.md"), REPO_ROOT / "README.md", *PACKAGE.rglob("*.py")]
    sources += [*PACKAGE.rglob("README.md"), *PACKAGE.rglob("*.yaml")]
    citing = [str(p.relative_to(REPO_ROOT)) for p in sources if "METHODS.md" in p.read_text()]
    assert not citing, f"these cite METHODS.md, which is not in the repository: {citing}"


def test_no_source_or_page_holds_a_control_character() -> None:
    # A "\b" typed into a non-raw string becomes a backspace, which a page shows as nothing.
    sources = [*DOCS.rglob("*.md"), *PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.md")]
    sources += [*(REPO_ROOT / "benchmarks").glob("*.py"), *(REPO_ROOT / "tests").rglob("*.py")]
    control = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
    holding = [str(p.relative_to(REPO_ROOT)) for p in sources if control.search(p.read_text())]
    assert not holding, f"control characters (e.g. a backspace from '\\b') in: {holding}"


# The link hook (docs/hooks.py) -----------------------------------------------------------------


def test_included_files_map_to_the_pages_that_include_them(
    hooks: ModuleType, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    (docs / "models").mkdir(parents=True)
    (tmp_path / "README.md").write_text("# Readme\n")
    (docs / "index.md").write_text('{% include-markdown "../README.md" %}\n')
    (docs / "models" / "agw.md").write_text(
        '{%\n  include-markdown "../../src/agw/README.md"\n  rewrite-relative-urls=true\n%}\n'
    )
    (docs / "plain.md").write_text("# No include\n")
    pages = {
        "index.md": docs / "index.md",
        "models/agw.md": docs / "models" / "agw.md",
        "plain.md": docs / "plain.md",
    }
    assert hooks.included_files(pages) == {
        (tmp_path / "README.md").resolve(): "index.md",
        (tmp_path / "src" / "agw" / "README.md").resolve(): "models/agw.md",
    }
    (docs / "plain.md").write_text('{% include-markdown "../README.md" %}\n')
    with pytest.raises(ValueError, match=r"README.md is included by both docs/index.md"):
        hooks.included_files(pages)


def test_links_to_included_files_go_to_their_pages(hooks: ModuleType, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    included = {
        (tmp_path / "src" / "agw" / "README.md").resolve(): "models/agw.md",
        (tmp_path / "CHANGELOG.md").resolve(): "changelog.md",
    }
    markdown = "\n".join(
        [
            "[AGW](../src/agw/README.md), [changes](../CHANGELOG.md#010 'title'),",
            "[data](datasets.md), [web](https://x.y/z), [top](#set-up),",
            "`[code](../CHANGELOG.md)` and [other](../examples/train.py).",
            "```",
            "[fenced](../CHANGELOG.md)",
            "```",
        ]
    )
    text = hooks.link_included_files(markdown, docs / "index.md", "index.md", included)
    assert text.splitlines() == [
        "[AGW](models/agw.md), [changes](changelog.md#010 'title'),",
        "[data](datasets.md), [web](https://x.y/z), [top](#set-up),",
        "`[code](../CHANGELOG.md)` and [other](../examples/train.py).",
        "```",
        "[fenced](../CHANGELOG.md)",
        "```",
    ]
    # From a page one folder down, the link is relative to that page.
    text = hooks.link_included_files(
        "[changes](../../CHANGELOG.md)", docs / "models" / "agw.md", "models/agw.md", included
    )
    assert text == "[changes](../changelog.md)"


# The strict build ------------------------------------------------------------------------------


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


def _text_outside_code(html: str) -> str:
    return re.sub(r"<(pre|code)\b.*?</\1>", "", html, flags=re.DOTALL)


@pytest.mark.slow
@pytest.mark.skipif(
    bool(_missing_docs_packages()) and not os.environ.get("CI"),
    reason=f"the docs tools are not installed ({', '.join(_missing_docs_packages())} "
    "missing): pip install -e '.[docs]' to run the strict MkDocs build",
)
def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "NO_MKDOCS_2_WARNING": "1",
        "DISABLE_MKDOCS_2_WARNING": "true",
    }
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
    for page in ("getting-started", "datasets", "protocols", "training", "hub", "architecture"):
        assert (site / page / "index.html").is_file(), page
    for script in ("hooks.py", "gen_zoo.py"):
        assert not (site / script).exists()

    # The home page (README.md) links to the method pages, not to the READMEs' files.
    home = (site / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]*)"', home)
    assert "models/agw/" in links and "changelog/" in links
    assert not [link for link in links if link.endswith(".md")], links

    # Formulas reach MathJax as arithmatex wrote them: GeM's, inline and displayed.
    blocks = (site / "api" / "blocks" / "index.html").read_text(encoding="utf-8")
    assert '<span class="arithmatex">\\(\\mathcal{X}_k\\)</span>' in blocks
    gem = r"f_k = \Big(\frac{1}{|\mathcal{X}_k|}\sum_{x \in \mathcal{X}_k} x^{p}\Big)^{1/p}"
    displayed = re.findall(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', blocks, re.DOTALL)
    assert any(gem in formula for formula in displayed), displayed

    # No page shows Sphinx markup or a formula that was not typeset.
    for page in sorted(site.rglob("*.html")):
        text = _text_outside_code(page.read_text(encoding="utf-8"))
        where = page.relative_to(site)
        assert not SPHINX_MARKUP.findall(text), f"{where}: {SPHINX_MARKUP.findall(text)[:5]}"
        assert "$$" not in text, f"{where} has a $$ formula arithmatex did not take"
