"""Offline text-to-speech with espeak-ng, in-process.

The ``espeakng-loader`` wheel ships ``libespeak-ng`` and its voice data; :class:`Espeak` drives
that library through :mod:`ctypes` (synchronous mode, samples collected by a callback), so
synthesis needs nothing beyond ``pip install``. When the wheel is missing, the Debian
``espeak-ng`` program is used instead (``apt-get install espeak-ng``). When neither is there,
:class:`~reprozoo.errors.MissingDependencyError` says exactly what to install.

    tts = Espeak()
    wave, sr = tts.synthesize("call anna", voice="en-gb-scotland+f2", rate=150, pitch=50)

``wave`` is float32 mono in [-1, 1] at ``sr`` (22,050 Hz for espeak-ng's voices).
"""

from __future__ import annotations

import ctypes
import io
import shutil
import subprocess
import threading

import numpy as np

from reprozoo.errors import DataError, MissingDependencyError
from reprozoo.runtime.extras import require

INSTALL_HINT = ("speech synthesis needs espeak-ng: pip install 'reprozoo[speech]' "
                "(espeakng-loader ships the library and voices), or apt-get install espeak-ng")

# espeak_AUDIO_OUTPUT, espeak_PARAMETER and flag values from speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAM_RATE, _PARAM_PITCH = 1, 3
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_LOCK = threading.Lock()  # libespeak-ng keeps global state: one synthesis at a time per process
_LIB: dict[str, object] = {}


def _load_library():
    """(library, sample rate) of the wheel's libespeak-ng, initialised once per process."""
    if "lib" in _LIB:
        return _LIB["lib"], _LIB["sr"]
    try:
        import espeakng_loader
    except ImportError:
        return None, 0
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
    if sr <= 0:
        raise MissingDependencyError(f"libespeak-ng from espeakng-loader failed to initialise ({sr}); "
                                     + INSTALL_HINT)
    chunks: list[np.ndarray] = []

    def collect(wav, n, _events):
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    callback = _CALLBACK(collect)  # keep a reference: ctypes callbacks die with their Python object
    lib.espeak_SetSynthCallback(callback)
    _LIB.update(lib=lib, sr=sr, chunks=chunks, callback=callback)
    return lib, sr


class Espeak:
    """espeak-ng synthesiser. ``backend`` is ``auto`` (library, else program), ``library`` or
    ``program``."""

    def __init__(self, backend: str = "auto"):
        if backend not in ("auto", "library", "program"):
            raise DataError(f"espeak backend must be auto, library or program, got '{backend}'")
        lib, sr = (None, 0) if backend == "program" else _load_library()
        if lib is not None:
            self.backend, self.sample_rate = "library", sr
        elif backend != "library" and shutil.which("espeak-ng"):
            self.backend, self.sample_rate = "program", 22050
        else:
            raise MissingDependencyError(INSTALL_HINT)

    @property
    def version(self) -> str:
        """Identifies the synthesiser in cache keys (a different espeak-ng may sound different)."""
        if self.backend == "library":
            import importlib.metadata as md

            return f"libespeak-ng via espeakng-loader {md.version('espeakng-loader')}"
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=False)
        return "espeak-ng program " + out.stdout.strip()

    def synthesize(self, text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50) -> tuple[np.ndarray, int]:
        """Speak ``text`` with ``voice`` (``name`` or ``name+variant``) at ``rate`` words per minute
        and ``pitch`` (0-99). Returns (float32 mono wave, sample rate)."""
        if not text.strip():
            raise DataError("cannot synthesise an empty text")
        if not 80 <= rate <= 450 or not 0 <= pitch <= 99:
            raise DataError(f"espeak rate must be in [80, 450] wpm and pitch in [0, 99], got {rate}, {pitch}")
        if self.backend == "library":
            wave = self._synth_library(text, voice, int(rate), int(pitch))
        else:
            wave = self._synth_program(text, voice, int(rate), int(pitch))
        if wave.size == 0:
            raise DataError(f"espeak-ng produced no audio for {text!r} with voice '{voice}'")
        return wave.astype(np.float32) / 32768.0, self.sample_rate

    def _synth_library(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        lib, _ = _load_library()
        chunks: list = _LIB["chunks"]  # type: ignore[assignment]
        with _LOCK:
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise DataError(f"espeak-ng has no voice '{voice}' (try en-us, en-gb-scotland, en-us+f2)")
            lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
            lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
            chunks.clear()
            data = text.encode("utf-8")
            buf = ctypes.create_string_buffer(data)
            lib.espeak_Synth(buf, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            wave = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
            chunks.clear()
        return wave

    def _synth_program(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        sf = require("soundfile", what="reading espeak-ng's audio")

        out = subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", text],
                             capture_output=True, check=False)
        if out.returncode != 0 or not out.stdout:
            raise DataError(f"espeak-ng failed for voice '{voice}': {out.stderr.decode(errors='replace').strip()}")
        wave, self.sample_rate = sf.read(io.BytesIO(out.stdout), dtype="int16")
        return np.asarray(wave)


__all__ = ["Espeak", "INSTALL_HINT"]
