"""Training pieces that need the [train] extra (torch, onnx): skipped without it."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import onnxruntime as ort  # noqa: E402

from acapella.model import networks  # noqa: E402
from acapella.model.train import chunk_sdr_loss  # noqa: E402
from acapella.model.warmstart import calibrate, load_onnx  # noqa: E402


def small_unet():
    torch.manual_seed(0)
    net = networks.MaskUNet(widths=(4, 8, 8, 16, 16), bins=64)
    with torch.no_grad():  # trained-looking BatchNorm statistics, not the identity
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def test_warm_start_reproduces_the_exported_network(tmp_path):
    net = small_unet()
    path = tmp_path / "net.onnx"
    mag = torch.rand(2, 2, 64, 65) * 4
    torch.onnx.export(networks.MaskExport("default", net), (mag,), str(path), input_names=["magnitude"],
                      opset_version=17, dynamo=False)
    exported = ort.InferenceSession(str(path)).run(None, {"magnitude": mag.numpy()})[0]

    fresh = networks.MaskUNet(widths=(4, 8, 8, 16, 16), bins=64)
    folded = load_onnx(fresh, path, mag[..., :-1])
    assert len(folded) == 7  # the five encoder BatchNorms and the two at the bottleneck
    calibrate(fresh, folded, mag[..., :-1])
    with torch.no_grad():
        ours = networks.MaskExport("default", fresh.eval())(mag).numpy()
    np.testing.assert_allclose(ours, exported, atol=1e-5)

    # In train mode, the calibrated BatchNorms give back their input on the calibration batch.
    fresh.train()
    for m in fresh.modules():  # the decoder's BatchNorms were not folded: hold them to their statistics
        if isinstance(m, torch.nn.BatchNorm2d) and not any(m is f for f in folded):
            m.eval()
    with torch.no_grad():
        np.testing.assert_allclose(fresh(mag[..., :-1]).numpy(), exported[..., :-1], atol=1e-4)


def test_warm_start_refuses_another_network(tmp_path):
    path = tmp_path / "net.onnx"
    mag = torch.rand(1, 2, 64, 65)
    torch.onnx.export(networks.MaskExport("default", small_unet()), (mag,), str(path), opset_version=17, dynamo=False)
    with pytest.raises(ValueError, match="shape"):
        load_onnx(networks.MaskUNet(widths=(4, 8, 8, 16, 32), bins=64), path, mag[..., :-1])


def test_chunk_sdr_loss_is_the_error_to_mixture_ratio_in_db():
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(2, 2, 64, 33, dtype=torch.complex64, generator=g)
    valid = torch.ones(2, 1, 1, 33)
    # An error at a tenth of the amplitude is -20 dB in every chunk; the floor lifts it a little.
    assert chunk_sdr_loss(0.1 * mix, mix, valid, floor_db=-200).item() == pytest.approx(-20.0, abs=1e-3)
    assert chunk_sdr_loss(0.1 * mix, mix, valid, floor_db=-30).item() == pytest.approx(
        10 * np.log10(0.01 + 0.001), abs=1e-3)
    # Each chunk counts alike however loud it is: a chunk 40 dB quieter with the same relative error.
    quiet = mix.clone()
    quiet[:, :, 32:] *= 0.01
    assert chunk_sdr_loss(0.1 * quiet, quiet, valid, floor_db=-200).item() == pytest.approx(-20.0, abs=1e-3)
    # Bins outside `valid` (above a band-limited clip's cutoff) do not count.
    err = 0.1 * mix
    err[..., 20:] = 10.0
    valid[..., 20:] = 0.0
    assert chunk_sdr_loss(err, mix, valid, floor_db=-200).item() == pytest.approx(-20.0, abs=1e-3)
