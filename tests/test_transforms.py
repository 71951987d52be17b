import numpy as np
import pytest

from acapella.transforms import STFT
from conftest import noise


@pytest.mark.parametrize("n_fft,hop", [(2048, 512), (2048, 1024), (1536, 384)])
@pytest.mark.parametrize("length", [1, 100, 1535, 2047, 5000, 44100 + 123])
def test_identity_round_trip_is_exact(n_fft, hop, length):
    stft = STFT(n_fft, hop)
    x = noise((2, length), seed=length)
    y = stft.inverse(stft.forward(x), length)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.linalg.norm(y - x) / np.linalg.norm(x) < 1e-5


def test_empty_signal():
    stft = STFT(2048, 512)
    spec = stft.forward(np.zeros((2, 0), np.float32))
    assert spec.shape == (2, 0, 1025)
    assert stft.inverse(spec, 0).shape == (2, 0)


def test_frames_sit_on_a_global_grid():
    # Cutting a signal at a frame boundary must give the same frames: streaming relies on it.
    stft = STFT(2048, 512)
    x = noise((1, 20000))
    whole = stft.forward(x)
    padded = np.concatenate([np.zeros((1, stft.pad), np.float32), x], axis=1)
    cut = 512 * 7
    a = stft.frames(padded[:, :cut + stft.pad])
    b = stft.frames(padded[:, a.shape[1] * 512:])
    np.testing.assert_allclose(np.concatenate([a, b], axis=1)[:, :whole.shape[1]], whole[:, :a.shape[1] + b.shape[1]],
                               atol=1e-4)


def test_long_signals_split_over_threads_give_the_plain_transform():
    # Long inputs are cut into blocks of frames shared out over threads; the result must
    # be the same frame-by-frame transform, and written into a buffer when one is given.
    stft = STFT(2048, 512)
    x = noise((2, 44100 * 12), seed=3)
    spec = stft.forward(x)
    assert spec.shape[1] > 8 * 128
    padded = np.concatenate([np.zeros((2, stft.pad), np.float32), x, np.zeros((2, 2048), np.float32)], axis=1)
    for t in (0, 129, 700, spec.shape[1] - 1):
        plain = np.fft.rfft(padded[:, t * 512:t * 512 + 2048].astype(np.float64) * stft.window, axis=-1)
        np.testing.assert_allclose(spec[:, t], plain, rtol=0, atol=1e-3)
    buf = np.zeros((2, spec.shape[1] + 5, 1025), np.complex64)
    stft.frames(padded[:, :(spec.shape[1] - 1) * 512 + 2048], out=buf[:, 5:])
    np.testing.assert_array_equal(buf[:, 5:], spec)
    assert not buf[:, :5].any()
    y = stft.inverse(spec, x.shape[1])
    assert np.linalg.norm(y - x) / np.linalg.norm(x) < 1e-5


def test_thread_count_does_not_change_the_transform():
    x = noise((2, 44100 * 6), seed=4)
    spec = STFT(2048, 512).forward(x)
    one = STFT(2048, 512, threads=1)
    np.testing.assert_array_equal(one.forward(x), spec)
    np.testing.assert_array_equal(one.inverse(spec, x.shape[1]), STFT(2048, 512).inverse(spec, x.shape[1]))
    with pytest.raises(ValueError, match="threads"):
        STFT(2048, 512, threads=0)


def test_hop_must_divide_fft():
    for hop in (500, 2048, 256):
        with pytest.raises(ValueError, match="hop"):
            STFT(2048, hop)


def test_training_stft_matches_engine_stft():
    torch = pytest.importorskip("torch")
    from acapella.model.train import stft as torch_stft

    stft = STFT(2048, 1024)
    x = noise((2, 30000))
    padded = np.concatenate([np.zeros((2, stft.pad), np.float32), x], axis=1)
    ours = stft.frames(padded)
    theirs = torch_stft(torch.from_numpy(padded[None]), 2048, 1024)[0].numpy()
    np.testing.assert_allclose(theirs, ours, atol=1e-3, rtol=1e-4)
