"""Network definitions (PyTorch, training only).

Every network is wrapped for export by :class:`MaskExport`, so that each ONNX
file has the same contract: a spectrogram in, a soft vocals mask out, shaped
``(batch, channels, frames, bins)``. The input is either the magnitude
(``input: magnitude``) or the complex spectrum as its real parts then its
imaginary parts (``input: spectrum``, ``2 * channels`` planes), so a network
can compute features that magnitudes alone lose, such as the stereo mid and
side. The engine then needs to know nothing about the network beyond the
settings stored beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

# The one table of networks: how each is built and the STFT settings and shapes stored
# beside it in its ONNX file. `frame_multiple` is the product of the time strides: the
# engine feeds windows whose length and start are multiples of it, so that chunked
# inference lines up with one-shot inference exactly. `target` is what the network
# predicts: a vocals mask, or (the 2017 seed) the vocals' log1p magnitude.
@dataclass(frozen=True)
class Network:
    build: Callable[[], nn.Module]
    sample_rate: int = 44100
    channels: int = 2
    n_fft: int = 2048
    hop: int = 1024
    frame_multiple: int = 32
    input: str = "spectrum"
    target: str = "mask"

    def settings(self) -> dict:
        """What the engine reads from the file's metadata."""
        return {k: getattr(self, k) for k in ("sample_rate", "channels", "n_fft", "hop", "frame_multiple", "input")}


NETWORKS: dict[str, Network] = {
    # The first stereo U-Net, on left and right magnitudes.
    "default": Network(lambda: MaskUNet(features=2), input="magnitude"),
    # The same U-Net fed left, right, mid and side magnitudes (stereo_features).
    "midside": Network(lambda: MaskUNet(features=4)),
    # "midside" with two more residual blocks at the bottleneck.
    "deep": Network(lambda: MaskUNet(features=4, blocks=3)),
    # "midside" with a full-resolution head that refines the mask along frequency.
    "refine": Network(lambda: MaskUNet(features=4, refine=True)),
    # "midside" with a layer fully connected across frequency at the bottleneck and after each decoder level.
    "freq": Network(lambda: MaskUNet(features=4, freq=5)),
    # "freq" without the 512-bin block, the costliest and least useful one; the network of model/default.onnx.
    "freq4": Network(lambda: MaskUNet(features=4, freq=4)),
    # "freq4" with two more residual blocks at the bottleneck, as "deep" is to "midside".
    "freq4deep": Network(lambda: MaskUNet(features=4, freq=4, blocks=3)),
    # "freq4" with its input divided by its local level (LevelNorm): the same mask at any gain.
    "freq4norm": Network(lambda: MaskUNet(features=4, freq=4, level_norm=True)),
    # Band-split networks (BandSplitNet) in three sizes: features per band x blocks.
    "bands48x4": Network(lambda: BandSplitNet(dim=48, blocks=4), frame_multiple=1),
    "bands64x6": Network(lambda: BandSplitNet(dim=64, blocks=6), frame_multiple=1),
    "bands96x8": Network(lambda: BandSplitNet(dim=96, blocks=8), frame_multiple=1),
    "acapellabot": Network(lambda: AcapellaBot(), sample_rate=22050, channels=1, n_fft=1536, hop=384, frame_multiple=4,
                           input="magnitude", target="magnitude"),
}
# The settings alone, as older callers read them.
CONFIGS = {name: net.settings() for name, net in NETWORKS.items()}


def input_planes(name: str) -> int:
    """Planes of the ONNX input: the channels' magnitudes, or their real and imaginary parts."""
    cfg = CONFIGS[name]
    return cfg["channels"] * (2 if cfg["input"] == "spectrum" else 1)


def stereo_features(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """Magnitudes of left, right, mid (L+R)/2 and side (L-R)/2: ``(B, 2, T, F)`` parts -> ``(B, 4, T, F)``.

    Magnitudes per channel cannot tell a centred voice from an instrument
    at the same level in both channels but out of phase or decorrelated;
    mid and side can. Written with real tensors only, so that it exports to ONNX.
    """
    mid_re, mid_im = (re[:, :1] + re[:, 1:2]) / 2, (im[:, :1] + im[:, 1:2]) / 2
    side_re, side_im = (re[:, :1] - re[:, 1:2]) / 2, (im[:, :1] - im[:, 1:2]) / 2
    r = torch.cat([re, mid_re, side_re], dim=1)
    i = torch.cat([im, mid_im, side_im], dim=1)
    return torch.sqrt(r * r + i * i)


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 5, stride=2, padding=2)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.leaky_relu(self.bn(self.conv(x)), 0.2)


class _Up(nn.Module):
    """x2 upsampling as a convolution into 4x channels and a pixel shuffle.

    onnxruntime runs this several times faster than a transposed convolution
    of the same reach, which was the slowest layer of the network.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.shuffle(self.conv(x))))


class _TimeBlock(nn.Module):
    """Residual block dilated along time: cheap seconds-long context at the bottleneck."""

    def __init__(self, c: int, dilation: int = 1):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=(dilation, 1), dilation=(dilation, 1))
        self.b1 = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 3, padding=(dilation, 1), dilation=(dilation, 1))
        self.b2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        return F.relu(x + self.b2(self.c2(y)))

    def grow_(self) -> None:
        """Makes the block the identity: its input is already past a ReLU, so it passes unchanged."""
        with torch.no_grad():
            self.b2.weight.zero_()
            self.b2.bias.zero_()


class _Refine(nn.Module):
    """Full-resolution correction of the mask logits from the logits and the input features.

    Everything else reaches full resolution only through the last pixel shuffle;
    this sees single bins. Its kernels run along frequency only, so it adds
    nothing to the receptive field in time, which exact chunking pays for.
    """

    def __init__(self, cin: int, cout: int, width: int = 16, reach: int = 4):
        super().__init__()
        k, p = (1, 2 * reach + 1), (0, reach)
        self.c1 = nn.Conv2d(cin, width, k, padding=p)
        self.c2 = nn.Conv2d(width, cout, k, padding=p)

    def forward(self, x):
        return self.c2(F.relu(self.c1(x)))

    def grow_(self) -> None:
        """Makes the correction zero, so the network computes what it did without this head."""
        with torch.no_grad():
            self.c2.weight.zero_()
            self.c2.bias.zero_()


class _FreqBlock(nn.Module):
    """Residual two-layer perceptron across the frequency bins of one frame, shared by all channels.

    A convolution sees a few neighbouring bins; a voice's harmonics and formants
    span the band, which this sees whole at every level. Acting within one
    frame, it adds nothing to the receptive field in time, which exact chunking
    pays for. Plain matrices (not ``nn.Linear``) keep their names in the ONNX file.
    """

    def __init__(self, bins: int, hidden: int):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(bins, hidden) / bins ** 0.5)
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.w2 = nn.Parameter(torch.randn(hidden, bins) / hidden ** 0.5)
        self.b2 = nn.Parameter(torch.zeros(bins))

    def forward(self, x):
        return x + torch.matmul(F.relu(torch.matmul(x, self.w1) + self.b1), self.w2) + self.b2

    def grow_(self) -> None:
        """Makes the block the identity."""
        with torch.no_grad():
            self.w2.zero_()
            self.b2.zero_()


class MaskUNet(nn.Module):
    """Stereo, full-band soft-mask U-Net (the default model).

    Input: magnitudes ``(B, features, T, 1024)``, left and right (``default``)
    or also mid and side (``midside``, :func:`stereo_features`); the Nyquist
    bin is handled by the export wrapper; output: vocals mask in
    [0, 1], ``(B, channels, T, 1024)``. Five stride-2
    levels bring 1024 bins x T frames down to 32 x T/32. Layers are narrow at
    full resolution, where each channel costs most, and wide at the bottom,
    where residual blocks see seconds of context at little cost in compute.
    ``blocks`` is the number of bottleneck blocks; each widens the receptive
    field, which exact chunking re-runs around every chunk (docs/experiments.md).
    ``refine`` adds :class:`_Refine`, a full-resolution head along frequency;
    ``freq`` is the number of :class:`_FreqBlock` s: at the bottleneck, then
    after each decoder level in turn (5 at most: not after the last).
    """

    def __init__(self, channels: int = 2, features: int = 2, widths: tuple = (8, 16, 48, 128, 256),
                 bins: int = 1024, blocks: int = 1, refine: bool = False, freq: int = 0, level_norm: bool = False):
        super().__init__()
        w = list(widths)
        self.level = LevelNorm() if level_norm else None
        self.in_mean = nn.Parameter(torch.zeros(1, 1, 1, bins))
        self.in_scale = nn.Parameter(torch.ones(1, 1, 1, bins))
        self.down = nn.ModuleList()
        cin = features
        for c in w:
            self.down.append(_Down(cin, c))
            cin = c
        self.mid = _TimeBlock(w[-1])
        # Blocks after the first live apart (and last in the call order), so that a network with
        # more of them can start from a file with fewer (acapella.model.warmstart).
        self.deep = nn.ModuleList(_TimeBlock(w[-1]) for _ in range(blocks - 1))
        self.up = nn.ModuleList()
        self.up.append(_Up(w[4], w[3]))
        self.up.append(_Up(w[3] * 2, w[2]))
        self.up.append(_Up(w[2] * 2, w[1]))
        self.up.append(_Up(w[1] * 2, w[0]))
        self.up.append(_Up(w[0] * 2, w[0]))
        self.out = nn.Conv2d(w[0] + features, channels, 1)
        self.head = _Refine(channels + features, channels) if refine else None
        # Bins at the bottleneck, then after up.0 .. up.3; empty when off, so other networks' names stay as they were.
        levels = [bins >> len(w)] + [bins >> k for k in range(len(w) - 1, 0, -1)]
        self.freq = nn.ModuleList(_FreqBlock(f, max(32, f // 8)) for f in levels[:freq])

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        x, h, skips = self.encode(mag)
        for i, u in enumerate(self.up):
            h = u(h)
            if i < 4:
                h = self.join(i, h, skips)
        return self.finish(self.out(torch.cat([h, x], dim=1)), x)

    def join(self, i: int, h: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """Decoder level ``i``'s output, through its frequency block if there is one, beside the encoder's skip."""
        return torch.cat([self.freq[i + 1](h) if i + 1 < len(self.freq) else h, skips[3 - i]], dim=1)

    def encode(self, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Normalised input, bottleneck features and the encoder's skips."""
        if self.level is not None:
            mag = self.level(mag)
        x = (torch.log1p(mag) - self.in_mean) * self.in_scale
        skips = []
        h = x
        for d in self.down:
            h = d(h)
            skips.append(h)
        h = self.mid(h)
        for b in self.deep:
            h = b(h)
        if self.freq:
            h = self.freq[0](h)
        return x, h, skips

    def finish(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The mask from the output logits: refined at full resolution when there is a head."""
        if self.head is not None:
            logits = logits + self.head(torch.cat([logits, x], dim=1))
        return torch.sigmoid(logits)


class FoldedUNet(nn.Module):
    """A :class:`MaskUNet` in the form that is exported: the same function, less memory traffic.

    Each decoder BatchNorm is folded into the convolution before its pixel
    shuffle and the ReLU moves before the shuffle too (both act per pixel, so
    they commute with it), which lets onnxruntime fuse them into the
    convolution. The output convolution, a per-pixel map of the last decoder
    stage, runs before that stage's shuffle as one convolution per sub-pixel
    (``sub``), plus the input features' share at full resolution (``xo``), so
    the 8-channel full-resolution tensor, its shuffle and its concatenation
    are never made (1.84 s against 2.26 s per 4-minute song, end to end: docs/experiments.md). The
    encoder, bottleneck and head are the network's own modules, under the same
    names. ``unfold_into`` puts weights read from such a file back into a
    :class:`MaskUNet` (``acapella.model.warmstart``).
    """

    def __init__(self, net: MaskUNet, fold: bool = True):
        super().__init__()
        self.in_mean, self.in_scale, self.level = net.in_mean, net.in_scale, net.level
        self.down, self.mid, self.deep, self.head, self.freq = net.down, net.mid, net.deep, net.head, net.freq
        self.up = nn.ModuleList(nn.Conv2d(u.conv.in_channels, u.conv.out_channels, 3, padding=1) for u in net.up)
        w0, ch = net.up[-1].bn.num_features, net.out.out_channels
        self.w0 = w0
        self.sub = nn.Conv2d(4 * w0, 4 * ch, 1, bias=False)
        self.xo = nn.Conv2d(net.out.in_channels - w0, ch, 1)
        if fold:
            self._fold(net)

    encode, join, finish = MaskUNet.encode, MaskUNet.join, MaskUNet.finish

    @torch.no_grad()
    def _fold(self, net: MaskUNet) -> None:
        for u, conv in zip(net.up, self.up):
            bn = u.bn
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            # PixelShuffle makes channel c of its output from input channels 4c .. 4c + 3.
            conv.weight.copy_(u.conv.weight * scale.repeat_interleave(4)[:, None, None, None])
            conv.bias.copy_((u.conv.bias * scale.repeat_interleave(4))
                            + (bn.bias - bn.running_mean * scale).repeat_interleave(4))
        w = net.out.weight[:, :self.w0, 0, 0]
        self.sub.weight.zero_()
        for k in range(4):
            self.sub.weight[k::4, k::4, 0, 0] = w
        self.xo.weight.copy_(net.out.weight[:, self.w0:])
        self.xo.bias.copy_(net.out.bias)

    @torch.no_grad()
    def unfold_into(self, net: MaskUNet) -> list[str]:
        """Copies the decoder and output weights into ``net``; returns the names set there.

        The decoder BatchNorms stay as they are: the caller makes them the identity.
        """
        for u, conv in zip(net.up, self.up):
            u.conv.weight.copy_(conv.weight)
            u.conv.bias.copy_(conv.bias)
        net.out.weight[:, :self.w0, 0, 0] = self.sub.weight[0::4, 0::4, 0, 0]
        net.out.weight[:, self.w0:] = self.xo.weight
        net.out.bias.copy_(self.xo.bias)
        return [f"up.{i}.conv.{p}" for i in range(len(net.up)) for p in ("weight", "bias")] + ["out.weight", "out.bias"]

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        x, h, skips = self.encode(mag)
        for i, conv in enumerate(self.up):
            h = F.relu(conv(h))
            if i < 4:
                h = self.join(i, F.pixel_shuffle(h, 2), skips)
        return self.finish(F.pixel_shuffle(self.sub(h), 2) + self.xo(x), x)


class LevelNorm(nn.Module):
    """Divides the input planes ``(B, P, T, F)`` by their local RMS, so the mask does not depend on the input's level.

    The RMS is taken over all planes and bins of a frame and averaged over
    ``2 * reach + 1`` frames around it: frames keep their levels relative to
    their neighbours (a breath, a rest), while a song at -30 dB and the same
    song at 0 dB give the network the same numbers. The average has a finite
    reach, so exact chunking still holds; ``floor`` (in STFT magnitude units,
    about -120 dBFS) keeps digital silence from being blown up to full scale.
    """

    def __init__(self, reach: int = 8, floor: float = 1e-4):
        super().__init__()
        self.reach, self.floor = reach, floor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy = (x * x).mean(dim=(1, 3))  # (B, T)
        local = F.avg_pool1d(energy[:, None], 2 * self.reach + 1, stride=1, padding=self.reach,
                             count_include_pad=False)[:, 0]
        return x / (torch.sqrt(local) + self.floor)[:, None, :, None]


# Band edges in bins of a 2048-point STFT at 44.1 kHz (21.5 Hz a bin): narrow where pitch and
# formants live, wide where only the noise of breaths and cymbals does.
BAND_WIDTHS = (4,) * 8 + (8,) * 12 + (16,) * 12 + (32,) * 8 + (64,) * 7


class _BandBlock(nn.Module):
    """One layer of sequence modelling on (B, K bands, T frames, D): along time, then across bands.

    Time: a depthwise convolution dilated along frames, then a per-token MLP,
    shared by all bands; its reach is finite, which exact chunking needs.
    Bands: self-attention across the K bands of each frame, so a voice's
    harmonics in one band inform the mask of every other.
    """

    def __init__(self, dim: int, dilation: int, heads: int = 4, kernel: int = 5):
        super().__init__()
        self.t_norm = nn.LayerNorm(dim)
        self.t_conv = nn.Conv1d(dim, dim, kernel, padding=dilation * (kernel // 2), dilation=dilation, groups=dim)
        self.t_mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.b_norm = nn.LayerNorm(dim)
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.b_norm2 = nn.LayerNorm(dim)
        self.b_mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, k, t, d = h.shape
        y = self.t_norm(h).reshape(b * k, t, d).transpose(1, 2)
        y = self.t_conv(y).transpose(1, 2)
        h = h + self.t_mlp(y).reshape(b, k, t, d)
        y = self.b_norm(h).transpose(1, 2).reshape(b * t, k, d)
        q, kk, v = self.qkv(y).reshape(b * t, k, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        att = torch.softmax(q @ kk.transpose(-1, -2) * (d // self.heads) ** -0.5, dim=-1)
        y = self.proj((att @ v).transpose(1, 2).reshape(b * t, k, d))
        h = h + y.reshape(b, t, k, d).transpose(1, 2)
        return h + self.b_mlp(self.b_norm2(h))


class BandSplitNet(nn.Module):
    """Band-split mask network: split the spectrum into bands, model time and bands, predict a mask per band.

    Input: left, right, mid and side magnitudes ``(B, 4, T, 1024)``
    (:func:`stereo_features`; the Nyquist bin is handled by the export wrapper).
    After :class:`LevelNorm`, each band's magnitudes, compressed by a power of
    0.3, are projected to ``dim`` features; ``blocks`` :class:`_BandBlock` s
    with dilations doubling to ``2**(cycle-1)`` and repeating model the
    sequence; a per-band MLP gives the vocals mask in [0, 1] for its bins.
    Bands of equal width share one batched projection, so the file holds a
    handful of matrix products, not one per band.
    """

    def __init__(self, channels: int = 2, dim: int = 64, blocks: int = 6, cycle: int = 4,
                 widths: tuple = BAND_WIDTHS, reach: int = 8):
        super().__init__()
        assert sum(widths) == 1024, sum(widths)
        self.channels, self.dim = channels, dim
        self.norm = LevelNorm(reach)
        self.groups = []  # (first bin, width, bands) of each run of equal widths
        start = 0
        for w in widths:
            if self.groups and self.groups[-1][1] == w:
                self.groups[-1][2] += 1
            else:
                self.groups.append([start, w, 1])
            start += w
        feats = 2 * channels  # left, right, mid, side
        self.w_in = nn.ParameterList(nn.Parameter(torch.randn(n, feats * w, dim) / (feats * w) ** 0.5)
                                     for _, w, n in self.groups)
        self.b_in = nn.Parameter(torch.zeros(len(widths), dim))
        self.blocks = nn.ModuleList(_BandBlock(dim, 2 ** (i % cycle)) for i in range(blocks))
        self.out_norm = nn.LayerNorm(dim)
        self.w_hid = nn.Parameter(torch.randn(len(widths), dim, 2 * dim) / dim ** 0.5)
        self.b_hid = nn.Parameter(torch.zeros(len(widths), 1, 2 * dim))
        self.w_out = nn.ParameterList(nn.Parameter(torch.zeros(n, 2 * dim, channels * w)) for _, w, n in self.groups)
        self.b_out = nn.ParameterList(nn.Parameter(torch.zeros(n, 1, channels * w)) for _, w, n in self.groups)

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        c = self.channels
        feats = self.norm(mag) ** 0.3  # (B, 2C, T, F)
        b, p, t, _ = feats.shape
        parts = []
        for (start, w, n), weight in zip(self.groups, self.w_in):
            band = feats[..., start:start + n * w].reshape(b, p, t, n, w).permute(0, 3, 2, 1, 4).reshape(b, n, t, p * w)
            parts.append(band @ weight[None])  # (B, n, T, D)
        h = torch.cat(parts, dim=1) + self.b_in[None, :, None, :]
        for block in self.blocks:
            h = block(h)
        h = F.gelu(self.out_norm(h) @ self.w_hid[None] + self.b_hid[None])  # (B, K, T, 2D)
        masks, k = [], 0
        for (start, w, n), weight, bias in zip(self.groups, self.w_out, self.b_out):
            m = h[:, k:k + n] @ weight[None] + bias[None]  # (B, n, T, C*w)
            masks.append(m.reshape(b, n, t, c, w).permute(0, 3, 2, 1, 4).reshape(b, c, t, n * w))
            k += n
        return torch.sigmoid(torch.cat(masks, dim=-1))


class AcapellaBot(nn.Module):
    """The 2017 acapellabot U-Net, layer for layer (Keras "same" padding).

    Maps ``log1p(|STFT|)`` of a mono mixture ``(B, 1, T, F)`` to the vocals'
    ``log1p`` magnitude. T and F must be multiples of 4.
    """

    def __init__(self):
        super().__init__()

        def conv(cin, cout, k=3, stride=1, bias=True):
            # Keras "same": 3x3 pads 1; 4x4 stride 2 on an even size pads 1 each side.
            return nn.Conv2d(cin, cout, k, stride=stride, padding=1, bias=bias)

        # Keras BatchNormalization defaults: momentum 0.99, epsilon 1e-3.
        bn = lambda c: nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)
        self.a1, self.a2, self.abn = conv(1, 64), conv(64, 64, 4, 2, False), bn(64)
        self.b1, self.b2, self.bbn = conv(64, 64), conv(64, 64, 4, 2, False), bn(64)
        self.m1, self.m2, self.mbn = conv(64, 128), conv(128, 128, bias=False), bn(128)
        self.u1, self.u2, self.ubn = conv(128 + 64, 64), conv(64, 64, bias=False), bn(64)
        self.f1, self.f2, self.f3, self.f4 = conv(64 + 64, 64), conv(64, 64), conv(64, 32), conv(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv_a = F.relu(self.a1(x))
        h = self.abn(F.relu(self.a2(conv_a)))
        conv_b = F.relu(self.b1(h))
        h = self.bbn(F.relu(self.b2(conv_b)))
        h = self.mbn(F.relu(self.m2(F.relu(self.m1(h)))))
        h = torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), conv_b], dim=1)
        h = self.ubn(F.relu(self.u2(F.relu(self.u1(h)))))
        h = torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), conv_a], dim=1)
        h = F.relu(self.f2(F.relu(self.f1(h))))
        return F.relu(self.f4(F.relu(self.f3(h))))


def build(name: str) -> nn.Module:
    """A new network of the kind ``name`` names in :data:`NETWORKS`."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}: choose one of {', '.join(sorted(NETWORKS))}")
    return NETWORKS[name].build()


def onnx_input(name: str, spec: torch.Tensor) -> torch.Tensor:
    """The ONNX input for a complex spectrogram ``(B, C, T, F)``, as the engine builds it (`acapella.onnx_model`)."""
    if NETWORKS[name].input == "spectrum":
        return torch.cat([spec.real, spec.imag], dim=1)
    return spec.abs()


def net_input(name: str, x: torch.Tensor) -> torch.Tensor:
    """The network's input from the ONNX input (``CONFIGS[name]["input"]``); training calls it too."""
    # The Nyquist bin carries almost nothing; a mask U-Net gives it its neighbour's mask.
    net = NETWORKS[name]
    if net.input == "spectrum":
        c = net.channels
        return stereo_features(x[:, :c, :, :-1], x[:, c:, :, :-1])
    if net.target == "mask":
        return x[..., :-1]
    return F.pad(torch.log1p(x), (0, (-x.shape[-1]) % 4))


class MaskExport(nn.Module):
    """Gives every network the engine's contract: spectrogram in, vocals mask out."""

    def __init__(self, name: str, net: nn.Module):
        super().__init__()
        self.name, self.net = name, net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if NETWORKS[self.name].target == "mask":
            m = self.net(net_input(self.name, x))
            return torch.cat([m, m[..., -1:]], dim=-1)
        vocals = (torch.exp(self.net(net_input(self.name, x))) - 1.0)[..., :x.shape[-1]]  # expm1 has no ONNX operator
        # The seed predicted a vocals magnitude; as a ratio it becomes a mask on the
        # mixture, which keeps the mixture's phase and lets the stems sum to it.
        return torch.clamp(vocals / (x + 1e-6), 0.0, 1.0)
