"""training.festival_speech: Festival voices as extra training speakers (models/README.md, "More
voices: Festival"). The phone-set maps and the labels from festival's own timings; festival itself
is not needed (numpy only, no torch)."""

import numpy as np

from training import festival_speech as fs
from training import mouth_table
from training.label_real import PAD

# segment names the twelve voices produced on the training text (festival's own phone sets)
SEEN = {
    "radio": list(fs.RADIO_TO_IPA),
    "it": "r t a o n # a1 l e i1 m p i s k E1 o1 O1 e1 b v d u1 J tS f w j S ng dZ z".split(),
    "fi": "a # n i s u e t k o p l h @ v l: m j i: a: y r d k: e: @: 7 N b s: u: n: m: y: o:".split(),
    "ru": ("a pau oo aa j k ay i r ch m t u ee v ae p s sh n dd l b ii d tt y e ss nn f z ur pp g vv uu "
           "ll c zh gg sch zz mm yy rr h hh bb kk ff").split(),
    "ca": "ax pau s n l t m a1 r b p d e1 w u i1 i O1 u1 E1 k g Z o1 j f rr L e z o a O".split(),
    "cs": "e # o a r m d t l i v s i: n k a: p u z h j b n~ s~ e: c _ c~ f d~ ch u: r~ g z~ r~* t~ dz n*".split(),
}


def test_every_seen_phone_maps_to_a_known_mouth_shape():
    for pset, names in SEEN.items():
        for name in names:
            ipa = fs.phone_to_ipa(pset, name)
            parts = mouth_table.parse(ipa)
            assert all(kind != "?" for kind, _sym in parts), (pset, name, ipa, parts)


def test_pauses_and_bilabials():
    for pset, pause in (("radio", "pau"), ("it", "#"), ("fi", "#"), ("ru", "pau"), ("ca", "pau"), ("cs", "#")):
        assert fs.phone_to_ipa(pset, pause) == ""
        for p in "pbm":
            assert fs.phone_to_ipa(pset, p) == p
    assert fs.phone_to_ipa("ru", "mm") == "m"  # palatalised m is still a lip closure
    assert fs.phone_to_ipa("ru", "aa") == "a"  # stressed vowel


def test_texts_are_reproducible_and_encodable():
    for spk, v in fs.VOICES.items():
        a = fs.texts(spk, 12, 5)
        assert a == fs.texts(spk, 12, 5)
        assert len(a) == 12 and all(t.strip() for t in a)
        for t in a:
            t.encode(v.encoding)


def test_festival_targets_close_the_lips_on_m_and_rest_in_pauses():
    # "pau m aa pau": 0.3 s pause, 0.12 s m, 0.3 s a, 0.3 s pause (festival gives end times)
    segs = [(0.3, "pau"), (0.42, "m"), (0.72, "aa"), (1.02, "pau")]
    audio = np.zeros(int(1.02 * 16000), np.float32)
    audio[4800:11520] = 0.3 * np.sin(np.arange(6720) * 0.2)
    tgt, silent, bil, n = fs.festival_targets(segs, audio, "radio")
    assert tgt.shape == (n, 4) and silent.shape == (n,)
    spf = 640
    m_frame = (PAD + int(0.36 * 16000)) // spf
    a_frame = (PAD + int(0.6 * 16000)) // spf
    assert tgt[m_frame, 3] > 0.8 and tgt[m_frame, 0] < 0.1  # lips pressed on the m
    assert tgt[a_frame, 0] > 0.6  # wide open on the 'a'
    assert silent[0] and silent[-1]
    assert len(bil) == 1
