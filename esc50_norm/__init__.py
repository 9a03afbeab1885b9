"""Audio and spectrogram normalization for fastai DataBlocks (the library); the ESC-50 study is `esc50_norm.study`.

The names below are resolved on first use (PEP 562): `import esc50_norm` imports neither torch nor fastai, and
`from esc50_norm import *` adds exactly `__all__`, none of which shadows a name of `from fastai.vision.all import *`.
"""
from importlib import import_module

__version__ = '0.4.0'

_WHERE = {
    # audio files and the item transforms
    'AudioTensor': 'audio', 'AudioLoadError': 'audio', 'NonFiniteAudioError': 'audio', 'DownmixMono': 'audio',
    'Resample': 'audio', 'AudioCropPad': 'audio', 'AudioBlock': 'audio', 'audio_item_tfms': 'audio',
    'AUDIO_EXTENSIONS': 'formats', 'get_audio_files': 'audio',
    # a DataBlock's split by a fold column
    'FoldSplitter': 'folds',
    # spectrograms
    'SpectrogramConfig': 'configs', 'AudioConfig': 'configs',
    'AudioSpectrogram': 'spectrogram', 'AudioToSpec': 'spectrogram',
    # normalization, its stats and the callback that learns them
    'AudioNormalize': 'normalize', 'SpecNormalize': 'normalize', 'Mode': 'normalize', 'MODES': 'normalize',
    'training_inputs': 'normalize', 'find_spec_normalize': 'normalize',
    'Accumulator': 'stats', 'RunningStats': 'stats', 'RunningExtrema': 'stats', 'accumulate': 'stats',
    'save_stats': 'stats', 'load_stats': 'stats', 'StatsFileError': 'stats',
    'SpecStatsCallback': 'callback',
    # PCEN (fixed: a batch transform; learned: a front end) and PANNs' input BatchNorm (a front end before the model)
    'PCEN': 'pcen', 'LearnedPCEN': 'pcen', 'FrozenPCEN': 'pcen', 'FreqBatchNorm': 'frontend',   # esc50_norm.pcen.pcen
    # training-only augmentations, the device-resident DataLoader, prediction
    'RandomTimeShift': 'augment', 'SpecMask': 'augment', 'augment_tfms': 'augment', 'Augment': 'configs',
    'DeviceDL': 'device_dl',
    # mixed precision on CUDA or the CPU
    'BF16Autocast': 'precision', 'ChannelsLastInput': 'precision', 'native_bf16': 'precision',
    'ModelLoadError': 'inference', 'PredictionError': 'inference', 'load_exported': 'inference',
    'predict_files': 'inference', 'top_k_table': 'inference',
}
"Each public name and the submodule that defines it"

__all__ = list(_WHERE)


def __getattr__(name: str):
    "Import a public name's submodule the first time the name is used"
    if name not in _WHERE: raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list: return sorted({*globals(), *__all__})
