import numpy as np
import pytest

from dhlive_cli.mouth_cues import LETTERS, cues, mouth_cue, mouth_cues, parse_extended, settle_letters


def test_table_shapes_map_to_their_letters():
    # values from the model card's phoneme table
    assert mouth_cue(0.0, 0.25, 0.15, 1.0) == "A"  # p b m
    assert mouth_cue(0.0, 0.10, 0.10, 0.8) == "X"  # silence
    assert mouth_cue(0.10, 0.35, 0.05, 0.45) == "G"  # f v
    assert mouth_cue(0.20, 0.00, 0.95, 0.0) == "F"  # u
    assert mouth_cue(0.42, 0.00, 0.85, 0.0) == "E"  # o (round, more open)
    assert mouth_cue(0.62, 0.00, 0.65, 0.0) == "E"  # ɔ
    assert mouth_cue(0.88, 0.35, 0.00, 0.0) == "D"  # a
    assert mouth_cue(0.55, 0.55, 0.00, 0.0) == "C"  # ɛ
    assert mouth_cue(0.20, 0.85, 0.00, 0.0) == "B"  # i, teeth nearly together
    assert mouth_cue(0.30, 0.65, 0.00, 0.0) == "B"  # ɪ
    assert mouth_cue(0.28, 0.30, 0.10, 0.0) == "B"  # k g: the tongue is at the back
    assert mouth_cue(0.40, 0.35, 0.10, 0.0) == "C"  # ə


@pytest.mark.parametrize("name,params", [("t d n s", (0.20, 0.45, 0.05, 0.0)), ("l", (0.30, 0.40, 0.05, 0.0)),
                                         ("th", (0.22, 0.40, 0.00, 0.0)), ("tap r", (0.25, 0.35, 0.10, 0.0))])
def test_tongue_consonants_show_h(name, params):
    assert mouth_cue(*params) == "H", name


def test_array_form_and_alphabet():
    rng = np.random.default_rng(0)
    letters = mouth_cues(rng.uniform(0, 1, size=(500, 4)))
    assert len(letters) == 500 and set(letters) <= set(LETTERS)
    assert mouth_cues([[0.9, 0.3, 0.0, 0.0]]) == ["D"]


def test_run_rules():
    # a one-frame tongue is flicker (B); two frames at 25 fps (80 ms) stay H
    assert settle_letters(list("CHCHHC"), 25) == list("CBCHHC")
    # the close ramp into and out of silence crosses the f/v range: not an f
    assert settle_letters(list("GBCGGX"), 25) == list("XBCXXX")
    # a real f between vowels stays, however short
    assert settle_letters(list("CGC"), 25) == list("CGC")
    # without the optional shapes the basic six stand in
    assert settle_letters(list("XCHHCGGGCX"), 25, extended="") == list("ACCCCBBBCA")
    assert parse_extended("gx") == "GX"
    with pytest.raises(ValueError, match="'Q'"):
        parse_extended("GQ")


def test_cues_are_runs_that_touch_and_end_with_the_audio():
    c = cues(list("XXBBBDX"), 25, duration_s=0.27)
    assert [(round(q.start_s, 3), round(q.end_s, 3), q.shape) for q in c] == [
        (0.0, 0.08, "X"), (0.08, 0.2, "B"), (0.2, 0.24, "D"), (0.24, 0.27, "X")]
    # a last frame that starts after the audio's end (padding) adds no cue
    assert [q.shape for q in cues(list("XBD"), 25, duration_s=0.08)] == ["X", "B"]
