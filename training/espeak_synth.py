"""eSpeak NG through its C API (ctypes), with phoneme events for exact phoneme timing.

The `espeakng-loader` wheel bundles libespeak-ng 1.52 and its data. eSpeak NG is GPL-3; it is
used here only as a training-time tool to make speech, never shipped or linked at run time.

Initialised with espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA so every
phoneme arrives as an event whose `sample` field is its start in the output (22050 Hz) and whose
name is IPA, which lets one phoneme-to-mouth table cover every language.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
INIT_PHONEME_EVENTS = 0x0001
INIT_PHONEME_IPA = 0x0002
INIT_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1
EV_LIST_TERMINATED = 0
EV_WORD = 1
EV_SENTENCE = 2
EV_END = 5
EV_MSG_TERMINATED = 6
EV_PHONEME = 7
P_RATE, P_VOLUME, P_PITCH, P_RANGE, P_WORDGAP = 1, 2, 3, 4, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class Utterance:
    audio: np.ndarray  # int16 at `rate`
    rate: int
    phonemes: list[tuple[int, str]]  # (start sample at `rate`, IPA name); "" marks a pause


class Espeak:
    """One engine per process (libespeak-ng keeps global state)."""

    def __init__(self) -> None:
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        data = espeakng_loader.get_data_path().encode()
        self.rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 200, data, INIT_PHONEME_EVENTS | INIT_PHONEME_IPA | INIT_DONT_EXIT
        )
        if self.rate <= 0:
            raise RuntimeError("espeak_Initialize failed")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []
        self._cb = _CALLBACK(self._on_synth)  # keep a reference: ctypes does not
        lib.espeak_SetSynthCallback(self._cb)

    def _on_synth(self, wav, n, events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != EV_LIST_TERMINATED:
            ev = events[i]
            if ev.type == EV_PHONEME:
                name = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self._events.append((ev.type, ev.sample, name))
            elif ev.type in (EV_WORD, EV_SENTENCE, EV_END):
                self._events.append((ev.type, ev.sample, ""))
            i += 1
        return 0

    def set_voice(self, name: str) -> None:
        if self._lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise ValueError(f"espeak voice not found: {name}")

    def synth(self, text: str, rate_wpm: int = 175, pitch: int = 50, pitch_range: int = 50,
              word_gap: int = 0) -> Utterance:
        lib = self._lib
        lib.espeak_SetParameter(P_RATE, int(rate_wpm), 0)
        lib.espeak_SetParameter(P_PITCH, int(pitch), 0)
        lib.espeak_SetParameter(P_RANGE, int(pitch_range), 0)
        lib.espeak_SetParameter(P_WORDGAP, int(word_gap), 0)
        lib.espeak_SetParameter(P_VOLUME, 100, 0)
        self._chunks, self._events = [], []
        buf = text.encode("utf-8") + b"\0"
        err = lib.espeak_Synth(buf, len(buf), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed: {err}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        phonemes = [(s, name) for t, s, name in self._events if t == EV_PHONEME]
        return Utterance(audio=audio, rate=self.rate, phonemes=phonemes)
