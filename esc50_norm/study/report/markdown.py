"Markdown: a results folder's report.md (and its tables and figures), the terminal summary, the comparison of folders"
from __future__ import annotations
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ...atomic import write_atomic
from ...spelling import listed, plural
from ..baseline import baseline_text, read_baseline
from ..normalizations import pcen_module
from ..presets import Preset, chosen
from ..runs import damaged_runs, read_preset, running_runs
from ..sizing import sizing_text
from .baselines import baseline_table, baseline_verdict
from .compare import (compare_contrasts, compare_equivalence, compare_folders, compare_interactions, compare_verdicts,
                      fold_contrasts)
from .folders import (folder_runs, machines_table, missing_runs, predates_machines, read_folder, read_histories,
                      study_time)
from .plots import png_writer, plot_accuracy, plot_curves, plot_paired
from .statistics import (EQUIVALENCE_MARGIN, METRIC, budget_table, fold_effects, fold_table, frontend_table,
                         in_study_order, paired_differences, summary_note, summary_table, what_else_changes)
from .sections import (VERDICT_COLUMNS, data_line, incomplete_notes, md_table, one_machine_section, provenance_line,
                       recipe_changes, recipe_line, setup_differences, verdict_section)
from .verdicts import VERDICT_MARGIN, grid_verdicts, how_to_read

__all__ = ['write_report', 'terminal_summary', 'compare_report']


def _chosen_line(preset: Preset) -> str:
    "How the recipe was chosen: the preset's reason, then what sizing derived for the data and what it kept as given"
    text = f"How this recipe was chosen: {chosen(preset.name)}"
    if preset.sized: text += f" Then the {sizing_text(preset.dataset['name'], preset.sized)}"
    if preset.given: text += f" Kept as given, not sized: {', '.join(preset.given)}."
    return text


def _baseline_section(out, preset: Preset, df: pd.DataFrame) -> list:
    "The report's lines on the classical baseline of `out` (its baseline.json), or none when it has none"
    b = read_baseline(out)
    if b is None: return []
    f = b['features']
    return ["## Classical baseline", "",
            f"{b['classifier']} on per-clip MFCC statistics ({', '.join(f['stats'])} of {f['n_mfcc']} MFCCs; "
            "`baseline.json`), trained and validated on the same folds and clips as the runs; per fold, beside each "
            "normalization's mean over seeds:", "", md_table(baseline_table(df, b)), "", baseline_verdict(df, b, preset), "",
            _baseline_origin(b), ""]


def _baseline_origin(b: dict) -> str:
    "Where the baseline was computed, and in what precision; a version-1 file says neither and is named as such"
    m = b.get('made_by')
    if m is None:
        return ("Its MFCCs were computed in float32 (`baseline.json` version 1), whose rounding depends on the CPU and "
                "can move a clip's prediction; the file does not name the CPU that made it.")
    return (f"Its MFCCs were computed in float64 on {m.get('cpu') or 'an unnamed CPU'} ({m.get('threads')} threads; "
            f"torch {m.get('torch')}, scikit-learn {m.get('sklearn')}; git {(m.get('git_commit') or 'unknown')[:10]}).")


def terminal_summary(out) -> str:
    "What `report` and `study` print: the accuracy per normalization and, when there is one, the baseline's verdict"
    preset, df = read_folder(out)
    if not len(df): return f"{out}: no finished runs yet"
    table = summary_table(df)[['folds', 'n', 'mean', 'std', 'ci95_low', 'ci95_high', 'ci_over']]
    lines, b = [f"{out}: accuracy per normalization", "", md_table(table), "", summary_note(('std',))], read_baseline(out)
    if b is not None:
        lines += ["", baseline_text(b, sorted(map(int, df.fold.unique()))), baseline_verdict(df, b, preset)]
    return '\n'.join(lines)


def _idle(t: dict) -> str:
    "The time some run was in progress, when gaps with none running (between pieces run with --stop-after) shorten it"
    return (f", of which some run was in progress for {t['busy_s'] / 60:.1f} min"
            if t['wall_s'] - t['busy_s'] >= 3 else '')


def _grid_text(g: dict) -> str:
    return f"folds {list(g['folds'])} x normalizations {list(g['normalizations'])} x seeds {list(g['seeds'])}"


def _header(out: Path, preset: Preset, df: pd.DataFrame) -> list:
    "The report's head: the grid, the recipe and how it was chosen, the data, and which runs are finished"
    missing, running, damaged = missing_runs(df, preset), running_runs(out), damaged_runs(out)
    n_exp = len(preset.jobs())
    lines = [f"# Results: preset `{preset.name}`", "",
             f"Metric: `{METRIC}` (validation accuracy after the last of {preset.epochs} epochs). "
             f"Grid: {', then '.join(map(_grid_text, preset.grids))}.", "",
             recipe_line(preset), "", _chosen_line(preset), ""]
    lines += [data_line(preset.dataset), ""] if preset.dataset else []
    if missing:
        lines += [f"**Incomplete grid: {len(df)} of {plural(n_exp, 'run')} finished.** Missing: {listed(missing, 30)}"
                  ". Means below cover only the finished runs; paired "
                  "differences use only (fold, seed) pairs where both runs finished.", ""]
    else: lines += [f"Complete grid: {len(df)} of {plural(n_exp, 'run')}.", ""]
    if running: lines += [f"Started but not finished (in progress, or interrupted): {', '.join(running)}.", ""]
    if damaged:
        lines += [f"Damaged run files, not counted (the study runs them again): {', '.join(p.name for p in damaged)}.",
                  ""]
    return lines


def _budget_section(hist: pd.DataFrame, epochs: int) -> list:
    "Each contrast at every epoch of the last quarter of training: does the answer depend on where training stopped?"
    b = budget_table(hist)
    if not len(b): return []
    unstable = [c for c, ok in b.sign_stable.items() if not ok]
    return ["## Budget check: the contrasts over the last quarter of training", "",
            f"Mean paired difference in validation accuracy at each of the last {len(b.columns) - 1} of {epochs} "
            "epochs (the runs' histories); `sign_stable`: one sign at all of them. Contrasts whose sign changes there "
            f"(their verdict depends on where training stopped): {', '.join(f'`{c}`' for c in unstable) or 'none'}.",
            "", md_table(b), ""]


def _machines_section(df: pd.DataFrame) -> list:
    "The machines the grid ran on, with run counts; one line when the run files predate the recording of the CPU"
    if predates_machines(df):
        known = [f"{c} {', '.join(sorted(df[c].dropna().astype(str).unique()))}" for c in ('device', 'torch', 'threads')
                 if c in df and df[c].notna().any()]
        return [f"Machines: these run files predate the recording of the CPU model, its bf16/AMX and oneDNN; they "
                f"name {'; '.join(known) or 'nothing of the machine'}.", ""]
    return ["## Machines", "", "The machines the runs were made on (`not recorded`: run files from before this was "
            "recorded):", "", md_table(machines_table(df).set_index('device')), ""]


def _paired_section(df: pd.DataFrame, preset, paired: pd.DataFrame) -> list:
    "The pair-level tests; where no contrast has a pair of runs, how to pool the folder into a grid whose contrasts do"
    if not len(paired):
        names = ', '.join(f"`{n}`" for n in in_study_order(df).normalization.unique())
        return ["## Contrasts", "", f"No contrast has a pair of runs (two of one fold and seed) among this grid's "
                f"normalizations ({names}). A folder of the same recipe (training hash {preset.training_hash()}) and "
                "dataset pools with it into one grid, whose report has its contrasts: `esc50-norm report THAT_FOLDER "
                "--with THIS_FOLDER`.", ""]
    return ["## Paired differences (matched on fold and seed)", "",
            "Pair-level tests (secondary: every (fold, seed) pair counted as independent). Each contrast is `a - b` "
            "over the (fold, seed) pairs where both ran. `_holm`: p-values adjusted with Holm's method over the "
            "contrasts of this table.", "", md_table(paired), ""]


def _frontend_section(df: pd.DataFrame, preset: Preset) -> list:
    "Where each PCEN front end's parameters ended (the run files' `frontend_params`), against where they started"
    if 'frontend_params' not in df: return []                   # run files from before it was recorded
    names = df.dropna(subset=['frontend_params']).normalization.unique()
    starts = {n: {k: v.detach().numpy() for k, v in pcen_module(preset.arm(n).frontend()).constrained().items()}
              for n in names}
    return ["## PCEN front ends: where their parameters ended", "",
            "Each PCEN front end's parameters (one per mel band) as its forward pass used them after the last epoch "
            "(run files' `frontend_params`): `start`, their mean at initialisation (librosa's values, or those the arm "
            "sets); `mean`, `min`, `max` over the runs and bands; `moved`, the share of (run, band) values more than "
            "1e-5 (relative) from their start (a run file keeps 6 significant digits). A description of what training "
            "did, not a test.", "",
            md_table(frontend_table(df, starts).set_index('normalization')), ""]


def _time_section(df: pd.DataFrame) -> list:
    t = study_time(df)
    dev = ', '.join(sorted(df.device.astype(str).unique()))
    estimated = ' (starts estimated from finish time minus run time: these run files predate start times)'
    return ["## Time", "",
            f"Study wall time: {t['wall_s'] / 60:.1f} min from the first run's start to the last run's finish"
            f"{estimated if t['estimated'] else ''}{_idle(t)}; the {t['runs']} runs took {t['summed_s'] / 60:.1f} min "
            f"summed over processes (set-up and training), so about {t['parallel']:.1f} ran at a time. "
            f"Mean {df.s_per_epoch.mean():.2f} s per epoch per process, on {dev}.", ""]


PLOTS = ('accuracy.png', 'paired.png', 'curves.png')
"The plots a report draws, where it has what each shows"


def write_report(out, margin: float = VERDICT_MARGIN) -> Path:
    "Write report.md, results.csv, summary.csv, paired.csv, verdicts.csv and the plots into results folder `out`"
    # all or none; the plots: `PLOTS`
    out = Path(out)
    preset, df = read_folder(out)
    lines, files = _header(out, preset, df), {'results.csv': df.to_csv(index=False)}
    if len(df):
        summary, paired, hist = summary_table(df), paired_differences(df), read_histories(out)
        tests = grid_verdicts(df, margin=margin)
        lines += ["## Accuracy per normalization", "", md_table(summary), "", summary_note(), "",
                  "## Accuracy per fold (mean over seeds)", "", md_table(fold_table(df)), "",
                  *_baseline_section(out, preset, df),
                  *verdict_section(tests, fold_effects(df)), *one_machine_section(df, tests, margin),
                  *_paired_section(df, preset, paired), *_budget_section(hist, preset.epochs),
                  *_frontend_section(df, preset),
                  *_time_section(df), provenance_line(df), "", *_machines_section(df),
                  "![accuracy](accuracy.png)", "", *(["![paired differences](paired.png)", ""] if len(paired) else []),
                  *(["![curves](curves.png)", ""] if len(hist) else [])]
        files.update({'summary.csv': summary.to_csv(), 'paired.csv': paired.to_csv(), 'verdicts.csv': tests.to_csv(),
                      'accuracy.png': plot_accuracy(df, title=f"{preset.name}: accuracy per normalization "
                                                              "(mean, 95% CI)")})
        if len(paired): files['paired.png'] = plot_paired(df, tests=tests, title=f"{preset.name}: paired differences "
                                                          "per (fold, seed); black: the verdict's estimate, 95% CI")
        if len(hist): files['curves.png'] = plot_curves(hist, title=f"{preset.name}: training curves")
    files['report.md'] = '\n'.join(lines)
    for name, what in files.items():                    # everything is computed: now write it, each file atomically
        write_atomic(out / name, what if isinstance(what, str) else png_writer(what))
    for name in sorted(set(PLOTS) - set(files)): (out / name).unlink(missing_ok=True)   # a plot it no longer draws
    return out / 'report.md'


def _pooled_sides(runs: dict) -> list:
    "Sentences naming, in a reference pooled from several folders (`compare --with`), the contrasts whose pairs span two"
    lines = []
    for name, df in runs.items():
        if 'folder' not in df or df.folder.nunique() < 2: continue
        t = what_else_changes(df)
        named = [f"`{c}` ({r.across_folders} of {r.pairs} pairs)" for c, r in t.iterrows() if r.across_folders]
        lines.append(f"`{name}` pools folders of one recipe: {', '.join(named) or 'no contrast'} take their two runs "
                     "from two folders, so those pairs also change whatever differs between the folders (the commit, "
                     "the machine: `esc50-norm report FIRST --with OTHER` names it).")
    return lines


def _fold_section(runs: dict) -> list:
    "The contrasts every folder holds, fold by fold, and where the folders' signs disagree"
    fc = fold_contrasts(runs)
    if len(runs) < 2 or not len(fc): return []
    off = [f"`{c}` in fold {f}" for c, f in fc.index[~fc.agree]]
    return ["Contrasts every folder holds, fold by fold (mean over seeds; `agree`: one sign in every folder):", "",
            md_table(fc.reset_index().set_index('contrast')), "",
            f"Where the folders disagree on a contrast's sign: {', '.join(off) or 'nowhere'}.", ""]


def _folder_verdicts(t: pd.DataFrame, key: str, margin: float) -> list:
    "How to read a comparison's verdict table `t` (one Holm family), and the table, a row per folder and `key`"
    table = t.reset_index().set_index('folder')[[key, 'pairs', 'folds', 'unit', 'test', *VERDICT_COLUMNS]]
    return [how_to_read(t, margin, family='all rows of this table'), "", md_table(table), ""]


def _verdicts_section(ref: str, v: pd.DataFrame, margin: float) -> list:
    "The per-normalization verdicts of a comparison, with where their statistics come from"
    if not len(v): return []
    return ["## Verdicts", "",
            f"Verdicts on each folder minus `{ref}`, per normalization (the rules of a grid's contrasts):", "",
            *_folder_verdicts(v, 'normalization', margin)]


def _contrast_changes_section(ref: str, c: pd.DataFrame, margin: float) -> list:
    "The verdicts on how each contrast every folder holds changes from the first folder to each later one"
    if not len(c): return []
    return ["## How the contrasts change", "",
            f"Each contrast every folder holds, `a - b` in the folder minus `a - b` in `{ref}`, pair by pair on (fold, "
            "seed) where both hold the pair: **ahead** means the contrast is larger in the folder than in "
            f"`{ref}` (a gap narrows when the contrast is negative in `{ref}`). The rules of a grid's contrasts:", "",
            *_folder_verdicts(c, 'contrast', margin)]


def _pair_changes(folders, minus) -> str:
    "What each pair of an interaction changes in the recipe, and whether the later pairs change what the `minus` pair does"
    changes = lambda a, b: recipe_changes(read_preset(a), read_preset(b))
    pairs = [(Path(folders[0]).name, Path(f).name, changes(folders[0], f)) for f in folders[1:]]
    r0, f0 = minus
    other = changes(r0, f0)
    keys = lambda c: ', '.join(f"`{k}`" for k in c) or 'nothing'
    said = '; '.join(f"`{f}` against `{r}` changes {keys(c)}" for r, f, c in pairs)
    unlike = [f"`{f}` against `{r}`" for r, f, c in pairs if c != other]
    return (f"Of the recipe, {said}; `{Path(f0).name}` against `{Path(r0).name}` changes {keys(other)}"
            + (f". **{' and '.join(unlike)} changes other keys than `{Path(f0).name}` against `{Path(r0).name}`**: "
               "the interaction measures that difference too." if unlike else ": the same keys."))


def _interaction_section(ref: str, minus: list, t: pd.DataFrame, margin: float, changes: str) -> list:
    "The verdicts on how each folder's difference to the first departs from the difference of the `minus` pair"
    r0, f0 = minus
    head = ["## Interaction", "", f"Each folder's difference to `{ref}` minus `{f0}`'s to `{r0}`, per normalization, run "
            "by run on (fold, seed) where all four folders hold the run: **ahead** means the change from "
            f"`{ref}` to the folder raises accuracy more than the change from `{r0}` to `{f0}` does (an interaction: "
            "whether one change's effect depends on what the other pair changes).", "", changes]
    if not len(t): return head + ["", "No run is held by all four folders: nothing to test.", ""]
    return head + ["", *_folder_verdicts(t, 'normalization', margin)]


def _reproduces(ref: str, eq: pd.DataFrame, v: pd.DataFrame) -> list:
    "One line per later folder: whether it reproduces the first within the equivalence margin, and what differs"
    lines = []
    for name, r in eq.iterrows():
        sig = v.loc[name] if name in v.index.get_level_values(0) else pd.DataFrame()
        hits = [f"{n} {x}" for n, x in sig.verdict.items() if x in ('ahead', 'behind')] if len(sig) else []
        units = plural(int(r.pairs), 'pair') + (f" of {int(r.units)} seeds" if r.unit == 'seed' and r.units > 1 else '')
        ci = (f"90% CI {r.ci90_low:+.4f} ... {r.ci90_high:+.4f}" if np.isfinite(r.ci90_low) else
              "no CI: every run repeats exactly" if r.replay else
              f"no CI: the {r.unit} differences all equal {r['mean']:+.4f}, no test" if r.units > 1 else
              f"no CI: one {r.unit}")
        lines.append(f"- `{name}`: {'equivalent' if r.equivalent else 'NOT shown equivalent'} to `{ref}` within "
                     f"+-{EQUIVALENCE_MARGIN} (mean {r['mean']:+.4f}, {ci}, {units}); normalizations "
                     f"ahead or behind (fold-aware test, Holm): {', '.join(hits) or 'none'}.")
    return lines + [""]


def compare_report(folders, runs: dict | None = None, margin: float = VERDICT_MARGIN, minus=()) -> str:
    "A markdown comparison of results folders: means per normalization, each folder's differences to the first"
    # the differences run by run with their verdicts (within +-`margin`), and fold by fold; `runs`: the folders'
    # runs when already read (`folder_runs`); `minus`: two more folders, whose difference each one's is tested against
    notes = setup_differences(folders)
    for n in notes: warnings.warn(f"comparing unlike results: {n}")
    runs, other = runs or folder_runs(folders), folder_runs(minus) if minus else {}
    means, paired = compare_folders(folders, runs)
    ref, table = means.columns[0], means.copy()
    for col in means.columns[1:]: table[f"{col} - {ref}"] = means[col] - means[ref]
    lines = [f"**Warning: {n}: the differences below measure that change, not a repeat of one study.**" for n in notes]
    lines += [""] if notes else []
    incomplete = dict.fromkeys([*incomplete_notes(folders, runs), *incomplete_notes(minus, other)])  # a folder named twice: once
    lines += [line for n in [*incomplete, *_pooled_sides(runs)] for line in (n, "")]
    lines += ["Mean accuracy per normalization (the mean of its fold means):", "", md_table(table), ""]
    if len(paired):
        lines += [f"Differences to `{ref}`, run by run (matched on fold, normalization and seed; pair-level tests, "
                  "`_holm`: adjusted over all rows):", "", md_table(paired.reset_index().set_index('folder')), ""]
        v, eq = compare_verdicts(folders, margin, runs), compare_equivalence(folders, runs=runs)
        lines += _verdicts_section(ref, v, margin)
        lines += [f"Reproduction of `{ref}` over all matched runs (two one-sided tests of the fold-aware estimate, "
                  f"margin +-{EQUIVALENCE_MARGIN}: equivalent when its 90% CI lies within it; on one fold its seeds are "
                  "the units, each the mean over the normalizations it ran; differences without spread have no test, "
                  "and are equivalent only when every run repeats exactly, `replay`):", "", md_table(eq), ""]
        lines += _reproduces(ref, eq, v)
        lines += _contrast_changes_section(ref, compare_contrasts(folders, margin, runs), margin)
        if minus: lines += _interaction_section(ref, list(other), compare_interactions(
            folders, minus, margin, runs, other), margin, _pair_changes(folders, minus))
    lines += _fold_section(runs)
    return '\n'.join(lines)
