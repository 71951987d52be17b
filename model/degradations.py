"""What happens to a whole song on its way to a listener, as training examples imitate it.

Each function takes stems (or the song as stems) and returns them changed so that they still sum
to the changed mixture: a room, a lower sample rate, clipping, a peak limiter, MP3 coding, and a
pan of the voice across the stereo field. The mixer draws them with the probabilities of an
`Augmentation`; the quality benchmark applies them to held-out songs.
"""
from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from pedalboard import Reverb
from pedalboard.io import AudioFile


def pan_stereo(x: np.ndarray, position: float) -> np.ndarray:
    """Stereo `x` (2, samples) panned to `position`: -1 hard left, 0 as it is, 1 hard right.

    Constant power: a centred (equal-channel) stem keeps its energy wherever it goes.
    """
    theta = (position + 1.0) * np.pi / 4
    return x * (np.sqrt(2) * np.array([[np.cos(theta)], [np.sin(theta)]], dtype=np.float32))


# Telephone, AM radio and speech codecs, old 11 kHz samplers, MIR-1K-like 16 kHz,
# half-rate files, broadcast: the rates low-band music reaches a user at.
BAND_LIMIT_RATES = (8000.0, 11025.0, 16000.0, 22050.0, 32000.0)


def room(x: np.ndarray, sample_rate: float, room_size: float = 0.8, damping: float = 0.5,
         wet_level: float = 0.5, dry_level: float = 0.6, width: float = 1.0) -> np.ndarray:
    """`x` (channels, samples) played in a reverberant room, as a concert recording hears a
    whole band: pedalboard's reverb, linear, so a sum of stems through it is the mixture
    through it. The length stays (the tail past the end is cut)."""
    rv = Reverb(room_size=room_size, damping=damping, wet_level=wet_level, dry_level=dry_level, width=width)
    return rv(np.ascontiguousarray(x, dtype=np.float32), sample_rate).astype(np.float32)


def band_limited(x: np.ndarray, sample_rate: float, rate: float) -> np.ndarray:
    """`x` (channels, samples) as if it had been stored at `rate` Hz: nothing above rate / 2.

    A brick wall on the whole clip's spectrum: exact, linear and without delay, and about
    25 times faster than pedalboard's windowed-sinc resampling down and up again."""
    x = np.asarray(x, dtype=np.float32)
    if rate >= sample_rate:
        return x
    spectrum = np.fft.rfft(x, axis=-1)
    spectrum[..., np.fft.rfftfreq(x.shape[-1], 1.0 / sample_rate) > rate / 2] = 0
    return np.fft.irfft(spectrum, x.shape[-1], axis=-1).astype(np.float32)


def clipped(stems: np.ndarray, peak_db: float) -> np.ndarray:
    """`stems` (stems, ...) turned up until their sum peaks `peak_db` above full scale, then the
    sum clipped at +-1, as a loud master is.

    Clipping is not linear, so which stem owns the cut is a convention: here each sample of
    the sum is scaled by clip(m) / m and every stem with it (the stems share a per-sample
    gain), so the clipped stems still sum exactly to the clipped mixture."""
    stems = np.asarray(stems, dtype=np.float32)
    mix = stems.sum(axis=0)
    peak = float(np.abs(mix).max())
    if peak == 0:
        return stems
    scale = 10 ** (peak_db / 20) / peak
    gain = scale / np.maximum(np.abs(mix * scale), 1.0)  # clip(m * scale) / m, without dividing by m
    return (stems * gain).astype(np.float32)


def limited(stems: np.ndarray, sample_rate: float, drive_db: float, release_ms: float = 80.0,
            lookahead_ms: float = 10.0) -> np.ndarray:
    """`stems` (stems, channels, samples) turned up by `drive_db` and brought under full scale by a
    look-ahead peak limiter on their sum, as a loud master is (the smooth counterpart of `clipped`).

    The limiter's gain, shared by the channels and by the stems, is a smooth envelope rather than
    a per-sample cut, so every stem goes through the same time-varying gain and the limited stems
    sum exactly to the limited mixture. The gain starts to fall up to `lookahead_ms` before a
    peak and recovers with a `release_ms` time constant after it."""
    stems = np.asarray(stems, dtype=np.float32)
    drive = 10 ** (drive_db / 20)
    peak = np.abs(stems.sum(axis=0) * drive).max(axis=0)  # linked across channels
    need = 1.0 / np.maximum(peak, 1.0)
    half = max(1, int(round(lookahead_ms * 1e-3 * sample_rate / 2)))
    padded = np.pad(need, (2 * half, 2 * half), constant_values=1.0)
    # The least gain needed within half the look-ahead on either side, averaged over the same span: as
    # deep as the peak at each sample (every term of the average covers it), and without steps.
    floor = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).min(axis=-1)
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    gain = np.convolve(floor, kernel, mode="valid")
    rise = 1.0 - np.exp(-1.0 / (release_ms * 1e-3 * sample_rate))
    out, g = np.empty_like(gain), 1.0
    for i, target in enumerate(gain):  # release: the gain recovers slowly after a peak
        g = min(target, g + (1.0 - g) * rise)
        out[i] = g
    return (stems * (drive * out).astype(np.float32)).astype(np.float32)


MP3_BITRATES = (64, 96, 128, 160, 192, 256, 320)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def mp3_coded(vocals: np.ndarray, accompaniment: np.ndarray, sample_rate: int,
              kbps: int) -> tuple[np.ndarray, np.ndarray]:
    """The song `vocals` + `accompaniment` (each (channels, samples)) as an MP3 file at `kbps`
    kbit/s holds it: written by LAME (pedalboard.io) and read back by soundfile, which trims
    the encoder's delay and padding as acapella's own reader does, so nothing shifts.

    Coding is not linear and a song is coded whole, so its error needs an owner: the vocals
    stay the song's own (what separating an MP3 should give back) and the accompaniment is the
    coded mixture minus them, so the stems still sum to what the network hears."""
    if int(sample_rate) not in MP3_RATES:
        raise ValueError(f"MP3 cannot hold {sample_rate} Hz: use one of {', '.join(map(str, MP3_RATES))}")
    vocals = np.asarray(vocals, dtype=np.float32)
    mix = vocals + np.asarray(accompaniment, dtype=np.float32)
    buffer = io.BytesIO()
    with AudioFile(buffer, "w", sample_rate, mix.shape[0], format="mp3", quality=int(kbps)) as f:
        f.write(mix)
    buffer.seek(0)
    coded, _ = sf.read(buffer, dtype="float32", always_2d=True)
    coded = coded.T[:, :mix.shape[1]]
    coded = np.pad(coded, ((0, 0), (0, mix.shape[1] - coded.shape[1])))
    return vocals, (coded - vocals).astype(np.float32)
