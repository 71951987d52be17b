"""The training mixer (numpy and pedalboard only, so it runs without the [train] extra)."""
import numpy as np
import pytest

from acapella.model.corpora import Pool, Pools, load_pools
from acapella.model.mixer import Augmentation, Mixer

SR = 44100
LENGTH = 2 ** 16


def tone(freq: float, seconds: float = 3.0) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR).astype(np.float32)[None]


def tone_pools(freq: float, limited: bool, seconds: float = 3.0) -> Pools:
    one = lambda: Pool([tone(freq, seconds)], [limited], ["mir1k" if limited else "musdb"])
    return Pools(one(), one(), Pool(), Pool(), Pool())


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8 * len(x)))
    return float(np.argmax(spec)) * SR / (8 * len(x))


def pitches(mixer: Mixer, draws: int = 24) -> np.ndarray:
    out = []
    for _ in range(draws):
        v, a, _ = mixer.example()
        if np.abs(v).max() > 0:  # 5% of examples have silent vocals on purpose
            out.append(peak_hz(v[0]))
        out.append(peak_hz(a[0]))
    return np.array(out)


def test_varispeed_shifts_pitch_within_the_range():
    f = pitches(Mixer(tone_pools(440.0, limited=False), LENGTH, 2, seed=3, augment=Augmentation(varispeed=1.0, semitones=2.0)))
    semis = 12 * np.log2(f / 440.0)
    assert np.all(np.abs(semis) <= 2.0 + 0.05)
    assert semis.min() < -0.5 and semis.max() > 0.5  # both directions are drawn


def test_without_varispeed_pitch_is_kept():
    f = pitches(Mixer(tone_pools(440.0, limited=False), LENGTH, 2, seed=3, augment=Augmentation(varispeed=0.0)))
    np.testing.assert_allclose(f, 440.0, atol=0.5)


def test_band_limited_clips_are_never_slowed_down():
    # Slowing MIR-1K down would move its empty band above 8 kHz under the loss cutoff.
    f = pitches(Mixer(tone_pools(440.0, limited=True), LENGTH, 2, seed=5, augment=Augmentation(varispeed=1.0)))
    semis = 12 * np.log2(f / 440.0)
    assert semis.min() > -0.05 and semis.max() > 0.5


def test_examples_have_the_requested_shape_and_are_finite():
    mixer = Mixer(tone_pools(220.0, limited=False, seconds=1.0), LENGTH, 2, seed=0, augment=Augmentation(varispeed=0.5))
    v, a, limited = mixer.batch(6)
    assert v.shape == a.shape == (6, 2, LENGTH) and v.dtype == a.dtype == np.float32
    assert limited.shape == (6,) and not limited.any()
    assert np.isfinite(v).all() and np.isfinite(a).all() and np.abs(a).max() > 0


def test_mono_examples_have_equal_channels():
    pools = tone_pools(330.0, limited=False, seconds=1.0)  # mono clips, panned at random when drawn
    v, a, _ = Mixer(pools, LENGTH, 2, seed=1, augment=Augmentation(mono=1.0)).batch(4)
    np.testing.assert_array_equal(v[:, 0], v[:, 1])
    np.testing.assert_array_equal(a[:, 0], a[:, 1])
    v, a, _ = Mixer(pools, LENGTH, 2, seed=1, augment=Augmentation(mono=0.0)).batch(4)
    assert np.abs(a[:, 0] - a[:, 1]).max() > 1e-3


def test_corpus_weights_choose_how_often_each_corpus_is_drawn():
    pools = tone_pools(330.0, limited=False, seconds=1.0)
    pools.vocals.add(pools.vocals.clips[0] * 0, True, "mir1k")  # a second corpus, told apart by its limit flag
    drawn = lambda m: [m._pick(pools.vocals)[1] for _ in range(400)]
    assert not any(drawn(Mixer(pools, LENGTH, 2, seed=2, weights={"mir1k": 0.0})))
    assert all(drawn(Mixer(pools, LENGTH, 2, seed=2, weights={"musdb": 0.0})))
    share = np.mean(drawn(Mixer(pools, LENGTH, 2, seed=2)))  # the defaults: musdb 0.5, mir1k 0.3
    assert 0.3 < share < 0.45


def burst_pools(seconds: float = 0.2) -> Pools:
    t = np.arange(int(seconds * SR)) / SR
    burst = (np.sin(2 * np.pi * 330.0 * t) * np.hanning(t.size)).astype(np.float32)[None]
    one = lambda: Pool([burst.copy()], [False], ["musdb"])
    return Pools(one(), one(), Pool(), Pool(), Pool())


def sounding_seconds(x: np.ndarray) -> float:
    loud = np.flatnonzero(np.abs(x).max(axis=0) > 1e-4 * np.abs(x).max())
    return (loud[-1] - loud[0]) / SR


def test_vocal_effects_add_a_tail():
    # a 0.2 s burst of voice: dry, it sounds for 0.2 s; through a reverb (or delay) it rings on,
    # unless the crop ends first
    dry = Mixer(burst_pools(), LENGTH, 2, seed=4, augment=Augmentation(effects=0.0)).batch(12)[0]
    wet = Mixer(burst_pools(), LENGTH, 2, seed=4, augment=Augmentation(effects=1.0)).batch(12)[0]
    dry, wet = [x for x in dry if np.abs(x).max() > 0], [x for x in wet if np.abs(x).max() > 0]
    assert dry and wet and all(np.isfinite(x).all() for x in wet)
    assert max(sounding_seconds(x) for x in dry) <= 0.2
    assert np.median([sounding_seconds(x) for x in wet]) > 0.4
    # without effects the draws are those of a mixer that never had the option
    np.testing.assert_array_equal(Mixer(burst_pools(), LENGTH, 2, seed=4).batch(3)[0],
                                  Mixer(burst_pools(), LENGTH, 2, seed=4, augment=Augmentation(effects=0.0)).batch(3)[0])


def song_pools(songs: int = 4, seconds: float = 3.0) -> Pools:
    """Stereo songs whose accompaniment (and each instrument) is the song's vocals played back:
    a paired example then has accompaniment proportional to its vocals, a mix of two songs does not."""
    rng = np.random.default_rng(0)
    pools = Pools(Pool(), Pool(), Pool(), Pool(), Pool())
    for _ in range(songs):
        noise = rng.standard_normal((2, int(seconds * SR))).astype(np.float32)
        for pool in (pools.vocals, pools.accompaniment, pools.drums, pools.bass, pools.other):
            pool.add(noise.copy(), False, "musdb")
    return pools


def proportional(v: np.ndarray, a: np.ndarray) -> bool:
    """a == g * v for one gain g (any sign): the stems of one song, cropped, sped and swapped alike."""
    if np.abs(v).max() == 0:
        return True  # an example with its vocals silenced on purpose
    g = float((v * a).sum() / (v * v).sum())
    return bool(np.abs(a - g * v).max() <= 1e-3 * np.abs(a).max())


def test_paired_examples_keep_a_songs_stems_aligned():
    paired = Mixer(song_pools(), LENGTH, 2, seed=6, augment=Augmentation(varispeed=0.5, paired=1.0))
    assert all(proportional(*paired.example()[:2]) for _ in range(30))
    mixed = Mixer(song_pools(), LENGTH, 2, seed=6, augment=Augmentation(varispeed=0.5, paired=0.0))
    assert sum(proportional(*mixed.example()[:2]) for _ in range(30)) < 15
    # without pairing the draws are those of a mixer that never had the option
    np.testing.assert_array_equal(Mixer(song_pools(), LENGTH, 2, seed=7, augment=Augmentation(varispeed=0.5)).batch(3)[1],
                                  Mixer(song_pools(), LENGTH, 2, seed=7, augment=Augmentation(varispeed=0.5, paired=0.0)).batch(3)[1])


def test_paired_examples_need_one_accompaniment_per_song():
    pools = song_pools()
    pools.vocals.add(pools.vocals.clips[0], False, "musdb")
    with pytest.raises(ValueError, match="5 vocals but 4 accompaniments"):
        Mixer(pools, LENGTH, 2, seed=0, augment=Augmentation(paired=1.0)).example()


def test_layers_stack_a_second_clip_under_each_stem():
    # two voices (440 and 660 Hz) and two bands (110 and 165 Hz): a layered stem holds both
    # tones of its kind whenever the second draw is the other clip
    pools = Pools(Pool([tone(440.0), tone(660.0)], [False] * 2, ["musdb"] * 2),
                  Pool([tone(110.0), tone(165.0)], [False] * 2, ["musdb"] * 2), Pool(), Pool(), Pool())

    def both(x: np.ndarray, lo: float, hi: float) -> bool:
        spec = np.abs(np.fft.rfft(x[0]))
        level = lambda f: spec[int(round(f * x.shape[1] / SR))]
        return min(level(lo), level(hi)) > 0.05 * max(level(lo), level(hi))

    def counts(mixer: Mixer) -> tuple[int, int]:
        ex = [mixer.example() for _ in range(40)]
        return (sum(both(v, 440.0, 660.0) for v, _, _ in ex if np.abs(v).max() > 0),
                sum(both(a, 110.0, 165.0) for _, a, _ in ex))

    assert counts(Mixer(pools, LENGTH, 2, seed=8, augment=Augmentation(layers=0.0))) == (0, 0)
    voices, bands = counts(Mixer(pools, LENGTH, 2, seed=8, augment=Augmentation(layers=1.0)))
    assert voices >= 10 and bands >= 10
    # without layers the draws are those of a mixer that never had the option
    np.testing.assert_array_equal(Mixer(pools, LENGTH, 2, seed=9).batch(3)[0],
                                  Mixer(pools, LENGTH, 2, seed=9, augment=Augmentation(layers=0.0)).batch(3)[0])


def test_reverse_plays_clips_backwards_and_keeps_a_song_in_time():
    # clips that swell from silence: played forwards the second half of a crop is the louder
    swell = lambda f: tone(f) * np.linspace(0.0, 1.0, 3 * SR, dtype=np.float32)
    pools = Pools(Pool([swell(440.0)], [False], ["musdb"]), Pool([swell(110.0)], [False], ["musdb"]),
                  Pool(), Pool(), Pool())

    def backwards(x: np.ndarray) -> bool:
        half = x.shape[1] // 2
        return float(np.sum(x[:, :half] ** 2)) > float(np.sum(x[:, half:] ** 2))

    def draws(mixer: Mixer) -> list[tuple[bool, bool]]:
        ex = [mixer.example() for _ in range(40)]
        return [(backwards(v), backwards(a)) for v, a, _ in ex if np.abs(v).max() > 0]

    assert not any(v or a for v, a in draws(Mixer(pools, LENGTH, 2, seed=10)))
    both = draws(Mixer(pools, LENGTH, 2, seed=10, augment=Augmentation(reverse=1.0)))
    assert all(v and a for v, a in both)
    some = draws(Mixer(pools, LENGTH, 2, seed=10, augment=Augmentation(reverse=0.5)))
    assert 0 < sum(v for v, _ in some) < len(some) and 0 < sum(a for _, a in some) < len(some)
    # a real song's two stems turn together, so the voice stays in time with its band
    songs = draws(Mixer(pools, LENGTH, 2, seed=11, augment=Augmentation(reverse=0.5, paired=1.0)))
    assert all(v == a for v, a in songs) and 0 < sum(v for v, _ in songs) < len(songs)
    # without reversal the draws are those of a mixer that never had the option
    np.testing.assert_array_equal(Mixer(pools, LENGTH, 2, seed=12, augment=Augmentation(paired=0.5, layers=0.3)).batch(3)[0],
                                  Mixer(pools, LENGTH, 2, seed=12, augment=Augmentation(paired=0.5, layers=0.3, reverse=0.0)).batch(3)[0])


def test_quiet_turns_whole_examples_down_and_keeps_their_balance():
    pools = Pools(Pool([tone(440.0)], [False], ["musdb"]), Pool([tone(110.0)], [False], ["musdb"]),
                  Pool(), Pool(), Pool())
    rms = lambda x: float(np.sqrt(np.mean(x ** 2)))

    def cut_db(quiet: float, seed: int) -> float:
        # a mixer's first example draws its clips and gains before the level, so the
        # same seed gives the same example, only turned down
        v0, a0, _ = Mixer(pools, LENGTH, 2, seed=seed).example()
        v1, a1, _ = Mixer(pools, LENGTH, 2, seed=seed, augment=Augmentation(quiet=quiet)).example()
        gain = rms(a1) / rms(a0)
        # both stems by the same gain (the sign may flip): the balance is the loud draw's
        np.testing.assert_allclose(np.abs(v1), np.abs(v0) * gain, rtol=1e-4, atol=1e-7)
        return 20 * np.log10(gain)

    cuts = [cut_db(1.0, seed) for seed in range(40)]
    assert all(-24.01 <= c <= -5.99 for c in cuts) and max(cuts) - min(cuts) > 9
    some = [cut_db(0.5, seed) for seed in range(40)]
    assert 5 < sum(c < -1 for c in some) < 35 and all(abs(c) < 1e-4 or c < -5.99 for c in some)
    # without the option the draws are those of a mixer that never had it
    np.testing.assert_array_equal(Mixer(pools, LENGTH, 2, seed=16, augment=Augmentation(paired=0.5, layers=0.3)).batch(3)[0],
                                  Mixer(pools, LENGTH, 2, seed=16, augment=Augmentation(paired=0.5, layers=0.3, quiet=0.0)).batch(3)[0])


def test_pan_moves_the_voice_across_the_stereo_field_at_constant_power():
    centred = np.repeat(tone(440.0), 2, axis=0)  # a stereo stem singing from the centre
    pools = Pools(Pool([centred], [False], ["musdb"]), Pool([tone(110.0)], [False], ["musdb"]),
                  Pool(), Pool(), Pool())
    rms = lambda x: float(np.sqrt(np.mean(x ** 2)))
    balances = []
    for seed in range(40):
        v0, a0, _ = Mixer(pools, LENGTH, 2, seed=seed).example()
        v1, a1, _ = Mixer(pools, LENGTH, 2, seed=seed, augment=Augmentation(pan=1.0)).example()
        if rms(v0) == 0 or rms(v1) == 0:  # an instrumental stretch
            continue
        np.testing.assert_allclose(np.abs(a1), np.abs(a0))  # only the voice moves
        assert rms(v1) == pytest.approx(rms(v0), rel=1e-4)
        left, right = rms(v1[0]), rms(v1[1])
        balances.append(20 * np.log10((left + 1e-12) / (right + 1e-12)))
    balances = np.array(balances)
    assert len(balances) > 30
    # both sides, often far from the centre (a hard pan), sometimes near it
    assert balances.min() < -20 and balances.max() > 20 and (np.abs(balances) < 3).any()
    # without the option the draws are those of a mixer that never had it
    np.testing.assert_array_equal(Mixer(pools, LENGTH, 2, seed=17, augment=Augmentation(paired=0.5, layers=0.3)).batch(3)[0],
                                  Mixer(pools, LENGTH, 2, seed=17, augment=Augmentation(paired=0.5, layers=0.3, pan=0.0)).batch(3)[0])


def test_room_and_band_limit_are_linear_so_stems_still_sum_to_the_mixture():
    from acapella.model.degradations import band_limited, room

    rng = np.random.default_rng(0)
    v, a = (rng.standard_normal((2, SR)).astype(np.float32) * 0.1 for _ in range(2))
    for f in (lambda x: room(x, SR, room_size=0.9), lambda x: band_limited(x, SR, 11025.0)):
        np.testing.assert_allclose(f(v) + f(a), f(v + a), atol=1e-5)
        assert f(v).shape == v.shape and f(v).dtype == np.float32


def test_band_limit_keeps_the_band_below_half_the_rate_and_nothing_above():
    from acapella.model.degradations import band_limited

    low, high = tone(1000.0), tone(7000.0)
    out = band_limited(low + high, SR, 11025.0)
    np.testing.assert_allclose(out, low, atol=1e-3)  # 7 kHz is above 5.5 kHz: gone, 1 kHz untouched
    np.testing.assert_array_equal(band_limited(high, SR, 48000.0), high)


def test_room_leaves_a_tail_after_the_sound_stops():
    from acapella.model.degradations import room

    burst = tone(440.0, 1.0)
    burst[:, SR // 2:] = 0
    wet = room(burst, SR)
    assert np.sqrt(np.mean(wet[:, SR // 2 + 2000:] ** 2)) > 1e-3  # the hall still rings


def test_degraded_examples_band_limit_both_stems_alike_about_half_the_time():
    rng_pools = Pools(Pool([np.random.default_rng(1).standard_normal((2, 3 * SR)).astype(np.float32) * 0.1],
                           [False], ["musdb"]),
                      Pool([np.random.default_rng(2).standard_normal((2, 3 * SR)).astype(np.float32) * 0.1],
                           [False], ["musdb"]), Pool(), Pool(), Pool())
    mixer = Mixer(rng_pools, LENGTH, 2, seed=4, augment=Augmentation(degrade=1.0))
    cut = 0
    for _ in range(12):
        v, a, _ = mixer.example()
        if np.abs(v).max() == 0:
            continue  # a silent voice (5% of examples) has no band to measure
        spec = [np.abs(np.fft.rfft(x[0])) ** 2 for x in (v, a)]
        top = [s[int(len(s) * 17000 / 22050):].sum() / s.sum() for s in spec]
        if top[0] < 1e-8:
            cut += 1
            assert top[1] < 1e-8  # the accompaniment went through the same low rate
    assert 2 <= cut <= 10  # about half the draws band-limited, the rest in a room


def test_clipping_cuts_the_peaks_of_the_sum_and_the_stems_share_the_cut():
    from acapella.model.degradations import clipped

    rng = np.random.default_rng(3)
    stems = rng.standard_normal((2, 2, SR)).astype(np.float32) * np.float32(0.2)
    out = clipped(stems, 12.0)
    mix, cut = stems.sum(axis=0), out.sum(axis=0)
    scale = 10 ** (12 / 20) / np.abs(mix).max()
    np.testing.assert_allclose(cut, np.clip(mix * scale, -1, 1), atol=1e-5)  # the stems sum to the clipped mixture
    assert np.abs(cut).max() == pytest.approx(1.0, abs=1e-5)
    assert (np.abs(mix * scale) > 1).mean() > 0.05  # a real cut, not a gain
    quiet = np.abs(mix * scale) < 0.9
    np.testing.assert_allclose(out[:, quiet], stems[:, quiet] * scale, rtol=1e-5)  # below full scale: only the gain
    np.testing.assert_array_equal(clipped(np.zeros_like(stems), 6.0), np.zeros_like(stems))


def test_clipped_examples_peak_at_full_scale():
    pools = Pools(Pool([tone(440.0)], [False], ["musdb"]), Pool([tone(110.0)], [False], ["musdb"]),
                  Pool(), Pool(), Pool())
    peaks = []
    for seed in range(6):
        v, a, _ = Mixer(pools, LENGTH, 2, seed=seed, augment=Augmentation(clip=1.0)).example()
        peaks.append(np.abs(v + a).max())
    np.testing.assert_allclose(peaks, 1.0, atol=1e-5)


def test_limiter_holds_the_sum_under_full_scale_with_one_gain_for_all_stems():
    from acapella.model.degradations import limited

    stems = np.zeros((2, 2, SR), dtype=np.float32)
    stems[0, :, 20000:20100] = 0.9  # one loud burst in the vocals
    stems[1] = 0.05 * tone(220.0, 1.0)
    out = limited(stems, SR, 6.0)
    drive = 10 ** (6 / 20)
    assert np.abs(out.sum(axis=0)).max() <= 1.0 + 1e-6
    gain = out[1] / (stems[1] * drive + 1e-12)  # the gain the accompaniment went through
    loud = np.abs(stems[1]) > 0.02
    # far from the burst only the drive; at the burst the limiter ducks; 80 ms on it has nearly recovered
    np.testing.assert_allclose(gain[:, 2000:19000][loud[:, 2000:19000]], 1.0, rtol=1e-4)
    assert gain[:, 20040:20060][loud[:, 20040:20060]].max() < 0.6
    assert 0.6 < np.median(gain[:, 23500:24500][loud[:, 23500:24500]]) < 1.0
    assert np.abs(out.sum(axis=0)[:, 20000:20100]).max() == pytest.approx(1.0, abs=1e-3)  # the burst peaks at full scale


def harmonic(freq: float, seconds: float = 2.0) -> np.ndarray:
    """A voice-like tone: a sawtooth-ish stack of partials under a slow tremolo."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * k * freq * t) / k for k in range(1, 12)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (0.2 * x).astype(np.float32)


def test_mp3_coding_keeps_the_vocals_aligned_and_puts_the_error_in_the_accompaniment():
    from acapella.model.degradations import mp3_coded

    v = np.stack([harmonic(220.0), harmonic(220.0)])
    a = np.stack([harmonic(110.0), 0.5 * harmonic(165.0)])
    mix = v + a
    errors = {}
    for kbps in (64, 320):
        cv, ca = mp3_coded(v, a, SR, kbps)
        assert cv.shape == ca.shape == v.shape
        np.testing.assert_array_equal(cv, v)  # the vocals are the song's own
        coded = cv + ca
        errors[kbps] = float(np.sum((coded - mix) ** 2) / np.sum(mix ** 2))
        # the encoder's delay is trimmed: the coded song lines up with the original, not ~1100 samples late
        shifted = float(np.sum((coded[:, 1105:] - mix[:, :-1105]) ** 2) / np.sum(mix ** 2))
        assert errors[kbps] < 0.1 < shifted
        assert errors[kbps] > 0  # coded for real, not passed through
    assert errors[320] < errors[64] / 2  # more bits, less coding noise
    with pytest.raises(ValueError, match="7000 Hz"):
        mp3_coded(v, a, 7000, 128)


def test_mp3_examples_differ_from_plain_ones_only_by_the_coding_error():
    pools = Pools(Pool([tone(440.0)], [False], ["musdb"]), Pool([tone(110.0)], [False], ["musdb"]),
                  Pool(), Pool(), Pool())
    for seed in range(3):
        v0, a0, _ = Mixer(pools, LENGTH, 2, seed=seed).example()
        v, a, _ = Mixer(pools, LENGTH, 2, seed=seed, augment=Augmentation(mp3=1.0)).example()
        sign = 1.0 if np.allclose(v, v0) else -1.0  # the MP3 draw shifts the later polarity draw
        np.testing.assert_allclose(v, sign * v0)
        error = sign * a - a0
        assert 0 < np.sum(error ** 2) < 0.1 * np.sum((v0 + a0) ** 2)


def _write_song(folder, stems: dict) -> None:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    for name, (audio, rate) in stems.items():
        sf.write(folder / f"{name}.wav", audio.T, rate)


def test_pool_cache_is_rebuilt_when_the_songs_change(tmp_path):
    import os

    rng = np.random.default_rng(0)
    noise = lambda seconds=1.0: (rng.standard_normal((2, int(seconds * SR))) * 0.1).astype(np.float32)
    root, cache = tmp_path / "data", tmp_path / "cache"
    _write_song(root / "musdb7-train" / "A - One", {"vocals": (noise(), SR), "accompaniment": (noise(), SR)})
    count = lambda: len(load_pools(root, SR, 2, cache_dir=cache).vocals.clips)
    assert count() == 1 and count() == 1 and len(list(cache.iterdir())) == 1  # the second load was the cache's

    _write_song(root / "musdb7-train" / "B - Two", {"vocals": (noise(), SR), "accompaniment": (noise(), SR)})
    assert count() == 2
    _write_song(root / "pjs-vocals" / "pjs001", {"vocals": (noise(), SR)})
    assert count() == 3
    for f in (root / "musdb7-train" / "B - Two").iterdir():
        f.unlink()
    (root / "musdb7-train" / "B - Two").rmdir()
    assert count() == 2
    # A stem replaced by one of the same size: its mtime tells.
    new = noise()
    _write_song(root / "musdb7-train" / "A - One", {"vocals": (new, SR)})
    f = root / "musdb7-train" / "A - One" / "vocals.wav"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10 ** 9))
    pools = load_pools(root, SR, 2, cache_dir=cache)
    np.testing.assert_allclose(pools.vocals.clips[pools.vocals.groups.index("musdb")], new, atol=1e-4)


def test_songs_with_a_missing_or_mismatched_stem_are_left_out_before_pairing(tmp_path):
    rng = np.random.default_rng(1)

    def song(seconds=2.0, rate=SR, channels=2):
        v = (rng.standard_normal((channels, int(seconds * rate))) * 0.1).astype(np.float32)
        return v, 0.5 * v  # accompaniment proportional to the vocals: a paired example shows it

    root = tmp_path / "data"
    musdb, mir1k = root / "musdb7-train", root / "mir1k-train"
    for name in ("A - Good", "E - Good"):
        v, a = song()
        _write_song(musdb / name, {"vocals": (v, SR), "accompaniment": (a, SR)})
    v, a = song()
    _write_song(musdb / "B - No Vocals", {"accompaniment": (a, SR)})
    _write_song(musdb / "C - Lengths", {"vocals": (v, SR), "accompaniment": (a[:, :-4410], SR)})
    _write_song(musdb / "D - Rates", {"vocals": (v, SR), "accompaniment": (a[:, ::2], SR // 2)})
    _write_song(musdb / "F - Drums Only", {"vocals": (v, SR), "accompaniment": (a, SR), "drums": (a, SR)})
    (root / "pjs-vocals" / "pjs002").mkdir(parents=True)
    v, a = song(rate=16000, channels=1)
    _write_song(mir1k / "Ani_1_01", {"vocals": (v, 16000), "accompaniment": (a, 16000)})
    _write_song(mir1k / "Ani_1_02", {"vocals": (v, 16000), "accompaniment": (a[:, ::2], 8000)})

    pools = load_pools(root, SR, 2)
    assert sorted(line.split(": ")[0] for line in pools.skipped) == sorted(
        str(p) for p in (musdb / "B - No Vocals", musdb / "C - Lengths", musdb / "D - Rates",
                         musdb / "F - Drums Only", root / "pjs-vocals" / "pjs002", mir1k / "Ani_1_02"))
    assert any("B - No Vocals: no vocals stem" in line for line in pools.skipped)
    assert any("C - Lengths: stems differ in sample rate or length" in line for line in pools.skipped)
    assert any("F - Drums Only: no bass or other stem" in line for line in pools.skipped)
    assert pools.vocals.groups == ["musdb", "musdb", "mir1k"] and pools.accompaniment.groups == pools.vocals.groups
    paired = Mixer(pools, LENGTH, 2, seed=3, augment=Augmentation(paired=1.0))
    for _ in range(20):  # channel by channel: a mono MIR-1K clip's stems are panned each their own way
        v, a, _ = paired.example()
        assert proportional(v[:1], a[:1]) and proportional(v[1:], a[1:])
