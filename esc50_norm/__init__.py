"Audio and spectrogram normalization for fastai DataBlocks (the library); the ESC-50 study lives in `esc50_norm.study`"
__version__ = '0.2.0'

from .audio import AudioBlock, AudioCropPad, AudioLoadError, AudioTensor, DownmixMono, NonFiniteAudioError, Resample, audio_item_tfms
from .spectrogram import AudioConfig, AudioSpectrogram, AudioToSpec, SpectrogramConfig
from .normalize import MODES, AudioNormalize, Mode, SpecNormalize, find_spec_normalize, training_inputs
from .stats import RunningExtrema, RunningStats, StatsFileError, accumulate, load_stats, save_stats
from .callback import SpecStatsCallback
from .device_dl import DeviceDL
from .inference import ModelLoadError, PredictionError, load_exported, predict_files, top_k_table
