"""Training pieces that need the [train] extra (torch, onnx): skipped without it."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import onnxruntime as ort  # noqa: E402

from acapella.model import networks  # noqa: E402
from acapella.model.train import chunk_sdr_loss  # noqa: E402
from acapella.model.warmstart import calibrate, load_onnx  # noqa: E402


def small_unet(features: int = 4):
    torch.manual_seed(0)
    return trained_looking(networks.MaskUNet(features=features, widths=(4, 8, 8, 16, 16), bins=64))


def trained_looking(net):
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
    spec = torch.randn(2, 4, 64, 65) * 2  # real parts of both channels, then imaginary parts
    torch.onnx.export(networks.MaskExport("midside", net), (spec,), str(path), input_names=["spectrum"],
                      opset_version=17, dynamo=False)
    exported = ort.InferenceSession(str(path)).run(None, {"spectrum": spec.numpy()})[0]

    fresh = networks.MaskUNet(features=4, widths=(4, 8, 8, 16, 16), bins=64)
    x = networks.net_input("midside", spec)
    folded, grown = load_onnx(fresh, path, x)
    assert len(folded) == 7 and grown == []  # the five encoder BatchNorms and the two at the bottleneck
    calibrate(fresh, folded, x)
    with torch.no_grad():
        ours = networks.MaskExport("midside", fresh.eval())(spec).numpy()
    np.testing.assert_allclose(ours, exported, atol=1e-5)

    # In train mode, the calibrated BatchNorms give back their input on the calibration batch.
    fresh.train()
    for m in fresh.modules():  # the decoder's BatchNorms were not folded: hold them to their statistics
        if isinstance(m, torch.nn.BatchNorm2d) and not any(m is f for f in folded):
            m.eval()
    with torch.no_grad():
        np.testing.assert_allclose(fresh(x).numpy(), exported[..., :-1], atol=1e-4)


def test_warm_start_grows_new_input_planes_at_zero_weight(tmp_path):
    # A network on left and right magnitudes only, exported the way such a model was shipped.
    old = small_unet(features=2)
    path = tmp_path / "old.onnx"
    mag = torch.rand(1, 2, 64, 64) * 4
    wrapped = torch.nn.Module()
    wrapped.net = old  # weight names as MaskExport gives them
    wrapped.forward = lambda m: wrapped.net(m)
    wrapped.eval()
    torch.onnx.export(wrapped, (mag,), str(path), opset_version=17, dynamo=False)

    grown_net = networks.MaskUNet(features=4, widths=(4, 8, 8, 16, 16), bins=64)
    spec = torch.randn(1, 4, 64, 65)
    x = networks.net_input("midside", spec)
    folded, grown = load_onnx(grown_net, path, x)
    assert sorted(grown) == ["down.0.conv.weight", "out.weight"]
    calibrate(grown_net, folded, x)
    with torch.no_grad():
        # Mid and side are new inputs: until training moves their weights, the old network's mask comes out.
        np.testing.assert_allclose(grown_net.eval()(x).numpy(), old(x[:, :2]).numpy(), atol=1e-5)


def test_warm_start_adds_bottleneck_blocks_as_the_identity(tmp_path):
    net = small_unet()
    path = tmp_path / "net.onnx"
    spec = torch.randn(2, 4, 64, 65) * 2
    torch.onnx.export(networks.MaskExport("midside", net), (spec,), str(path), input_names=["spectrum"],
                      opset_version=17, dynamo=False)
    exported = ort.InferenceSession(str(path)).run(None, {"spectrum": spec.numpy()})[0]

    deeper = networks.MaskUNet(features=4, widths=(4, 8, 8, 16, 16), bins=64, blocks=3)
    x = networks.net_input("deep", spec)
    folded, grown = load_onnx(deeper, path, x)
    assert {n.split(".")[0] + "." + n.split(".")[1] for n in grown} == {"deep.0", "deep.1"}
    calibrate(deeper, folded, x)
    with torch.no_grad():
        np.testing.assert_allclose(networks.MaskExport("deep", deeper.eval())(spec).numpy(), exported, atol=1e-5)
        # The new blocks are real layers: once their last BatchNorm moves off zero, the mask changes.
        deeper.deep[1].b2.bias.fill_(1.0)
        assert np.abs(networks.MaskExport("deep", deeper)(spec).numpy() - exported).max() > 1e-4

    too_deep = networks.MaskUNet(features=4, widths=(4, 8, 8, 16, 16), bins=64, blocks=2)
    too_deep.deep.append(torch.nn.Conv2d(16, 16, 1))  # not a block of the file's kind
    with pytest.raises(ValueError, match="convolutions"):
        load_onnx(too_deep, path, x)


def test_export_folds_the_decoder_and_warm_start_unfolds_it(tmp_path):
    import onnx
    from acapella.model.export import export

    torch.manual_seed(0)
    net = trained_looking(networks.build("midside"))
    path = export("midside", net, tmp_path / "folded.onnx")
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "BatchNormalization" not in ops  # the decoder's went into its convolutions
    spec = torch.randn(1, 4, 64, 1025) * 2
    with torch.no_grad():
        want = networks.MaskExport("midside", net.eval())(spec).numpy()
    got = ort.InferenceSession(str(path)).run(None, {"spectrum": spec.numpy()})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)

    # A refining head grows on the folded file's network as no change, and is a real layer.
    refined = networks.build("refine")
    x = networks.net_input("refine", spec)
    folded, grown = load_onnx(refined, path, x)
    assert {n.split(".")[0] for n in grown} == {"head"}
    calibrate(refined, folded, x)
    with torch.no_grad():
        np.testing.assert_allclose(networks.MaskExport("refine", refined.eval())(spec).numpy(), want, atol=1e-5)
        refined.head.c2.bias.fill_(1.0)
        assert np.abs(networks.MaskExport("refine", refined)(spec).numpy() - want).max() > 1e-3


def test_frequency_blocks_grow_as_no_change_and_load_back_from_their_own_file(tmp_path):
    from acapella.model.export import export

    torch.manual_seed(0)
    net = trained_looking(networks.build("midside"))
    path = export("midside", net, tmp_path / "midside.onnx")
    spec = torch.randn(1, 4, 64, 1025) * 2
    want = ort.InferenceSession(str(path)).run(None, {"spectrum": spec.numpy()})[0]
    x = networks.net_input("freq", spec)

    wide = networks.build("freq")
    folded, grown = load_onnx(wide, path, x)
    assert {n.rsplit(".", 1)[0] for n in grown} == {f"freq.{i}" for i in range(5)}
    calibrate(wide, folded, x)
    with torch.no_grad():
        np.testing.assert_allclose(networks.MaskExport("freq", wide.eval())(spec).numpy(), want, atol=1e-5)
        for p in wide.freq.parameters():  # a trained-looking block changes the mask
            p.add_(torch.randn_like(p) * 0.05)
        moved = networks.MaskExport("freq", wide)(spec).numpy()
    assert np.abs(moved - want).max() > 1e-3

    # Its own file, grown blocks (whose equal zero biases the exporter merges) or moved ones, loads back whole.
    for name, source in (("grown", networks.build("freq")), ("moved", wide)):
        if name == "grown":
            calibrate(source, load_onnx(source, path, x)[0], x)
        again = export("freq", source, tmp_path / f"{name}.onnx")
        expect = ort.InferenceSession(str(again)).run(None, {"spectrum": spec.numpy()})[0]
        back = networks.build("freq")
        folded, grown = load_onnx(back, again, x)
        assert grown == []
        calibrate(back, folded, x)
        with torch.no_grad():
            np.testing.assert_allclose(networks.MaskExport("freq", back.eval())(spec).numpy(), expect, atol=1e-5)
    np.testing.assert_allclose(expect, moved, atol=1e-5)

    # "freq4" starts from a "freq" file with every block but the 512-bin one, which it does not have.
    short = networks.build("freq4")
    folded, grown = load_onnx(short, again, x)
    assert grown == []
    calibrate(short, folded, x)
    wide.freq[4].grow_()
    with torch.no_grad():
        np.testing.assert_allclose(networks.MaskExport("freq4", short.eval())(spec).numpy(),
                                   networks.MaskExport("freq", wide.eval())(spec).numpy(), atol=1e-5)


def test_stereo_features_are_left_right_mid_and_side():
    re, im = torch.randn(1, 1, 8, 5), torch.randn(1, 1, 8, 5)
    centred = networks.stereo_features(torch.cat([re, re], 1), torch.cat([im, im], 1))
    mag = torch.sqrt(re ** 2 + im ** 2)[:, 0]
    for plane in (0, 1, 2):  # left, right and mid are the one signal
        np.testing.assert_allclose(centred[:, plane].numpy(), mag.numpy(), rtol=1e-6)
    assert centred[:, 3].abs().max().item() == 0.0  # nothing in the side
    opposite = networks.stereo_features(torch.cat([re, -re], 1), torch.cat([im, -im], 1))
    assert opposite[:, 2].abs().max().item() == 0.0
    np.testing.assert_allclose(opposite[:, 3].numpy(), mag.numpy(), rtol=1e-6)


def test_engine_feeds_a_spectrum_model_what_training_feeds_it(tmp_path):
    from acapella.onnx_model import OnnxModel
    from acapella.model.export import export

    torch.manual_seed(0)
    net = networks.build("midside")
    path = export("midside", net, tmp_path / "spectrum.onnx")
    model = OnnxModel(path)
    assert model.input == "spectrum" and model.spec.input == "spectrum"
    rng = np.random.default_rng(0)
    spec = (rng.standard_normal((2, 64, 1025)) + 1j * rng.standard_normal((2, 64, 1025))).astype(np.complex64)
    with torch.no_grad():
        want = networks.MaskExport("midside", net.eval())(networks.onnx_input("midside", torch.from_numpy(spec)[None]))
    np.testing.assert_allclose(model.mask(spec), want[0].numpy(), atol=1e-4)


def test_warm_start_refuses_another_network(tmp_path):
    path = tmp_path / "net.onnx"
    spec = torch.rand(1, 4, 64, 65)
    torch.onnx.export(networks.MaskExport("midside", small_unet()), (spec,), str(path), opset_version=17, dynamo=False)
    with pytest.raises(ValueError, match="shape"):
        load_onnx(networks.MaskUNet(features=4, widths=(4, 8, 8, 16, 32), bins=64), path, networks.net_input("midside", spec))


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


def _tiny_data(root):
    import soundfile as sf

    rng = np.random.default_rng(0)
    noise = lambda ch, sr: (rng.standard_normal((sr, ch)) * 0.1).astype(np.float32)
    song = root / "musdb7-train" / "Some Artist - Some Song"
    song.mkdir(parents=True)
    for stem in ("vocals", "accompaniment", "drums", "bass", "other"):
        sf.write(song / f"{stem}.wav", noise(2, 44100), 44100)
    (root / "pjs-vocals" / "song1").mkdir(parents=True)
    sf.write(root / "pjs-vocals" / "song1" / "vocals.ogg", noise(1, 44100), 44100)
    clip = root / "mir1k-train" / "singer_1_01"
    clip.mkdir(parents=True)
    for stem in ("vocals", "accompaniment"):
        sf.write(clip / f"{stem}.ogg", noise(1, 16000), 16000)


def test_training_starts_from_an_onnx_file_resumes_and_exports(tmp_path):
    from acapella.model import train
    from acapella.onnx_model import OnnxModel

    _tiny_data(tmp_path / "data")
    out = tmp_path / "run"
    common = ["--model", "midside", "--batch", "2", "--frames", "64", "--loss", "sdr", "--mono", "0.5",
              "--data", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--out", str(out)]
    # A network on left and right only: mid and side grow in at zero weight.
    from acapella.model.export import export

    torch.manual_seed(0)
    net = networks.build("default")
    with torch.no_grad():  # trained-looking statistics: the exporter merges identical initializers
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    lr_only = export("default", net, tmp_path / "lr.onnx")
    assert train.main(common + ["--steps", "2", "--init", str(lr_only), "--grown-lr", "1e-3"]) == 0
    assert "new input planes at zero weight" in (out / "train.log").read_text()
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 2
    assert train.main(common + ["--steps", "3", "--resume"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 3
    model = OnnxModel(out / "midside.onnx")
    mask = model.mask(np.ones((2, 64, 1025), np.complex64))
    assert mask.shape == (2, 64, 1025) and np.all((mask >= 0) & (mask <= 1))


def test_corpora_option_reads_weights_and_refuses_unknown_names():
    import argparse
    from acapella.model.train import corpus_weights

    assert corpus_weights("musdb=0.8,pjs=0.1") == {"musdb": 0.8, "pjs": 0.1}
    for bad in ("musdb18=1", "musdb=high", "pjs=-1", "musdb=0,pjs=0,mir1k=0"):
        with pytest.raises(argparse.ArgumentTypeError):
            corpus_weights(bad)


def test_semitones_option_refuses_a_range_that_is_not_positive(tmp_path, capsys):
    from acapella.model import train

    for bad in ("0", "-3"):
        with pytest.raises(SystemExit):
            train.main(["--out", str(tmp_path / "run"), "--semitones", bad])
        assert f"--semitones {float(bad)}: the largest shift must be above 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_share_options_refuse_values_that_are_not_probabilities(tmp_path, capsys):
    from acapella.model import train

    assert train.probability("0.3") == 0.3 and train.probability("1") == 1.0
    for option in ("--varispeed", "--mono", "--effects", "--paired", "--layers", "--reverse", "--quiet", "--pan"):
        for bad in ("1.5", "-0.1", "often"):
            with pytest.raises(SystemExit):
                train.main(["--out", str(tmp_path / "run"), option, bad])
            err = capsys.readouterr().err
            assert f"argument {option}: " in err and "between 0 and 1" in err
    assert not (tmp_path / "run").exists()


def test_ema_run_exports_the_average_and_export_can_pick_either(tmp_path):
    from acapella.model import export, train
    from acapella.onnx_model import OnnxModel

    _tiny_data(tmp_path / "data")
    out = tmp_path / "run"
    common = ["--model", "default", "--batch", "2", "--frames", "64", "--loss", "sdr", "--lr", "1e-2",
              "--data", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--out", str(out)]
    assert train.main(common + ["--steps", "2"]) == 0
    with pytest.raises(SystemExit):  # its checkpoint holds no average to resume
        train.main(common + ["--steps", "3", "--resume", "--ema", "0.5"])
    for bad in ("1", "0", "-0.1"):
        with pytest.raises(SystemExit):
            train.main(common + ["--steps", "1", "--ema", bad])

    out = tmp_path / "ema"
    common[-1] = str(out)
    assert train.main(common + ["--steps", "2", "--ema", "0.5"]) == 0
    assert train.main(common + ["--steps", "4", "--resume", "--ema", "0.5"]) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["step"] == 4 and int(state["ema"]["n_averaged"]) == 4
    last, avg = state["net"], {k.removeprefix("module."): v for k, v in state["ema"].items() if k != "n_averaged"}
    # The average trails the weights: at a high rate four steps apart they differ.
    assert max(float((last[k].float() - avg[k].float()).abs().max()) for k in last) > 1e-4

    spec = np.random.default_rng(0).standard_normal((2, 64, 1025)).astype(np.float32) * (1 + 1j)
    run_file = OnnxModel(out / "default.onnx").mask(spec)
    for weights, same in (("ema", True), ("last", False)):
        path = tmp_path / f"{weights}.onnx"
        assert export.main(["--model", "default", "--checkpoint", str(out / "checkpoint.pt"), "--out", str(path),
                            "--weights", weights]) == 0
        assert np.allclose(OnnxModel(path).mask(spec), run_file, atol=1e-6) == same

    # Several checkpoints: their weights are averaged; one checkpoint twice is that checkpoint.
    plain = tmp_path / "run" / "checkpoint.pt"
    twice, soup = tmp_path / "twice.onnx", tmp_path / "soup.onnx"
    ema_ckpt = out / "checkpoint.pt"
    assert export.main(["--model", "default", "--checkpoint", str(ema_ckpt), str(ema_ckpt), "--out", str(twice)]) == 0
    assert np.allclose(OnnxModel(twice).mask(spec), run_file, atol=1e-6)
    a, b = export.load_weights(plain), export.load_weights(ema_ckpt)
    mean = export.average_weights([a, b])
    key = next(k for k in a if k.endswith("weight") and not torch.equal(a[k], b[k]))
    assert torch.allclose(mean[key], (a[key] + b[key]) / 2)
    assert export.main(["--model", "default", "--checkpoint", str(plain), str(ema_ckpt), "--out", str(soup)]) == 0
    assert not np.allclose(OnnxModel(soup).mask(spec), run_file, atol=1e-4)
    with pytest.raises(SystemExit):  # one of the files is not there
        export.main(["--model", "default", "--checkpoint", str(plain), str(tmp_path / "none.pt"), "--out", str(soup)])


def test_quantized_model_keeps_the_mask_and_warm_starts_training(tmp_path):
    import json

    import onnx
    import soundfile as sf
    from acapella import demo
    from acapella.model.export import export
    from acapella.model.quantize import quantize
    from acapella.onnx_model import OnnxModel
    from acapella.transforms import STFT

    torch.manual_seed(0)
    net = trained_looking(networks.build("midside"))
    source = export("midside", net, tmp_path / "float.onnx")
    for k in range(3):  # calibration songs: the synthetic demo, not the research data
        song = tmp_path / "data" / "musdb7-train" / f"Demo - Song {k}"
        song.mkdir(parents=True)
        v, a = demo.song(7.0, 44100, seed=2 * k)
        sf.write(song / "vocals.flac", v.T, 44100)
        sf.write(song / "accompaniment.flac", a.T, 44100)
    out = quantize(source, tmp_path / "int8.onnx", tmp_path / "data")
    assert out.stat().st_size < 0.35 * source.stat().st_size

    f32, q8 = OnnxModel(source), OnnxModel(out)
    assert q8.spec == f32.spec and q8.parameters == f32.parameters
    graph = onnx.load(str(out)).graph
    assert sum(n.op_type == "DequantizeLinear" for n in graph.node) > 14
    # Convolutions in the source's order, which a warm start relies on.
    conv_names = lambda g: [n.name for n in g.node if n.op_type == "Conv"]
    assert conv_names(graph) == conv_names(onnx.load(str(source)).graph)

    v, a = demo.song(8.0, 44100, seed=11)  # not one of the calibration songs
    spec = STFT(2048, 1024).forward(v + a)[:, :256]
    want, got = f32.mask(spec), q8.mask(spec)
    err = np.abs(got - want)
    assert 0 < err.mean() < 0.01 and err.max() < 0.2

    # Training starts from the 8-bit file as from the float one, its integer weights read back as floats.
    fresh = networks.build("midside")
    x = torch.from_numpy(f32.features(spec))
    folded, grown = load_onnx(fresh, out, networks.net_input("midside", x))
    assert grown == []
    calibrate(fresh, folded, networks.net_input("midside", x))
    with torch.no_grad():
        ours = networks.MaskExport("midside", fresh.eval())(x).numpy().reshape(want.shape)
    assert np.abs(ours - want).mean() < 0.01 and np.abs(ours - got).mean() < 0.01

    with pytest.raises(ValueError, match="already quantized"):
        quantize(out, tmp_path / "again.onnx", tmp_path / "data")

    # Layers kept float: their convolutions read float weights, the others still dequantize theirs.
    mixed = quantize(source, tmp_path / "mixed.onnx", tmp_path / "data", keep_float=("down.0",))
    g = onnx.load(str(mixed)).graph
    made_by = {o: n.op_type for n in g.node for o in n.output}
    weight_from = {n.name: made_by.get(n.input[1], "initializer") for n in g.node if n.op_type == "Conv"}
    assert weight_from["/net/down.0/conv/Conv"] == "initializer"
    assert sum(v == "DequantizeLinear" for v in weight_from.values()) == len(weight_from) - 1
    meta = {p.key: p.value for p in onnx.load(str(mixed)).metadata_props}
    assert json.loads(meta["acapella"])["float_layers"] == ["down.0"]
    assert np.abs(OnnxModel(mixed).mask(spec) - want).mean() < 0.01
    with pytest.raises(ValueError, match="no convolution of layer 'down.9'"):
        quantize(source, tmp_path / "bad.onnx", tmp_path / "data", keep_float=("down.9",))


def test_calibration_draws_mir1k_clips_as_the_engine_sees_them(tmp_path, capsys, monkeypatch):
    import soundfile as sf
    from acapella import demo
    from acapella.model.export import export
    from acapella.model.quantize import calibration_inputs, parse_calibration
    from acapella.onnx_model import OnnxModel

    torch.manual_seed(0)
    source = export("midside", trained_looking(networks.build("midside")), tmp_path / "float.onnx")
    model = OnnxModel(source)
    song = tmp_path / "data" / "musdb7-train" / "Demo - Song"
    song.mkdir(parents=True)
    v, a = demo.song(7.0, 44100, seed=1)
    sf.write(song / "vocals.flac", v.T, 44100)
    sf.write(song / "accompaniment.flac", a.T, 44100)
    for name, seconds in [("Demo_1_01", 8.0), ("Demo_1_02", 3.0), ("Demo_1_03", 9.0)]:  # 16 kHz mono, as MIR-1K
        clip = tmp_path / "data" / "mir1k-train" / name
        clip.mkdir(parents=True)
        v, a = demo.song(seconds, 16000, seed=len(name) + int(seconds))
        sf.write(clip / "vocals.ogg", v.mean(axis=0), 16000)
        sf.write(clip / "accompaniment.ogg", a.mean(axis=0), 16000)

    feeds = calibration_inputs(model, tmp_path / "data", parse_calibration("musdb=1,mir1k=2"), frames=288)
    assert len(feeds) == 3 and len({f.shape for f in feeds}) == 1  # the 3 s clip is too short and passed over
    for mir in feeds[1:]:
        channels = mir.reshape(mir.shape[0], 2, model.channels, -1)  # real and imaginary parts, per channel
        assert np.array_equal(channels[:, :, 0], channels[:, :, 1])  # mono doubled, as the engine doubles it
        assert np.abs(mir).max() > 0
    assert not np.array_equal(feeds[1], feeds[2])
    with pytest.raises(ValueError, match="vocals=2"):
        parse_calibration("musdb=16,vocals=2")
    with pytest.raises(ValueError, match="musdb7-train"):
        calibration_inputs(model, tmp_path / "nowhere", {"musdb": 1})

    # Fewer usable clips than asked is said, none at all is an error that says why.
    assert len(calibration_inputs(model, tmp_path / "data", {"musdb": 3}, frames=288)) == 1
    assert "calibrating on 1 musdb clip(s), not the 3 asked" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no calibration clip of at least 100000 frames"):
        calibration_inputs(model, tmp_path / "data", {"musdb": 1}, frames=100000)
    # Without --data, the data root is found as training finds it.
    from acapella.model import quantize

    monkeypatch.setenv("ACAPELLA_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(SystemExit):
        quantize.main([str(source), str(tmp_path / "int8.onnx")])
    assert f"no musdb training clips at {tmp_path / 'elsewhere' / 'musdb7-train'}" in capsys.readouterr().err


class _Clock:
    """A clock 1000 s on at every reading, so that training writes a checkpoint after every step."""

    def __init__(self):
        import time

        self._time, self.now = time, time.time()

    def time(self):
        self.now += 1000.0
        return self.now

    def __getattr__(self, name):
        return getattr(self._time, name)


def test_a_stopped_run_resumed_ends_on_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch):
    import shutil

    import soundfile as sf
    from acapella.model import train

    _tiny_data(tmp_path / "data")
    # A song without its vocals: left out, with a warning, before the songs are paired.
    bad = tmp_path / "data" / "musdb7-train" / "Other Artist - No Vocals"
    bad.mkdir()
    sf.write(bad / "accompaniment.wav", np.zeros((44100, 2), np.float32), 44100)
    monkeypatch.setattr(train, "time", _Clock())
    monkeypatch.setattr(train, "export", lambda name, net, path: path)  # the weights are compared, not the file
    common = ["--model", "default", "--steps", "4", "--batch", "2", "--frames", "32", "--paired", "0.5",
              "--varispeed", "0.3", "--data", str(tmp_path / "data"), "--cache", str(tmp_path / "cache")]

    def weights(run):
        return torch.load(tmp_path / run / "checkpoint.pt", weights_only=False)

    assert train.main(common + ["--out", str(tmp_path / "whole")]) == 0
    log = (tmp_path / "whole" / "train.log").read_text()
    assert log.count("warning: ") == 1 and f"{bad}: no vocals stem" in log

    class Stopped(Exception):
        pass

    saves, save = [], torch.save

    def save_twice(obj, f):  # stopped while writing its third checkpoint: the one of step 2 stays
        if len(saves) == 2:
            raise Stopped
        saves.append(f)
        save(obj, f)

    monkeypatch.setattr(torch, "save", save_twice)
    with pytest.raises(Stopped):
        train.main(common + ["--out", str(tmp_path / "stopped")])
    monkeypatch.setattr(torch, "save", save)
    assert weights("stopped")["step"] == 2
    shutil.copytree(tmp_path / "stopped", tmp_path / "old")

    assert train.main(common + ["--out", str(tmp_path / "stopped"), "--resume"]) == 0
    whole, resumed = weights("whole"), weights("stopped")
    assert resumed["step"] == 4
    for k, v in whole["net"].items():
        assert torch.equal(v, resumed["net"][k]), k

    # A checkpoint from before the random streams were saved still resumes.
    old = weights("old")
    del old["rng"]
    torch.save(old, tmp_path / "old" / "checkpoint.pt")
    assert train.main(common + ["--out", str(tmp_path / "old"), "--resume"]) == 0
    assert weights("old")["step"] == 4 and "resumed at step 2" in (tmp_path / "old" / "train.log").read_text()


def test_bad_options_and_data_are_refused_in_one_line_before_anything_is_written(tmp_path, capsys, monkeypatch):
    import shutil

    from acapella.model import train

    data = tmp_path / "data"
    _tiny_data(data)
    out = tmp_path / "run"
    (tmp_path / "empty").mkdir()
    shutil.copytree(data / "musdb7-train", tmp_path / "partial" / "musdb7-train")
    for folder in ("musdb7-train", "pjs-vocals", "mir1k-train"):
        (tmp_path / "hollow" / folder).mkdir(parents=True)
    (tmp_path / "junk.onnx").write_bytes(b"\x08not an onnx file" * 8)
    (tmp_path / "other").mkdir()
    torch.save({"net": {}, "step": 1, "args": {"model": "midside"}}, tmp_path / "other" / "checkpoint.pt")
    base = ["--model", "default", "--steps", "1", "--batch", "2", "--frames", "64", "--data", str(data),
            "--cache", str(tmp_path / "cache"), "--out", str(out)]
    cases = [
        (["--steps", "0"], "argument --steps: '0': give a whole number of at least 1"),
        (["--steps", "-1"], "argument --steps: '-1': give a whole number of at least 1"),
        (["--minutes", "0"], "argument --minutes: 0 must be a finite number above 0"),
        (["--minutes", "-1"], "argument --minutes: -1 must be a finite number above 0"),
        (["--minutes", "nan"], "argument --minutes: nan must be a finite number above 0"),
        (["--minutes", "inf"], "argument --minutes: inf must be a finite number above 0"),
        (["--batch", "0"], "argument --batch: '0': give a whole number of at least 1"),
        (["--threads", "0"], "argument --threads: '0': give a whole number of at least 1"),
        (["--lr", "-1"], "argument --lr: -1 must be a finite number above 0"),
        (["--frames", "0"], "argument --frames: '0': give a whole number of at least 1"),
        (["--frames", "50"], "--frames 50: must be a positive multiple of 32"),
        (["--data", str(tmp_path / "nowhere")], f"--data {tmp_path / 'nowhere'}: no such folder"),
        (["--data", str(tmp_path / "empty")], "no musdb7-train/ folder"),
        (["--data", str(tmp_path / "partial")], "no pjs-vocals/ folder, which the pjs corpus (weight 0.2) is read from"),
        (["--data", str(tmp_path / "hollow")], "no vocal clips to train on"),
        (["--init", str(tmp_path / "junk.onnx")], f"--init {tmp_path / 'junk.onnx'}: not an ONNX file"),
        (["--resume"], f"--resume: no checkpoint at {out / 'checkpoint.pt'}"),
        (["--resume", "--out", str(tmp_path / "other")], "was trained with --model midside, not --model default"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit) as stop:
            train.main(base + extra)
        err = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 2 and message in err[-1], (extra, err)
        assert err[-1].startswith("python -m acapella.model.train: error: ")
    assert not out.exists()

    # No --data, and none where the default looks.
    monkeypatch.setattr(train, "default_data_root", lambda: tmp_path / "shared" / "data")
    with pytest.raises(SystemExit):
        train.main(base[:base.index("--data")] + base[base.index("--data") + 2:])
    assert f"no data folder: {tmp_path / 'shared' / 'data'} is not there" in capsys.readouterr().err
    assert not out.exists()

    # A corpus that is not drawn need not be there.
    monkeypatch.setattr(train, "export", lambda name, net, path: path)
    assert train.main(base + ["--data", str(tmp_path / "partial"), "--corpora", "pjs=0,mir1k=0"]) == 0


def test_export_refuses_what_is_not_a_checkpoint_of_its_network_in_one_line(tmp_path, capsys):
    from acapella.model import export

    net = networks.build("default")
    ckpt, bare, junk = tmp_path / "checkpoint.pt", tmp_path / "bare.pt", tmp_path / "junk.pt"
    torch.save({"net": net.state_dict(), "step": 1, "args": {"model": "default"}}, ckpt)
    torch.save({"net": net.state_dict()}, bare)  # no record of its network
    junk.write_bytes(b"\x08not a checkpoint" * 8)
    (tmp_path / "file").write_text("")
    cases = [
        (["--model", "midside", "--checkpoint", str(ckpt)], "was trained with --model default, not --model midside"),
        (["--model", "midside", "--checkpoint", str(bare)], "size mismatch for down.0.conv.weight"),
        (["--model", "default", "--checkpoint", str(junk)], f"{junk} is not a training checkpoint"),
        (["--model", "default", "--checkpoint", str(ckpt), "--out", str(tmp_path / "file" / "x.onnx")],
         f"--out {tmp_path / 'file' / 'x.onnx'}: cannot write there"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as stop:
            export.main(["--out", str(tmp_path / "x.onnx")] + args)
        err = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 2 and message in err[-1], (args, err)
    assert not (tmp_path / "x.onnx").exists()
