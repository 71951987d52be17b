"""Effects, acapella.Pedalboard and StemChains: plugin surface, chains, streaming, README examples."""
import math
import re
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pedalboard as pb
import pytest

from acapella import Pedalboard, Separator, StemChains, StemMixer, VocalIsolator, VocalRemover
from acapella.effects import default_separator
from conftest import db, noise

SR = 44100
README = Path(__file__).resolve().parents[1] / "README.md"


def natives_before():
    return [pb.HighpassFilter(80), pb.Gain(-2), pb.Compressor(threshold_db=-20, ratio=4)]


def natives_after():
    return [pb.Reverb(room_size=0.6), pb.Delay(delay_seconds=0.2, feedback=0.3, mix=0.4), pb.Gain(1)]


def stream(plugin, x, sizes, rate=SR, check_schedule=True):
    """Feeds (C, n) x in blocks of the given sizes (cycled) with reset=False, then flushes.

    Checks after each block that exactly max(0, fed - latency) samples have come out.
    """
    outs, fed, got, k = [], 0, 0, 0
    latency = None
    while fed < x.shape[1]:
        b = sizes[k % len(sizes)]
        k += 1
        y = plugin.process(x[:, fed:fed + b], rate, reset=False)
        fed = min(fed + b, x.shape[1])
        latency = plugin.latency if latency is None else latency
        got += y.shape[1]
        outs.append(y)
        if check_schedule:
            assert got == max(0, fed - latency), (fed, got, latency)
    tail = plugin.flush()
    if check_schedule:
        assert tail.shape[1] == x.shape[1] - got
    return np.concatenate(outs + [tail], axis=1)


def random_sizes(seed, n=200, high=20000):
    rng = np.random.default_rng(seed)
    sizes = list(rng.integers(1, high, n))
    sizes[3:8] = [1, 1, 2, 3, 1]  # a few tiny blocks early on
    return sizes


def growing_sizes(n=24):
    # The first block must show its layout (a (2, 1) block reads as 2 mono samples, as in
    # pedalboard); after it, blocks of 1, 2, 4, ... samples, each larger than all before.
    return [3] + [min(2 ** i, 30000) for i in range(n)]


# -- plugin surface ---------------------------------------------------------------------


def test_plugin_surface_and_repr(separator):
    for eff in (VocalIsolator(), VocalRemover(), StemMixer(), StemChains(), Pedalboard()):
        assert eff.is_effect is True and eff.is_instrument is False
        assert isinstance(eff.latency, int) and eff.latency >= 0
    assert repr(VocalIsolator()) == "VocalIsolator(mode='offline')"
    assert repr(VocalRemover(mode="low")) == "VocalRemover(mode='low')"
    assert repr(StemMixer(vocals_db=-6)) == "StemMixer(vocals_db=-6.0, accompaniment_db=0.0, mode='offline')"
    iso = VocalIsolator(separator=separator)
    iso.vocals_db = 3
    assert repr(iso) == "VocalIsolator(vocals_db=3.0, accompaniment_db=-inf, mode='offline', separator=<Separator default.onnx>)"
    assert isinstance(VocalIsolator(), StemMixer) and VocalRemover().vocals_db == -math.inf
    board = Pedalboard([pb.Gain(1), VocalRemover()])
    assert repr(board).startswith("<acapella.Pedalboard with 2 plugins: [<pedalboard.Gain")
    assert "VocalRemover(mode='offline')" in repr(board)
    assert repr(StemChains(vocals=pb.Reverb())).startswith("StemChains(vocals=<acapella.Pedalboard with 1 plugin: ")


def test_parameters_are_validated():
    m = StemMixer()
    for bad in ("loud", None, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="vocals_db"):
            m.vocals_db = bad
        with pytest.raises(ValueError, match="accompaniment_db"):
            StemMixer(accompaniment_db=bad)
    m.accompaniment_db = -math.inf
    m.vocals_db = np.float32(-3)
    assert m.vocals_db == -3.0 and type(m.vocals_db) is float
    with pytest.raises(ValueError, match="mode"):
        m.mode = "fast"
    with pytest.raises(ValueError, match="mode"):
        VocalRemover(mode=0.5)
    with pytest.raises(ValueError, match="separator"):
        VocalRemover(separator="default")
    x = noise((2, 1000))
    for bad in (0, -5, 1.5, "8192"):
        with pytest.raises(ValueError, match="buffer_size"):
            m.process(x, SR, buffer_size=bad)
    for bad in (0, -44100, 44100.5, "fast", float("nan")):
        with pytest.raises(ValueError, match="sample_rate"):
            m(x, bad)
    with pytest.raises(ValueError, match="NaN"):
        m(np.full((2, 100), np.nan, np.float32), SR)
    with pytest.raises(TypeError, match="vocals"):
        StemChains(vocals="reverb")
    with pytest.raises(ValueError, match="at most 120 dB"):
        StemMixer(vocals_db=800)  # a gain that would overflow float32 samples
    m.vocals_db = 120
    assert np.isfinite(m(x, SR)).all()


def test_empty_board_returns_a_new_array():
    x = noise((2, 1000))
    for reset in (True, False):
        y = Pedalboard().process(x, SR, reset=reset)
        assert y is not x and np.array_equal(y, x)


def test_shared_default_separator():
    a, b = VocalIsolator(), StemChains()
    assert a.separator is b.separator is default_separator()
    own = Separator(threads=1)
    c = VocalRemover(separator=own)
    assert c.separator is own
    c.separator = None
    assert c.separator is default_separator()


# -- one-shot: exactly the Separator --------------------------------------------------------


@pytest.mark.parametrize("shape", [(3000,), (2, 3000), (3000, 3), (2, 1), (0,)])
def test_one_shot_matches_separator(separator, shape):
    x = noise(shape, seed=1)
    stems = separator.separate(x, SR)
    voc = VocalIsolator(separator=separator)(x, SR)
    acc = VocalRemover(separator=separator)(x, SR)
    for got, want in ((voc, stems["vocals"]), (acc, stems["accompaniment"])):
        assert got.shape == x.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_one_shot_finds_a_panned_voice_as_the_separator_does(separator, demo_stems):
    from acapella.model.degradations import pan_stereo

    v, a = demo_stems
    x = pan_stereo(v, -1.0) + a
    want = separator.separate(x, SR)["vocals"]
    np.testing.assert_allclose(VocalIsolator(separator=separator)(x, SR), want, atol=1e-6)
    # a stream cannot look ahead: it takes the centre, which misses much of this voice
    centre = Separator(vocal_pan=0.0).separate(x, SR)["vocals"]
    assert db(centre - want, want) > -20


def test_stem_mixer_gains(separator):
    x = noise((3000, 2), seed=1)
    stems = separator.separate(x, SR)
    mix = StemMixer(vocals_db=-6, accompaniment_db=3, separator=separator)(x, SR)
    np.testing.assert_allclose(mix, 10 ** (-6 / 20) * stems["vocals"] + 10 ** (3 / 20) * stems["accompaniment"],
                               atol=1e-6)
    np.testing.assert_allclose(StemMixer(separator=separator)(x, SR), x, atol=1e-6)


@pytest.mark.parametrize("rate", [22050, 48000])
def test_one_shot_rates_and_dtypes(separator, rate):
    x = np.clip(noise((2, rate // 2), seed=2, scale=0.3), -0.99, 0.99)
    i16 = np.round(x * 32767).astype(np.int16)
    want = separator.separate(i16, rate)["accompaniment"]
    got = VocalRemover(separator=separator).process(i16, float(rate))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_board_one_shot_matches_native_chain_and_separator(separator):
    x = noise((2, SR), seed=3)
    before, after = natives_before(), natives_after()
    ours = Pedalboard(before + [VocalRemover(separator=separator)] + after)(x, SR)
    mid = pb.Pedalboard(natives_before())(x, SR)
    acc = separator.separate(mid, SR)["accompaniment"]
    want = pb.Pedalboard(natives_after())(acc, SR)
    assert db(ours - want, want) < -100
    # A board of native plugins only is the native chain.
    plain = Pedalboard(natives_before() + natives_after())(x, SR)
    np.testing.assert_array_equal(plain, pb.Pedalboard(natives_before() + natives_after())(x, SR))


# -- streaming --------------------------------------------------------------------------------


def test_pedalboard_latency_convention_that_we_follow():
    # A native plugin with latency (Resample, MP3Compressor) streamed with reset=False drops
    # its first `latency` output samples, so its output stays aligned with its input; silence
    # fed afterwards returns the rest; one-shot output is aligned and as long as the input.
    x = noise((2, SR), seed=30)
    for make in (lambda: pb.Resample(target_sample_rate=8000), lambda: pb.MP3Compressor(vbr_quality=2)):
        one = make()(x, SR)
        assert one.shape == x.shape
        plugin = make()
        outs = [plugin.process(x[:, i:i + 1000], SR, reset=False) for i in range(0, x.shape[1], 1000)]
        outs = [o for o in outs if o.size]  # empty outputs can come back as (0, 2)
        head = np.concatenate(outs, axis=1)
        latency = x.shape[1] - head.shape[1]
        assert 0 < latency < 5000 and outs[0].shape[1] < 1000
        np.testing.assert_allclose(head, one[:, :head.shape[1]], atol=1e-6)
        if isinstance(plugin, pb.Resample):  # (MP3 returns whole frames: it needs more silence)
            tail = plugin.process(np.zeros((2, latency), np.float32), SR, reset=False)
            np.testing.assert_allclose(np.concatenate([head, tail], axis=1), one, atol=1e-6)


@pytest.mark.parametrize("rate", [SR, 48000, 22050])
def test_streaming_offline_equals_one_shot_any_blocks(separator, rate):
    x = noise((2, 3 * rate), seed=4)
    # A stream cannot look ahead for the voice's place, so the one-shot call is given the centre too.
    eff = StemMixer(vocals_db=-4, accompaniment_db=2, separator=Separator(vocal_pan=0))
    one = eff(x, rate)
    assert eff.latency > 6 * rate  # full look-ahead
    # At other rates too: a one-shot call ends the signal as a flushed stream does, with the
    # resampler's ringing past the last sample and then silence.
    for sizes in (random_sizes(5), growing_sizes(), [rate]) if rate == SR else (random_sizes(5),):
        assert db(stream(eff, x, sizes, rate=rate) - one, one) < -120


def test_low_latency_modes(separator):
    x = noise((2, SR), seed=6)
    for mode, limit in (("low", 0.5), ("lowest", 0.25)):
        eff = VocalIsolator(mode=mode, separator=separator)
        assert eff.latency <= limit * SR
        assert eff.latency_at(48000) <= limit * 48000
        one = eff(x, SR)
        assert db(stream(eff, x, random_sizes(7, high=6000)) - one, one) < -120
        # Not the offline result: the look-ahead is shorter.
        assert db(one - separator.separate(x, SR)["vocals"], one) > -60


def test_streaming_board_with_natives_before_and_after(separator):
    # Random block sizes; the last 2 s are left out, where the natives' tails feed our look-ahead.
    x = noise((2, 5 * SR), seed=8)
    board = Pedalboard(natives_before() + [StemMixer(-3, 1, separator=separator)] + natives_after())
    one = board(x, SR)
    got = stream(board, x, random_sizes(9, high=40000))
    keep = x.shape[1] - 2 * SR
    assert got.shape == one.shape
    assert db(got[:, :keep] - one[:, :keep], one[:, :keep]) < -60


def test_growing_block_sizes_trap():
    # pedalboard 0.9 prepares a chain again (wiping reverb, filter and delay state) when a
    # streamed block is larger than any before; our board prepares its native stages once.
    x = noise((2, 3 * SR), seed=10)
    ref = pb.Pedalboard(natives_before() + natives_after())(x, SR)
    native = pb.Pedalboard(natives_before() + natives_after())
    outs, i = [], 0
    for b in growing_sizes():
        outs.append(native.process(x[:, i:i + b], SR, reset=False))
        i += b
    assert db(np.concatenate(outs, axis=1)[:, :x.shape[1]] - ref, ref) > -40  # the trap itself
    ours = Pedalboard(natives_before() + natives_after())
    for _ in range(2):  # and again after flush() ended the first stream
        got = stream(ours, x, growing_sizes())
        assert db(got - ref, ref) < -200
    big = stream(ours, x, [100, 30000], check_schedule=False)  # blocks above buffer_size too
    assert db(big - ref, ref) < -200


def test_growing_blocks_with_our_effect(separator):
    # In "low" mode our look-ahead is 0.1 s, so only the last ~0.3 s can see the reverb's tail.
    x = noise((2, 2 * SR), seed=11)
    board = Pedalboard([pb.HighpassFilter(100), pb.Reverb(), VocalIsolator(mode="low", separator=separator),
                        pb.Delay(0.1, 0.5, 0.5)])
    one = board(x, SR)
    got = stream(board, x, growing_sizes())
    keep = x.shape[1] - SR
    assert db(got[:, :keep] - one[:, :keep], one[:, :keep]) < -60


def test_feeding_silence_flushes_like_flush(separator):
    x = noise((2, SR), seed=12)
    eff = VocalRemover(mode="lowest", separator=separator)
    head = eff.process(x, SR, reset=False)
    tail = eff.process(np.zeros((2, eff.latency), np.float32), SR, reset=False)
    eff.reset()
    head2 = eff.process(x, SR, reset=False)
    tail2 = eff.flush()
    np.testing.assert_array_equal(np.concatenate([head, tail], 1), np.concatenate([head2, tail2], 1))
    assert head.shape[1] + tail.shape[1] == x.shape[1]
    assert eff.flush().shape == (0,)  # no stream in progress


def test_streaming_layouts_tiny_blocks_and_rates(separator):
    rng = np.random.default_rng(13)
    x = noise((2, SR // 2), seed=13)
    for rate in (SR, 48000):
        eff = VocalIsolator(mode="lowest", separator=separator)
        one = eff(x, rate)
        # channels-last blocks, including (1, 2) and (2, 2) blocks read by the stream's channels
        outs, i, b = [], 0, 700  # the first block shows the layout; then any
        while i < x.shape[1]:
            y = eff.process(x[:, i:i + b].T, rate, reset=False)
            assert y.ndim == 2 and y.shape[1] == 2
            outs.append(y.T)
            i += b
            b = int(rng.choice([1, 2, 3, 700, 4000]))
        outs.append(eff.flush().T)
        got = np.concatenate(outs, 1)
        # Resampled in blocks, the network's input differs from the one-shot one in its last bits, and the
        # model's 8-bit activations can round such a difference to their next step: close, not bit-exact.
        assert db(got - one, one) < (-120 if rate == SR else -90)
    # mono 1-D int16 blocks come back 1-D float32
    m = (noise((SR // 2,), seed=14, scale=0.3) * 32767).astype(np.int16)
    eff = VocalRemover(mode="lowest", separator=separator)
    one = eff(m, SR)
    outs = [eff.process(m[i:i + 999], SR, reset=False) for i in range(0, m.size, 999)]
    outs.append(eff.flush())
    assert all(o.ndim == 1 and o.dtype == np.float32 for o in outs)
    assert db(np.concatenate(outs) - one, one) < -120


@pytest.mark.parametrize("first", [(2, 1), (1, 2)])
def test_a_stereo_stream_may_start_with_a_single_sample(separator, first):
    # A first block of one stereo sample, channels-first (2, 1) or channels-last (1, 2), reads
    # by its shape as two mono samples, as pedalboard's own plugins read it; the next block shows
    # the stereo layout, and the stream takes the first one again that way.
    x = noise((2, SR // 2), seed=23)
    eff = VocalIsolator(mode="lowest", separator=separator)
    one = eff(x, SR)
    channels_last = first == (1, 2)
    view = (lambda a: a.T) if channels_last else (lambda a: a)
    outs = [eff.process(view(x[:, :1]), SR, reset=False)]
    assert outs[0].size == 0
    for i in range(1, x.shape[1], 4000):
        y = eff.process(view(x[:, i:i + 4000]), SR, reset=False)
        outs.append(y.T if channels_last else y)
    # Once samples have come out, the layout stands: another channel count is refused.
    with pytest.raises(ValueError, match="channel"):
        eff.process(noise((3, 5000)), SR, reset=False)
    outs.append(eff.flush().T if channels_last else eff.flush())
    got = np.concatenate([o.reshape(2, -1) if o.size == 0 else o for o in outs], axis=1)
    assert got.shape == x.shape
    assert db(got - one, one) < -120


def test_stream_refuses_a_changed_rate_or_channel_count(separator):
    eff = VocalIsolator(mode="lowest", separator=separator)
    eff.process(noise((2, 1000)), SR, reset=False)
    with pytest.raises(ValueError, match="reset"):
        eff.process(noise((2, 1000)), 48000, reset=False)
    with pytest.raises(ValueError, match="channel"):
        eff.process(noise((3, 1000)), SR, reset=False)
    eff.reset()
    assert eff.process(noise((3, 1000)), 48000, reset=False).shape[0] == 3
    assert eff.latency == eff.latency_at(48000)


def test_streaming_memory_does_not_grow(separator):
    board = Pedalboard([pb.Reverb(), VocalRemover(separator=separator), pb.Gain(-1)])
    block = noise((2, 8192), seed=15)
    for _ in range(60):  # warm up past the latency
        board.process(block, SR, reset=False)
    tracemalloc.start()
    try:
        for k in range(100):  # another ~18 s
            board.process(block, SR, reset=False)
            if k == 20:
                early = tracemalloc.get_traced_memory()[0]
        late = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert late - early < 2_000_000


# -- the board ----------------------------------------------------------------------------------


def test_board_list_api_and_refusals():
    g, r, v = pb.Gain(1), pb.Reverb(), VocalIsolator()
    board = Pedalboard([g])
    board.append(v)
    board.insert(1, r)
    assert list(board) == [g, r, v] and len(board) == 3
    assert board[0] is g and board[-1] is v and board.index(r) == 1 and r in board
    sliced = board[1:]
    assert isinstance(sliced, Pedalboard) and list(sliced) == [r, v]
    board.remove(r)
    assert list(board) == [g, v]
    board[0] = r
    del board[1]
    assert list(board) == [r]
    board.extend([g])
    assert board.pop() is g
    for bad in (3, "reverb", None, [pb.Gain()], pb.Gain):
        with pytest.raises(TypeError, match=re.escape(repr(bad))):
            board.append(bad)
        with pytest.raises(TypeError, match=re.escape(repr(bad))):
            Pedalboard([pb.Gain(), bad])
    with pytest.raises(TypeError):
        board[0:1] = [pb.Gain(), object()]
    with pytest.raises(ValueError, match="itself"):
        board.append(board)
    outer = Pedalboard([board])
    with pytest.raises(ValueError, match="itself"):
        board.append(outer)
    dup = Pedalboard([g, pb.Reverb(), g])
    with pytest.raises(ValueError, match="more than once"):
        dup(noise((2, 100)), SR)


def test_nesting_and_latency_sum(separator):
    inner = Pedalboard([pb.Gain(-1), VocalRemover(mode="low", separator=separator)])
    chains = StemChains(vocals=[VocalIsolator(mode="lowest", separator=separator)], accompaniment=pb.Reverb(),
                        mode="low", separator=separator)
    outer = Pedalboard([pb.HighpassFilter(50), inner, chains, pb.Gain(1),
                        pb.Pedalboard([pb.Compressor(), pb.Delay(0.1)])])
    low = VocalRemover(mode="low", separator=separator).latency_at(SR)
    lowest = VocalRemover(mode="lowest", separator=separator).latency_at(SR)
    assert inner.latency == low
    assert chains.latency == low + lowest  # the slower branch sets it
    assert outer.latency == 2 * low + lowest
    assert outer.latency_at(48000) > outer.latency
    x = noise((2, SR), seed=16)
    assert outer(x, SR).shape == x.shape


def test_a_change_inside_a_streaming_board_starts_a_new_stream(separator):
    x = noise((2, 2 * SR), seed=21)
    block, at = 4410, 5 * 4410

    def run(board, change):
        outs = []
        for i in range(0, x.shape[1], block):
            if i == at:
                change()
                latency = board.latency
            outs.append(board.process(x[:, i:i + block], SR, reset=False))
        after = sum(o.shape[1] for o in outs[at // block:])
        tail = board.flush()
        # The new stream keeps the convention from where it began: its latency held back, then flushed.
        assert after == x.shape[1] - at - latency and tail.shape[1] == latency
        return outs

    inner = Pedalboard([pb.Gain(0)])
    run(Pedalboard([pb.Gain(0), inner]), lambda: inner.append(StemMixer(mode="lowest", separator=separator)))
    chains = StemChains(vocals=[pb.Gain(0)], mode="lowest", separator=separator)
    run(chains, lambda: chains.vocals.append(StemMixer(mode="lowest", separator=separator)))
    board = Pedalboard([pb.Gain(0), VocalRemover(mode="lowest", separator=separator)])
    run(board, lambda: setattr(board[1], "mode", "low"))
    assert board.latency == VocalRemover(mode="low", separator=separator).latency_at(SR)


def test_stem_chains(separator):
    x = noise((2, 2 * SR), seed=17)
    stems = separator.separate(x, SR)
    chains = StemChains(vocals=[pb.Gain(-6)], accompaniment=[pb.Gain(3)], separator=separator)
    want = 10 ** (-6 / 20) * stems["vocals"] + 10 ** (3 / 20) * stems["accompaniment"]
    assert db(chains(x, SR) - want, want) < -100
    assert db(StemChains(separator=separator)(x, SR) - x, x) < -100  # empty chains: the input
    # Branch latencies are aligned: a delayed branch in a stream, random blocks.
    chains = StemChains(vocals=[pb.Reverb(), VocalIsolator(mode="lowest", separator=separator)],
                        accompaniment=[pb.Compressor(-20, 4), pb.Delay(0.2, 0.3, 0.4)],
                        mode="lowest", separator=separator)
    x = x[:, :SR]
    one = chains(x, SR)
    got = stream(chains, x, random_sizes(18, high=10000))
    keep = x.shape[1] - SR // 2
    assert db(got[:, :keep] - one[:, :keep], one[:, :keep]) < -60
    chains.accompaniment = None
    assert chains.accompaniment is not None and len(chains.accompaniment) == 0


def test_python_subclass_of_a_native_plugin_is_called():
    calls = []

    class Louder(pb.Gain):
        def process(self, *args, **kwargs):
            calls.append(1)
            return super().process(*args, **kwargs)

    x = noise((2, 3000), seed=19)
    board = Pedalboard([pb.Gain(0), Louder(6)])
    np.testing.assert_allclose(board(x, SR), pb.Gain(6)(x, SR), atol=1e-6)
    assert calls


def test_threads_share_one_separator(separator):
    xs = [noise((2, SR // 2), seed=s) for s in (20, 21, 22)]
    effects = [VocalRemover(mode="lowest", separator=separator) for _ in xs]
    want = [separator.separate(x, SR)["accompaniment"] for x in xs]
    results = [None] * len(xs)

    def run(k):
        results[k] = (effects[k](xs[k], SR), stream(effects[k], xs[k], [1000], check_schedule=False))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(len(xs)):
        one, streamed = results[k]
        assert db(streamed - one, one) < -120
        assert one.shape == want[k].shape


# -- README examples ------------------------------------------------------------------------------


def examples():
    text = README.read_text()
    return re.findall(r"<!-- acapella-effects-example -->\s*```python\n(.*?)```", text, re.S)


def test_readme_examples_run_as_written(tmp_path, monkeypatch):
    import soundfile as sf

    from acapella import demo

    blocks = examples()
    assert len(blocks) == 4
    v, a = demo.song(3.0, SR)
    sf.write(tmp_path / "song.wav", (v + a).T, SR, subtype="FLOAT")
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, "<README.md example>", "exec"), {"__name__": "__example__"})
    n = (v + a).shape[1]
    for name in ("karaoke-streamed.wav", "remix.wav", "karaoke.flac"):
        info = sf.info(tmp_path / name)
        assert info.frames == n and info.channels == 2 and info.samplerate == SR
    song = sf.read(tmp_path / "song.wav", dtype="float32")[0].T
    karaoke = sf.read(tmp_path / "karaoke.flac", dtype="float32")[0].T
    want = Separator().separate(song, SR)["accompaniment"]
    assert np.max(np.abs(karaoke - want)) < 1e-4  # 16-bit FLAC
