"The ESC-50 normalization study, built on the library: data, clip cache, pipelines, experiments, report, command line"
from .esc50 import ENV_VAR, ESC50Error, esc50_path, fold_split, read_meta, subset_per_class
from .cache import ClipCache, load_or_build_cache
from .data import NORMALIZATIONS, FoldSplitter, cached_datablock, device_dataloaders, esc50_dataloaders, files_datablock, norm_tfms
