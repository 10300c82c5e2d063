"""MkDocs hooks: pages generated from the code at build time, never committed.

Registered in ``mkdocs.yml`` (``hooks: [docs/hooks.py]``). At every build they

- import every method package under ``src/vireid_zoo/models/`` (a new folder is picked up
  without any change here) and write the **Model zoo** page (``models/index.md``): every
  architecture of :func:`vireid_zoo.list_models`, grouped by method, with its parameter
  count (built with ``num_classes=0``), embedding dimension, the network class's
  ``paper`` and the weights :func:`vireid_zoo.models.registry.list_pretrained` publishes;
- turn each ``src/vireid_zoo/models/<method>/README.md`` into a page ``models/<method>.md``
  followed by the method package's API reference (a method without a README gets a page
  with its variants and API reference), and add the pages to the navigation;
- make the home page from ``README.md`` and the changelog page from ``CHANGELOG.md``
  (unless ``docs/index.md`` / ``docs/changelog.md`` exist);
- rewrite the relative links of every page written for GitHub (``docs/datasets.md``,
  ``../../../../configs/agw/sysu_mm01.yaml``, ...) so they work on the site: a link to a
  file that has a page becomes a link to that page, any other file of the repository a
  link to it on GitHub, and a link to a missing file is a warning (an error with
  ``--strict``).

The functions below are also used by ``tests/test_docs.py``.
"""

from __future__ import annotations

import functools
import importlib
import logging
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # MkDocs is only needed to build the site, not to import this module
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

    from vireid_zoo.core.contract import PretrainedConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS_DIR = REPO_ROOT / "docs"
MODELS_DIR = REPO_ROOT / "src" / "vireid_zoo" / "models"
MODELS_PACKAGE = "vireid_zoo.models"
DEFAULT_REPO_URL = "https://github.com/vireid-zoo/vireid-zoo"
DEFAULT_BRANCH = "main"
ZOO_PAGE = "models/index.md"
ZOO_NAV_TITLE = "Model zoo"

log = logging.getLogger("mkdocs.hooks.vireid_zoo")

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK_OR_CODE = re.compile(
    r"(?P<code>`+[^`]*`+)"
    r"|(?P<prefix>!?\[[^\]]*\]\()(?P<target>[^)\s]+)(?P<suffix>(?:\s+\"[^\"]*\")?\))"
)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
# A Sphinx role in a docstring, as mkdocstrings renders it: :class:<code>~pkg.mod.Name</code>.
_SPHINX_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc|const):"
    r"<code>(?P<tilde>~?)(?P<target>[^<]+)</code>"
)

# Where each generated page comes from (docs-relative URI -> repository-relative path), so
# that its links can be resolved against the file they were written for.
_ORIGINS: dict[str, str] = {}


# Discovery -----------------------------------------------------------------------------------


def discover_methods(models_dir: Path = MODELS_DIR) -> list[str]:
    """Method packages under ``src/vireid_zoo/models/`` (folders with an ``__init__.py``)."""
    return sorted(
        path.name
        for path in models_dir.iterdir()
        if path.is_dir() and not path.name.startswith("_") and (path / "__init__.py").is_file()
    )


def import_methods(methods: Iterable[str]) -> None:
    """Import every method package so that its architectures are registered."""
    for method in methods:
        importlib.import_module(f"{MODELS_PACKAGE}.{method}")


@dataclass(frozen=True)
class ArchitectureInfo:
    """What the zoo table says about one registered architecture.

    Attributes:
        name: Registry name, e.g. ``"agw_resnet50"``.
        method: Method package (folder) the network class lives in, e.g. ``"agw"``.
        method_name: Display name of the method (the class's ``method_name``).
        network_class: Import path of the network class.
        parameters: Number of parameters without an identity classifier.
        embedding_dim: Size of the embedding ``extract_features`` returns.
        paper: The network class's ``paper`` attribute ("" if it has none).
        summary: First line of the factory's docstring.
    """

    name: str
    method: str
    method_name: str
    network_class: str
    parameters: int
    embedding_dim: int
    paper: str
    summary: str


@functools.cache
def architecture_info(name: str) -> ArchitectureInfo:
    """Build ``name`` with ``num_classes=0`` once per process and describe it.

    The network is built on PyTorch's ``meta`` device (shapes only, no memory, no
    initialisation cost); a network that cannot be built there is built on the CPU.
    """
    import torch

    from vireid_zoo.models.registry import _REGISTRY

    factory = _REGISTRY[name]
    try:
        with torch.device("meta"):
            network = factory(num_classes=0)
    except Exception:  # any failure on meta tensors: build it for real
        network = factory(num_classes=0)
    cls = type(network)
    module = cls.__module__
    prefix = f"{MODELS_PACKAGE}."
    method = module[len(prefix) :].split(".")[0] if module.startswith(prefix) else module
    return ArchitectureInfo(
        name=name,
        method=method,
        method_name=getattr(cls, "method_name", "") or method.upper(),
        network_class=f"{module}.{cls.__qualname__}",
        parameters=sum(p.numel() for p in network.parameters()),
        embedding_dim=int(network.embedding_dim),
        paper=str(getattr(cls, "paper", "") or ""),
        summary=((factory.__doc__ or "").strip().splitlines() or [""])[0],
    )


def registry_infos(methods: Iterable[str] | None = None) -> list[ArchitectureInfo]:
    """Describe every registered architecture, after importing every method package."""
    import_methods(discover_methods() if methods is None else methods)
    import vireid_zoo

    return [architecture_info(name) for name in vireid_zoo.list_models()]


# Page content ------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _arch_sort_key(info: ArchitectureInfo) -> tuple[str, int, str]:
    digits = re.search(r"(\d+)$", info.name)
    return (info.name.rstrip("0123456789"), int(digits.group(1)) if digits else 0, info.name)


def zoo_markdown(
    infos: Iterable[ArchitectureInfo],
    pretrained: dict[str, PretrainedConfig],
    method_pages: dict[str, str],
) -> str:
    """The Model zoo page.

    Args:
        infos: Every registered architecture.
        pretrained: Published pretrained names (``<architecture>.<tag>``) -> their
            :class:`~vireid_zoo.core.contract.PretrainedConfig`.
        method_pages: Method package -> its page, relative to the zoo page.

    Returns:
        The page's Markdown.
    """
    by_method: dict[str, list[ArchitectureInfo]] = {}
    for info in infos:
        by_method.setdefault(info.method, []).append(info)
    total = sum(len(v) for v in by_method.values())
    lines = [
        "# Model zoo",
        "",
        f"{total} architectures of {len(by_method)} methods are registered. This page is "
        "generated from the registry when the documentation is built "
        "(`vireid_zoo.list_models()`), so it always matches the code.",
        "",
        "- **parameters**: the network built with `num_classes=0`, as for inference (the "
        "identity classifier that training adds is not counted).",
        "- **embedding dim**: the size of `net.extract_features(images, modality)`'s "
        "L2-normalised output.",
        "- **pretrained**: weights published on the Hugging Face Hub and registered in "
        "`vireid_zoo.list_pretrained()`.",
        "",
        "```python",
        "import vireid_zoo as vz",
        "",
        'vz.list_models("agw_*")                        # registered architectures',
        'net = vz.create_model("agw_resnet50", num_classes=0).eval()',
        'emb = net.extract_features(images, modality="infrared")  # (B, embedding dim)',
        "```",
        "",
    ]
    if pretrained:
        lines += [
            "## Published pretrained weights",
            "",
            "| name | Hub repository | dataset | protocol | metrics (%) |",
            "|---|---|---|---|---|",
        ]
        for name, config in sorted(pretrained.items()):
            metrics = ", ".join(
                f"{key} {100 * value:.2f}" for key, value in sorted(config.metrics.items())
            )
            revision = f"@{config.revision}" if config.revision else ""
            lines.append(
                f"| `{name}` | `hf-hub:{config.hub_id}{revision}` | {_cell(config.dataset or '')}"
                f" | {_cell(config.protocol or '')} | {_cell(metrics) or '—'} |"
            )
        lines.append("")
    else:
        lines += [
            '!!! note "No pretrained weights are published yet"',
            "    `vireid_zoo.list_pretrained()` is empty: no weights trained with "
            "this zoo have been published. `create_model(name, pretrained=True)` therefore "
            "raises an error for every architecture. Train a model yourself "
            "([Training](../training.md)), or load weights you saved or published with "
            '`create_model("local-dir:PATH")` / `create_model("hf-hub:ORG/NAME")` '
            "([Publishing & loading](../hub.md)).",
            "",
        ]
    lines += ["## Architectures", ""]
    for method in sorted(by_method):
        members = sorted(by_method[method], key=_arch_sort_key)
        head = members[0]
        page = method_pages.get(method)
        title = f"[{head.method_name}]({page})" if page else head.method_name
        lines += [f"### {head.method_name}", ""]
        papers = sorted({info.paper for info in members if info.paper})
        lines.append(f"**Paper**: {_cell('; '.join(papers))}" if papers else "**Paper**: —")
        lines += [
            "",
            f"Method page: {title} · network class: `{head.network_class}`",
            "",
            "| architecture | parameters | embedding dim | pretrained | description |",
            "|---|---:|---:|---|---|",
        ]
        for info in members:
            tags = [f"`{name}`" for name in sorted(pretrained) if name.startswith(f"{info.name}.")]
            lines.append(
                f"| `{info.name}` | {info.parameters / 1e6:.2f} M ({info.parameters:,}) "
                f"| {info.embedding_dim} | {', '.join(tags) or 'none'} | {_cell(info.summary)} |"
            )
        lines.append("")
    return "\n".join(lines)


def method_markdown(method: str, readme: str | None, infos: list[ArchitectureInfo]) -> str:
    """A method's page: its README (or a short summary) and its package's API reference.

    Args:
        method: The method package, e.g. ``"agw"``.
        readme: The text of ``src/vireid_zoo/models/<method>/README.md``, if any.
        infos: The method's registered architectures.

    Returns:
        The page's Markdown.
    """
    name = infos[0].method_name if infos else method.upper()
    if readme is not None:
        body = readme.rstrip()
    else:
        papers = sorted({info.paper for info in infos if info.paper})
        variants = ", ".join(f"`{info.name}`" for info in sorted(infos, key=_arch_sort_key))
        body = "\n".join(
            [
                f"# {name}",
                "",
                f"**Paper**: {'; '.join(papers) or '—'}",
                "",
                f"Registered variants: {variants or 'none'}.",
                "",
                f"This method has no README yet (`src/vireid_zoo/models/{method}/README.md`); "
                "the API reference below is generated from its docstrings.",
            ]
        )
    return "\n".join(
        [
            body,
            "",
            "## API reference",
            "",
            f"::: {MODELS_PACKAGE}.{method}",
            "    options:",
            "      heading_level: 3",
            "      show_root_heading: false",
            "      show_root_toc_entry: false",
            "",
        ]
    )


# Links -------------------------------------------------------------------------------------


def page_for_repo_path(path: str, docs_pages: set[str]) -> str | None:
    """The docs page (docs-relative URI) that renders a repository file, if any."""
    if path == "README.md" and "index.md" in docs_pages:
        return "index.md"
    if path == "CHANGELOG.md" and "changelog.md" in docs_pages:
        return "changelog.md"
    if path.startswith("docs/") and path[len("docs/") :] in docs_pages:
        return path[len("docs/") :]
    match = re.fullmatch(r"src/vireid_zoo/models/([^/]+)/README\.md", path)
    if match and f"models/{match.group(1)}.md" in docs_pages:
        return f"models/{match.group(1)}.md"
    return None


def rewrite_links(
    markdown: str,
    origin: str,
    page: str,
    docs_pages: set[str],
    repo_url: str = DEFAULT_REPO_URL,
    branch: str = DEFAULT_BRANCH,
    repo_root: Path = REPO_ROOT,
) -> tuple[str, list[str]]:
    """Make the relative links of a file written for the repository work on the site.

    Fenced code blocks and inline code are left alone.

    Args:
        markdown: The page's Markdown.
        origin: Repository-relative path of the file the Markdown was written as.
        page: Docs-relative URI of the page it is rendered as.
        docs_pages: Every docs-relative URI of the site.
        repo_url: The repository on GitHub.
        branch: The branch GitHub links point to.
        repo_root: The repository's root folder.

    Returns:
        The rewritten Markdown and the link targets that name no existing file.
    """
    missing: list[str] = []
    base = posixpath.dirname(origin)

    def replace(match: re.Match[str]) -> str:
        if match.group("code"):
            return match.group(0)
        target = match.group("target")
        if target.startswith(("#", "/")) or _SCHEME.match(target):
            return match.group(0)
        path, hashmark, fragment = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(base, path))
        if resolved.startswith("../") or resolved == "..":
            missing.append(target)
            return match.group(0)
        page_uri = page_for_repo_path(resolved, docs_pages)
        if page_uri is not None:
            new = posixpath.relpath(page_uri, posixpath.dirname(page) or ".")
        elif resolved.startswith("docs/") and origin.startswith("docs/"):
            return match.group(0)  # an asset inside docs/: MkDocs checks it itself
        else:
            local = repo_root / resolved
            if not local.exists():
                missing.append(target)
            kind = "tree" if local.is_dir() else "blob"
            new = f"{repo_url.rstrip('/')}/{kind}/{branch}/{resolved}"
        return f"{match.group('prefix')}{new}{hashmark}{fragment}{match.group('suffix')}"

    out: list[str] = []
    in_fence = False
    for line in markdown.splitlines(keepends=True):
        if _FENCE.match(line):
            in_fence = not in_fence
            out.append(line)
        elif in_fence:
            out.append(line)
        else:
            out.append(_LINK_OR_CODE.sub(replace, line))
    return "".join(out), missing


# MkDocs events -----------------------------------------------------------------------------


def _generated_pages(methods: list[str]) -> dict[str, tuple[str, str]]:
    """Docs-relative URI -> (Markdown, origin path) of every generated page."""
    from vireid_zoo.models.registry import list_pretrained, pretrained_config

    infos = registry_infos(methods)
    pretrained = {name: pretrained_config(name) for name in list_pretrained()}
    grouped = {m: [info for info in infos if info.method == m] for m in methods}
    pages: dict[str, tuple[str, str]] = {}
    for method in methods:
        readme_path = MODELS_DIR / method / "README.md"
        readme = readme_path.read_text(encoding="utf-8") if readme_path.is_file() else None
        origin = readme_path.relative_to(REPO_ROOT).as_posix()
        pages[f"models/{method}.md"] = (method_markdown(method, readme, grouped[method]), origin)
    method_pages = {m: f"{m}.md" for m in methods}
    pages[ZOO_PAGE] = (zoo_markdown(infos, pretrained, method_pages), "docs/models/index.md")
    for uri, source in (("index.md", "README.md"), ("changelog.md", "CHANGELOG.md")):
        if not (DOCS_DIR / uri).exists() and (REPO_ROOT / source).is_file():
            pages[uri] = ((REPO_ROOT / source).read_text(encoding="utf-8"), source)
    return pages


def _method_title(method: str) -> str:
    readme = MODELS_DIR / method / "README.md"
    if readme.is_file():
        for line in readme.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return re.split(r"\s+[—–-]\s+|:\s", line[2:].strip())[0]
    infos = [i for i in registry_infos([method]) if i.method == method]
    return infos[0].method_name if infos else method.upper()


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Add every method's page to the ``Model zoo`` section of the navigation."""
    methods = discover_methods()
    import_methods(methods)
    nav = config.get("nav") or []
    for entry in nav:
        if isinstance(entry, dict) and ZOO_NAV_TITLE in entry:
            section = entry[ZOO_NAV_TITLE]
            if not isinstance(section, list):
                section = [section]
            listed = {v if isinstance(v, str) else next(iter(v.values())) for v in section}
            for method in methods:
                uri = f"models/{method}.md"
                if uri not in listed:
                    section.append({_method_title(method): uri})
            entry[ZOO_NAV_TITLE] = section
            break
    else:
        log.warning("mkdocs.yml's nav has no '%s' section for the method pages", ZOO_NAV_TITLE)
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated pages to the site's files."""
    from mkdocs.structure.files import File

    _ORIGINS.clear()
    for uri, (content, origin) in _generated_pages(discover_methods()).items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=content))
        _ORIGINS[uri] = origin
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Rewrite the repository-relative links of every page (see :func:`rewrite_links`)."""
    uri = page.file.src_uri
    origin = _ORIGINS.get(uri, f"docs/{uri}")
    docs_pages = {f.src_uri for f in files.documentation_pages()}
    markdown, missing = rewrite_links(
        markdown,
        origin,
        uri,
        docs_pages,
        repo_url=config.get("repo_url") or DEFAULT_REPO_URL,
        branch=_branch(config),
    )
    for target in missing:
        log.warning("%s (shown as %s) links to '%s', which does not exist", origin, uri, target)
    return markdown


def sphinx_roles_to_links(html: str) -> str:
    """Turn the Sphinx roles of docstrings (``:class:`~pkg.Name```) into cross-references.

    The package's docstrings use Sphinx roles, which mkdocstrings leaves as text. Each
    becomes an optional mkdocs-autorefs reference: a link where the object is documented on
    the site, plain code otherwise (never a warning). ``~`` shows the last name only.
    """

    def replace(match: re.Match[str]) -> str:
        target = match.group("target").strip()
        identifier = target.removesuffix("()")
        title = target.rsplit(".", 1)[-1] if match.group("tilde") else target
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    return _SPHINX_ROLE.sub(replace, html)


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Make the Sphinx roles left in rendered docstrings cross-references."""
    return sphinx_roles_to_links(html)


def _branch(config: MkDocsConfig) -> str:
    edit_uri = str(config.get("edit_uri") or "")
    match = re.match(r"(?:blob|edit|tree)/([^/]+)/", edit_uri)
    return match.group(1) if match else DEFAULT_BRANCH
