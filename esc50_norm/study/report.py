"Turn a results folder into tables (mean, CI, paired differences) and plots a reader can check"
from __future__ import annotations
import json
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats as st

from .data import NORMALIZATIONS
from .experiment import Preset, expected_runs, read_results, run_id

__all__ = ['summary_table', 'fold_table', 'paired_differences', 'missing_runs', 'read_histories',
           'plot_accuracy', 'plot_curves', 'write_report']

METRIC = 'final_accuracy'
PAIRS = (('global', 'none'), ('channel', 'none'), ('channel', 'global'))


def _ci(x: np.ndarray, level: float = 0.95) -> tuple:
    "Student-t confidence interval of the mean (NaN for fewer than two values)"
    if len(x) < 2: return (np.nan, np.nan)
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
        lo, hi = _ci(x)
        rows.append(dict(normalization=norm, n=len(x), mean=x.mean(), std=x.std(ddof=1) if len(x) > 1 else np.nan,
                         ci95_low=lo, ci95_high=hi, min=x.min(), max=x.max()))
    return pd.DataFrame(rows).set_index('normalization')


def fold_table(df: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    "Mean `metric` per fold (rows) and normalization (columns)"
    return _ordered(df).pivot_table(index='fold', columns='normalization', values=metric, aggfunc='mean', sort=False)


def paired_differences(df: pd.DataFrame, pairs=PAIRS, metric: str = METRIC) -> pd.DataFrame:
    "`a - b` over runs matched on (fold, seed), with a paired t-test and a Wilcoxon signed-rank test"
    wide = df.pivot_table(index=['fold', 'seed'], columns='normalization', values=metric)
    rows = []
    for a, b in pairs:
        if a not in wide or b not in wide: continue
        d = (wide[a] - wide[b]).dropna().to_numpy(float)
        if len(d) == 0: continue
        lo, hi = _ci(d)
        t_p = st.ttest_1samp(d, 0).pvalue if len(d) > 1 and d.std() > 0 else np.nan
        w_p = st.wilcoxon(d).pvalue if len(d) > 1 and np.any(d != 0) else np.nan
        rows.append(dict(difference=f"{a} - {b}", pairs=len(d), mean=d.mean(), ci95_low=lo, ci95_high=hi,
                         wins=int((d > 0).sum()), losses=int((d < 0).sum()), t_test_p=t_p, wilcoxon_p=w_p))
    return pd.DataFrame(rows).set_index('difference') if rows else pd.DataFrame()


def missing_runs(df: pd.DataFrame, preset: Preset) -> list:
    "Runs of the preset's grid that have no result yet"
    done = set(zip(df.fold, df.normalization, df.seed)) if len(df) else set()
    return [run_id(*r) for r in expected_runs(preset) if r not in done]


def read_histories(out) -> pd.DataFrame:
    "Every run's per-epoch history, with its fold, normalization and seed"
    parts = []
    for f in sorted((Path(out) / 'runs').glob('*.history.csv')):
        done = f.with_name(f.name.replace('.history.csv', '.json'))
        if not done.exists(): continue
        row = json.loads(done.read_text())
        parts.append(pd.read_csv(f).assign(fold=row['fold'], normalization=row['normalization'], seed=row['seed']))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


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
    ax.set_ylabel(metric.replace('_', ' ')); ax.set_title(title or 'accuracy per normalization (mean, 95% CI)')
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    if path: fig.savefig(path, dpi=120); plt.close(fig)
    return fig


def plot_curves(hist: pd.DataFrame, path=None, title: str = ''):
    "Validation accuracy and training loss per epoch: mean over runs, shaded between min and max"
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (norm, g) in enumerate(_ordered(hist).groupby('normalization', sort=False)):
        for ax, col in zip(axs, ('accuracy', 'train_loss')):
            a = g.groupby('epoch')[col].agg(['mean', 'min', 'max'])
            ax.plot(a.index, a['mean'], marker='o', ms=3, label=f"{norm} ({g.groupby(['fold', 'seed']).ngroups} runs)", color=f"C{k}")
            ax.fill_between(a.index, a['min'], a['max'], alpha=0.15, color=f"C{k}")
    axs[0].set_ylabel('validation accuracy'); axs[1].set_ylabel('training loss')
    for ax in axs: ax.set_xlabel('epoch'); ax.grid(alpha=0.3)
    axs[0].legend()
    fig.suptitle(title or 'training curves')
    fig.tight_layout()
    if path: fig.savefig(path, dpi=120); plt.close(fig)
    return fig


def _md(df: pd.DataFrame, digits: int = 4) -> str:
    "A markdown table with floats to `digits` decimals and integers as integers"
    if not len(df): return '_(none)_'
    return df.map(lambda v: f"{v:.{digits}f}" if isinstance(v, float) else v).to_markdown(stralign='right')


def write_report(out) -> Path:
    "Write report.md, summary.csv, paired.csv, accuracy.png and curves.png into the results folder `out`"
    out = Path(out)
    if not (out / 'preset.json').exists(): raise FileNotFoundError(f"{out} holds no preset.json: is it a results folder?")
    preset = Preset(**json.loads((out / 'preset.json').read_text()))
    df = read_results(out)
    missing = missing_runs(df, preset)
    n_exp = len(expected_runs(preset))
    lines = [f"# Results: preset `{preset.name}`", "",
             f"Metric: `{METRIC}` (validation accuracy after the last of {preset.epochs} epochs). "
             f"Grid: folds {list(preset.folds)} x normalizations {list(preset.normalizations)} x seeds {list(preset.seeds)}.", ""]
    if missing:
        lines += [f"**Incomplete grid: {len(df)} of {n_exp} runs finished.** Missing: {', '.join(missing[:30])}"
                  + (' ...' if len(missing) > 30 else '') + ". Means below cover only the finished runs; paired "
                  "differences use only (fold, seed) pairs where both runs finished.", ""]
    else: lines += [f"Complete grid: {len(df)} of {n_exp} runs.", ""]
    if len(df):
        summary, paired = summary_table(df), paired_differences(df)
        summary.to_csv(out / 'summary.csv'); paired.to_csv(out / 'paired.csv')
        dev = ', '.join(sorted(df.device.astype(str).unique()))
        lines += ["## Accuracy per normalization", "", _md(summary), "",
                  "## Accuracy per fold (mean over seeds)", "", _md(fold_table(df)), "",
                  "## Paired differences (matched on fold and seed)", "", _md(paired), "",
                  f"Runs took {df.wall_s.sum() / 60:.1f} min of training in all ({df.s_per_epoch.mean():.2f} s per epoch on average) on {dev}.", "",
                  "![accuracy](accuracy.png)", "", "![curves](curves.png)", ""]
        matplotlib.use('Agg')
        plot_accuracy(df, out / 'accuracy.png', title=f"{preset.name}: accuracy per normalization (mean, 95% CI)")
        plot_curves(read_histories(out), out / 'curves.png', title=f"{preset.name}: training curves")
    path = out / 'report.md'
    path.write_text('\n'.join(lines))
    return path
