"Audio and spectrogram normalization for fastai DataBlocks, and the ESC-50 study of global vs per-channel statistics"
__version__ = '0.1.0'

from .audio import AudioBlock, AudioLoadError, AudioTensor, CropPad, DownmixMono, Resample, audio_item_tfms
from .spectrogram import AudioConfig, AudioSpectrogram, AudioToSpec, SpectrogramConfig
from .normalize import AudioNormalize, SpecNormalize, spec_stats, training_inputs
from .stats import RunningStats, StatsFileError, accumulate, load_stats, save_stats
from .callback import SpecStatsCallback
from .esc50 import ENV_VAR, ESC50Error, esc50_path, fold_split, read_meta, subset_per_class
from .cache import ClipCache, load_or_build_cache
from .device_dl import DeviceDL
from .data import NORMALIZATIONS, FoldSplitter, cached_datablock, device_dataloaders, esc50_dataloaders, files_datablock, norm_tfms
