"""MkDocs hook: a link to a repository file that a page of the site includes goes to that page.

The home page, the changelog and each method page include ``README.md``, ``CHANGELOG.md``
and the method READMEs (``{% include-markdown "..." rewrite-relative-urls=true %}``),
and mkdocs-include-markdown-plugin rewrites each included file's relative links for the
including page. A rewritten link to another included file would still point outside the
site: the README's ``src/vireid_zoo/models/agw/README.md`` becomes
``../src/vireid_zoo/models/agw/README.md`` on ``index.md``. This hook points such links at
the page that includes the file (``models/agw.md``). Any other link out of ``docs/`` is left
to MkDocs, which reports it (an error with ``--strict``): link such files by their GitHub
address. ``tests/test_docs.py`` imports the functions below.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # MkDocs is only needed to build the site, not to import this module
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

_INCLUDE = re.compile(r"\{%\s*include-markdown\s+\"(?P<path>[^\"]+)\"")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK_OR_CODE = re.compile(r"(?P<code>`+[^`]*`+)|(?P<prefix>\]\()(?P<target>[^)\s#]+)")

# Absolute path of each file a page includes -> that page (docs-relative URI).
_INCLUDED: dict[Path, str] = {}


def included_files(pages: dict[str, Path]) -> dict[Path, str]:
    """The files that pages include, each with the page that includes it.

    Args:
        pages: Docs-relative URI -> source file of every page written by hand.

    Returns:
        Absolute path of each included file -> the URI of the page that includes it.

    Raises:
        ValueError: Two pages include the same file, so a link to it has no single page.
    """
    included: dict[Path, str] = {}
    for uri, source in sorted(pages.items()):
        for match in _INCLUDE.finditer(source.read_text(encoding="utf-8")):
            path = (source.parent / match.group("path")).resolve()
            if included.setdefault(path, uri) != uri:
                raise ValueError(
                    f"{path} is included by both docs/{included[path]} and docs/{uri}: "
                    "include each file in one page only, so that links to it have one target"
                )
    return included


def link_included_files(markdown: str, source: Path, uri: str, included: dict[Path, str]) -> str:
    """Point the links of a page to included files at the pages that include them.

    Links in fenced code blocks and inline code are left alone, and so is every link that
    does not name an included file.

    Args:
        markdown: The page's Markdown, includes expanded.
        source: The page's source file (its links are relative to its folder).
        uri: The page's docs-relative URI.
        included: What :func:`included_files` returns.

    Returns:
        The Markdown with those links rewritten.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group("code"):
            return match.group(0)
        target = match.group("target")
        page = included.get((source.parent / target).resolve())
        if page is None:
            return match.group(0)
        return match.group("prefix") + posixpath.relpath(page, posixpath.dirname(uri) or ".")

    out: list[str] = []
    in_fence = False
    for line in markdown.splitlines(keepends=True):
        if _FENCE.match(line):
            in_fence = not in_fence
        out.append(line if in_fence or _FENCE.match(line) else _LINK_OR_CODE.sub(replace, line))
    return "".join(out)


def _hand_written(files: Files, config: MkDocsConfig) -> dict[str, Path]:
    docs_dir = Path(config.docs_dir).resolve()
    pages = {f.src_uri: Path(f.abs_src_path) for f in files.documentation_pages()}
    return {uri: path for uri, path in pages.items() if path.resolve().is_relative_to(docs_dir)}


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Record which page includes which file."""
    _INCLUDED.clear()
    _INCLUDED.update(included_files(_hand_written(files, config)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Point the page's links to included files at their pages (after the includes)."""
    if page.file.abs_src_path is None:
        return markdown
    return link_included_files(markdown, Path(page.file.abs_src_path), page.file.src_uri, _INCLUDED)
