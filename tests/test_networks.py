"""The networks of acapella.model.networks and the recipes that train them (need the [train] extra)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from acapella import Separator  # noqa: E402
from acapella.model import networks, recipes  # noqa: E402
from acapella.model.export import export  # noqa: E402


def random_heads(net):
    """Non-zero mask heads: a new BandSplitNet starts at a flat mask of one half, which proves nothing."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith(("w_out", "b_out")):
                p.normal_(0, 0.3)
    return net.eval()


def mask_of(net, name, spec):
    with torch.no_grad():
        return networks.MaskExport(name, net).eval()(networks.onnx_input(name, spec))


# --- the input's level ---

@pytest.mark.parametrize("name", ["freq4norm", "bands48x4"])
def test_a_level_normalised_network_gives_the_same_mask_at_any_gain(name):
    torch.manual_seed(0)
    net = networks.build(name)
    if name.startswith("bands"):
        net = random_heads(net)
    net.eval()
    spec = torch.randn(1, 2, 64, 1025, dtype=torch.complex64) * 20
    at_0 = mask_of(net, name, spec)
    for gain_db in (-30.0, 12.0):
        got = mask_of(net, name, spec * 10 ** (gain_db / 20))
        assert torch.max(torch.abs(got - at_0)) < 1e-3, gain_db
    assert at_0.std() > 0.01  # a mask that varies, so the comparison means something


def test_the_unnormalised_network_depends_on_the_level():
    # What LevelNorm is for: the shipped U-Net's mask moves with the gain.
    torch.manual_seed(0)
    net = networks.build("freq4").eval()
    spec = torch.randn(1, 2, 64, 1025, dtype=torch.complex64) * 20
    assert torch.max(torch.abs(mask_of(net, "freq4", spec * 10 ** (-30 / 20)) - mask_of(net, "freq4", spec))) > 1e-2


def test_level_norm_leaves_digital_silence_silent():
    x = torch.zeros(1, 4, 40, 16)
    x[:, :, 20:] = 1.0
    y = networks.LevelNorm(reach=4)(x)
    assert torch.all(y[:, :, :16] == 0) and torch.all(torch.isfinite(y))
    assert torch.allclose(y[:, :, 30:], torch.ones_like(y[:, :, 30:]), atol=1e-3)


# --- band-split networks in the engine ---

@pytest.fixture(scope="module")
def band_model(tmp_path_factory):
    torch.manual_seed(0)
    net = random_heads(networks.build("bands48x4"))
    return export("bands48x4", net, tmp_path_factory.mktemp("bands") / "bands48x4.onnx")


def test_a_band_split_file_records_its_receptive_field(band_model):
    import onnx

    meta = json.loads(onnx.load(str(band_model)).metadata_props[0].value)
    # Four blocks of dilations 1, 2, 4, 8 with kernel 5, and LevelNorm's reach of 8 frames.
    assert meta["context_frames"] == 2 * (1 + 2 + 4 + 8) + 8
    assert meta["frame_multiple"] == 1 and meta["input"] == "spectrum"


def test_a_band_split_model_separates_in_chunks_as_in_one_call(band_model, demo_stems):
    v, a = demo_stems
    mix = (v + a)[:, : 4 * 44100]
    whole = Separator(model=band_model, vocal_pan=0.0, chunk_seconds=30).separate(mix, 44100)
    chunked = Separator(model=band_model, vocal_pan=0.0, chunk_seconds=0.5).separate(mix, 44100)
    for stem in whole:
        assert np.max(np.abs(whole[stem] - chunked[stem])) < 1e-4
    assert np.max(np.abs(whole["vocals"] + whole["accompaniment"] - mix)) < 1e-5
    assert 0.05 < np.std(whole["vocals"]) / np.std(mix) < 0.95  # a mask that neither passes nor blocks all


# --- recipes ---

def test_every_recipe_names_a_network_and_counts_steps():
    for name, stages in recipes.RECIPES.items():
        for stage in stages:
            assert stage.options[stage.options.index("--model") + 1] in networks.NETWORKS, name
            assert "--steps" in stage.options and "--minutes" not in stage.options, name


def test_a_recipe_resumes_a_stage_with_a_checkpoint_and_skips_a_finished_one(tmp_path, monkeypatch):
    two = (recipes.Stage("a", ("--model", "freq4norm", "--steps", "2")),
           recipes.Stage("b", ("--model", "freq4norm", "--steps", "3")))
    monkeypatch.setitem(recipes.RECIPES, "two", two)
    [(_, first), (_, second)] = recipes.stage_argv("two", tmp_path, ["--threads", "1"])
    assert "--resume" not in first and "--init-weights" not in first and "--threads" in first
    assert second[second.index("--init-weights") + 1] == str(tmp_path / "a" / "freq4norm.safetensors")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "checkpoint.pt").write_bytes(b"")
    assert "--resume" in recipes.stage_argv("two", tmp_path, [])[0][1]
    (tmp_path / "a" / "train.json").write_text("{}")
    assert recipes.stage_argv("two", tmp_path, [])[0][1] is None


def test_a_run_writes_float_weights_that_the_next_run_starts_from(tmp_path):
    from safetensors.torch import load_file

    from acapella.model import train
    from test_training import _tiny_data

    _tiny_data(tmp_path / "data")
    common = ["--model", "bands48x4", "--batch", "2", "--frames", "32", "--loss", "sdr", "--steps", "1",
              "--data", str(tmp_path / "data"), "--cache", str(tmp_path / "cache")]
    assert train.main(common + ["--out", str(tmp_path / "a")]) == 0
    weights = load_file(str(tmp_path / "a" / "bands48x4.safetensors"))
    assert set(weights) == set(networks.build("bands48x4").state_dict())
    assert train.main(common + ["--out", str(tmp_path / "b"), "--init-weights",
                                str(tmp_path / "a" / "bands48x4.safetensors")]) == 0
    assert "started from" in (tmp_path / "b" / "train.log").read_text()


def test_init_weights_of_another_network_is_refused_in_one_line(tmp_path, capsys):
    from safetensors.torch import save_file

    from acapella.model import train
    from test_training import _tiny_data

    _tiny_data(tmp_path / "data")
    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(SystemExit) as stop:
        train.main(["--model", "bands48x4", "--batch", "2", "--frames", "32", "--steps", "1",
                    "--data", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "r"),
                    "--init-weights", str(tmp_path / "other.safetensors")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--init-weights" in err and "bands48x4" in err
