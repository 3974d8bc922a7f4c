"""The model card's account of how the recipe was chosen and what was tried beside it.

Prose with the measured figures of each run (training.train, training.export, then
training.evaluate on the real dev set and the held-out eSpeak sets; one seed each, so differences
of about 0.005 are within run-to-run noise), kept apart from the generator (training.model_card)
that puts it into models/README.md after the evaluation of the shipped run.
"""

RECIPE_MD = """## How this recipe was chosen

Label ceiling first. Relabelling a third of the dev prompts with another aligner dither seed
(`python -m training.label_real --ceiling 3 --dither-seed 2`) agrees with the stored labels at
opening r 0.994 (9276 frames): the aligner is stable, so the dev labels are not noisy run to run.
Against known truth (eSpeak audio, `training.align --check`) the labels agree at r 0.913. And a
diagnostic model trained on the dev speakers' *other* prompts (37.6 min; otherwise as the first
from-scratch row below, which scores 0.569; never shipped) reaches r 0.881 on the dev set: with these labels and this 28 x 40
window, r 0.80 is reachable when the voices are known. What is missing is voices: the two training
voices carry over to three new ones only partly.

| run (eSpeak, Menardi + Armelle real speech, voiceless clips) | dev open r | lag | p/b/m | pause | eSpeak voices / langs r | silence closed (clean) | silence closed (degraded voices) |
| --- | --- | --- | --- | --- | --- | --- | --- |
| lipsync-v1 (eSpeak only) | 0.665 | +0 | 0.813 | 1.000 | 0.859 / 0.847 | 0.990 | 0.969 |
| previous lipsync-v2 (v1 + Menardi, 40 bands, 400 eSpeak utts, 3 epochs) | 0.658 | +0 | 0.859 | 1.000 | 0.835 / 0.828 | 0.996 | 0.974 |
| from scratch, 40 bands, 400 eSpeak utts, real x3, 200 voiceless clips, 8 epochs | 0.569 | +0 | 0.865 | 1.000 | 0.767 / 0.746 | 0.996 | 0.903 |
| same, 29 bands | 0.638 | +0 | 0.739 | 0.999 | 0.739 / 0.732 | 0.988 | 0.914 |
| from scratch, 29 bands, 4000 eSpeak utts, real x3, 400 voiceless clips, 10 epochs | 0.666 | +0 | 0.777 | 1.000 | 0.824 / 0.814 | 0.992 | 0.934 |
| v1 continued, 29 bands, 4000 eSpeak utts, real x3, 400 voiceless clips, lr 5e-4, 3 epochs | 0.689 | +0 | 0.698 | 1.000 | 0.831 / 0.826 | 0.993 | 0.834 |
| same, real x2, lr 3e-4 | 0.690 | +0 | 0.677 | 1.000 | 0.834 / 0.830 | 0.993 | 0.914 |
| same, 6 epochs, band warp ±10 % | 0.693 | +0 | 0.680 | 1.000 | 0.836 / 0.832 | 0.993 | 0.840 |
| same, real x1 | 0.686 | +0 | 0.700 | 1.000 | 0.838 / 0.835 | 0.993 | 0.898 |
| real x2, 32 bands | 0.686 | +0 | 0.772 | 1.000 | 0.845 / 0.840 (0.8399) | 0.992 | 0.909 |
| real x2, 33 bands, 400 voiceless clips | 0.682 | +0 | 0.800 | 1.000 | 0.844 / 0.840 | 0.992 | 0.885 |
| real x2, 34 bands | 0.675 | +0 | 0.802 | 1.000 | 0.844 / 0.841 | 0.992 | 0.933 |
| real x2, **33 bands, all 800 voiceless clips** (shipped) | 0.679 | +0 | 0.789 | 1.000 | 0.844 / 0.841 | 0.991 | 0.971 |
| same, band warp ±20 % | 0.685 | +0 | 0.749 | 1.000 | 0.839 / 0.838 | 0.992 | 0.968 |
| shipped recipe, 10 epochs | 0.676 | +0 | 0.794 | 1.000 | 0.844 / 0.840 | 0.991 | 0.977 |
| the issue's plain MLP (no projection: 28·40+1 → 256 → 128 → 4), from scratch, 40 bands, shipped data and knobs, lr 2e-3, 6 epochs | 0.653 | +0 | 0.810 | 1.000 | 0.822 / 0.815 | 0.995 | 0.970 |
| same plain MLP, 33 bands | 0.673 | +0 | 0.750 | 1.000 | 0.822 / 0.818 | 0.994 | 0.965 |
| diagnostic only: first from-scratch row with the dev speakers' other prompts (x2) instead of Menardi/Armelle | 0.881 | +0 | 0.945 | 1.000 | 0.785 / 0.763 | 0.985 | 0.778 |

Reading the table: a low-pass at 29 bands put onto the *dev audio* alone lifted the previous v2
from 0.658 to 0.715 (v1: 0.665 to 0.673), which is what pointed at the band limit; fewer bands
help the real voices and cost the eSpeak voices, and 33 is the fewest bands that keep both eSpeak
splits at r >= 0.84 (32 missed by 0.0001). Training from scratch on this much data stays behind continuing v1 (which
learnt 8000 eSpeak utterances over 20 epochs). With half the voiceless clips the silence closure
on degraded eSpeak speech (white or pink noise at 10 dB SNR) moved between 0.83 and 0.93 from run
to run, below v1's 0.969: all 800 clips bring it to 0.971 for 0.003 of dev r.

### Is the speaker gap a spectral colouring? (tried after the shipped run; nothing here shipped)

Hypothesis: the dev voices differ from the training voices by a fixed colouring (vocal tract,
microphone, codec EQ). That adds a constant to each log-mel band, which the net's gain-only
normalisation leaves in. The colouring is there: each dev voice's mean band shape (speech rows,
lowest 33 bands) lies 1.55 (June), 1.56 (Carlo) and 2.15 (IvrvoiceRU) natural-log units rms
(7-9 dB) from the mean shape of the two training voices. Removing it does not help:

| run (shipped recipe and data unless said; `training.train` flags) | dev open r | lag | p/b/m | pause | eSpeak voices / langs r | silence closed (clean) | silence closed (degraded voices) | degraded eSpeak voices / langs r |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| shipped lipsync-v2 | 0.679 | +0 | 0.789 | 1.000 | 0.844 / 0.841 | 0.991 | 0.971 | 0.776 / 0.764 |
| same, rebuilt with the flags' defaults (same epoch losses as the shipped run) | 0.679 | +0 | 0.789 | 1.000 | 0.844 / 0.841 | 0.991 | 0.971 | 0.776 / 0.764 |
| same, seed 7 (run-to-run noise) | 0.680 | +0 | 0.797 | 1.000 | 0.844 / 0.840 | 0.992 | 0.979 | 0.779 / 0.766 |
| per-band mean over each utterance's speech rows subtracted (shape only, level kept), in training and evaluation; random EQ off, gain kept (`--norm utt --eq 0`; `training.evaluate --norm utt`) | 0.680 | +0 | 0.783 | 0.991 | 0.841 / 0.839 | 0.919 | 0.970 | 0.794 / 0.780 |
| same normalisation, shipped random EQ kept (`--norm utt`) | 0.677 | +0 | 0.770 | 0.989 | 0.838 / 0.834 | 0.916 | 0.970 | 0.789 / 0.776 |
| stronger colouring: EQ tilt ±12 dB plus 6 smooth bumps of ±12 dB, a 3.4-8 kHz low-pass (48 dB/octave) on 30 % of windows, a 150-400 Hz high-pass on 30 % (`--eq 1.5 --bumps-db 8 --knots 6 --lowpass-p 0.3 --bandpass-p 0.3`) | 0.674 | +0 | 0.797 | 1.000 | 0.835 / 0.829 | 0.992 | 0.972 | 0.787 / 0.779 |
| per-band dropout: shipped EQ plus a 10-30 dB notch over 1-4 adjacent bands on half the windows (`--mask-p 0.5`) | 0.676 | +0 | 0.810 | 1.000 | 0.839 / 0.836 | 0.993 | 0.976 | 0.785 / 0.775 |

And with no training at all: the shipped weights on dev speech whose band shape is swapped, per
utterance, for the training voices' mean shape (the mean normalisation above plus that shape)
score 0.686 (p/b/m 0.625); swapped for the eSpeak training speech's mean shape, 0.652 (a one-off
check with `training.spectral_norm.utterance_cmn`, not a flag). So even a
perfect match of the colouring buys under 0.01. The normalisation does what it should on channel
effects (degraded eSpeak speech, telephone band plus noise, rises by 0.016-0.018) but the real
voices gain 0.001, so the streaming version of it (a running per-band mean carried across
chunks) was not built; as tried it also let silence closure fall to 0.919 (digital-silence rows
take the offsets too). Stronger colouring or band dropout in training costs eSpeak r (below
0.84) and gains nothing on the dev voices. What the dev voices lack is not a static spectral
colour.

Leave one speaker out (report only; the official dev split is unchanged): the shipped recipe with
the other four of the five real voices in training (each x2; 96 % of each one's prompts) and the
fifth scored (`training.train --speakers <the other four>`, then `training.evaluate --dev-speakers
<the fifth> --real-only`), beside the shipped model (trained on Menardi and Armelle only) and
lipsync-v1 on the same speaker:

| held-out speaker | open r (LOSO) | lag | p/b/m (LOSO) | pause | shipped lipsync-v2: r / p/b/m | lipsync-v1: r / p/b/m |
| --- | --- | --- | --- | --- | --- | --- |
| fr_CA_f_June (dev) | 0.684 | +0 | 0.616 | 1.000 | 0.649 / 0.813 | 0.640 / 0.842 |
| it_IT_m_Carlo (dev) | 0.780 | +0 | 0.819 | 1.000 | 0.748 / 0.842 | 0.724 / 0.834 |
| ru_RU_f_IvrvoiceRU (dev) | 0.723 | +0 | 0.458 | 1.000 | 0.681 / 0.679 | 0.667 / 0.731 |
| it_IT_f_Menardi (training voice) | 0.658 | +0 | 0.635 | 0.996 | 0.754 / 0.644 (trained on) | 0.642 / 0.717 |
| fr_f_Armelle (training voice) | 0.693 | +0 | 0.479 | 1.000 | 0.743 / 0.436 (trained on) | 0.690 / 0.547 |

Four real voices instead of two lift each dev speaker's open r by 0.03-0.04 (mean of the three:
0.729 against 0.693; of all five held-out figures 0.708): the number of voices moves the figure,
their colour does not. But no held-out voice reaches 0.80, and p/b/m closure *falls* for June and
IvrvoiceRU when the other dev voices join training. Menardi and Armelle held out score barely
above lipsync-v1 (0.658 vs 0.642, 0.693 vs 0.690). Nor does the recipe fit the voices it trains
on closely: the model that leaves June out scores 0.824 (Carlo), 0.757 (IvrvoiceRU), 0.761
(Menardi) and 0.742 (Armelle) on its own training voices, mostly on prompts it trained on, where
the from-scratch diagnostic model reaches 0.881 on *held-out* prompts of known voices. Menardi's
and Armelle's labels are therefore not worse than the exact-transcript voices'; the recipe
(v1 continued at lr 3e-4 for 6 epochs, real speech a seventh to a fifth of the frames) learns real voices
loosely, and an unseen voice lands 0.03-0.10 below that.

### More voices from the same recordings: speed perturbation (tried after the shipped run; nothing here shipped)

Hypothesis: since more real voices help (above), voices made from the two training voices might
too. `training/speed_perturb.py` resamples each recording to play f times as fast (Ko et al.,
Interspeech 2015: duration x 1/f, pitch and formants x f, like another speaker's larynx and
vocal tract) and stretches its frame labels by the same factor (factor 1.0 gives back the stored
features and labels within 1e-6; a loudness envelope keeps its best lag against the stretched
labels); `--mode formant` warps only the spectral envelope (cepstral envelope read at frequency /
f in the STFT, pitch and timing kept, measured envelope scale 0.90 / 1.075 for f 0.9 / 1.1). The
copies join the shipped recipe as extra real sources (`training.train --speakers
it_IT_f_Menardi,fr_f_Armelle,it_IT_f_Menardi_sp0.90,...`, real x `--real-repeat`), everything
else as shipped (v1 continued, 33 bands, band warp ±10 %, 6 epochs, lr 3e-4, seed 1234):

| run (real sources; real repeat) | dev open r | lag | p/b/m | pause | eSpeak voices / langs r | silence closed (clean voices / langs) | silence closed (degraded voices) | degraded eSpeak voices / langs r | dev open r by speaker (June / Carlo / IvrvoiceRU) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| shipped lipsync-v2 (Menardi, Armelle; x2) | 0.679 | +0 | 0.789 | 1.000 | 0.844 / 0.841 | 0.995 / 0.991 | 0.971 | 0.776 / 0.764 | 0.649 / 0.748 / 0.681 |
| + speed 0.9 and 1.1 copies of both; x2 | 0.679 | +0 | 0.804 | 1.000 | 0.835 / 0.830 | 0.995 / 0.993 | 0.966 | 0.765 / 0.755 | 0.644 / 0.753 / 0.688 |
| + speed 0.85, 0.95, 1.05, 1.15 copies; x2 | 0.682 | +0 | 0.803 | 1.000 | 0.825 / 0.822 | 0.995 / 0.993 | 0.934 | 0.748 / 0.737 | 0.647 / 0.755 / 0.695 |
| + speed 0.9 and 1.1 copies; x1 | 0.684 | +0 | 0.803 | 1.000 | 0.841 / 0.838 | 0.995 / 0.992 | 0.971 | 0.776 / 0.765 | 0.656 / 0.750 / 0.687 |
| same, seed 7 | 0.680 | +0 | 0.789 | 1.000 | 0.842 / 0.838 | 0.995 / 0.992 | 0.975 | 0.778 / 0.767 | 0.648 / 0.751 / 0.685 |
| + speed 0.85, 0.95, 1.05, 1.15 copies; x1 | 0.684 | +0 | 0.783 | 1.000 | 0.838 / 0.833 | 0.995 / 0.993 | 0.976 | 0.767 / 0.754 | 0.653 / 0.751 / 0.687 |
| speed 0.9 and 1.1 copies only, no originals; x1 (as many real frames as shipped) | 0.681 | +0 | 0.774 | 1.000 | 0.843 / 0.840 | 0.995 / 0.992 | 0.978 | 0.780 / 0.770 | 0.651 / 0.750 / 0.683 |
| + speed 0.9 and 1.1 copies; x3 | 0.677 | +0 | 0.815 | 1.000 | 0.830 / 0.824 | 0.995 / 0.993 | 0.962 | 0.751 / 0.744 | 0.642 / 0.749 / 0.688 |
| + formant-only 0.9 and 1.1 copies (`--mode formant`); x2 | 0.676 | +0 | 0.830 | 1.000 | 0.836 / 0.830 | 0.995 / 0.992 | 0.973 | 0.760 / 0.748 | 0.642 / 0.747 / 0.683 |
| control: Menardi, Armelle only; x6 (as many real frames as the first row) | 0.671 | +0 | 0.829 | 1.000 | 0.837 / 0.830 | 0.994 / 0.992 | 0.976 | 0.762 / 0.749 | 0.635 / 0.744 / 0.679 |

None of these beats the shipped model within the rules (dev r above 0.679 with p/b/m within 0.01
and both eSpeak splits at r >= 0.84). The best dev figure, 0.684 (speed 0.9 and 1.1 copies, x1),
is 0.680 with seed 7 (the shipped recipe gives 0.679 and 0.680 on seeds 1234 and 7): across the
eight perturbed runs dev r lies within 0.676-0.684, run-to-run noise around the shipped 0.679, and
the per-speaker figures move by under 0.01. Every run with more real frames than shipped loses
eSpeak r (langs 0.822-0.838), as raising the real repeat does; the one with the shipped real share
(copies only) keeps eSpeak (0.843 / 0.840) but loses p/b/m (0.774). Against the control with the
same real share (the originals x6, 0.671) the copies score 0.679: better than seeing the same
recordings more often, no better than the shipped mix. Formant-only copies score lowest (0.676).
Resampling and formant warps of a voice are variety the recipe already has (band warp ±10 % on
every window, resampling 0.85-1.18 of the eSpeak speech); what the other real voices added in the
leave-one-speaker-out runs (+0.03-0.04) is what a copy of the same speaker cannot carry: another
person's articulation and timing, and another recording chain.

### More voices: Festival (tried after the first v2; net b of today's model is one row here)

Hypothesis: the leave-one-speaker-out runs say more voices move the dev figure, and Debian has
Festival voices built from recordings of real people. `training/festival_speech.py` synthesises
150 utterances with each of twelve of them (text from `training/corpus.py`; for Italian, Finnish,
Russian, Czech and Catalan a dozen sentences written for the module, never the dev prompts'
transcripts or the held-out eSpeak sentences), resamples to 16 kHz and labels them like the real
prompts (eSpeak NG phonemizes, pocketsphinx aligns; the utterances the aligner cannot fit are
dropped), or, with `--labels festival`, from festival's own segment timings, each voice's phone
set mapped to IPA (nothing dropped). The packages are installed with apt at data-generation time,
nothing of them is shipped, and they are credited here:

| source (`--speakers` name) | festival voice, Debian package | language | built from | licence | aligned / festival timings |
| --- | --- | --- | --- | --- | --- |
| fest_en_m_kal | kal_diphone, `festvox-kallpc16k` | en-US, male | diphones, Alan W Black and Kevin Lenzo (CMU) | free, BSD-like (festvox) | 119 of 150, 6.3 min / 8.0 min |
| fest_en_m_ked | ked_diphone, `festvox-kdlpc16k` | en-US, male | diphones, CSTR, University of Edinburgh | free, BSD-like (CSTR) | 112 of 150, 5.8 / 7.9 |
| fest_en_f_slt | cmu_us_slt_arctic_hts, `festvox-us-slt-hts` | en-US, female | HTS model of the CMU ARCTIC slt recordings (CMU, Nagoya Institute of Technology) | EST-2003, BSD-3-Clause | 103 of 150, 4.8 / 7.0 |
| fest_it_f_lp | lp_diphone, `festvox-italp16k` | it, female | diphones, Italian FESTIVAL Modules (ISTC-CNR Padova, ITC-irst) | GPL-2+ | 59 of 150, 3.3 / 7.9 |
| fest_it_m_pc | pc_diphone, `festvox-itapc16k` | it, male | the same | GPL-2+ | 55 of 94, 3.0 / 5.0 (festival stops after the 94th text) |
| fest_fi_f_lj | suo_fi_lj_diphone, `festvox-suopuhe-lj` | fi, female | diphones, Suopuhe (University of Helsinki, University of Joensuu) | LGPL-2+ | 137 of 150, 6.5 / 7.0 |
| fest_fi_m_mv | hy_fi_mv_diphone, `festvox-suopuhe-mv` | fi, male | the same | LGPL-2+ | 134 of 150, 6.5 / 7.0 |
| fest_ru_m_nsh | msu_ru_nsh_clunits, `festvox-ru` | ru, male | unit selection, Nickolay V. Shmyrev | BSD-like | 118 of 150, 6.1 / 7.8 |
| fest_ca_f_ona | upc_ca_ona_hts, `festvox-ca-ona-hts` | ca, female | HTS model, Universitat Politècnica de Catalunya (Antonio Bonafonte) | LGPL-2.1+ | 95 of 150, 4.4 / 7.0 |
| fest_cs_f_dita | czech_dita, `festvox-czech-dita` | cs, female | diphones, Brailcom | GPL-3+ | 122 of 150, 5.5 / 6.7 |
| fest_cs_m_machac | czech_machac, `festvox-czech-machac` | cs, male | diphones, Brailcom | GPL-3+ | 134 of 150, 6.0 / 6.6 |
| fest_cs_m_ph | czech_ph, `festvox-czech-ph` | cs, male | diphones, Brailcom | GPL-2+ | 129 of 150, 6.1 / 7.0 |

Together 64 min of aligned speech (89 min with festival's timings), three times the two recorded
training voices. The two labellings agree at open r 0.930 (`--check 20`: 15550 frames, per voice
0.885 for the Russian unit-selection voice to 0.962), as the aligner agrees with eSpeak's own
events (0.913): festival's timings are exact for what festival said, the alignment carries
eSpeak's pronunciation, which is not always festival's (Italian lp: 59 of 150 aligned). The voices
join the shipped recipe as extra real sources (`training.train --speakers
it_IT_f_Menardi,fr_f_Armelle,fest_en_m_kal:1,...`: `name:k` sees that source k times per epoch),
everything else as shipped (v1 continued, 33 bands, band warp ±10 %, 6 epochs, lr 3e-4, seed
1234). Dev set: the fresh labelling of the track section below (469 prompts, 942 p/b/m phones);
`track` = the product's mouth track (`training.evaluate --track`); its eSpeak columns score
the track on a copy of the held-out eSpeak sets that keeps each frame's RMS for the level gate
(the same items made again; 2-3 frames of 23000 differ).

| run (real sources; `training.train` flags beyond the shipped ones) | dev open r | lag | p/b/m | pause | track r | track p/b/m | track pause | eSpeak voices / langs r | track eSpeak voices / langs r | track silence closed (voices / langs) | silence closed (degraded voices) | dev open r by speaker (June / Carlo / IvrvoiceRU) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| shipped lipsync-v2 | 0.674 | +0 | 0.763 | 1.000 | 0.690 | 0.653 | 1.000 | 0.844 / 0.841 | 0.843 / 0.844 | 0.994 / 0.996 | 0.971 | 0.627 / 0.752 / 0.652 |
| control: the shipped recipe on this build's data (Menardi, Armelle x2) | 0.677 | +0 | 0.764 | 1.000 | 0.694 | 0.638 | 1.000 | 0.843 / 0.840 | 0.841 / 0.844 | 0.994 / 0.995 | 0.977 | 0.633 / 0.752 / 0.655 |
| + the 12 Festival voices, aligned, x1 | **0.720** | +0 | 0.704 | 0.999 | **0.733** | 0.588 | 0.996 | 0.843 / 0.840 | 0.842 / 0.843 | 0.993 / 0.995 | 0.973 | 0.659 / 0.810 / 0.695 |
| same, Menardi and Armelle x3 | 0.720 | +0 | 0.722 | 0.999 | 0.733 | 0.604 | 0.996 | 0.843 / 0.837 | 0.842 / 0.841 | 0.993 / 0.995 | 0.970 | 0.658 / 0.809 / 0.697 |
| Festival aligned x1, `--closed-extra 8` (shipped 4) | 0.697 | +0 | 0.804 | 0.999 | 0.716 | 0.658 | 0.997 | 0.834 / 0.830 | 0.836 / 0.837 | 0.994 / 0.996 | 0.990 | 0.635 / 0.790 / 0.673 |
| Festival aligned x1, `--closed-extra 6` | 0.708 | +0 | 0.761 | 0.999 | 0.724 | 0.628 | 0.997 | 0.838 / 0.835 | 0.839 / 0.840 | 0.994 / 0.996 | 0.983 | 0.646 / 0.799 / 0.683 |
| the 12 Festival voices with festival's own timings (`_ft`), x1 | 0.718 | +0 | 0.754 | 0.999 | 0.731 | 0.643 | 0.997 | 0.844 / 0.839 | 0.843 / 0.843 | 0.993 / 0.994 | 0.955 | 0.655 / 0.802 / 0.702 |
| same, seed 7 | 0.718 | +0 | 0.737 | 0.999 | 0.730 | 0.633 | 0.997 | 0.846 / 0.840 | 0.844 / 0.843 | 0.993 / 0.994 | 0.975 | 0.654 / 0.804 / 0.702 |
| festival's timings x1, `--closed-extra-for 'fest_*=8'` (the Festival sources only; the rest 4) | 0.712 | +0 | 0.816 | 1.000 | 0.728 | 0.683 | 0.997 | 0.843 / 0.838 | 0.842 / 0.842 | 0.994 / 0.994 | 0.952 | 0.652 / 0.792 / 0.697 |
| same, `--closed-extra-for 'fest_*=12'` | 0.707 | +0 | 0.849 | 1.000 | 0.726 | 0.707 | 0.998 | 0.842 / 0.837 | 0.842 / 0.842 | 0.993 / 0.994 | 0.973 | 0.650 / 0.785 / 0.693 |
| same, seed 7 (2026-12-02) | 0.706 | +0 | 0.834 | 1.000 | 0.725 | 0.697 | 0.998 | 0.844 / 0.837 | 0.843 / 0.842 | 0.994 / 0.994 | 0.975 | 0.647 / 0.787 / 0.691 |

Reading the table: twelve more voices lift dev open r by 0.04 (0.677 to 0.720 raw, 0.694 to 0.733
on the track), every dev speaker by 0.02-0.06 (Carlo 0.752 to 0.810), at no cost in eSpeak r:
about what two more recorded voices gave in the leave-one-speaker-out runs (+0.03-0.04), so voices
concatenated or modelled from recordings do carry over. What they cost is p/b/m closure: 0.704
against 0.764 with aligned labels. The net opens wider overall (mean 95th percentile of predicted
open on the dev prompts per speaker 0.30-0.35 before, 0.33-0.41 after) and its minimum inside
p/b/m spans falls less far relative to it (median 0.12-0.21 of that percentile, before 0.11-0.20).
Festival's own timings recover most of it at the same r (0.754 and 0.737 on two seeds), so the
aligned labels are what loses closures (presumably the aligner's phones, at least 30 ms, fit the
short closures of synthetic speech poorly). A heavier loss on closed frames buys closure back but costs eSpeak r by about
0.0025 per unit (weight 6: 0.761 at eSpeak langs 0.835; 8: 0.804 at 0.830), as more Menardi and
Armelle does (x3: eSpeak langs 0.837). None of these beats the shipped model within the rules
(dev r higher, p/b/m within 0.01 raw and on the track, eSpeak voices and langs r >= 0.84 and
silence closure >= 0.99 on the track): the festival-timing run with seed 1234 passes them by 0.0004
on p/b/m (raw 0.754 vs 0.763, track 0.643 vs 0.653), but its seed-7 twin is 0.027 / 0.020 below,
it reads eSpeak langs r 0.839 and silence closure 0.988 in the raw output, and silence closure on
the degraded eSpeak voices falls to 0.955 (track: 0.930 / 0.923 against the shipped 0.947 / 0.948).
What is worth keeping: the Festival voices with their own timings are the largest dev gain any
data change has given (+0.04 r); what is missing is a way to keep p/b/m closure and eSpeak r at
the same time.

The heavier closed-frame weight on the Festival sources only (`training.train --closed-extra-for
'fest_*=W'`; eSpeak, the recorded voices and the voiceless clips keep 4; the same speakers and
flags as the festival-timing run, seed 1234) buys the closure back without the global weight's
cost in eSpeak r: weight 8 gives p/b/m 0.816 (track 0.683), 12 gives 0.849 (track 0.707, above the
shipped 0.763 / 0.653), at dev open r 0.712 / 0.707 (track 0.728 / 0.726), still 0.03 above the
shipped model; degraded eSpeak silence closure is 0.952 and 0.973 (track 0.926 / 0.921 and
0.946 / 0.943 on the degraded voices / langs). eSpeak r moves 0.001-0.002 from the run without it
(langs 0.839 -> 0.838 / 0.837), less than the seed-to-seed spread, but the Festival voices already
sit on the eSpeak rule's edge, and both runs read eSpeak langs r below 0.84 (0.838, 0.837), so
neither passes and neither was shipped. Its seed-7 twin (2026-12-02, the same flags with `--seed 7`)
gives the same picture: dev r 0.706, p/b/m 0.834 (track 0.725 / 0.697), eSpeak langs r 0.837
again: the 0.849 was partly the seed (spread 0.015 on p/b/m, 0.001 on r), and the langs shortfall
is not. Still untried: fewer Festival utterances per voice, or a little more eSpeak replay beside
the per-source weight.

### More voices: KDE's recorded letters and words (tried 2026-12-02; nothing here shipped)

Hypothesis: if the number of voices is what moves the dev figure (the Festival runs above), many
short recordings of many real people should help too. Two KDE learning games in Debian carry
them: KLettres (`klettres-data`, GPL-2+) has, per language, a volunteer reading the letter names
and a set of syllables, with each file's text in `<lang>/sounds.xml`; KTuberling
(`ktuberling-data`, GPL-2+) names its stamps aloud, and its English files are named by the word
spoken. `python -m training.kde_speech --out build/lipsync/real` fetches both at data-generation
time (nothing shipped), makes one source per language folder (a voice each), and labels them as
the real prompts are labelled: 19 sources, 1073 of 1786 items aligned, 30.4 min of recordings
(Malayalam alone 13.1 min; the rest 0.1-2.4 min each, much of it the clips' own silence). Their
labels were checked before training: the shipped model agrees with them at open r 0.608 overall
(dev set 0.674), from 0.877 (KLettres English) and 0.79 (Czech) down to 0.35-0.49 for
Brazilian Portuguese, Lithuanian, Danish and Dutch, where the recordings evidently say something
other than eSpeak's reading of the letter; the "selected" runs leave those four out.

| run (real sources; as the Festival table) | dev open r | lag | p/b/m | pause | track r | track p/b/m | track pause | eSpeak voices / langs r | track eSpeak voices / langs r | track silence closed (voices / langs) | silence closed (degraded voices) | dev open r by speaker (June / Carlo / IvrvoiceRU) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| control (Menardi, Armelle x2; from the Festival table) | 0.677 | +0 | 0.764 | 1.000 | 0.694 | 0.638 | 1.000 | 0.843 / 0.840 | 0.841 / 0.844 | 0.994 / 0.995 | 0.977 | 0.633 / 0.752 / 0.655 |
| + all 19 KDE sources x1 | 0.682 | +0 | 0.748 | 1.000 | 0.696 | 0.625 | 0.999 | 0.842 / 0.838 | 0.840 / 0.842 | 0.993 / 0.996 | 0.975 | 0.647 / 0.761 / 0.646 |
| + the 15 selected KDE sources x1 | 0.686 | +0 | 0.755 | 1.000 | 0.701 | 0.621 | 1.000 | 0.844 / 0.839 | 0.843 / 0.843 | 0.994 / 0.996 | 0.975 | 0.647 / 0.765 / 0.654 |
| the Festival voices with festival's timings x1 (from the Festival table) | 0.718 | +0 | 0.754 | 0.999 | 0.731 | 0.643 | 0.997 | 0.844 / 0.839 | 0.843 / 0.843 | 0.993 / 0.994 | 0.955 | 0.655 / 0.802 / 0.702 |
| same + the 15 selected KDE sources x1 | 0.722 | +0 | 0.740 | 0.999 | 0.732 | 0.636 | 0.998 | 0.845 / 0.840 | 0.843 / 0.844 | 0.993 / 0.994 | 0.973 | 0.668 / 0.806 / 0.697 |

Reading the table: fifteen to nineteen more real voices add 0.005-0.009 of dev open r on their
own and 0.004 beside the Festival voices (the seed-to-seed spread is about 0.005), and cost
p/b/m closure 0.01. Isolated letters and syllables are not running speech: no coarticulation, no
sentence rhythm, and a long silence around each item; what a voice teaches seems to come with
connected speech, which is what the Festival voices have and these do not. Not shipped: the
runs that pass the eSpeak rules (dev r above the shipped 0.674) miss p/b/m within 0.01, and the
best (0.722) stays 0.08 short of the 0.80 target, as every source of voices tried so far.

### The product's track, not only the model's output (2026-12-01)

The figures above score the model's raw output. What `dhlive lipsync`, `render` and `live` use is
the mouth track: the same output through `MouthTrack` (a level gate, then an opening that rises
with 0.85 and falls with 0.6 of the step per frame). `training.evaluate --track` scores that
track on the dev set (the dev audio decoded again and run through `MouthAnalyzer` as `dhlive
lipsync` runs it), and `shown`, the opening the drawn avatar draws (open x (1 - close)). On a
fresh labelling of the dev speakers (469 prompts, 942 p/b/m phones; the stored dev set above has
450: the aligner's seeded dither differs from the one those labels used):

| lipsync-v2 | opening r | lag | p/b/m closure | pause closure | eSpeak silence closed (voices / langs, clean) |
| --- | --- | --- | --- | --- | --- |
| raw output | 0.674 | +0 | 0.763 | 1.000 | 0.995 / 0.992 |
| track, release 0.6 (until 2026-12-01) | 0.695 | +0 | 0.516 | 1.000 | 0.984 / 0.988 |
| track, release 0.6 -> 1 while the model's close rises 0.5 -> 0.8 (shipped) | 0.690 | +0 | 0.653 | 1.000 | 0.994 / 0.996 |

The 0.6 release hid jitter but kept the lips apart through p/b/m closures of 1-3 frames (49 % of
2-frame closures shut against 74 % in the raw output). Releasing at once while the model reports
closing lips (0.5: where the photo avatar's lips meet; 0.8: lips together at rest) closes more of
them for 0.005 of r; every other causal variant tried (14: faster releases, opening scaled by the
closure) trades r for p/b/m further along the same curve, because the model's `close` output
separates real closures from open speech only loosely (its peak inside p/b/m spans has a median
of 0.69; during open speech its 95th percentile is 0.67). The shipped variant was picked over a
first one (the same ramp, but not on frames the gate closes: 0.690 / 0.650, eSpeak silence
closure 0.986 / 0.989) after seeing those held-out eSpeak figures. Targets not met by the track:
r 0.80, p/b/m 0.85.

`python -m training.track_sweep --model models/lipsync-v2.onnx` (2026-12-02) replays the track
on the model output and frame levels it captures once through the product's path, over 32
settings (attack 0.85 / 1.0, release 0.6-1.0, the closing speed-up from 0.1-0.3 to 0.5-0.8).
Every row lies on that curve: the shipped 0.690 / 0.653; the highest r 0.693 / 0.657 (attack
1.0); the highest p/b/m 0.768 at r 0.670 (attack 1.0, release 0.6, closing 0.1-0.3), no more
than the raw output's 0.763; release 1.0 gives the raw figures back (0.672-0.673 / 0.746-0.764).
Pause closure is 1.000 in every row. The track can move along the curve, not off it: the gap to
0.80 / 0.85 is the model's.

### Two nets averaged (2026-12-02; shipped)

The Festival net with the heavier closed-frame weight (`--closed-extra-for 'fest_*=12'`, table
above) follows the real dev voices better than the single net then shipped (0.707 against 0.674)
and closes the lips on more p/b/m (0.849 against 0.763), but reads held-out eSpeak languages at
r 0.837, under the 0.84 the rules keep. Averaging its output with the single net's
(`training/ensemble.py`, one graph) keeps most of the first gain and lifts eSpeak above either
net alone. Every row scored as above (`training.evaluate --track` on the 469-prompt dev labelling;
the eSpeak track columns as in the Festival table; "degraded" = the noisy, band-limited eSpeak
voices):

| model | dev open r raw / track | p/b/m raw / track | pause | eSpeak voices / langs r | track eSpeak voices / langs r | track silence closed (voices / langs) | degraded voices silence closed raw / track | dev r by speaker (June / Carlo / IvrvoiceRU) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| single net (net a, shipped until today) | 0.674 / 0.690 | 0.763 / 0.653 | 1.000 | 0.844 / 0.841 | 0.843 / 0.844 | 0.994 / 0.996 | 0.971 / 0.947 | 0.627 / 0.752 / 0.652 |
| Festival net, seed 1234 (net b) | 0.707 / 0.726 | 0.849 / 0.707 | 1.000 | 0.842 / 0.837 | 0.842 / 0.842 | 0.993 / 0.994 | 0.973 / 0.946 | 0.650 / 0.785 / 0.693 |
| **mean of net a and net b (shipped)** | **0.699 / 0.717** | **0.797 / 0.665** | 1.000 | **0.847 / 0.843** | 0.845 / 0.846 | 0.994 / 0.995 | 0.975 / 0.947 | 0.646 / 0.778 / 0.680 |
| mean of net a and the seed-7 Festival net | 0.698 / 0.716 | 0.791 / 0.665 | 1.000 | 0.847 / 0.843 | 0.845 / 0.846 | 0.994 / 0.995 | - | 0.644 / 0.779 / 0.679 |
| mean of the two Festival seeds (1234, 7) | 0.707 / 0.726 | 0.845 / 0.703 | 1.000 | 0.844 / 0.838 | - | - | - | 0.649 / 0.786 / 0.692 |
| mean of net a, the Festival net without the heavier weight and net b (three nets, 2.4 MB) | 0.708 / 0.724 | 0.785 / 0.659 | 1.000 | 0.847 / 0.842 | 0.845 / 0.846 | 0.993 / 0.995 | - | 0.651 / 0.789 / 0.689 |

| single net: Festival voices, `--closed-extra-for 'fest_*=8' --espeak-repeat 2` | 0.709 / 0.726 | 0.809 / 0.678 | 1.000 | 0.850 / 0.843 | 0.848 / 0.846 | 0.992 / 0.994 | 0.958 / 0.929 | 0.653 / 0.791 / 0.690 |
| same, seed 7 | 0.711 / 0.727 | 0.804 / 0.673 | 1.000 | 0.849 / 0.843 | 0.848 / 0.847 | 0.993 / 0.995 | 0.945 / 0.915 | 0.655 / 0.790 / 0.694 |
| same, `--espeak-repeat 3` | 0.709 / 0.726 | 0.781 / 0.660 | 1.000 | 0.852 / 0.846 | 0.849 / 0.849 | 0.993 / 0.995 | 0.966 / 0.936 | 0.656 / 0.789 / 0.689 |
| same as the first single net, weight 6 | 0.712 / 0.727 | 0.780 / 0.666 | 1.000 | 0.850 / 0.844 | 0.848 / 0.847 | 0.992 / 0.994 | 0.958 / 0.929 | 0.655 / 0.795 / 0.693 |
| single net: Festival voices seen twice per epoch, weight 8, `--espeak-repeat 3` | 0.716 / 0.732 | 0.806 / 0.687 | 1.000 | 0.850 / 0.845 | 0.849 / 0.848 | 0.993 / 0.994 | 0.967 / 0.938 | 0.659 / 0.795 / 0.702 |
| single net: 75 utterances per Festival voice (`--max-utts-for 'fest_*=75'`), weight 8 | 0.705 / 0.722 | 0.778 / 0.657 | 1.000 | 0.844 / 0.840 | 0.843 / 0.844 | 0.993 / 0.995 | 0.977 / 0.948 | 0.648 / 0.788 / 0.685 |

Reading the table: two Festival nets of different seeds agree so closely that their mean is
either of them; the gain comes from averaging nets trained on different data. The shipped pair
passes every rule the Festival table applies (dev r and track r above the single net's, p/b/m
within 0.01 or better raw and on the track, eSpeak r >= 0.84 raw and on the track, silence
closure >= 0.99) on both Festival seeds. It costs twice the inference (0.019 ms per frame in
batches of 25, `bench_lipsync_model.py`; a 16-session tick is still one call) and 0.8 MB. Still
short of the issue's targets: r 0.80 (0.699, track 0.717) and p/b/m 0.85 (0.797, track 0.665).

The single-net rows (`training.train --espeak-repeat K`: the eSpeak source seen K times per
epoch) pass the same rules by replaying more eSpeak speech beside the Festival voices: 0.01-0.017
more dev r than the pair and a little more p/b/m, the first on both seeds. They were not shipped
(yet): on noisy speech (the degraded eSpeak voices, white or pink noise at 10 dB SNR) their lips
stay shut in 0.945-0.967 of the silent frames (0.915-0.938 through the track), where the pair
and the single net before it keep 0.971-0.975 (0.947): the mouth would flicker more in the pauses
of a noisy recording. The best of them (Festival twice, eSpeak three times: 0.716, p/b/m 0.806,
noisy silence 0.967) averaged with net a is the next candidate; it was found too late in the day
to be built, evaluated and tested. Fewer utterances per Festival voice (`--max-utts-for
'fest_*=75'`) keeps the noisy silence (0.977) but loses dev r and falls under 0.84 on the eSpeak
languages.

### A longer look-ahead (tried 2026-12-02; not shipped)

Lips move before the sound they shape, so a window that sees further ahead might place openings
and closures better. Net a's recipe was trained again with 120 and 160 ms of look-ahead instead
of 80 (`training.train --ahead 12` / `--ahead 16`, same data, knobs and seed; from lipsync-v1 with
the extra rows' weights at zero, so training starts from v1's function), on the data of the
`make model` run of 2026-12-02 and scored beside that run's net a:

| net a's recipe, look-ahead | dev open r raw / track | p/b/m raw / track | pause | eSpeak voices / langs r | dev r by speaker (June / Carlo / IvrvoiceRU) |
| --- | --- | --- | --- | --- | --- |
| 80 ms (net a as shipped) | 0.673 / 0.690 | 0.762 / 0.639 | 1.000 | - | 0.628 / 0.749 / 0.652 |
| 120 ms | 0.680 / 0.696 | 0.743 / 0.650 | 1.000 | 0.845 / 0.842 | 0.640 / 0.753 / 0.656 |
| 160 ms | 0.683 / 0.698 | 0.747 / 0.649 | 1.000 | 0.844 / 0.843 | 0.646 / 0.754 / 0.657 |

Twice the look-ahead buys 0.01 of dev r and loses 0.015 of raw p/b/m closure, for 80 ms more
latency on every live stream: seeing further ahead is not what the model lacks. Not shipped;
the contract stays at 80 ms."""
