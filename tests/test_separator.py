import subprocess
import sys
import threading

import numpy as np
import pytest

from acapella import Separator
from conftest import db, noise


def check_stems(stems, x):
    assert set(stems) == {"vocals", "accompaniment"}
    for s in stems.values():
        assert s.shape == x.shape and s.dtype == np.float32
    ref = x.astype(np.float32) if x.dtype.kind == "f" else None
    if ref is not None and x.size:
        assert np.max(np.abs(stems["vocals"] + stems["accompaniment"] - ref)) < 1e-6


@pytest.mark.parametrize("shape", [(3000,), (2, 3000), (3000, 2), (1, 3000), (3000, 1), (6, 3000), (3000, 6)])
def test_layouts_and_channels(separator, shape):
    x = noise(shape)
    check_stems(separator.separate(x, 44100), x)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000, 96000])
def test_sample_rates(separator, rate):
    x = noise((2, rate // 2 + 7))
    stems = separator.separate(x, rate)
    check_stems(stems, x)


@pytest.mark.parametrize("rate", [44100, 48000, 22050])
@pytest.mark.parametrize("length", [0, 1, 2, 3, 511, 513, 2047, 44100 + 1])
def test_lengths(separator, length, rate):
    x = noise((length,))
    check_stems(separator.separate(x, rate), x)
    x2 = noise((2, length)) if length > 2 else noise((length, 2))
    check_stems(separator.separate(x2, rate), x2)
    if length in (2, 3):  # square: (channels, samples), which pedalboard's resampler must not read otherwise
        square = noise((length, length))
        check_stems(separator.separate(square, rate), square)


def test_vocals_are_not_trivial(separator, demo_stems):
    # Neither all-in nor all-out: the mask actually splits the signal.
    v, a = demo_stems
    x = v + a
    stems = separator.separate(x, 44100)
    assert 0.01 < np.sum(stems["vocals"] ** 2) / np.sum(x ** 2) < 0.99


def test_float64_and_integers_are_scaled(separator):
    x = np.clip(noise((2, 4000), scale=0.3), -0.99, 0.99)
    ref = separator.separate(x, 44100)["vocals"]
    f64 = separator.separate(x.astype(np.float64), 44100)
    check_stems(f64, x.astype(np.float64))
    np.testing.assert_allclose(f64["vocals"], ref, atol=1e-6)
    i16 = np.round(x * 32768).clip(-32768, 32767).astype(np.int16)
    s16 = separator.separate(i16, 44100)
    assert s16["vocals"].dtype == np.float32
    np.testing.assert_allclose(s16["vocals"] + s16["accompaniment"], i16 / 32768.0, atol=1e-6)
    # The same samples given as floats scaled by 2**15 separate identically.
    np.testing.assert_allclose(s16["vocals"], separator.separate(i16 / 32768.0, 44100)["vocals"], atol=1e-6)
    i32 = (x.astype(np.float64) * 2**31).astype(np.int32)
    s32 = separator.separate(i32, 44100)
    np.testing.assert_allclose(s32["vocals"], ref, atol=1e-5)


def test_one_call_equals_small_chunks(demo_stems):
    v, a = demo_stems
    x = v + a
    whole = Separator(chunk_seconds=30.0).separate(x, 44100)["vocals"]
    small = Separator(chunk_seconds=0.4).separate(x, 44100)["vocals"]
    assert db(small - whole, whole) < -60


def test_streaming_with_random_blocks_equals_offline(separator, demo_stems):
    v, a = demo_stems
    x = (v + a)[:, :100000]
    offline = separator.separate(x, 44100)["vocals"]
    pipe = separator.pipeline(44100, 2, chunk_seconds=1.0)
    rng = np.random.default_rng(3)
    out, i = [], 0
    while i < x.shape[1]:
        n = int(rng.choice([1, 7, 512, 4096, 30000]))
        out.append(pipe.push(x[:, i:i + n]))
        i += n
    out.append(pipe.finish())
    streamed = np.concatenate(out, axis=1)
    assert streamed.shape == x.shape
    assert db(streamed - offline, offline) < -60


def test_resampled_rate_keeps_alignment(separator, demo_stems):
    # At 48 kHz the vocals pass through two resamplers; without compensation their
    # fractional delay would leak vocals into the accompaniment.
    from pedalboard.io import StreamResampler

    v, a = demo_stems
    rs = StreamResampler(44100, 48000, 2)
    x = np.concatenate([rs.process(v + a), rs.process(None)], axis=1)
    at48 = separator.separate(x, 48000)["vocals"]
    at44 = separator.separate(v + a, 44100)["vocals"]
    rs2 = StreamResampler(44100, 48000, 2)
    ref = np.concatenate([rs2.process(at44), rs2.process(None)], axis=1)
    n = min(ref.shape[1], at48.shape[1])
    assert db(at48[:, 2000:n - 2000] - ref[:, 2000:n - 2000], ref[:, 2000:n - 2000]) < -20


@pytest.mark.parametrize("bad,match", [
    (np.full((2, 100), np.nan, np.float32), "NaN"),
    (np.full((2, 100), np.inf, np.float32), "NaN or infinite"),
    (np.zeros((2, 2, 100), np.float32), "1-D or 2-D"),
    (np.zeros((0, 0), np.float32), "no channels"),
    (np.zeros(10, dtype=np.complex64), "sample type"),
])
def test_bad_audio(separator, bad, match):
    with pytest.raises(ValueError, match=match):
        separator.separate(bad, 44100)


@pytest.mark.parametrize("rate", [0, -44100, float("nan"), 44100.5, "fast"])
def test_bad_rate(separator, rate):
    with pytest.raises(ValueError, match="sample_rate"):
        separator.separate(noise((2, 100)), rate)


def test_bad_options():
    with pytest.raises(ValueError, match="unknown model"):
        Separator(model="nope")
    with pytest.raises(ValueError, match="chunk_seconds"):
        Separator(chunk_seconds=0)
    with pytest.raises(ValueError, match="threads"):
        Separator(threads=0)
    with pytest.raises(ValueError, match="threads must be a whole number"):
        Separator(threads=1.5)
    for bad in (float("inf"), float("nan"), "60", -1):
        with pytest.raises(ValueError, match="chunk_seconds must be a positive, finite"):
            Separator(chunk_seconds=bad)
    for bad in (1.5, "left", True, float("nan")):
        with pytest.raises(ValueError, match="vocal_pan must be 'auto' or a number"):
            Separator(vocal_pan=bad)


def test_pipeline_checks_its_arguments_and_blocks(separator):
    for bad in (0, -1, 2.0):
        with pytest.raises(ValueError, match="channels must be a whole number"):
            separator.pipeline(44100, bad)
    with pytest.raises(ValueError, match="chunk_seconds"):
        separator.pipeline(44100, 2, chunk_seconds=float("nan"))
    pipe = separator.pipeline(44100, 2)
    for block in (noise((3, 100)), noise((100,))):
        with pytest.raises(ValueError, match=r"takes \(2, n\) blocks"):
            pipe.push(block)
    with pytest.raises(ValueError, match="NaN"):
        pipe.push(np.full((2, 100), np.nan, np.float32))


def test_model_copies():
    import copy

    from acapella.onnx_model import OnnxModel

    m = OnnxModel()
    assert copy.copy(m).sample_rate == m.sample_rate


def test_one_thread_keeps_the_stft_on_the_calling_thread():
    # threads=1 is a promise about the whole engine, the STFT's thread pool included.
    # A fresh interpreter, so that no other test's pool is there already.
    code = """
import threading
import numpy as np
from acapella import Separator
x = np.random.default_rng(0).standard_normal((2, 44100 * 20)).astype(np.float32) * 0.1
one = Separator(threads=1, chunk_seconds=10).separate(x, 44100)["vocals"]
assert not [t.name for t in threading.enumerate() if t.name.startswith("acapella-fft")]
two = Separator(threads=2, chunk_seconds=10).separate(x, 44100)["vocals"]
assert [t.name for t in threading.enumerate() if t.name.startswith("acapella-fft")]
assert np.max(np.abs(one - two)) < 1e-5, np.max(np.abs(one - two))
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_thread_safety(separator):
    xs = [noise((2, 30000), seed=s) for s in range(4)]
    expected = [separator.separate(x, 44100)["vocals"] for x in xs]
    results = [None] * 4

    def work(i):
        results[i] = separator.separate(xs[i], 44100)["vocals"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_seed_model_runs_per_channel():
    sep = Separator(model="acapellabot")
    assert sep.model.channels == 1 and sep.sample_rate == 22050
    x = noise((2, 8000))
    check_stems(sep.separate(x, 44100), x)


def test_per_channel_separates_each_channel_as_a_mono_song(separator):
    x = noise((2, 30000))
    each = Separator(per_channel=True).separate(x, 44100)
    check_stems(each, x)
    for c in range(2):
        alone = separator.separate(x[c], 44100)["vocals"]
        np.testing.assert_allclose(each["vocals"][c], alone, atol=1e-5)
    # and the same at another rate, through the resamplers
    y = noise((16000, 2))
    each = Separator(per_channel=True).separate(y, 16000)
    check_stems(each, y)
    np.testing.assert_allclose(each["vocals"][:, 1], separator.separate(y[:, 1], 16000)["vocals"], atol=1e-5)


@pytest.mark.parametrize("pan", [-1.0, -0.3, 0.0, 0.6, 1.0])
def test_rotation_brings_a_panned_voice_to_the_centre(pan):
    from acapella.model.degradations import pan_stereo
    from acapella.panning import rotation

    r = rotation(pan)
    np.testing.assert_allclose(r @ r.T, np.eye(2), atol=1e-6)
    voice = pan_stereo(np.ones((2, 1), np.float32), pan)[:, 0]
    np.testing.assert_allclose(r @ voice, [1.0, 1.0], atol=1e-6)


def test_vocal_pan_separates_the_turned_field_and_turns_the_vocals_back(separator):
    from acapella.panning import rotation

    x = noise((2, 50000))
    centre = Separator(vocal_pan=0.0)
    for pan in (-1.0, 0.7):
        got = Separator(vocal_pan=pan).separate(x, 44100)
        check_stems(got, x)
        turned = centre.separate(rotation(pan) @ x, 44100)["vocals"]
        # The same up to rounding (which the 8-bit network can amplify at a few samples).
        assert db(got["vocals"] - rotation(pan).T @ turned, got["vocals"]) < -40
        # a stream given the pan gives the same, block by block
        pipe = centre.pipeline(44100, 2, vocal_pan=pan)
        streamed = np.concatenate([pipe.push(x[:, :12345]), pipe.push(x[:, 12345:]), pipe.finish()], axis=1)
        assert db(streamed - got["vocals"], got["vocals"]) < -40
    # mono has no stereo field to turn
    np.testing.assert_array_equal(Separator(vocal_pan=-1.0).separate(x[0], 44100)["vocals"],
                                  centre.separate(x[0], 44100)["vocals"])


def test_auto_finds_where_the_voice_sits(separator, demo_stems):
    from acapella.model.degradations import pan_stereo
    from acapella.panning import CENTRE, rotation, steer

    vocals, accompaniment = demo_stems
    centre = Separator(vocal_pan=0.0)
    for pan in (-1.0, -0.5, 0.0, 1.0):
        mix = pan_stereo(vocals, pan) + accompaniment
        found = separator.find_vocal_pan(mix, 44100)
        assert abs(found - pan) < 0.25, (pan, found)
        want = centre.separate(rotation(steer(found)) @ mix, 44100)["vocals"]
        got = separator.separate(mix.T, 44100)  # samples-first, as soundfile reads
        assert db(got["vocals"].T - rotation(steer(found)).T @ want, want) < -40
        assert (steer(found) == 0.0) == (abs(pan) < CENTRE)
    with pytest.raises(ValueError, match="stereo signal, got 1 channel"):
        separator.find_vocal_pan(vocals[0], 44100)


def test_auto_reads_the_same_excerpts_from_a_file(separator, demo_stems, tmp_path):
    import soundfile as sf

    from acapella.model.degradations import pan_stereo

    vocals, accompaniment = demo_stems
    mix = np.concatenate([pan_stereo(vocals, -0.8) + accompaniment] * 4, axis=1)  # 24 s: three excerpts
    sf.write(tmp_path / "song.wav", mix.T, 44100, subtype="FLOAT")
    out = separator.separate_file(tmp_path / "song.wav", tmp_path / "stems")
    got = sf.read(out["vocals"], dtype="float32")[0].T
    np.testing.assert_allclose(got, separator.separate(mix, 44100)["vocals"], atol=1e-5)
    assert separator.find_vocal_pan(mix, 44100) < -0.4
    # and at another rate, through the resampler
    y = pan_stereo(vocals, 1.0)[:, ::2] + accompaniment[:, ::2]
    assert Separator().find_vocal_pan(y, 22050) > 0.4


# -- streams of blocks: separate_blocks ---------------------------------------------------------

def _joined(parts, stem):
    return np.concatenate([p[stem] for p in parts], axis=1)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_separate_blocks_equals_separate_and_sums_to_the_input(separator, demo_stems, rate):
    v, a = demo_stems
    x = (v + a)[:, :150000]
    whole = Separator(vocal_pan=0.0).separate(x, rate)
    rng = np.random.default_rng(5)
    cuts = np.cumsum(rng.choice([1, 300, 4096, 20000, 70000], size=40))
    blocks = [x[:, i:j] for i, j in zip(np.r_[0, cuts], cuts) if i < x.shape[1]]
    parts = list(separator.separate_blocks(iter(blocks), rate))
    for p in parts:  # every dict is aligned: both stems cover the same samples
        assert set(p) == {"vocals", "accompaniment"}
        assert p["vocals"].shape == p["accompaniment"].shape and p["vocals"].shape[1] > 0
    vocals, accompaniment = _joined(parts, "vocals"), _joined(parts, "accompaniment")
    assert vocals.shape == x.shape
    assert np.max(np.abs(vocals + accompaniment - x)) < 1e-6
    assert db(vocals - whole["vocals"], whole["vocals"]) < -60


def test_separate_blocks_gives_only_the_stems_asked_for_and_holds_no_buffer(separator):
    x = noise((2, 50000))
    buffer = np.empty((2, 5000), np.float32)

    def reused():  # a reader that fills one buffer again and again, as soundfile's blocks() may
        for i in range(0, x.shape[1], 5000):
            n = min(5000, x.shape[1] - i)
            buffer[:, :n] = x[:, i:i + n]
            yield buffer[:, :n]

    parts = list(separator.separate_blocks(reused(), 44100, stems=["accompaniment"]))
    assert all(set(p) == {"accompaniment"} for p in parts)
    want = Separator(vocal_pan=0.0).separate(x, 44100)["accompaniment"]
    np.testing.assert_allclose(_joined(parts, "accompaniment"), want, atol=1e-6)
    assert list(separator.separate_blocks(iter([]), 44100)) == []
    with pytest.raises(ValueError, match="unknown stem"):
        list(separator.separate_blocks(iter([x]), 44100, stems=["drums"]))
    with pytest.raises(ValueError, match=r"takes \(channels, n\) blocks"):
        list(separator.separate_blocks(iter([x[0]]), 44100))


def test_separate_blocks_steered_as_separate(separator, demo_stems):
    from acapella.model.degradations import pan_stereo

    vocals, accompaniment = demo_stems
    mix = pan_stereo(vocals, -1.0) + accompaniment
    pan = separator.steering_pan(lambda a, b: mix[:, a:b], mix.shape[1], 44100, 2)
    assert pan < -0.4
    parts = list(separator.separate_blocks((mix[:, i:i + 44100] for i in range(0, mix.shape[1], 44100)), 44100,
                                           vocal_pan=pan))
    want = separator.separate(mix, 44100)["vocals"]
    # The same up to the rounding of the turn block by block (which the 8-bit network can amplify).
    assert db(_joined(parts, "vocals") - want, want) < -40
    assert Separator(vocal_pan=0.5).steering_pan(lambda a, b: mix[:, a:b], mix.shape[1], 44100, 2) == 0.5
    assert separator.steering_pan(lambda a, b: mix[:1, a:b], mix.shape[1], 44100, 1) == 0.0


# -- sample rates and levels -------------------------------------------------------------------

@pytest.mark.parametrize("rate", [999, 768001, 10**9, 1])
def test_rates_outside_the_accepted_range_are_refused_in_one_line(separator, rate):
    from acapella import VocalRemover

    with pytest.raises(ValueError, match=r"sample_rate must be from 1000 to 768000 Hz, got") as e:
        separator.separate(noise((2, 8)), rate)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="1000 to 768000"):
        separator.pipeline(rate, 2)
    with pytest.raises(ValueError, match="1000 to 768000"):
        VocalRemover(separator=separator).process(noise((2, 8)), rate)


@pytest.mark.parametrize("rate", [1000, 1001, 768000])
def test_a_tiny_input_at_any_accepted_rate_costs_little(rate):
    # The work is bounded by what the network sees: a few windows at the model's rate, not the
    # resamplers' filters stretched over seconds. Counted as samples the network is given.
    sep = Separator(vocal_pan=0.0)
    seen = []
    mask = sep.model.mask
    sep.model.mask = lambda spec: seen.append(spec.shape[1]) or mask(spec)
    x = noise((2, 8))
    stems = sep.separate(x, rate)
    check_stems(stems, x)
    assert sum(seen) <= 1024, seen  # frames through the network: one short window
    y = noise((1, rate // 2 + 3))  # and half a second at that rate separates as at any other
    check_stems(sep.separate(y, rate), y)


def test_int16_range_floats_get_one_warning_naming_the_cause(separator):
    x = np.clip(noise((2, 20000), scale=0.3), -1, 1) * 32767.0
    with pytest.warns(UserWarning) as caught:
        stems = separator.separate(x, 44100)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "int16" in message and "32768" in message and "\n" not in message
    # float32 rounding at this scale: the stems sum to the input to its last bits
    assert np.max(np.abs(stems["vocals"] + stems["accompaniment"] - x)) < 1e-6 * 32768 * 32
    # a stream warns once, not once per block
    pipe = separator.pipeline(44100, 2)
    with pytest.warns(UserWarning) as caught:
        for i in range(0, x.shape[1], 1000):
            pipe.push(x[:, i:i + 1000])
        pipe.finish()
    assert len(caught) == 1
    # a float file a little over full scale is ordinary: no warning
    import warnings as w

    with w.catch_warnings():
        w.simplefilter("error")
        separator.separate(np.clip(noise((2, 5000), scale=1.0), -1.5, 1.5), 44100)


@pytest.mark.parametrize("peak", [1e31, 3e38])
def test_values_near_the_float32_limit_are_refused(separator, peak):
    x = noise((2, 5000))
    x = (x / np.abs(x).max() * np.float32(peak)).astype(np.float32)
    with pytest.raises(ValueError, match="beyond what float32 separation can hold"):
        separator.separate(x, 44100)
    with pytest.raises(ValueError, match="beyond what float32"):
        list(separator.separate_blocks(iter([x]), 44100))


# -- many channels: memory bounded by the chunk, not the channel count ---------------------------

def test_more_channels_get_shorter_windows_and_blocks():
    sep = Separator()
    stereo = sep.pipeline(44100, 2).stream
    for channels in (8, 32):
        many = sep.pipeline(44100, channels).stream
        # The spectra a window holds stay within a few stereo windows, whatever the count.
        held = channels * (many.past + many.xf + many.window + many.future)
        assert held <= 4 * 2 * (stereo.past + stereo.xf + stereo.window + stereo.future), (channels, held)
        assert sep.block_size(44100, channels) * channels <= sep.block_size(44100, 2) * 2
    assert sep.pipeline(44100, 1).stream.window == stereo.window  # mono is doubled into one pair


def test_32_channels_separate_as_their_pairs_do():
    # The mono seed model keeps this quick: each channel is a group of its own, and windows
    # shortened for 32 channels give what each channel alone gives.
    sep = Separator(model="acapellabot")
    rate = 22050
    x = noise((32, rate * 4), seed=32)
    parts = list(sep.separate_blocks((x[:, i:i + rate] for i in range(0, x.shape[1], rate)), rate))
    vocals = np.concatenate([p["vocals"] for p in parts], axis=1)
    accompaniment = np.concatenate([p["accompaniment"] for p in parts], axis=1)
    assert vocals.shape == x.shape and np.max(np.abs(vocals + accompaniment - x)) < 1e-6
    for c in (0, 17, 31):
        np.testing.assert_allclose(vocals[c], sep.separate(x[c], rate)["vocals"], atol=1e-5)


def test_engine_docstring_examples():
    import doctest

    import acapella.layout
    import acapella.pipeline
    import acapella.stems
    import acapella.surface

    for module in (acapella.stems, acapella.layout, acapella.pipeline, acapella.surface):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
