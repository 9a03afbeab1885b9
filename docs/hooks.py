"""MkDocs hooks: the repository's own files on the site, as they are.

- `results/` (its README, each folder's `report.md`, comparisons `against-*.md`, pooled reports `with-*.md` and plots), `experiments/README.md`
  and the notebooks of `nbs/` become pages and files of the site at their paths in the repository, read from there;
  every report is listed under the nav's `Reports`.
- A line `<!-- include: PATH -->` in a page is replaced by the file at PATH (from the repository root), its relative
  links made the site's; `<!-- include: PATH ## Heading -->` by the first table under that heading of PATH.
  A missing file, heading or table fails the build.
"""
from __future__ import annotations
import posixpath
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r"^<!-- include: (\S+)(?: (#+ .+?))? -->$", re.M)
LINK = re.compile(r"(\]\()([^)\s#]+)((?:#[^)\s]*)?\))")


def mounted() -> dict:
    "Site path -> repository path of each file the site takes from outside `docs/`; `results/README.md` is `folders.md`"
    found = [ROOT / 'results' / 'README.md', ROOT / 'experiments' / 'README.md', *sorted(ROOT.glob('results/*/report.md')),
             *sorted(ROOT.glob('results/*/against-*.md')), *sorted(ROOT.glob('results/*/with-*.md')),
             *sorted(ROOT.glob('results/*/*.png')), *sorted(ROOT.glob('nbs/*.ipynb'))]
    paths = [p.relative_to(ROOT).as_posix() for p in found]
    return {('results/folders.md' if p == 'results/README.md' else p): p for p in paths}


def reports() -> list:
    "The site paths of the reports, in folder order"
    return [p for p in mounted() if p.endswith('/report.md')]


def site_path(repo_path: str) -> str:
    "Where a repository file is on the site: `docs/X` at X, a mounted file where `mounted` puts it"
    if repo_path.startswith('docs/'): return repo_path[len('docs/'):]
    return {repo: site for site, repo in mounted().items()}.get(repo_path, repo_path)


def table_under(text: str, heading: str, where: str = '') -> str:
    "The first markdown table after the line `heading` in `text`"
    lines = text.splitlines()
    if heading not in lines: raise PluginError(f"{where}: no heading {heading!r}")
    rest = lines[lines.index(heading) + 1:]
    start = next((i for i, l in enumerate(rest) if l.startswith('|')), None)
    if start is None: raise PluginError(f"{where}: no table under {heading!r}")
    end = next((i for i in range(start, len(rest)) if not rest[i].startswith('|')), len(rest))
    return '\n'.join(rest[start:end])


def include(path: str, heading: str | None, page_uri: str) -> str:
    "The text a page's include line stands for: a whole file with its links made the site's, or one table of it"
    src = ROOT / path
    if not src.is_file(): raise PluginError(f"{page_uri}: include of a missing file {path}")
    text = src.read_text()
    if heading: return table_under(text, heading, path)
    def relink(m):
        target = m[2]
        if re.match(r'^[a-z][a-z0-9+.-]*:', target) or target.startswith('/'): return m[0]     # a URL or absolute
        repo = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        rel = posixpath.relpath(site_path(repo), posixpath.dirname(page_uri) or '.')
        return f"{m[1]}{rel}{m[3]}"
    return LINK.sub(relink, text)


def on_config(config):
    "Fill the nav's `Reports` section with every results/*/report.md"
    def fill(items):
        for item in items or []:
            if isinstance(item, dict):
                for k, v in item.items():
                    if k == 'Reports': item[k] = [{p.split('/')[1]: p} for p in reports()]
                    elif isinstance(v, list): fill(v)
    fill(config.nav)
    return config


@event_priority(100)                       # before mkdocs-jupyter, which takes the notebooks among the files
def on_files(files, config):
    "Add the mounted files, read from where they live in the repository"
    for site, repo in mounted().items():
        if site == repo:                   # a plain File: mkdocs-jupyter wraps the notebooks, reading their src_dir
            files.append(File(repo, src_dir=str(ROOT), dest_dir=config.site_dir, use_directory_urls=config.use_directory_urls))
        else: files.append(File.generated(config, site, abs_src_path=str(ROOT / repo)))
    return files


def on_page_markdown(markdown, page, config, files):
    "Replace each include line"
    return INCLUDE.sub(lambda m: include(m[1], m[2], page.file.src_uri), markdown)
