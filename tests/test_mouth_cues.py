import numpy as np

from dhlive_cli.mouth_cues import LETTERS, mouth_cue, mouth_cues


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
    assert mouth_cue(0.20, 0.45, 0.05, 0.0) == "B"  # t d n s


def test_array_form_and_alphabet():
    rng = np.random.default_rng(0)
    cues = mouth_cues(rng.uniform(0, 1, size=(500, 4)))
    assert len(cues) == 500 and set(cues) <= set(LETTERS)
    assert mouth_cues([[0.9, 0.3, 0.0, 0.0]]) == ["D"]
