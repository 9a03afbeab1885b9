"""Pieces the report, the pooled report and the comparison share: tables, the recipe, data and provenance lines, the
verdict sections, and how folders differ in their set-up or stand unfinished"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...spelling import listed
from ..compat import predates_provenance, recorded_dataset
from ..presets import Preset
from ..runs import read_preset, same_dataset
from .folders import missing_runs
from .statistics import SEEDS_AGREE
from .verdicts import how_to_read, one_machine_table

__all__ = ['md_table', 'recipe_line', 'data_line', 'provenance', 'provenance_line', 'verdict_section',
           'one_machine_section', 'recipe_changes', 'setup_differences', 'incomplete_notes']


def _fmt(v, digits: int, p_value: bool):
    "A table cell: a float to `digits` decimals (a small p-value in scientific notation), NaN as n/a, others as they are"
    if not isinstance(v, float): return v
    if np.isnan(v): return 'n/a'
    return f"{v:.1e}" if p_value and 0 < v < 10 ** -(digits - 1) else f"{v:.{digits}f}"


def md_table(df: pd.DataFrame, digits: int = 4) -> str:
    "A markdown table with floats to `digits` decimals (small p-values in scientific notation) and integers as integers"
    if not len(df): return '_(none)_'
    p_value = lambda name: str(name) in ('p', 'p_holm') or str(name).endswith(('_p', '_p_holm'))
    cells = df.apply(lambda c: c.map(lambda v: _fmt(v, digits, p_value(c.name))))
    return cells.to_markdown(stralign='right', disable_numparse=True)


def recipe_line(p: Preset) -> str:
    s = p.spec
    bins = (('log-mel ' if s.band_scale == 'mel' else 'log linear-band ') + str(s.n_mels) if s.mel
            else 'linear ' + str(s.n_freq))
    spec = (f"{bins} bins, "
            f"n_fft {s.n_fft}, hop {s.hop_length}")
    prec = 'bf16 autocast' if p.bf16 else 'fp32' if p.bf16 is False else 'bf16 on CUDA'
    extra = (f", augmentation {p.augment.as_dict()}" if p.augment else '') + (f", mixup {p.mixup}" if p.mixup else '')
    return (f"Recipe: {spec}; xResNet18 from scratch, bs {p.bs}, fit_one_cycle({p.epochs}) at lr {p.lr}; {prec}"
            f"{', channels-last' if p.channels_last else ''}{extra}; "
            f"clips per class and fold: {p.clips_per_class or 'all'}.")


def data_line(d: dict) -> str:
    made = f" (made: {d['k']} stratified folds, seed {d['seed']})" if 'k' in d else ''
    return (f"Data: {d['name']} ({d['kind']}): {d['clips']} clips, {d['classes']} classes, folds {d['folds']}{made}; "
            f"fingerprint {d['fingerprint']}.")


def provenance_line(df: pd.DataFrame) -> str: return f"Provenance: {provenance(df)}"


def provenance(df: pd.DataFrame) -> str:
    "The package versions and git commits runs `df` were made at (a commit with changes says so)"
    if predates_provenance(df): return "these run files predate the recording of package version and git commit."
    dirty = df.git_dirty.eq(True) if 'git_dirty' in df else False
    commits = df.git_commit.fillna('unknown').astype(str).str[:10] + np.where(dirty, ' (with changes)', '')
    versions = df.esc50_norm.fillna('unknown').astype(str) if 'esc50_norm' in df else pd.Series(['unknown'])
    return f"esc50_norm {', '.join(sorted(versions.unique()))}; git {', '.join(sorted(commits.unique()))}."


VERDICT_COLUMNS = ['estimate', 'ci90_low', 'ci90_high', 'p', 'p_holm', 'verdict', 'margin', 'needed_for_80%_power']
TEST_COLUMNS = ['pairs', 'folds', 'unit', 'test', 'estimate', 'se', 'ci95_low', 'ci95_high', 'p', 'p_holm', 'tost_p',
                'fold_t_p', 't_test_p', 'wilcoxon_p', 'anova_p']


def _why_no_anova(row) -> str:
    "Why a contrast (a row of the verdict table) has no ANOVA of its differences by fold"
    if row.folds == 1: return "the runs are of one fold"
    if row.pairs == row.folds: return "one seed a fold leaves no variation within a fold"
    if row.test == 'fold t-test': return f"{SEEDS_AGREE}, which leaves no variation within a fold"  # MixedLM's fallback
    return "the ANOVA needs two seeds in every fold, and a fold with one leaves no variation within it"


def verdict_section(tests: pd.DataFrame, effects: pd.DataFrame) -> list:
    "The verdict table, where its statistics come from, the fold-aware tests and each contrast's per-fold effects"
    if not len(tests): return []
    notes = [f"`{c}`: {n}." for c, n in tests.note.items() if n]
    hetero = ("`anova_p`: one-way ANOVA of the pair differences by fold (do the folds' effects differ?)."
              if effects.anova_p.notna().any() else
              "No test of heterogeneity between folds: "
              + '; '.join(dict.fromkeys(map(_why_no_anova, tests.itertuples()))) + '.')
    shown = (['unit'] if tests.unit.nunique() > 1 else []) + VERDICT_COLUMNS     # the unit, where units differ
    return ["## Verdicts", "", how_to_read(tests, tests.margin.iloc[0]), "", md_table(tests[shown]), "",
            *([' '.join(notes), ""] if notes else []),
            "Fold-aware tests (`p`: the primary test; `ci95`: its 95% CI; `fold_t_p`: the fold means' t-test; "
            "`t_test_p`, `wilcoxon_p`: pair-level, secondary):", "", md_table(tests[TEST_COLUMNS]), "",
            "Per-fold effects (mean pair difference over the seeds of each fold):", "", md_table(effects), "", hetero, ""]


ONE_MACHINE_COLUMNS = ['all_pairs', 'pairs', 'machines', 'estimate', 'ci90_low', 'ci90_high', 'p', 'p_holm', 'verdict']


def one_machine_section(df: pd.DataFrame, tests: pd.DataFrame, margin: float) -> list:
    "Each contrast with pairs across machines (or on one not recorded), tested again on its pairs on one machine"
    t = one_machine_table(df, margin=margin)
    if not len(t): return []
    why = ("A pair whose two runs were made on two machines changes the machine as well as the normalization, and one "
           "whose run files predate the recording of the CPU may.")
    if not t.pairs.any():
        named = ', '.join(f"`{c}`" for c in t.index)
        return ["## Pairs made on one machine", "",
                f"{why} No pair of {named} names one machine in both its run files, so the files cannot tell these "
                "contrasts apart from the machine.", ""]
    moved = [f"`{c}` ({tests.verdict[c]} on all pairs, {v} on one machine)" for c, v in t.verdict.items()
             if isinstance(v, str) and v != tests.verdict[c]]
    return ["## Pairs made on one machine", "",
            f"{why} Each contrast with such pairs (of `all_pairs`), tested again on its `pairs` made on one recorded "
            "machine (`machines`: theirs), by the rules of the verdicts above, Holm's correction over the same "
            "contrasts (one with no such pair counted as p = 1):", "",
            md_table(t[ONE_MACHINE_COLUMNS]), "",
            f"Verdicts that differ from those on all pairs: {', '.join(moved) or 'none'}.", ""]


def _named(d: dict) -> str: return f"{d['name']} ({d['kind']}, fingerprint {d['fingerprint']})"


def recipe_changes(ref: Preset, p: Preset) -> list:
    "The recipe's keys whose values differ between two presets"
    a, b = ref.recipe(), p.recipe()
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def setup_differences(folders) -> list:
    "Sentences naming the folders whose recipe or dataset differ from the first one's (they measure another thing)"
    presets, notes = [read_preset(f) for f in folders], []
    ref = presets[0]
    for f, p in zip(folders[1:], presets[1:]):
        if p.training_hash() != ref.training_hash():
            notes.append(f"{f} has another recipe than {folders[0]} (changed: {recipe_changes(ref, p)})")
        if not same_dataset(p.dataset, ref.dataset):
            notes.append(f"{f} holds runs of dataset {_named(recorded_dataset(p.dataset))}, {folders[0]} of "
                         f"{_named(recorded_dataset(ref.dataset))}")
    return notes


def incomplete_notes(folders, runs: dict, names=None) -> list:
    """Sentences naming the folders (as `names`, else as given) whose grid has runs still to make: a comparison covers
    their finished runs only"""
    notes = []
    for f, name, df in zip(folders, names or folders, runs.values()):
        preset = read_preset(f)
        missing, n = missing_runs(df, preset), len(preset.jobs())
        if missing: notes.append(f"**Incomplete: {name} holds {n - len(missing)} of its grid's {n} runs** "
                                 f"(missing: {listed(missing, 10)}): what "
                                 "follows covers its finished runs only.")
    return notes
