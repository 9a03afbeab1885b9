"Turn results folders into tables (mean, CI, paired contrasts with Holm-corrected p-values) and plots to check"
from __future__ import annotations
import warnings
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from ..atomic import write_atomic
from ..compat import predates_provenance, recorded_dataset, run_starts
from .normalizations import NORMALIZATIONS
from .baseline import baseline_text, read_baseline
from .presets import Preset
from .runs import RunFileError, damaged_runs, read_preset, read_results, read_run, running_runs

__all__ = ['contrasts', 'summary_table', 'fold_table', 'paired_differences', 'missing_runs', 'read_histories',
           'study_time', 'plot_accuracy', 'plot_paired', 'plot_curves', 'write_report', 'read_folder',
           'compare_folders', 'compare_report', 'equivalence', 'EQUIVALENCE_MARGIN', 'baseline_table',
           'baseline_verdict', 'terminal_summary', 'FAR_BELOW', 'fold_means', 'fold_contrasts', 'plot_folds']

METRIC = 'final_accuracy'
EQUIVALENCE_MARGIN = 0.02
"Two folders of one grid agree when their paired mean difference lies within this, at 90% confidence"
# tested by two one-sided tests (`equivalence`)


def contrasts(normalizations) -> list:
    """The paired contrasts that answer a grid of `normalizations`: each statistics normalization against its baseline,
    spectrogram modes against `global`, a mean-only variant against its full one; PCEN and front ends against `global`,
    learned PCEN against fixed"""
    present, pairs = list(normalizations), []
    baselines = [b for b in present if NORMALIZATIONS[b].spec_norm == 'none']          # none, wave
    for n in present:
        norm = NORMALIZATIONS[n]
        if norm.pcen or norm.front: continue
        if norm.mode is None and n != 'none': base = 'none'                       # wave - none
        elif norm.mode is not None:                                     # global - wave, global_nowave - none, ...
            base = next((b for b in baselines if NORMALIZATIONS[b].wave == norm.wave), 'none')
        else: continue
        if base in present: pairs.append((n, base))
    for n in present:                   # channel - global, minmax - global, ...; a mean-only variant - its full one
        norm = NORMALIZATIONS[n]
        if norm.mode is None or (norm.mode == 'global' and not norm.mean_only): continue
        mode = norm.mode if norm.mean_only else 'global'
        ref = next((g for g in present if NORMALIZATIONS[g] == replace(norm, mode=mode, mean_only=False)), None)
        if ref: pairs.append((n, ref))
    for n in present:                   # pcen - global, pcen_learned - global, pcen_learned - pcen, bn_freq - global
        norm = NORMALIZATIONS[n]
        if not (norm.pcen or norm.front): continue
        pairs += [(n, ref) for ref in ('global', 'pcen' if norm.front == 'pcen_learned' else None) if ref in present]
    return pairs


def _ci(x: np.ndarray, level: float = 0.95) -> tuple:
    "Student-t confidence interval of the mean (NaN, shown as n/a, for fewer than three values)"
    if len(x) < 3: return (np.nan, np.nan)
    h = st.t.ppf((1 + level) / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return (x.mean() - h, x.mean() + h)


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    "Rows in the study's order of normalizations (none, wave, global, channel, ...)"
    order = {n: i for i, n in enumerate(NORMALIZATIONS)}
    return df.sort_values('normalization', key=lambda s: s.map(order), kind='stable')


def summary_table(df: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    "Per normalization: runs, mean, std and 95% CI of `metric`"
    rows = []
    for norm, g in _ordered(df).groupby('normalization', sort=False):
        x = g[metric].to_numpy(float)
        lo, hi = np.clip(_ci(x), 0, 1)                   # an accuracy's interval stays in [0, 1]
        rows.append(dict(normalization=norm, n=len(x), mean=x.mean(), std=x.std(ddof=1) if len(x) > 1 else np.nan,
                         ci95_low=lo, ci95_high=hi, min=x.min(), max=x.max()))
    return pd.DataFrame(rows).set_index('normalization')


def fold_table(df: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    "Mean `metric` per fold (rows) and normalization (columns)"
    return _ordered(df).pivot_table(index='fold', columns='normalization', values=metric, aggfunc='mean', sort=False)


def _paired_row(d: np.ndarray) -> dict:
    """Mean, CI, wins and losses of paired differences `d`, with a paired t-test and a Wilcoxon signed-rank test; a
    `note` says why a p-value cannot be computed"""
    lo, hi = np.clip(_ci(d), -1, 1)                      # a difference of accuracies stays in [-1, 1]
    row = dict(pairs=len(d), mean=d.mean(), ci95_low=lo, ci95_high=hi, wins=int((d > 0).sum()),
               losses=int((d < 0).sum()),
               t_test_p=st.ttest_1samp(d, 0).pvalue if len(d) > 1 and d.std() > 0 else np.nan,
               wilcoxon_p=st.wilcoxon(d).pvalue if len(d) > 1 and np.any(d != 0) else np.nan)
    why = _no_p(d)
    return {**row, 'note': why} if why else row


def _no_p(d: np.ndarray) -> str:
    "Why the tests of paired differences `d` give no p-value ('' when they do)"
    if len(d) < 2: return f"{len(d)} pair: no test"
    if np.all(d == 0): return f"all {len(d)} differences are 0: no test"
    if d.std() == 0: return f"all {len(d)} differences equal {d[0]:+.4f}: no spread, no t-test"
    return ''


def _notes(table: pd.DataFrame) -> pd.DataFrame:
    "The `note` column last, empty where there is nothing to say (and absent when nothing is)"
    return table if 'note' not in table else table.assign(note=table.pop('note').fillna(''))


def _holm(table: pd.DataFrame) -> pd.DataFrame:
    "Add Holm-corrected p-values (over the rows of `table`, the family of contrasts) beside the raw ones"
    for col in ('t_test_p', 'wilcoxon_p'):
        p, ok = table[col].to_numpy(float), table[col].notna().to_numpy()
        adj = np.full(len(p), np.nan)
        if ok.any(): adj[ok] = multipletests(p[ok], method='holm')[1]
        table.insert(table.columns.get_loc(col) + 1, f"{col}_holm", adj)
    return table


def _differences(df: pd.DataFrame, pairs, metric: str = METRIC) -> dict:
    "`a - b` per (fold, seed) where both ran, for each contrast"
    wide = df.pivot_table(index=['fold', 'seed'], columns='normalization', values=metric)
    return {f"{a} - {b}": (wide[a] - wide[b]).dropna() for a, b in pairs if a in wide and b in wide}


def paired_differences(df: pd.DataFrame, pairs=None, metric: str = METRIC) -> pd.DataFrame:
    "Each contrast `a - b` over runs matched on (fold, seed): mean, CI, wins, t-test and Wilcoxon p"
    # the p-values raw and Holm-corrected
    pairs = contrasts(_ordered(df).normalization.unique()) if pairs is None else pairs
    rows = {k: _paired_row(d.to_numpy(float)) for k, d in _differences(df, pairs, metric).items() if len(d)}
    if not rows: return pd.DataFrame()
    return _notes(_holm(pd.DataFrame.from_dict(rows, orient='index').rename_axis('difference')))


def missing_runs(df: pd.DataFrame, preset: Preset) -> list:
    "Runs of the preset's grid that have no result yet"
    done = set(zip(df.fold, df.normalization, df.seed)) if len(df) else set()
    return [j.id for j in preset.jobs() if tuple(j) not in done]


HISTORY_COLUMNS = ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'seconds']


def _read_history(f: Path, run: dict) -> pd.DataFrame:
    "One run's per-epoch history; a truncated or foreign one is a `RunFileError` naming it"
    try: h = pd.read_csv(f)
    except (OSError, ValueError) as e: raise RunFileError(f"history file {f} is damaged: {e}") from None
    if list(h.columns) != HISTORY_COLUMNS or len(h) != run.get('epochs', len(h)) or h.isna().any().any():
        raise RunFileError(f"history file {f} is damaged: expected {run.get('epochs')} epochs of {HISTORY_COLUMNS}, "
                           f"found {len(h)} rows of {list(h.columns)}")
    return h.assign(fold=run['fold'], normalization=run['normalization'], seed=run['seed'])


def read_histories(out) -> pd.DataFrame:
    "Every finished run's per-epoch history, with its fold, normalization and seed"
    parts = []
    for f in sorted((Path(out) / 'runs').glob('*.history.csv')):
        done = f.with_name(f.name.replace('.history.csv', '.json'))
        try: run = read_run(done)
        except RunFileError: continue                   # not finished (or damaged, and reported as such)
        parts.append(_read_history(f, run))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _busy_seconds(start: pd.Series, end: pd.Series) -> float:
    "Seconds in which at least one run was in progress: the length of the union of the [start, end] intervals"
    order = start.sort_values().index
    s, e = start[order], end[order]
    reach = e.cummax().shift()                          # the latest finish among the runs started before each one
    piece = (reach.isna() | (s > reach)).cumsum()       # a new piece: a run that starts after all earlier ones finished
    g = pd.DataFrame(dict(s=s, e=e)).groupby(piece)
    return float((g.e.max() - g.s.min()).dt.total_seconds().sum())


def study_time(df: pd.DataFrame) -> dict:
    "Wall time from the first run's start to the last run's finish, the time any run was in progress, the summed time"
    # a run's time: set-up + training; a grid run in pieces (--stop-after) has gaps in which nothing ran
    end = pd.to_datetime(df.finished_at, utc=True)
    start, estimated = run_starts(df)
    wall, busy = (end.max() - start.min()).total_seconds(), _busy_seconds(start, end)
    summed = (df.setup_s.astype(float) + df.wall_s.astype(float)).sum()
    return dict(wall_s=wall, busy_s=busy, summed_s=summed, runs=len(df), first_start=start.min(), last_finish=end.max(),
                estimated=estimated, parallel=summed / busy if busy > 0 else np.nan)


def plot_accuracy(df: pd.DataFrame, path=None, metric: str = METRIC, title: str = ''):
    "Every run as a dot and each normalization's mean with its 95% CI"
    s = summary_table(df, metric)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(s), 3.6))
    rng = np.random.default_rng(0)
    for i, (norm, r) in enumerate(s.iterrows()):
        x = df.loc[df.normalization == norm, metric].to_numpy(float)
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(x)), x, s=14, alpha=0.6, color='gray', zorder=2)
        err = None if np.isnan(r.ci95_low) else [[r['mean'] - r.ci95_low], [r.ci95_high - r['mean']]]
        ax.errorbar(i + 0.25, r['mean'], yerr=err, fmt='o', color='C0', capsize=4, zorder=3)
    ax.set_xticks(range(len(s)), [f"{n}\n(n={int(k)})" for n, k in zip(s.index, s.n)])
    ax.set_ylabel(metric.replace('_', ' '))
    ax.set_title(title or 'accuracy per normalization (mean, 95% CI)')
    ax.grid(axis='y', alpha=0.3)
    return _save(fig, path)


def plot_paired(df: pd.DataFrame, path=None, pairs=None, metric: str = METRIC, title: str = ''):
    "Each contrast's difference for every (fold, seed) as a point coloured by fold, with the mean and its 95% CI"
    diffs = _differences(df, contrasts(_ordered(df).normalization.unique()) if pairs is None else pairs, metric)
    fig, ax = plt.subplots(figsize=(1.8 + 1.5 * max(1, len(diffs)), 3.8))
    folds, rng = sorted(df.fold.unique()), np.random.default_rng(0)
    for i, (name, d) in enumerate(diffs.items()):
        for k, fold in enumerate(folds):
            v = d[d.index.get_level_values('fold') == fold].to_numpy(float)
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=16, alpha=0.75, color=f"C{k}",
                       label=f"fold {fold}" if i == 0 else None, zorder=2)
        lo, hi = _ci(d.to_numpy(float))
        ax.errorbar(i + 0.3, d.mean(), yerr=None if np.isnan(lo) else [[d.mean() - lo], [hi - d.mean()]], fmt='D',
                    color='black', capsize=4, zorder=3)
    ax.axhline(0, color='gray', lw=1)
    ax.set_xticks(range(len(diffs)), [n.replace(' - ', '\n- ') for n in diffs])
    ax.set_ylabel(f"difference in {metric.replace('_', ' ')}")
    ax.grid(axis='y', alpha=0.3)
    ax.set_title(title or 'paired differences per (fold, seed); black: mean and 95% CI')
    if len(folds) > 1: ax.legend(fontsize=8, loc='best')
    return _save(fig, path)


def plot_curves(hist: pd.DataFrame, path=None, title: str = ''):
    "Validation accuracy and training loss per epoch: mean over runs, shaded between min and max"
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (norm, g) in enumerate(_ordered(hist).groupby('normalization', sort=False)):
        for ax, col in zip(axs, ('accuracy', 'train_loss')):
            a = g.groupby('epoch')[col].agg(['mean', 'min', 'max'])
            ax.plot(a.index, a['mean'], marker='o', ms=3, label=f"{norm} ({g.groupby(['fold', 'seed']).ngroups} runs)",
                    color=f"C{k}")
            ax.fill_between(a.index, a['min'], a['max'], alpha=0.15, color=f"C{k}")
    axs[0].set_ylabel('validation accuracy')
    axs[1].set_ylabel('training loss')
    for ax in axs:
        ax.set_xlabel('epoch')
        ax.grid(alpha=0.3)
    axs[0].legend(fontsize=8)
    fig.suptitle(title or 'training curves')
    return _save(fig, path)


def _save(fig, path):
    fig.tight_layout()
    if path: write_atomic(Path(path), _png(fig))
    return fig


def _fmt(v, digits: int, p_value: bool):
    if not isinstance(v, float): return v
    if np.isnan(v): return 'n/a'
    return f"{v:.1e}" if p_value and 0 < v < 10 ** -(digits - 1) else f"{v:.{digits}f}"


def _md(df: pd.DataFrame, digits: int = 4) -> str:
    "A markdown table with floats to `digits` decimals (small p-values in scientific notation) and integers as integers"
    if not len(df): return '_(none)_'
    cells = df.apply(lambda c: c.map(lambda v: _fmt(v, digits, c.name.endswith(('_p', '_p_holm')))))
    return cells.to_markdown(stralign='right')


def read_folder(out) -> tuple[Preset, pd.DataFrame]:
    "The preset and the finished runs of a results folder"
    return read_preset(out), read_results(out)


def _recipe_line(p: Preset) -> str:
    s = p.spec_cfg
    bins = (('log-mel ' if s.band_scale == 'mel' else 'log linear-band ') + str(s.n_mels) if s.mel
            else 'linear ' + str(s.n_freq))
    spec = (f"{bins} bins, "
            f"n_fft {s.n_fft}, hop {s.hop_length}")
    prec = 'bf16 autocast' if p.bf16 else 'fp32' if p.bf16 is False else 'bf16 on CUDA'
    extra = (f", augmentation {p.augment}" if p.augment else '') + (f", mixup {p.mixup}" if p.mixup else '')
    return (f"Recipe: {spec}; xResNet18 from scratch, bs {p.bs}, fit_one_cycle({p.epochs}) at lr {p.lr}; {prec}"
            f"{', channels-last' if p.channels_last else ''}{extra}; "
            f"clips per class and fold: {p.clips_per_class or 'all'}.")


def _data_line(d: dict) -> str:
    made = f" (made: {d['k']} stratified folds, seed {d['seed']})" if 'k' in d else ''
    return (f"Data: {d['name']} ({d['kind']}): {d['clips']} clips, {d['classes']} classes, folds {d['folds']}{made}; "
            f"fingerprint {d['fingerprint']}.")


def _provenance_line(df: pd.DataFrame) -> str:
    if predates_provenance(df):
        return "Provenance: these run files predate the recording of package version and git commit."
    dirty = df.git_dirty.eq(True) if 'git_dirty' in df else False
    commits = df.git_commit.fillna('unknown').astype(str).str[:10] + np.where(dirty, ' (with changes)', '')
    versions = df.esc50_norm.fillna('unknown').astype(str) if 'esc50_norm' in df else pd.Series(['unknown'])
    return f"Provenance: esc50_norm {', '.join(sorted(versions.unique()))}; git {', '.join(sorted(commits.unique()))}."


FAR_BELOW = 0.05
"The report says the deep model is far below the classical baseline when its best mean is more than this under it"


def baseline_table(df: pd.DataFrame, b: dict) -> pd.DataFrame:
    "Per fold of the runs, the baseline beside each normalization's mean over seeds; last, the mean over those folds"
    t = fold_table(df)
    t.insert(0, 'baseline', [b['per_fold'].get(str(int(f)), np.nan) for f in t.index])
    t.index = t.index.astype(str)
    t.loc['mean'] = t.mean()
    return t


def _cause(df: pd.DataFrame, preset: Preset) -> str:
    "The likely cause of a deep model far below the baseline: too few optimizer steps, too few frames, or neither"
    from .sizing import MIN_FRAMES, MIN_STEPS, frames
    n_train = int(df.n_train.min()) if 'n_train' in df else None
    steps = None if n_train is None else n_train // preset.bs * preset.epochs
    nf, hop = frames(preset.spec, preset.duration), preset.spec['hop_length']
    causes = []
    if steps is not None and steps < MIN_STEPS:
        causes.append(f"too few optimizer steps ({steps}: {n_train // preset.bs} batches of {preset.bs} per epoch x "
                      f"{preset.epochs} epochs; a sized recipe trains at least {MIN_STEPS}: leave out --epochs and "
                      "--bs, or raise --epochs)")
    if nf < MIN_FRAMES:
        causes.append(f"too few spectrogram frames per clip ({nf} at hop {hop}; a sized recipe gives at least "
                      f"{MIN_FRAMES})")
    return '; '.join(causes) or (f"not the recipe's size ({steps} optimizer steps, {nf} frames per clip): try more "
                                 "epochs, another learning rate or a longer --duration")


def baseline_verdict(df: pd.DataFrame, b: dict, preset: Preset) -> str:
    "One sentence: the best normalization's mean against the baseline's on the same folds; when far below, the cause"
    t = baseline_table(df, b).loc['mean']
    base, means = t['baseline'], t.drop('baseline')
    best = means.idxmax()
    gap, what = means[best] - base, f"its best normalization, {best}, reaches {means[best]:.4f} against {base:.4f}"
    if gap >= -FAR_BELOW:
        where = 'above' if gap > 0 else f'within {FAR_BELOW} of'
        return f"The deep model is {where} the classical baseline: {what} ({gap:+.4f})."
    return (f"**The deep model is far below the classical baseline**: {what} ({gap:+.4f}). "
            f"Likely cause: {_cause(df, preset)}.")


def _baseline_section(out, preset: Preset, df: pd.DataFrame) -> list:
    "The report's lines on the classical baseline of `out` (its baseline.json), or none when it has none"
    b = read_baseline(out)
    if b is None: return []
    f = b['features']
    return ["## Classical baseline", "",
            f"{b['classifier']} on per-clip MFCC statistics ({', '.join(f['stats'])} of {f['n_mfcc']} MFCCs; "
            "`baseline.json`), trained and validated on the same folds and clips as the runs; per fold, beside each "
            "normalization's mean over seeds:", "", _md(baseline_table(df, b)), "", baseline_verdict(df, b, preset), ""]


def terminal_summary(out) -> str:
    "What `report` and `study` print: the accuracy per normalization and, when there is one, the baseline's verdict"
    preset, df = read_folder(out)
    if not len(df): return f"{out}: no finished runs yet"
    table = summary_table(df)[['n', 'mean', 'std', 'ci95_low', 'ci95_high']]
    lines, b = [f"{out}: accuracy per normalization", "", _md(table)], read_baseline(out)
    if b is not None:
        lines += ["", baseline_text(b, sorted(map(int, df.fold.unique()))), baseline_verdict(df, b, preset)]
    return '\n'.join(lines)


def _idle(t: dict) -> str:
    "The time some run was in progress, when gaps with none running (between pieces run with --stop-after) shorten it"
    return (f", of which some run was in progress for {t['busy_s'] / 60:.1f} min"
            if t['wall_s'] - t['busy_s'] >= 3 else '')


def write_report(out) -> Path:
    "Write report.md, results.csv, summary.csv, paired.csv and the plots into results folder `out`: all or none"
    # the plots: accuracy.png, paired.png and curves.png
    out = Path(out)
    preset, df = read_folder(out)
    missing, running, damaged = missing_runs(df, preset), running_runs(out), damaged_runs(out)
    n_exp = len(preset.jobs())
    lines = [f"# Results: preset `{preset.name}`", "",
             f"Metric: `{METRIC}` (validation accuracy after the last of {preset.epochs} epochs). "
             f"Grid: folds {list(preset.folds)} x normalizations {list(preset.normalizations)} "
             f"x seeds {list(preset.seeds)}.", "",
             _recipe_line(preset), ""] + ([_data_line(preset.dataset), ""] if preset.dataset else [])
    if missing:
        lines += [f"**Incomplete grid: {len(df)} of {n_exp} runs finished.** Missing: {', '.join(missing[:30])}"
                  + (' ...' if len(missing) > 30 else '') + ". Means below cover only the finished runs; paired "
                  "differences use only (fold, seed) pairs where both runs finished.", ""]
    else: lines += [f"Complete grid: {len(df)} of {n_exp} runs.", ""]
    if running: lines += [f"Started but not finished (in progress, or interrupted): {', '.join(running)}.", ""]
    if damaged:
        lines += [f"Damaged run files, not counted (the study runs them again): {', '.join(p.name for p in damaged)}.",
                  ""]
    files = {'results.csv': df.to_csv(index=False)}
    if len(df):
        summary, paired, t, hist = summary_table(df), paired_differences(df), study_time(df), read_histories(out)
        dev = ', '.join(sorted(df.device.astype(str).unique()))
        estimated = ' (starts estimated from finish time minus run time: these run files predate start times)'
        lines += ["## Accuracy per normalization", "", _md(summary), "",
                  "## Accuracy per fold (mean over seeds)", "", _md(fold_table(df)), "",
                  *_baseline_section(out, preset, df),
                  "## Paired differences (matched on fold and seed)", "",
                  "Each contrast is `a - b` over the (fold, seed) pairs where both ran. `_holm`: p-values adjusted "
                  "with Holm's method over the contrasts of this table.", "", _md(paired), "",
                  "## Time", "",
                  f"Study wall time: {t['wall_s'] / 60:.1f} min from the first run's start to the last run's finish"
                  f"{estimated if t['estimated'] else ''}"
                  f"{_idle(t)}; "
                  f"the {t['runs']} runs took {t['summed_s'] / 60:.1f} min summed over processes "
                  "(set-up and training), "
                  f"so about {t['parallel']:.1f} ran at a time. "
                  f"Mean {df.s_per_epoch.mean():.2f} s per epoch per process, on {dev}.", "",
                  _provenance_line(df), "",
                  "![accuracy](accuracy.png)", "", "![paired differences](paired.png)", "", "![curves](curves.png)", ""]
        files.update({'summary.csv': summary.to_csv(), 'paired.csv': paired.to_csv(),
                      'accuracy.png': plot_accuracy(df, title=f"{preset.name}: accuracy per normalization "
                                                              "(mean, 95% CI)"),
                      'paired.png': plot_paired(df, title=f"{preset.name}: paired differences per (fold, seed); "
                                                          "black: mean, 95% CI")})
        if len(hist): files['curves.png'] = plot_curves(hist, title=f"{preset.name}: training curves")
    files['report.md'] = '\n'.join(lines)
    for name, what in files.items():                    # everything is computed: now write it, each file atomically
        write_atomic(out / name, what if isinstance(what, str) else _png(what))
    return out / 'report.md'


def _png(fig):
    "A writer of `fig` as a PNG for `write_atomic`, closing the figure once written"
    def write(path):
        fig.savefig(path, dpi=120, format='png')
        plt.close(fig)
    return write


def _labels(folders) -> list:
    "Short names for results folders: their own names where those are unique"
    names = [Path(f).name for f in folders]
    return names if len(set(names)) == len(names) else [str(f) for f in folders]


def folder_runs(folders) -> dict:
    "The finished runs of each results folder, read once: label -> frame (the first is the reference)"
    return dict(zip(_labels(folders), (read_folder(f)[1] for f in folders)))


def compare_folders(folders, frames: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    "Per normalization, each folder's mean; and each later folder minus the first, paired on (fold, seed)"
    # the paired differences Holm-corrected; `frames`: the folders' runs when already read (`folder_runs`)
    frames = frames or folder_runs(folders)
    ref, later = next(iter(frames.values())), list(frames.items())[1:]
    present = set().union(*(set(d.normalization) for d in frames.values()))
    means = pd.concat({n: summary_table(d)['mean'] for n, d in frames.items() if len(d)}, axis=1)
    means = means.reindex([n for n in NORMALIZATIONS if n in present])
    rows = []
    for name, df in later:
        both = pd.concat({'ref': ref, 'new': df}, names=['which']).reset_index(level=0)
        wide = both.pivot_table(index=['normalization', 'fold', 'seed'], columns='which', values=METRIC).dropna()
        for norm in [n for n in NORMALIZATIONS if n in set(wide.index.get_level_values(0))]:
            g = wide.loc[norm]
            rows.append(dict(folder=name, normalization=norm, **_paired_row((g['new'] - g['ref']).to_numpy(float))))
    paired = _notes(_holm(pd.DataFrame(rows).set_index(['folder', 'normalization']))) if rows else pd.DataFrame()
    return means, paired


def fold_means(frames: dict, metric: str = METRIC) -> pd.DataFrame:
    "Each folder's mean accuracy per normalization (rows) and fold (columns): folder -> normalization as the index"
    per = {name: df.groupby(['normalization', 'fold'])[metric].mean() for name, df in frames.items() if len(df)}
    return pd.concat(per, names=['folder']).unstack('fold')


def _shared(frames: dict) -> list:
    "The normalizations every folder holds, in the registry's order"
    return [n for n in NORMALIZATIONS if all(n in set(df.normalization) for df in frames.values())]


def fold_contrasts(frames: dict, metric: str = METRIC) -> pd.DataFrame:
    "The contrasts of the normalizations every folder holds, per fold: mean paired difference over seeds, per folder"
    # rows (contrast, fold); columns: folders; `agree`: whether every folder's difference has the same sign
    pairs = contrasts(_shared(frames))
    if not pairs: return pd.DataFrame(columns=[*frames, 'agree'])
    per_fold = lambda df: pd.concat({k: v.groupby('fold').mean() for k, v in _differences(df, pairs, metric).items()},
                                    names=['contrast'])
    table = pd.DataFrame({name: per_fold(df) for name, df in frames.items()}).dropna()
    table['agree'] = np.sign(table).nunique(axis=1) == 1
    return table


def plot_folds(frames: dict, path=None, metric: str = METRIC, title: str = ''):
    "Per normalization every folder holds, each folder's per-fold mean accuracy; then the shared contrasts per fold"
    means, diffs = fold_means(frames, metric), fold_contrasts(frames, metric)
    shared = _shared(frames)
    if not shared: raise ValueError(f"{', '.join(frames)} share no normalization: nothing to plot fold by fold")
    n = len(shared) + (len(diffs) > 0)
    fig, axs = plt.subplots(1, n, figsize=(3.2 * n, 3.6), squeeze=False)
    axs = axs[0]
    for ax, norm in zip(axs, shared):
        if ax is not axs[0]: ax.sharey(axs[0])                      # one scale: the levels compare across panels
        ax.set_xticks(sorted(means.columns))
        for k, name in enumerate(frames):
            row = means.loc[(name, norm)].dropna()
            ax.plot(row.index, row.to_numpy(float), marker='o', color=f"C{k}", label=name)
        ax.set_title(norm)
        ax.set_xlabel('fold')
        ax.grid(alpha=0.3)
    axs[0].set_ylabel(f"{metric.replace('_', ' ')} (mean over seeds)")
    axs[0].legend(fontsize=8)
    if len(diffs):
        ax, labels = axs[-1], list(dict.fromkeys(diffs.index.get_level_values('contrast')))
        for k, name in enumerate(frames):
            for i, c in enumerate(labels):
                v = diffs.loc[c, name]
                ax.scatter(i + (k - (len(frames) - 1) / 2) * 0.25 + np.zeros(len(v)), v.to_numpy(float), s=16,
                           color=f"C{k}", label=name if i == 0 else None, zorder=2)
        ax.axhline(0, color='gray', lw=1)
        ax.set_xticks(range(len(labels)), [c.replace(' - ', '\n- ') for c in labels])
        ax.set_title('contrasts, one point per fold')
        ax.grid(axis='y', alpha=0.3)
    fig.suptitle(title or 'per-fold accuracy in each folder')
    return _save(fig, path)


def equivalence(new: np.ndarray, ref: np.ndarray, margin: float = EQUIVALENCE_MARGIN) -> dict:
    "Two one-sided paired t-tests of `new - ref` against +-`margin`: equivalent when p < 0.05"
    # i.e. when the 90% CI lies within +-`margin`
    d = np.asarray(new, float) - np.asarray(ref, float)
    if len(d) < 2 or d.std() == 0:
        return dict(pairs=len(d), mean=d.mean() if len(d) else np.nan, ci90_low=np.nan, ci90_high=np.nan,
                    tost_p=np.nan, equivalent=len(d) > 1 and abs(d[0]) < margin)
    half = st.t.ppf(0.95, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    p = ttost_paired(np.asarray(new, float), np.asarray(ref, float), -margin, margin)[0]
    return dict(pairs=len(d), mean=d.mean(), ci90_low=d.mean() - half, ci90_high=d.mean() + half, tost_p=p,
                equivalent=bool(p < 0.05))


def compare_equivalence(folders, margin: float = EQUIVALENCE_MARGIN, frames: dict | None = None) -> pd.DataFrame:
    "Each later folder against the first over all their matched runs: the pooled paired difference, its equivalence"
    frames = frames or folder_runs(folders)
    ref, rows = next(iter(frames.values())), []
    for name, df in list(frames.items())[1:]:
        m = ref.merge(df, on=['normalization', 'fold', 'seed'], suffixes=('_ref', '_new'))
        rows.append(dict(folder=name, **equivalence(m[f"{METRIC}_new"], m[f"{METRIC}_ref"], margin)))
    return pd.DataFrame(rows).set_index('folder') if rows else pd.DataFrame()


def _named(d: dict) -> str: return f"{d['name']} ({d['kind']}, fingerprint {d['fingerprint']})"


def _differences_of_setup(folders) -> list:
    "Sentences naming the folders whose recipe or dataset differ from the first one's (they measure another thing)"
    presets, notes = [read_preset(f) for f in folders], []
    ref, ref_data = presets[0], recorded_dataset(presets[0].dataset)
    for f, p in zip(folders[1:], presets[1:]):
        if p.training_hash() != ref.training_hash():
            changed = sorted(k for k in set(ref.recipe()) | set(p.recipe()) if ref.recipe().get(k) != p.recipe().get(k))
            notes.append(f"{f} has another recipe than {folders[0]} (changed: {changed})")
        d = recorded_dataset(p.dataset)
        fps = {d['fingerprint'], ref_data['fingerprint']}
        if d['kind'] != ref_data['kind'] or (None not in fps and len(fps) > 1):
            notes.append(f"{f} holds runs of dataset {_named(d)}, {folders[0]} of {_named(ref_data)}")
    return notes


def _fold_section(frames: dict) -> list:
    "The contrasts every folder holds, fold by fold, and where the folders' signs disagree"
    fc = fold_contrasts(frames)
    if len(frames) < 2 or not len(fc): return []
    off = [f"`{c}` in fold {f}" for c, f in fc.index[~fc.agree]]
    return ["Contrasts every folder holds, fold by fold (mean over seeds; `agree`: one sign in every folder):", "",
            _md(fc.reset_index().set_index('contrast')), "",
            f"Where the folders disagree on a contrast's sign: {', '.join(off) or 'nowhere'}.", ""]


def compare_report(folders, frames: dict | None = None) -> str:
    "A markdown comparison of results folders: means per normalization, each folder's differences to the first"
    # the differences run by run, and fold by fold; `frames`: the folders' runs when already read (`folder_runs`)
    notes = _differences_of_setup(folders)
    for n in notes: warnings.warn(f"comparing unlike results: {n}")
    frames = frames or folder_runs(folders)
    means, paired = compare_folders(folders, frames)
    ref, table = means.columns[0], means.copy()
    for col in means.columns[1:]: table[f"{col} - {ref}"] = means[col] - means[ref]
    lines = [f"**Warning: {n}: the differences below measure that change, not a repeat of one study.**" for n in notes]
    lines += [""] if notes else []
    lines += ["Mean accuracy per normalization:", "", _md(table), ""]
    if len(paired):
        lines += [f"Differences to `{ref}`, run by run (matched on fold, normalization and seed; "
                  "`_holm`: adjusted over all rows):", "", _md(paired.reset_index().set_index('folder')), ""]
        eq = compare_equivalence(folders, frames=frames)
        lines += [f"Equivalence to `{ref}` over all matched runs (two one-sided paired t-tests, margin "
                  f"+-{EQUIVALENCE_MARGIN}: equivalent when the 90% CI of the mean difference lies within it):", "",
                  _md(eq), ""]
        for name, r in eq.iterrows():
            sig = paired.loc[name] if name in paired.index.get_level_values(0) else pd.DataFrame()
            hits = [n for n, q in sig['t_test_p_holm'].items() if q < 0.05] if len(sig) else []
            ci = (f"90% CI {r.ci90_low:+.4f} ... {r.ci90_high:+.4f}" if np.isfinite(r.ci90_low) else
                  "no CI: the differences are all equal" if r.pairs > 1 else "no CI: one pair")
            lines.append(f"- `{name}`: {'equivalent' if r.equivalent else 'NOT shown equivalent'} to `{ref}` within "
                         f"+-{EQUIVALENCE_MARGIN} (mean {r['mean']:+.4f}, {ci}, "
                         f"{int(r.pairs)} pairs); normalizations whose difference is significant (Holm, t-test): "
                         f"{', '.join(hits) or 'none'}.")
        lines.append("")
    lines += _fold_section(frames)
    return '\n'.join(lines)
