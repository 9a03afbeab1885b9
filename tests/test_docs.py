"The front page (README.md) and the documentation site: what a reader runs and follows works, tables are the reports'"
import importlib.util
import json
import os
import re
import subprocess
import sys
import types
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _section(text: str, heading: str) -> str:
    "The text under the line `heading` up to the next heading of its level or above"
    level = heading.split(' ')[0]
    return re.split(rf"\n#{{1,{len(level)}}} ", text.split(f"\n{heading}\n", 1)[1])[0]


def _slug(heading: str) -> str:
    "The anchor GitHub and MkDocs give a heading"
    return re.sub(r"[\s]+", '-', re.sub(r"[^\w\s-]", '', heading.strip().lower()))


def _md_tables(text: str) -> list:
    "Each markdown table of `text`: its rows of cells, the separator row left out, links, emphasis and code marks as their text"
    tables, rows = [], []
    for line in text.splitlines() + ['']:
        if line.startswith('|'):
            cells = [re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", re.sub(r"\*+|`", '', c)).strip()    # a link: its text
                     for c in line.strip().strip('|').split('|')]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells): rows.append(cells)
        elif rows: tables, rows = tables + [rows], []
    return tables


class _Tables(HTMLParser):
    "The tables of an HTML page as rows of cell texts"
    def __init__(self, html: str):
        super().__init__()
        self.tables, self.cell = [], None
        self.feed(html)
    def handle_starttag(self, tag, attrs):
        if tag == 'table': self.tables.append([])
        elif tag == 'tr' and self.tables: self.tables[-1].append([])
        elif tag in ('td', 'th'): self.cell = ''
    def handle_endtag(self, tag):
        if tag in ('td', 'th') and self.cell is not None:
            self.tables[-1][-1].append(' '.join(self.cell.split()))
            self.cell = None
    def handle_data(self, data):
        if self.cell is not None: self.cell += data


def _hooks():
    spec = importlib.util.spec_from_file_location('docs_hooks', ROOT / 'docs' / 'hooks.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_readme_is_a_front_page():
    text = README.read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert len(text.splitlines()) <= 150
    assert headings == ['Install', 'A DataBlock', 'Normalizations', 'Statistics: save, load, export', 'The answer',
                        'Two commands', 'Where the rest lives']
    answer = _section(text, '## The answer')
    assert '(docs/results.md)' in answer and answer.count('/report.md#verdicts)') >= 5     # claims: tests/test_answer.py


def test_the_readme_installs_what_the_project_declares():
    tomllib = pytest.importorskip('tomllib')
    extras = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['optional-dependencies']
    install = _section(README.read_text(), '## Install')
    assert {'ray', 'dev'} <= set(extras) and "pip install '.[ray]'" in install and "pip install -e '.[dev]'" in install
    assert {'mkdocs', 'mkdocs-material', 'mkdocstrings-python', 'mkdocs-jupyter'} <= {re.split(r'[<>=]', r)[0] for r in extras['dev']}
    assert '.[dev,ray]' in (ROOT / 'scripts' / 'setup').read_text() and "'.[dev,ray]'" in README.read_text()


def test_the_study_page_has_a_row_for_every_preset_and_no_other():
    "docs/study.md's preset table against the registry, read in a fresh process (no preset a test registered)"
    found = subprocess.run([sys.executable, '-c', 'from esc50_norm.study.presets import PRESETS; print(*PRESETS)'],
                           capture_output=True, text=True, check=True, env={**os.environ, 'ESC50_NORM_NO_PLUGINS': '1'})
    table = next(t for t in _md_tables((ROOT / 'docs' / 'study.md').read_text()) if t[0] == ['preset', 'grid', 'recipe', 'time'])
    assert sorted(r[0] for r in table[1:]) == sorted(found.stdout.split())


def test_the_readme_modes_are_the_registry():
    from esc50_norm import MODES
    table = _md_tables(_section(README.read_text(), '## Normalizations'))[0]
    builtin = [m for m, mode in MODES.items() if type(mode).__module__ == 'esc50_norm.normalize']   # not the tests' own
    assert table[0] == ['mode', 'statistics'] and [r[0] for r in table[1:]] == builtin and len(builtin) == 5


def test_every_readme_link_resolves():
    text = README.read_text()
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
    links = LINK.findall(text)
    assert len(links) >= 10
    for link in links:
        assert not re.match(r"^[a-z]+:", link), f"the front page links outside the repository: {link}"
        path, _, anchor = link.partition('#')
        if not path: assert anchor in anchors, link
        else:
            assert (ROOT / path).is_file(), f"README links to {path}, which is not a file of the repository"
            if anchor: assert anchor in {_slug(h) for h in re.findall(r"^#+ (.+)$", (ROOT / path).read_text(), re.M)}, link


@pytest.mark.slow                                              # it trains: xResNet18, one epoch (about 30 s on 2 busy cores)
def test_the_readme_datablock_runs(fake_root, tmp_path, monkeypatch):
    "The front page's example as it stands, on a generated ESC-50-shaped folder: 2-s clips, bs 4, one epoch"
    code = re.search(r"## A DataBlock\n\n```python\n(.*?)```", README.read_text(), re.S)[1]
    assert 'esc50_norm.study' not in code                      # the library's example needs nothing of the study
    assert f"```python\n{code}```" in (ROOT / 'docs' / 'library.md').read_text()   # the library guide's is this one
    for old, new in [("root = Path('ESC-50-master')", f"root = Path({str(fake_root)!r})"), ('duration=5', 'duration=2'),
                     ('bs=64', 'bs=4'), ('fit_one_cycle(20,', 'fit_one_cycle(1,')]:
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(code, str(README), 'exec'), ns)
    dls, learn = ns['dls'], ns['learn']
    assert set(dls.valid.items.fold) == {1} and 1 not in set(dls.train.items.fold)
    assert len(learn.recorder.values) == 1 and (tmp_path / 'model.pkl').is_file()
    norm = ns['find_spec_normalize'](ns['load_learner']('model.pkl').dls.train)
    assert norm.mode == 'global' and norm.has_stats and norm.n > 0
    stats_block = re.search(r"## Statistics: save, load, export\n\n```python\n(.*?)```", README.read_text(), re.S)[1]
    exec(compile(stats_block, str(README), 'exec'), ns)                  # in the same session, after the DataBlock's
    loaded = ns['SpecNormalize'].from_file('stats.json', mode='global')
    assert torch.equal(loaded.mean.cpu(), ns['norm'].mean.cpu()) and torch.equal(loaded.std.cpu(), ns['norm'].std.cpu())
    with pytest.raises(ns['StatsFileError'], match='stats.json'): ns['SpecNormalize'].from_file('stats.json', mode='channel')
    cb = next(c for c in learn.cbs if isinstance(c, ns['SpecStatsCallback']))
    cb.before_fit()                                                       # learn.path/'stats.json' exists: it loads it
    assert cb.source == 'file' and Path(cb.target.stats_file).resolve() == (tmp_path / 'stats.json').resolve()


def test_the_readme_features_and_constants_are_mel_cpus():
    "The example's spectrogram is mel-cpu's, and its fixed constants are the global stats mel-cpu learned on folds 2-5"
    from esc50_norm import AudioConfig
    text = README.read_text()
    cfg = eval(re.search(r"^cfg = (AudioConfig\.\w+\([^)]*\))", text, re.M)[1], {'AudioConfig': AudioConfig})
    preset = json.loads((ROOT / 'results' / 'mel-cpu' / 'preset.json').read_text())
    assert {k: v for k, v in vars(cfg).items() if k in preset['spec']} == preset['spec']
    stats = json.loads((ROOT / 'results' / 'mel-cpu' / 'runs' / 'fold1-global-seed0.stats.json').read_text())
    mean, std = map(float, re.search(r"stats=dict\(mean=([-\d.]+), std=([\d.]+)\)\)", text).groups())
    assert (mean, std) == (round(stats['mean'][0], 1), round(stats['std'][0], 1)) and stats['fold'] == 1
    assert f"stats=dict(mean={mean}, std={std})" in (ROOT / 'docs' / 'library.md').read_text()


def test_the_readme_front_ends_take_the_spectrograms_their_comments_name():
    "Each line of the front page's PCEN and front-end block runs on the spectrograms its line names, and the models classify"
    code = re.search(r"Beyond statistics, PCEN and two front ends:\n\n```python\n(.*?)```", README.read_text(), re.S)[1]
    ns = {}
    exec("from fastai.vision.all import *\nfrom esc50_norm import *", ns)
    ns['dls'] = types.SimpleNamespace(c=3)
    cfg_line, pcen_line, learned_line, bn_line = code.splitlines()
    wave = ns['AudioTensor'](torch.randn(2, 1, 16000), sr=16000)
    exec(cfg_line, ns); exec(pcen_line, ns)
    cfg, (to_spec, pcen) = ns['cfg'], ns['batch_tfms']
    assert (cfg.scale, cfg.to_db, cfg.n_mels) == (2 ** 31, False, 128)                 # as its comment says
    assert (cfg.sample_rate, cfg.hop) == (pcen.sr, pcen.hop_length) == (16000, 256)     # PCEN()'s defaults, as said
    assert torch.isfinite(pcen(to_spec(wave))).all()
    exec(learned_line, ns)
    assert ns['model'](to_spec(wave)).shape == (2, 3)                      # AudioToSpec(cfg) alone, as its comment says
    exec(bn_line, ns)
    log_mel = ns['AudioToSpec'](ns['AudioConfig'].BasicMelSpectrogram())(wave)
    assert ns['model'].train()(log_mel).shape == (2, 3)
    with pytest.raises(ValueError, match=r"FreqBatchNorm\(128\) takes \[bs, channels, 128, frames\]"):   # 201 linear bins
        ns['model'](ns['AudioToSpec'](ns['AudioConfig'].BasicSpectrogram())(wave))


def test_the_library_guides_class_folder_datablock_runs(tmp_path, monkeypatch):
    "The guide's DataBlock over a folder per class, on generated clips: labels from the folders, stats from training"
    import soundfile as sf
    guide = (ROOT / 'docs' / 'library.md').read_text()
    code = re.search(r"`my_sounds/<class>/<clip>`\):\n\n```python\n(.*?)```", guide, re.S)[1]
    rng = np.random.default_rng(0)
    for c in ('dog', 'rain'):
        (tmp_path / 'my_sounds' / c).mkdir(parents=True)
        for i in range(5):
            sf.write(tmp_path / 'my_sounds' / c / f"{i}.wav", rng.normal(size=8000).astype('float32'), 16000)
    monkeypatch.chdir(tmp_path)
    ns = {}
    cfg = re.search(r"^cfg = .*$", guide, re.M)[0]                        # the guide's spectrogram, above
    exec(f"from fastai.vision.all import *\nfrom esc50_norm import *\n{cfg}\n" + code.replace('bs=16', 'bs=4'), ns)
    dls = ns['dls']
    assert list(dls.vocab) == ['dog', 'rain'] and len(dls.train_ds) == 8 and len(dls.valid_ds) == 2
    x, y = dls.one_batch()
    assert x.shape == (4, 1, 64, 157) and ns['find_spec_normalize'](dls.train).has_stats


def test_the_library_guides_table_names_the_public_api_exactly():
    "Each name of `esc50_norm.__all__` has a row in the library guide's table, and each name the table opens with is one"
    import esc50_norm
    text = (ROOT / 'docs' / 'library.md').read_text()
    table = text[text.index('| name | what it is |'):].split('\n\n')[0]          # the guide's table of names
    rows = [line.split('|')[1] for line in table.splitlines() if line.startswith('| `')]
    named = {n for r in rows for n in re.findall(r"`(\w+)", r)}
    assert named == set(esc50_norm.__all__), (set(esc50_norm.__all__) - named, named - set(esc50_norm.__all__))


def test_the_library_guides_mode_and_augmentation_run_as_written(monkeypatch):
    "A mode of your own, as the guide writes it, normalizes by its formula; the guide's augmentations keep their places"
    from esc50_norm import MODES, AudioSpectrogram
    guide = (ROOT / 'docs' / 'library.md').read_text()
    mode, augment = re.findall(r"```python\n((?:import torch\nfrom esc50_norm import MODES|wave_tfms, spec_tfms).*?)```",
                               guide, re.S)
    monkeypatch.setitem(MODES, 'scaled', None)                            # restored after the test
    ns = {}
    exec(mode, ns)
    x = AudioSpectrogram(torch.randn(2, 1, 5, 7) * 10 - 40)
    norm = ns['SpecNormalize']('scaled', stats=dict(mean=-40.0, std=10.0))
    assert torch.allclose(norm(x), (x - -40.0) / (2.0 * 10.0)) and torch.allclose(norm.decode(norm(x)), x, atol=1e-4)
    flat = ns['RunningStats']((0, 1, 2, 3)).update(torch.full((2, 1, 5, 7), -40.0))   # a constant input: scale 1, as said
    assert ns['Scaled']().arrays(flat, 1e-6, k=2.0)['std'].item() == 1.0
    exec("from fastai.vision.all import *\nfrom esc50_norm import *", ns)
    exec(augment, ns)
    names = ['RandomTimeShift', 'AudioNormalize', 'AudioToSpec', 'SpecNormalize', 'SpecMask']
    assert [type(f).__name__ for f in ns['batch_tfms']] == names
    assert [type(f).__name__ for f in ns['Pipeline'](ns['batch_tfms']).fs] == names     # fastai orders them so too
    assert {f.split_idx for f in ns['batch_tfms'] if type(f).__name__ in ('RandomTimeShift', 'SpecMask')} == {0}


@pytest.fixture(scope='module')
def site(tmp_path_factory) -> Path:
    "The site as `mkdocs build --strict` writes it"
    out = tmp_path_factory.mktemp('site')
    r = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir', str(out)], cwd=ROOT,
                       capture_output=True, text=True, env={**os.environ, 'NO_MKDOCS_2_WARNING': '1'})
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'WARNING' not in r.stderr, r.stderr
    return out


def test_the_home_page_is_the_readme(site):
    html = (site / 'index.html').read_text()
    readme = README.read_text()
    assert re.findall(r'<h2 id="([^"]+)"', html) == [_slug(h) for h in re.findall(r"^## (.+)$", readme, re.M)]
    assert _Tables(html).tables == _md_tables(readme)
    assert 'href="results/"' in html and 'href="library/"' in html     # docs/X.md: the site's page X
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", readme)
    assert images and all(f'src="{i}"' in html and (site / i).is_file() for i in images)   # shown, not a broken link


def test_the_api_page_indexes_each_exported_name_at_its_entry(site):
    "The index of docs/api.md lists each name of `__all__` once, under the module it lives in, linked to its entry"
    import esc50_norm
    links = re.findall(r"\[`(\w+)`\]\(#esc50_norm\.(\w+)\.(\w+)\)", (ROOT / 'docs' / 'api.md').read_text())
    assert sorted(n for n, _, _ in links) == sorted(esc50_norm.__all__)
    assert all(n == m and esc50_norm._WHERE[n] == mod for n, mod, m in links)
    ids = set(re.findall(r'id="([^"]+)"', (site / 'api' / 'index.html').read_text()))
    assert {f"esc50_norm.{mod}.{n}" for n, mod, _ in links} <= ids
    assert 'esc50_norm.audio.play' not in ids and 'esc50_norm.normalize.MeanStd' not in ids   # public: a module's __all__


def test_the_results_page_includes_each_reports_verdict_table(site):
    "Each include line of docs/results.md stands, on the built page, for the table under its heading in the report"
    source = (ROOT / 'docs' / 'results.md').read_text()
    includes = re.findall(r"^<!-- include: (results/[\w.-]+/[\w.+-]+\.md) (## .+) -->$", source, re.M)
    assert len(includes) >= 9 and 'results/cv-bf16/report.md' in dict(includes)
    assert ('results/linear-cpu/against-mel-cpu.md', '## Verdicts') in includes       # a comparison's verdicts too
    built = _Tables((site / 'results' / 'index.html').read_text()).tables
    expected = [_md_tables(_section((ROOT / path).read_text(), heading))[0] for path, heading in includes]
    assert all('verdict' in t[0] for t, (_, heading) in zip(expected, includes) if heading == '## Verdicts')
    # the page's tables in order: typed ones as typed, each include line replaced by its report's table
    pieces = re.split(r"^<!-- include: results/[\w.-]+/[\w.+-]+\.md ## .+ -->$", source, flags=re.M)
    tables = _md_tables(pieces[0])
    for table, piece in zip(expected, pieces[1:]): tables += [table, *_md_tables(piece)]
    assert built == tables and len(built) > len(expected)


def test_each_report_page_is_the_report(site):
    reports = sorted(ROOT.glob('results/*/report.md'))
    assert len(reports) >= 13
    for report in reports:
        page = site / report.relative_to(ROOT).with_suffix('') / 'index.html'
        html, md = page.read_text(), report.read_text()
        assert _Tables(html).tables == _md_tables(md), report
        for img in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
            assert (site / report.parent.relative_to(ROOT) / img).read_bytes() == (report.parent / img).read_bytes()


def test_the_notebooks_are_rendered_as_committed(site):
    "Not executed: each page shows the committed notebook's images and execution counts"
    for nb in sorted(ROOT.glob('nbs/*.ipynb')):
        html = (site / 'nbs' / nb.stem / 'index.html').read_text()
        cells = json.loads(nb.read_text())['cells']
        pngs = sum('image/png' in o.get('data', {}) for c in cells for o in c.get('outputs', []))
        assert pngs > 0 and html.count('src="data:image/png;base64,') == pngs, nb.name
        counts = [c['execution_count'] for c in cells if c['cell_type'] == 'code' and c['execution_count']]
        assert [int(n) for n in re.findall(r"In\xa0\[(\d+)\]:", html)] == counts, nb.name


def test_an_include_of_a_missing_heading_fails_the_build():
    from mkdocs.exceptions import PluginError
    hooks = _hooks()
    with pytest.raises(PluginError, match="no heading '## Nothing'"):
        hooks.include('results/cv-bf16/report.md', '## Nothing', 'results.md')
    with pytest.raises(PluginError, match='missing file'): hooks.include('results/none/report.md', None, 'results.md')
    assert hooks.include('README.md', None, 'index.md').count('](results.md)') == README.read_text().count('](docs/results.md)')


def test_the_results_index_has_a_row_for_every_folder_and_no_other():
    """results/README.md's first table against the folders of results/ (a study's, a baseline's alone, or an
    analysis's: data that a script of experiments/, which its row names, wrote)"""
    table = _md_tables((ROOT / 'results' / 'README.md').read_text())[0]
    rows = {re.fullmatch(r"([\w.-]+)/", r[0])[1]: r[1] for r in table[1:]}        # _md_tables drops the backticks
    folders = sorted(p.name for p in (ROOT / 'results').iterdir() if p.is_dir())
    assert sorted(rows) == folders and len(rows) == len(table) - 1
    for f in folders:
        if (ROOT / 'results' / f / 'preset.json').is_file() or (ROOT / 'results' / f / 'baseline.json').is_file(): continue
        script = re.search(r"experiments/\w+\.py", rows[f])
        assert script and (ROOT / script[0]).is_file() and any((ROOT / 'results' / f).glob('*.csv')), f
