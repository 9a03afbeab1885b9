"The report's figures: accuracy per normalization, paired differences, training curves, folders fold by fold"
from __future__ import annotations
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ...atomic import write_atomic
from .compare import fold_contrasts, fold_means, shared_normalizations
from .statistics import METRIC, contrast_differences, fold_aware_table, in_study_order, summary_table

__all__ = ['plot_accuracy', 'plot_paired', 'plot_curves', 'plot_folds']


def plot_accuracy(df: pd.DataFrame, path=None, metric: str = METRIC, title: str = ''):
    "Every run as a dot and each normalization's mean with its 95% CI: filled over fold means, hollow over seeds"
    s = summary_table(df, metric)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(s), 3.6))
    rng = np.random.default_rng(0)
    for i, (norm, r) in enumerate(s.iterrows()):
        x = df.loc[df.normalization == norm, metric].to_numpy(float)
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(x)), x, s=14, alpha=0.6, color='gray', zorder=2)
        err = None if np.isnan(r.ci95_low) else [[r['mean'] - r.ci95_low], [r.ci95_high - r['mean']]]
        ax.errorbar(i + 0.25, r['mean'], yerr=err, fmt='o', color='C0', capsize=4, zorder=3,
                    mfc='C0' if r.ci_over == 'folds' else 'white')
    ax.set_xticks(range(len(s)), [f"{n}\n{int(r.n)} runs, CI over\n{r.ci_over}" for n, r in s.iterrows()])
    ax.set_ylabel(metric.replace('_', ' '))
    ax.set_title(title or 'accuracy per normalization (mean, 95% CI)')
    ax.grid(axis='y', alpha=0.3)
    return _save(fig, path)


def plot_paired(df: pd.DataFrame, path=None, pairs=None, metric: str = METRIC, title: str = '',
                tests: pd.DataFrame | None = None):
    """Each contrast's difference for every (fold, seed) as a point coloured by fold, with its estimate and 95% CI
    as its verdict has them (`tests`: the grid's `fold_aware_table`, when already computed)"""
    diffs = contrast_differences(df, pairs, metric)
    tests = fold_aware_table(df, pairs, metric) if tests is None else tests
    fig, ax = plt.subplots(figsize=(1.8 + 1.5 * max(1, len(diffs)), 3.8))
    folds, rng = sorted(df.fold.unique()), np.random.default_rng(0)
    for i, (name, d) in enumerate(diffs.items()):
        for k, fold in enumerate(folds):
            v = d[d.index.get_level_values('fold') == fold].to_numpy(float)
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=16, alpha=0.75, color=f"C{k}",
                       label=f"fold {fold}" if i == 0 else None, zorder=2)
        if name not in tests.index: continue
        est, lo, hi = tests.loc[name, ['estimate', 'ci95_low', 'ci95_high']]
        ax.errorbar(i + 0.3, est, yerr=None if np.isnan(lo) else [[est - lo], [hi - est]], fmt='D',
                    color='black', capsize=4, zorder=3)
    ax.axhline(0, color='gray', lw=1)
    ax.set_xticks(range(len(diffs)), [n.replace(' - ', '\n- ') for n in diffs])
    ax.set_ylabel(f"difference in {metric.replace('_', ' ')}")
    ax.grid(axis='y', alpha=0.3)
    ax.set_title(title or "paired differences per (fold, seed); black: the verdict's estimate and 95% CI")
    if len(folds) > 1: ax.legend(fontsize=8, loc='best')
    return _save(fig, path)


def plot_curves(hist: pd.DataFrame, path=None, title: str = ''):
    "Validation accuracy and training loss per epoch: mean over runs, shaded between min and max"
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (norm, g) in enumerate(in_study_order(hist).groupby('normalization', sort=False)):
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


def plot_folds(runs: dict, path=None, metric: str = METRIC, title: str = ''):
    "Per normalization every folder holds, each folder's per-fold mean accuracy; then the shared contrasts per fold"
    means, diffs = fold_means(runs, metric), fold_contrasts(runs, metric)
    shared = shared_normalizations(runs)
    if not shared: raise ValueError(f"{', '.join(runs)} share no normalization: nothing to plot fold by fold")
    n = len(shared) + (len(diffs) > 0)
    fig, axs = plt.subplots(1, n, figsize=(3.2 * n, 3.6), squeeze=False)
    axs = axs[0]
    for ax, norm in zip(axs, shared):
        if ax is not axs[0]: ax.sharey(axs[0])                      # one scale: the levels compare across panels
        ax.set_xticks(sorted(means.columns))
        for k, name in enumerate(runs):
            row = means.loc[(name, norm)].dropna()
            ax.plot(row.index, row.to_numpy(float), marker='o', color=f"C{k}", label=name)
        ax.set_title(norm)
        ax.set_xlabel('fold')
        ax.grid(alpha=0.3)
    axs[0].set_ylabel(f"{metric.replace('_', ' ')} (mean over seeds)")
    axs[0].legend(fontsize=8)
    if len(diffs):
        ax, labels = axs[-1], list(dict.fromkeys(diffs.index.get_level_values('contrast')))
        for k, name in enumerate(runs):
            for i, c in enumerate(labels):
                v = diffs.loc[c, name]
                ax.scatter(i + (k - (len(runs) - 1) / 2) * 0.25 + np.zeros(len(v)), v.to_numpy(float), s=16,
                           color=f"C{k}", label=name if i == 0 else None, zorder=2)
        ax.axhline(0, color='gray', lw=1)
        ax.set_xticks(range(len(labels)), [c.replace(' - ', '\n- ') for c in labels])
        ax.set_title('contrasts, one point per fold')
        ax.grid(axis='y', alpha=0.3)
    fig.suptitle(title or 'per-fold accuracy in each folder')
    return _save(fig, path)


def _save(fig, path):
    fig.tight_layout()
    if path: write_atomic(Path(path), png_writer(fig))
    return fig


def png_writer(fig):
    "A writer of `fig` as a PNG for `write_atomic`, closing the figure once written"
    def write(path):
        fig.savefig(path, dpi=120, format='png')
        plt.close(fig)
    return write


