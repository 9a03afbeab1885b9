"Plugins: a package installed beside the library extends `esc50-norm` through the `esc50_norm.plugins` entry points"
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from esc50_norm import MODES
from esc50_norm.study import plugins
from esc50_norm.study.cli import main as cli
from esc50_norm.study.datasets import KINDS
from esc50_norm.study.normalizations import NORMALIZATIONS
from esc50_norm.study.presets import CHOSEN, PRESETS
from user_extensions import LabelsJSON, Scaled, make_labels_json

CLI = str(Path(sys.executable).parent / 'esc50-norm')
TESTS = Path(__file__).resolve().parent

REGISTER = '''"A user's plugin: a callable that registers a mode, a study normalization using it and a preset over it"
from esc50_norm import MODES
from esc50_norm.study.normalizations import NORMALIZATIONS, Normalization
from esc50_norm.study.presets import CHOSEN, PRESETS, Preset
from user_extensions import Scaled

CALLS = []

def register():
    CALLS.append(1)
    MODES['scaled'] = Scaled()
    NORMALIZATIONS['scaled'] = Normalization(wave=True, mode='scaled')
    PRESETS['plugged'] = Preset('plugged', normalizations=('scaled',), seeds=(0,), epochs=2)
    CHOSEN['plugged'] = "A plugin's preset, not tuned."
'''

KIND = '''"A user's plugin module: importing it registers a dataset kind"
from esc50_norm.study.datasets import KINDS
from user_extensions import LabelsJSON

KINDS['labelsjson'] = LabelsJSON
'''


def install(path: Path, dist: str, modules: dict, entries: dict) -> Path:
    "Install package `dist` at `path` as pip would: its modules, and a dist-info with its METADATA and entry points"
    path.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items(): (path / f"{name}.py").write_text(source)
    info = path / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / 'METADATA').write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = ''.join(f"{name} = {value}\n" for name, value in entries.items())
    (info / 'entry_points.txt').write_text(f"[{plugins.GROUP}]\n{lines}")
    return path


@pytest.fixture
def on_path(monkeypatch):
    "Put a package installed by `install` on sys.path; afterwards the registries and modules are as they were"
    saved = [(d, dict(d)) for d in (MODES, KINDS, NORMALIZATIONS, PRESETS, CHOSEN)]
    monkeypatch.setattr(plugins, '_LOADED', set())
    monkeypatch.delenv(plugins.NO_PLUGINS, raising=False)
    before = set(sys.modules)
    def put(path: Path, *args) -> Path:
        monkeypatch.syspath_prepend(str(install(path, *args)))
        return path
    yield put
    for d, entries in saved:
        d.clear()
        d.update(entries)
    for name in set(sys.modules) - before:
        if name.startswith('esc50_plugged') or name.startswith('esc50_broken'): del sys.modules[name]


def plugged(path: Path, put) -> Path:
    return put(path, 'esc50-plugged', dict(esc50_plugged=REGISTER, esc50_plugged_kinds=KIND),
               dict(scaled='esc50_plugged:register', labelsjson='esc50_plugged_kinds'))


def test_a_plugins_module_and_callable_register_once_before_the_parser_is_built(on_path, tmp_path, capsys):
    plugged(tmp_path / 'site', on_path)
    with pytest.raises(SystemExit) as e: cli(['study', '--help'])
    assert e.value.code == 0 and 'plugged' in capsys.readouterr().out.split('--preset PRESET')[-1]
    assert isinstance(MODES['scaled'], Scaled) and KINDS['labelsjson'] is LabelsJSON
    assert NORMALIZATIONS['scaled'].mode == 'scaled' and PRESETS['plugged'].normalizations == ('scaled',)
    assert plugins.load_plugins() == ['labelsjson', 'scaled']
    assert sys.modules['esc50_plugged'].CALLS == [1]                        # loaded once per process


@pytest.mark.slow
def test_a_smoke_study_of_a_plugins_preset_on_its_kind_in_worker_processes(tmp_path):
    "A fresh `esc50-norm`, and the spawned worker that runs the run, both load the plugin: no wrapper script"
    site = plugged(tmp_path / 'site', lambda path, *args: install(path, *args))
    data, out = make_labels_json(tmp_path / 'mine'), tmp_path / 'res'
    env = {**os.environ, 'MPLBACKEND': 'Agg', 'PYTHONPATH': f"{site}{os.pathsep}{TESTS}"}
    env.pop(plugins.NO_PLUGINS, None)
    r = subprocess.run([CLI, 'study', '--preset', 'plugged', '--smoke', '--folds', '1', '--dataset',
                        f"labelsjson:{data}", '--bs', '2', '--workers', '2', '--no-baseline', '--no-report',
                        '--device', 'cpu', '--out', str(out), '--cache-dir', str(tmp_path / 'cache')],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '1 worker processes: cpu worker 1' in r.stdout
    preset = json.loads((out / 'preset.json').read_text())
    assert preset['name'] == 'plugged-smoke' and preset['normalizations'] == ['scaled']
    assert preset['dataset']['kind'] == 'labelsjson'
    run = json.loads((out / 'runs' / 'fold1-scaled-seed0.json').read_text())
    assert run['preset'] == 'plugged-smoke' and run['spec_norm'] == 'scaled' and run['dataset_kind'] == 'labelsjson'
    stats = json.loads((out / 'runs' / 'fold1-scaled-seed0.stats.json').read_text())
    assert stats['mode'] == 'scaled' and stats['k'] == 2.0


_BAD = {
    'an import that fails': (dict(esc50_broken='import esc50_nowhere\n'), 'esc50_broken',
                             "failed to load: ModuleNotFoundError: No module named 'esc50_nowhere'"),
    'a callable that raises': (dict(esc50_broken='def register(): raise KeyError("mine")\n'), 'esc50_broken:register',
                               "failed to load: KeyError: 'mine'"),
    'a missing callable': (dict(esc50_broken=''), 'esc50_broken:register', "failed to load: AttributeError"),
    'neither module nor callable': (dict(esc50_broken='register = 3\n'), 'esc50_broken:register',
                                    "failed to load: TypeError: it names a int: neither a module nor a callable"),
    'a preset under another name': (
        dict(esc50_broken="from esc50_norm.study.presets import PRESETS, Preset\n"
                          "PRESETS['mine'] = Preset('yours')\n"), 'esc50_broken',
        "registered PRESETS['mine']: its name is 'yours': a preset's key is its name"),
    'a normalization of an unknown mode': (
        dict(esc50_broken="from esc50_norm.study.normalizations import NORMALIZATIONS, Normalization\n"
                          "NORMALIZATIONS['mine'] = Normalization(wave=True, mode='scaled')\n"), 'esc50_broken',
        "registered NORMALIZATIONS['mine']: its mode 'scaled' is not in MODES"),
    'a kind of another name': (
        dict(esc50_broken="from esc50_norm.study.datasets import KINDS\n"
                          "from user_extensions import LabelsJSON\nKINDS['mine'] = LabelsJSON\n"), 'esc50_broken',
        "registered KINDS['mine']: a kind's class needs `kind = 'mine'`"),
    'a mode that is not one': (
        dict(esc50_broken="from esc50_norm import MODES\nMODES['mine'] = object()\n"), 'esc50_broken',
        "registered MODES['mine']: a Mode needs ['keys', 'options'"),
}


@pytest.mark.parametrize('case', list(_BAD))
def test_a_broken_plugin_is_named_with_its_entry_point_and_distribution(on_path, tmp_path, capsys, case):
    modules, value, why = _BAD[case]
    on_path(tmp_path / 'site', 'esc50-broken', modules, dict(broken=value))
    assert cli(['report', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"esc50-norm: error: plugin 'broken' (entry point broken = {value} in group "
                          "esc50_norm.plugins of esc50-broken 0.1)") and why in err and 'Traceback' not in err


def test_plugins_can_be_turned_off_when_one_is_broken(on_path, tmp_path, capsys, monkeypatch):
    on_path(tmp_path / 'site', 'esc50-broken', dict(esc50_broken='import esc50_nowhere\n'), dict(broken='esc50_broken'))
    assert cli(['report', str(tmp_path)]) == 2 and 'ESC50_NORM_NO_PLUGINS=1' in capsys.readouterr().err
    monkeypatch.setenv(plugins.NO_PLUGINS, '1')
    with pytest.raises(SystemExit) as e: cli(['study', '--help'])
    assert e.value.code == 0 and plugins.load_plugins() == []
