"""The official-checkpoint loader (strict key map) and the four differences from the official PPS code,
each tested both ways on the golden fixture (tests/fixtures/gmp)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from reprozoo.errors import CheckpointError, ConfigError
from reprozoo.gmp.config import GrounderConfig
from reprozoo.gmp.data import ToyConfig, make_world
from reprozoo.gmp.inference import load_grounder, save_grounder
from reprozoo.gmp.layers import sinusoidal_positions
from reprozoo.gmp.models import GMP
from reprozoo.gmp.official import (
    SKIPPED_PREFIXES,
    convert_official_state_dict,
    load_official_checkpoint,
    official_config,
)
from tests.gmp.conftest import tiny_config
from tests.gmp.official_fixture import (
    BATCHED_OFFICIAL,
    CLIPS,
    FIXTURES,
    NAMES,
    TOL,
    batch,
    golden,
    importance_table,
    load,
    max_diff,
    tensors,
)


def _official(name: str) -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURES / f"{name}_weights.safetensors"))


@pytest.mark.parametrize("name", NAMES)
def test_loader_places_every_used_official_key_and_skips_only_the_dead_ones(name):
    sd = _official(name)
    config = official_config(golden(name)["config"], clips=CLIPS)
    assert config.components == list(range(1, golden(name)["num_props"] + 1)) and config.grid == 16
    ours = convert_official_state_dict(sd, config)
    skipped = [k for k in sd if k.startswith(SKIPPED_PREFIXES)]
    assert len(sd) == 246 - 2 * (7 - len(config.components)) and len(skipped) == 72 + 2  # 246 keys for K = 7
    assert set(ours) == set(GMP(config).state_dict()) - {"embeddings"}
    d = config.d_model  # the fused official in_proj rows are q, k, v in that order
    fused = sd["trans_reconstructor.decoder2.decoder_layers.1.encoder_attn.in_proj_weight"]
    assert torch.equal(ours["reconstructor.dec2.layers.1.cross_attn.k.weight"], fused[d:2 * d])
    assert torch.equal(ours["pool.score.weight"], sd["attn_func.to_alpha.weight"])
    assert torch.equal(ours["pred_vec_q"], torch.full((config.word_dim,), 0.37))
    with pytest.raises(CheckpointError, match="cannot place"):
        convert_official_state_dict({**sd, "extra.weight": torch.zeros(1)}, config)
    with pytest.raises(CheckpointError, match="lacks 'fc_comp.bias'"):
        convert_official_state_dict({k: v for k, v in sd.items() if k != "fc_comp.bias"}, config)
    with pytest.raises(CheckpointError, match="has shape"):
        convert_official_state_dict(sd, official_config(golden(name)["config"], clips=CLIPS, frame_dim=47))


def test_loader_reads_the_official_runner_checkpoint_with_its_stored_config(tmp_path):
    sd = _official("activitynet")
    sd["pred_vec_q"] = torch.arange(32.0)  # a trained checkpoint: every entry different
    path = tmp_path / "model-30.pt"
    torch.save({"num_updates": 7, "config": golden("activitynet")["config"], "model_parameters": sd}, path)
    with pytest.warns(UserWarning, match="entry 0"):
        model = load_official_checkpoint(path, clips=CLIPS, legacy_eos_cut=True)
    assert not model.training and model.config.official and model.config.legacy_eos_cut
    assert model.config.shrink == 0.15 and model.config.alpha_pull == 0.2 and model.config.sigma_neg == 3.0
    assert torch.equal(model.pred_vec_q, torch.zeros(40))
    with pytest.raises(CheckpointError, match="no official checkpoint"):
        load_official_checkpoint(tmp_path / "missing.pt")
    torch.save({"model_parameters": sd}, tmp_path / "bare.pt")
    with pytest.raises(ConfigError, match="config.json"):
        load_official_checkpoint(tmp_path / "bare.pt")
    bad = {"model": dict(golden("activitynet")["config"]["model"], neg_type="gaussian"), "loss": {}}
    with pytest.raises(ConfigError, match="not supported"):
        official_config(bad, clips=CLIPS)


def test_official_choices_resolve_from_the_official_switch():
    assert all(GrounderConfig().choice(n) for n in ("zero_start_position", "pad_generator_pred",
                                                    "pad_reconstructor_pred"))
    cfg = GrounderConfig(official=False, pad_generator_pred=True)
    assert cfg.choice("pad_generator_pred") and not cfg.choice("zero_start_position")
    assert not GrounderConfig().legacy_eos_cut and not GrounderConfig().legacy_width_indexing  # bugs stay fixed
    with pytest.raises(ConfigError, match="true, false or null"):
        GrounderConfig(zero_start_position="yes").validate()


def test_zero_start_position_both_ways():
    torch.manual_seed(0)
    words, lengths = torch.tensor([[3, 4, 0], [5, 6, 7]]), torch.tensor([2, 3])
    model = GMP(tiny_config(zero_start_position=True))
    other = GMP(tiny_config(zero_start_position=False))
    other.load_state_dict(model.state_dict())
    a, b = model._word_tokens(words, lengths)[0], other._word_tokens(words, lengths)[0]
    assert torch.allclose(b[:, 0] - a[:, 0], sinusoidal_positions(1, 16)[0].expand(2, -1))  # [0 ... 0, 1 ... 1]
    assert torch.allclose(a[:, 1:], b[:, 1:])
    # on the golden inputs: only the official choice reproduces the official code
    flipped = load("charades", **BATCHED_OFFICIAL, zero_start_position=False)
    with torch.no_grad():
        assert max_diff(flipped(batch("charades"))["loss"], tensors("charades")["nll"]) > 0.1


@pytest.mark.parametrize("name", NAMES)
def test_padded_prediction_keys_both_ways(name):
    b, t = batch(name), tensors(name)
    k_max = golden(name)["num_props"]
    with torch.no_grad():
        gen = load(name, **BATCHED_OFFICIAL, pad_generator_pred=False)(b)
        rec = load(name, **BATCHED_OFFICIAL, pad_reconstructor_pred=False)(b)
    # the generator's PRED_v attending to itself changes its state and everything read from it
    assert max_diff(gen["h"], t["gen_pred_state"]) > 0.01 and max_diff(gen["loss"], t["nll"]) > 1e-3
    # the reconstructor's PRED_q slot only feeds the importances: the generator, the single-Gaussian
    # proposal and every component are the official ones, the mixtures' importances are not
    assert max_diff(rec["h"], t["gen_pred_state"]) < TOL and max_diff(rec["loss"][:, 0], t["nll"][:, 0]) < TOL
    assert max_diff(rec["components"][-1], t[f"components_{k_max}"]) < 5e-5
    assert max_diff(importance_table(rec, k_max), t["importance"]) > 1e-3
    assert max_diff(rec["loss"], t["nll"]) > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_end_of_sentence_target_fix_and_legacy_cut(name):
    b, t = batch(name), tensors(name)
    lengths = b["lengths"]
    longest = lengths == lengths.max()
    with torch.no_grad():
        fixed = load(name, legacy_width_indexing=True)(b)["loss"]
    # the fix changes nothing for sentences shorter than the batch's longest (they keep their EOS
    # target officially too) and restores the EOS target of the longest ones
    assert max_diff(fixed[~longest], t["nll"][~longest]) < TOL
    assert max_diff(fixed[longest], t["nll"][longest]) > 1e-3
    # batch dependence: sample 0 (its own width in both runs) alone vs in the batch
    with torch.no_grad():
        for legacy in (False, True):
            model = load(name, legacy_width_indexing=True, legacy_eos_cut=legacy)
            alone, batched = model(batch(name, [0]))["loss"][0], model(b)["loss"][0]
            assert (max_diff(alone, batched) < 1e-9) != legacy


def test_checkpoints_keep_the_official_options(tmp_path):
    world = make_world(ToyConfig(), 0)
    for official in (True, False):
        model = GMP(tiny_config(vocab_size=len(world.vocab), word_dim=32, official=official))
        loaded, _, _ = load_grounder(save_grounder(model, tmp_path / "g.safetensors", world.vocab, clips=64))
        assert loaded.config.official == official and loaded.config.choice("zero_start_position") == official
