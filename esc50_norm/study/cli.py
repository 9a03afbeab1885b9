"Command line: `esc50-norm study|report|compare|cache|train|baseline|predict|demo`"
from __future__ import annotations
import argparse
import json
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

__all__ = ['main']


def _shard(s: str) -> tuple:
    "'i/n' (1-based) -> (i-1, n)"
    try: i, n = map(int, s.split('/'))
    except ValueError: raise argparse.ArgumentTypeError(f"--shard takes i/n such as 1/4, got {s!r}") from None
    if not 1 <= i <= n: raise argparse.ArgumentTypeError(f"--shard {s}: i must be between 1 and n")
    return i - 1, n


def _ints(s: str) -> tuple:
    "'0,1,2' -> (0, 1, 2): whole numbers of at least 0 (seeds, folds, GPUs)"
    xs = s.split(',')
    if not all(x.strip().isdigit() for x in xs):
        raise argparse.ArgumentTypeError(f"takes whole numbers of at least 0 separated by commas, such as 0,1,2; "
                                         f"got {s!r}")
    return tuple(int(x) for x in xs)
def _seconds(s: str) -> float:
    try: x = float(s)
    except ValueError: x = -1.0
    if not x >= 0: raise argparse.ArgumentTypeError(f"takes a number of seconds of at least 0, got {s!r}")
    return x
def _positive(s: str) -> int:
    if not s.lstrip('-').isdigit() or int(s) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {s!r}")
    return int(s)
def _natural(s: str) -> int:
    if not s.lstrip('-').isdigit() or int(s) < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 0, got {s!r}")
    return int(s)
def _strs(s: str) -> tuple: return tuple(x for x in s.split(',') if x)
def _fold(s: str) -> int:
    if s != 'all' and not s.isdigit():
        raise argparse.ArgumentTypeError(f"takes a fold's number or 'all', got {s!r}")
    return 0 if s == 'all' else int(s)


def _preset(a, **grid):
    "The preset named on the command line, shrunk by --smoke, with its fields overridden by the options given"
    from .presets import get_preset
    precision = (dict(bf16=False, channels_last=False) if a.fp32 else
                 dict(bf16=True if a.bf16 else None, channels_last=True if a.channels_last else None))
    return get_preset(a.preset, smoke=a.smoke, epochs=a.epochs, bs=a.bs, lr=a.lr, pipeline=a.pipeline,
                      duration=a.duration, clips_per_class=a.clips_per_class, **precision, **grid)


def _dataset(a):
    "The dataset of --dataset (with --data, --columns, --k-folds, --fold-seed, --partial-data), checked before any work"
    from .datasets import get_dataset
    given = {k: v for k, v in dict(columns=a.columns, k_folds=a.k_folds, fold_seed=a.fold_seed).items()
             if v is not None}
    ds = get_dataset(a.dataset, a.data, full=not a.partial_data, **given)
    ds.meta()
    return ds


def cmd_study(a):
    from ..spelling import plural
    from .baseline import ensure_baseline
    from .engines import get_engine, run_study
    from .report import terminal_summary, write_report
    from .study import Study
    preset = _preset(a, folds=a.folds, seeds=a.seeds, normalizations=a.normalizations)
    study = Study(preset, Path(a.out or f"results/{preset.name}"), dataset=_dataset(a), cache_dir=a.cache_dir,
                  device=a.device, save_models=a.save_models)
    engine = get_engine(a.engine, workers=a.workers, device=study.device, gpus=a.gpus, address=a.address,
                        retries=a.retries, stop_after=a.stop_after)
    if not a.no_baseline:
        engine.check(study)
        study.check()
        study.prepare()                         # the folder is this study's before its baseline goes in
        try: ensure_baseline(study)
        except (ValueError, ArithmeticError) as e:
            print(f"no classical baseline ({type(e).__name__}: {e})", file=sys.stderr)
    try: run_study(study, shard=a.shard, engine=engine)
    except KeyboardInterrupt:
        grid = [j for k, j in enumerate(study.preset.jobs()) if k % a.shard[1] == a.shard[0]]
        done = sum(map(study.finished, grid))
        print(f"esc50-norm study: interrupted; {done} of {plural(len(grid), 'run')} of this shard finished in "
              f"{study.out}; the same command resumes the others", file=sys.stderr)
        return 130
    if not a.no_report: print(f"report: {write_report(study.out)}\n{terminal_summary(study.out)}")
    missing = len(study.todo(a.shard))
    if missing: print(f"not finished: {plural(missing, 'run')} of this shard (see above)", file=sys.stderr)
    return 1 if missing else 0


def cmd_report(a):
    from .report import check_poolable, compare_report, terminal_summary, write_pooled_report, write_report
    from .runs import check_dataset, read_preset
    if a.pool:
        if len(a.results) > 1: raise ValueError(f"--with pools into one results folder; {len(a.results)} were given")
        check_poolable([*a.results, *a.pool])                       # before any work: one recipe, one dataset
    if a.dataset or a.data:
        ds = _dataset(a)
        for out in a.results:
            check_dataset(out, read_preset(out).dataset, ds, "give --dataset the one its runs came from, or leave "
                                                             "--dataset out: a report needs only the run files")
    for out in a.results: print(f"report: {write_report(out)}\n{terminal_summary(out)}\n")
    if len(a.results) > 1: print(compare_report(a.results))
    if a.pool: print(f"pooled report: {write_pooled_report([*a.results, *a.pool])}")


def cmd_compare(a):
    from ..atomic import write_atomic
    from .report import compare_report, compare_runs, plot_folds, pool_homes
    folders, minus = [a.reference, *a.results], a.minus or []
    if len({Path(f).resolve() for f in minus}) == 1:
        raise ValueError(f"--minus takes two different folders, a reference and a folder; got {minus[0]} twice")
    homes = pool_homes(folders, a.pool)                 # each pool into its recipe's folder, checked before any work
    runs = compare_runs(folders, homes=homes)
    text = compare_report(folders, runs, minus=minus)
    print(text)
    named = [' + '.join(map(str, [f, *extra])) for f, extra in homes]
    than = f", minus {minus[1]} - {minus[0]}" if minus else ''
    if a.out: write_atomic(Path(a.out), f"# Comparison of {', '.join(named)}{than}\n\n{text}")
    if a.figure: plot_folds(runs, a.figure)


def cmd_cache(a):
    from .datasets import summary
    from .presets import get_preset
    from .train import load_study_data
    ds, built = _dataset(a), []
    print(summary(ds))
    def log(line):
        built.append(line.startswith('decoded '))
        print(line)
    preset = get_preset(a.preset, duration=a.duration).for_dataset(ds, log=log)
    sd = load_study_data(preset, ds, a.cache_dir, device='cpu', log=log)
    print(f"{len(sd.cache)} clips cached: {tuple(sd.cache.x.shape)} at {sd.cache.sr} Hz")
    if not any(built): print(sd.cache.report())          # a new cache has printed its data report as it was built


def cmd_baseline(a):
    from .baseline import baseline_text, ensure_baseline
    from .compat import recorded_dataset
    from .runs import check_dataset, read_preset
    from .study import Study
    out = Path(a.out)
    recorded = read_preset(out) if (out / 'preset.json').is_file() else None     # a results folder: its recipe
    rec = recorded_dataset(recorded.dataset) if recorded is not None else None
    if rec is not None and not (a.dataset or a.data) and rec['kind'] != 'esc50':
        raise ValueError(f"{out} holds runs of dataset {rec['name']} ({rec['kind']} at {rec.get('root')}): give it as "
                         "--dataset, with the --columns, --k-folds and --fold-seed its study was given")
    ds = _dataset(a)
    if recorded is not None: check_dataset(out, recorded.dataset, ds, "give --dataset the one its runs came from")
    study = Study(recorded or _preset(a), out, dataset=ds, cache_dir=a.cache_dir, device='cpu')
    b = ensure_baseline(study, log=None)
    print(f"{baseline_text(b)} ({b['clips']} clips, {b['seconds']} s)\nbaseline: {Path(a.out) / 'baseline.json'}")


def _model_file(out: Path) -> Path:
    """`train --out`, checked before any work: not a folder, not under a file, in a folder that can be written; a file
    already there is replaced only when it is a model (an exported learner: a zip archive), never the data or notes"""
    import zipfile
    from ..atomic import make_folder
    if out.is_dir(): raise IsADirectoryError(f"--out {out} is a folder: give the model file, e.g. {out / 'model.pkl'}")
    if out.exists() and not zipfile.is_zipfile(out):
        raise FileExistsError(f"--out {out} exists and is not a model file: give a new path for the model, or move "
                              "that file away")
    make_folder(out.parent)
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out}: folder {out.parent} is not writable")
    return out


def cmd_train(a):
    from .datasets import check_training, subset_per_class
    from .normalizations import get_normalization
    from .presets import Job
    from .train import load_study_data, train_one
    get_normalization(a.normalization)          # an unknown one, or a fold the data lacks, fails before any work
    ds = _dataset(a)
    preset = _preset(a, folds=(a.fold,) if a.fold else ds.folds).for_dataset(ds)     # only that fold is checked
    check_training(subset_per_class(ds.meta(), preset.clips_per_class), (a.fold,), preset.bs, ds.name)
    name = f"{preset.name}-fold{'all' if not a.fold else a.fold}-{a.normalization}-seed{a.seed}.pkl"
    out = _model_file(Path(a.out or f"models/{name}"))
    data = load_study_data(preset, ds, a.cache_dir, a.device)
    preset = preset.resolved(data.device)
    row, _ = train_one(preset, data, Job(a.fold, a.normalization, a.seed), model_file=out)
    where = ('no validation fold: trained on every fold' if not a.fold else
             f"validation accuracy on fold {a.fold}: {row['final_accuracy']:.4f}")
    print(f"{preset.name}, {a.normalization}, seed {a.seed}, {preset.epochs} epochs in {row['wall_s']:.1f}s; "
          f"{where}\nmodel: {out}")


def cmd_predict(a):
    from ..inference import load_exported, predict_files
    res = predict_files(load_exported(a.model), a.files, top_k=a.top_k)
    if a.json: print(json.dumps(res.to_dict(orient='records'), indent=1, allow_nan=False))
    else: print(res.to_markdown(index=False, floatfmt='.4f'))


def cmd_demo(a):
    from .demo import demo
    demo(a.out)


def _data_options() -> argparse.ArgumentParser:
    "The options that choose a dataset and its cache, shared by the commands that read one"
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument('--dataset', help="esc50 (default), esc10, KIND:PATH (urbansound8k, csv, folders) or a PATH: "
                                        "an ESC-50 or UrbanSound8K folder, a .csv file, a folder per class")
    data.add_argument('--data', help="the ESC-50 folder of esc50/esc10 (meta/esc50.csv + audio/); "
                                     "default $ESC50_PATH, else download")
    data.add_argument('--partial-data', action='store_true',
                      help="accept an ESC-50-shaped folder that is not all of ESC-50 (or ESC-10)")
    data.add_argument('--columns',
                      help="csv datasets: file=COLUMN,label=COLUMN[,fold=COLUMN] (default file, label, fold)")
    data.add_argument('--k-folds', type=int,
                      help="csv without folds, folders: stratified folds made for them (default 5)")
    data.add_argument('--fold-seed', type=_natural, help="the seed of those folds (default 0)")
    data.add_argument('--cache-dir',
                      help="where decoded clips are cached; default $ESC50_NORM_CACHE or ~/.cache/esc50_norm")
    return data


def _recipe_options(presets) -> argparse.ArgumentParser:
    "The options that choose a preset and override its recipe, shared by the commands that train"
    recipe = argparse.ArgumentParser(add_help=False)
    recipe.add_argument('--preset', default='quick', help=f"{', '.join(presets)} (default quick)")
    recipe.add_argument('--smoke', action='store_true',
                        help="the preset's CI-sized form: folds 1-2, 1 seed, 1 epoch, 1 clip per class and fold")
    recipe.add_argument('--device', help="cuda, cpu, ... (default: the GPU when there is one)")
    recipe.add_argument('--epochs', type=int, help="epochs of one-cycle training (default: the preset's; on a "
                                                   "collection other than ESC-50, enough for 200 optimizer steps)")
    recipe.add_argument('--bs', type=int, help="batch size (default: the preset's, halved until an epoch has 4 "
                                               "batches)")
    recipe.add_argument('--lr', type=float)
    recipe.add_argument('--clips-per-class', type=int)
    recipe.add_argument('--pipeline', choices=['device', 'cached', 'files'])
    recipe.add_argument('--duration', type=float, help="seconds clips are cropped/padded to (default: the dataset's, "
                                                       "ESC-50: 5; else the 99th percentile of its clips, the cropped "
                                                       "ones reported)")
    recipe.add_argument('--fp32', action='store_true',
                        help="fp32 without channels-last (default on CUDA and on a CPU with native bf16: "
                             "bf16 autocast + channels-last)")
    recipe.add_argument('--bf16', action='store_true', help="bf16 autocast, also on a CPU without native bf16")
    recipe.add_argument('--channels-last', action='store_true', help="channels-last memory, also without bf16")
    return recipe


def _add_study(sub, data, recipe):
    s = sub.add_parser('study', parents=[data, recipe], help="run (or resume) a preset's grid, then write its report")
    s.add_argument('--out', help="results folder (default results/PRESET); finished runs in it are skipped")
    s.add_argument('--folds', type=_ints)
    s.add_argument('--seeds', type=_ints)
    s.add_argument('--normalizations', type=_strs,
                   help="comma-separated names, e.g. none,wave,global,channel,minmax,instance")
    s.add_argument('--shard', type=_shard, default=(0, 1),
                   help="run every n-th job, i/n (1-based): one of n machines or array tasks")
    _engine_options(s)
    s.add_argument('--save-models', action='store_true', help="export each run's model as runs/<run>.pkl")
    s.add_argument('--no-report', action='store_true', help="skip the report (e.g. in all but the last shard)")
    s.add_argument('--no-baseline', action='store_true', help="skip the classical baseline (once per folder, into "
                                                              "baseline.json: MFCC statistics + logistic regression "
                                                              "on the same folds)")
    s.set_defaults(func=cmd_study)


def _engine_options(s):
    "`study`'s options of where its runs run"
    s.add_argument('--workers', type=int,
                   help="processes per GPU (default: 5 on CUDA, which fills an H100; 1 on the CPU)")
    s.add_argument('--gpus', type=_ints, help="GPUs to use, e.g. 0,1 (default: every visible GPU)")
    s.add_argument('--engine', default='local', help="local: processes on this machine (default); ray: a Ray cluster")
    s.add_argument('--address', help="with --engine ray: the cluster's address (default: start a local Ray)")
    s.add_argument('--retries', type=_natural, default=1,
                   help="how often a run whose worker died is tried again (default 1)")
    s.add_argument('--stop-after', type=_seconds,
                   help="start no run after this many seconds (runs in progress finish; local engine only)")


def _add_report(sub, data):
    r = sub.add_parser('report', parents=[data],
                       help="tables and plots from results folders (and a comparison when given several)")
    r.add_argument('results', nargs='+', help="results folders (holding preset.json and runs/)")
    r.add_argument('--with', dest='pool', action='append', default=[], metavar='FOLDER',
                   help="pool this folder's runs of the same recipe with the results folder's, as one grid, into "
                        "RESULTS/with-FOLDER.md (its verdicts, and which pairs span two machines); may be repeated "
                        "(RESULTS/with-F1+F2.md)")
    r.set_defaults(func=cmd_report)


def _add_compare(sub):
    c = sub.add_parser('compare', help="compare results folders with a reference one, normalization by normalization")
    c.add_argument('reference', help="the results folder to compare with, e.g. the committed results/quick-cpu")
    c.add_argument('results', nargs='+', help="the other results folders")
    c.add_argument('--with', dest='pool', action='append', default=[], metavar='FOLDER',
                   help="pool this folder's runs (arms run apart) with those of the first compared folder of its "
                        "recipe, the reference or another, as in `report --with`; may be repeated")
    c.add_argument('--minus', nargs=2, metavar=('REFERENCE2', 'FOLDER2'),
                   help="also test each folder's difference to the reference against FOLDER2's to REFERENCE2, run by "
                        "run (an interaction: does one change have the effect it has elsewhere?)")
    c.add_argument('--out', help="also write the comparison to this markdown file")
    c.add_argument('--figure', help="also plot each folder's per-fold accuracy, normalization by normalization, "
                                    "and their shared contrasts per fold, to this PNG")
    c.set_defaults(func=cmd_compare)


def _add_train(sub, data, recipe):
    t = sub.add_parser('train', parents=[data, recipe], help="train one model of a preset and export it for `predict`")
    t.add_argument('--fold', type=_fold, default=1,
                   help="the validation fold (ESC-50: 1-5), or 'all' to train on every fold (default 1)")
    t.add_argument('--normalization', default='global')
    t.add_argument('--seed', type=_natural, default=0)
    t.add_argument('--out', help="the model file (default models/PRESET-foldF-NORMALIZATION-seedS.pkl)")
    t.set_defaults(func=cmd_train)


def _add_baseline(sub, data, recipe):
    b = sub.add_parser('baseline', parents=[data, recipe], help="the classical baseline alone (MFCC statistics + "
                                                               "logistic regression on every fold) into baseline.json")
    b.add_argument('--out', required=True, help="the folder for baseline.json: a results folder (its recipe and "
                                                "dataset, checked), or one of its own")
    b.set_defaults(func=cmd_baseline)


def _add_predict(sub):
    pr = sub.add_parser('predict', help="the top classes of audio files under an exported model")
    pr.add_argument('model', help="a model file: `learn.export()`'s, `esc50-norm train`'s or `study --save-models`'s")
    pr.add_argument('files', nargs='+',
                    help="audio files (WAV, FLAC, OGG, MP3, AIFF), any sample rate, channels and length")
    pr.add_argument('--top-k', type=_positive, default=3)
    pr.add_argument('--json', action='store_true', help="print JSON")
    pr.set_defaults(func=cmd_predict)


def _add_cache(sub, data, presets):
    d = sub.add_parser('cache', parents=[data], help="decode and cache the clips of a preset, and report on them")
    d.add_argument('--preset', default='quick', help="the preset whose clips to cache: its sample rate, downmix and "
                                                    f"subset decide the cache ({', '.join(presets)}; default quick)")
    d.add_argument('--duration', type=float, help="seconds clips are cropped/padded to (default: the dataset's, "
                                                  "ESC-50: 5; else the 99th percentile of its clips)")
    d.set_defaults(func=cmd_cache)


def _add_demo(sub):
    dm = sub.add_parser('demo', help="a DataBlock on generated clips: stats, and a show_batch PNG")
    dm.add_argument('--out', default='demo', help="folder for the generated clips, stats and PNG")
    dm.set_defaults(func=cmd_demo)


def _parser() -> argparse.ArgumentParser:
    "`esc50-norm`'s parser: a subcommand each, sharing the dataset and recipe options"
    from .presets import PRESETS
    p = argparse.ArgumentParser(prog='esc50-norm', description=__doc__)
    sub = p.add_subparsers(dest='cmd', required=True)
    data, recipe = _data_options(), _recipe_options(PRESETS)
    _add_study(sub, data, recipe)
    _add_report(sub, data)
    _add_compare(sub)
    _add_train(sub, data, recipe)
    _add_baseline(sub, data, recipe)
    _add_predict(sub)
    _add_cache(sub, data, PRESETS)
    _add_demo(sub)
    return p


def _load_plugins() -> bool:
    "Load the installed plugins (their presets are then among --preset's); False, the error printed, if one fails"
    from .plugins import PluginError, load_plugins
    try: load_plugins()
    except PluginError as e:
        print(f"esc50-norm: error: {e}", file=sys.stderr)
        return False
    return True


FASTAI_JIT = '`torch.jit.script` is deprecated'
"The FutureWarning of torch that importing fastai.layers raises (it scripts its activations): not the user's to act on"


@contextmanager
def _quiet_fastai_import():
    "`FASTAI_JIT` silenced here and, through PYTHONWARNINGS, in the worker processes started meanwhile; both restored"
    quiet = ','.join(filter(None, [os.environ.get('PYTHONWARNINGS'), f"ignore:{FASTAI_JIT}:FutureWarning"]))
    with warnings.catch_warnings(), patch.dict(os.environ, PYTHONWARNINGS=quiet):
        warnings.filterwarnings('ignore', message=FASTAI_JIT, category=FutureWarning)
        yield


@contextmanager
def _warnings_as_lines(cmd: str):
    "Warnings printed as `esc50-norm CMD: warning: ...`, each text once, not as Python's file, line and source; restored"
    # a formatter only: warnings recorded (`catch_warnings(record=True)`, pytest) are not formatted, so not affected
    seen, original = set(), warnings.formatwarning
    def one_line(message, category, filename, lineno, line=None) -> str:
        text = f"{message}" if issubclass(category, UserWarning) else f"{category.__name__}: {message}"
        if text in seen: return ''
        seen.add(text)
        return f"esc50-norm {cmd}: warning: {text}\n"
    warnings.formatwarning = one_line
    try: yield
    finally: warnings.formatwarning = original


def main(argv=None) -> int:
    with _quiet_fastai_import(): return _main(argv)


def _main(argv) -> int:
    if not _load_plugins(): return 2
    a = _parser().parse_args(argv)
    try:
        with _warnings_as_lines(a.cmd): return a.func(a) or 0
    except KeyboardInterrupt:
        print(f"esc50-norm {a.cmd}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, KeyError, RuntimeError, ArithmeticError) as e:
        print(f"esc50-norm {a.cmd}: error: {e}", file=sys.stderr)
        return 2


if __name__ == '__main__': sys.exit(main())
