"The audio files the library and the study read, by extension: what soundfile (libsndfile ≥ 1.1) decodes"
__all__ = ['AUDIO_EXTENSIONS']

AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3', '.aiff', '.aif')
"Extensions of the files `AudioTensor.create`, `get_audio_files` and the `folders` dataset kind take, in any case"
