"""The model contract (timm's) over every registered model: ``create_model(name, **small_kwargs)``
builds it, it runs a tiny CPU input (and ``forward_features`` where defined), a checkpoint saved
with ``save_checkpoint`` loads bit-identically through ``create_model(name, checkpoint_path=...)``
and ``load_checkpoint``, an unknown keyword is a ConfigError naming it, and ``pretrained=True`` is a
ConfigError where the package ships no weights."""

from __future__ import annotations

import pytest
import torch

from reprozoo import create_model, list_models
from reprozoo.errors import ConfigError
from reprozoo.runtime.checkpoint import load_checkpoint, save_checkpoint


def _img(c: int, s: int, b: int = 2):
    return lambda: (torch.randn(b, c, s, s),)


def _gmp_batch():
    words = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    return ({"video": torch.randn(2, 12, 8), "words": words, "lengths": torch.tensor([3, 2]),
             "weights": torch.ones(2, 4), "mask_seed": torch.tensor([0, 1])},)


def _speech():
    return torch.randn(2, 20, 16), torch.tensor([20, 13])


def _nb201_genotype(model):
    model.set_genotype("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")


GMP = dict(vocab_size=12, word_dim=8, frame_dim=8, d_model=8, heads=2, layers=1, ffn=8, grid=8)
VIT = dict(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2, num_classes=10)
PIT = dict(img_size=32, patch_size=8, stride=4, base_dims=(8, 8, 8), depth=(1, 1, 1), heads=(1, 2, 2),
           num_classes=10)
R50 = dict(layers=(1, 1, 1, 1), width_mult=0.25, num_classes=10)
REXNET = dict(num_classes=10)

# name -> (small kwargs, input factory, prepare(model) before a forward or None)
SPECS = {
    "cpl_charades": (GMP, _gmp_batch, None),
    "pps_charades": ({**GMP, "components": [1, 2]}, _gmp_batch, None),
    "pps_activitynet": ({**GMP, "components": [1, 2]}, _gmp_batch, None),
    "ctc_crnn_small": ({"n_mels": 16}, _speech, None),
    "ctc_crnn_tiny": ({"n_mels": 16}, _speech, None),
    "ctc_tcn_tiny": ({"n_mels": 16, "width": 16}, _speech, None),
    "darts_cifar": ({"C": 4, "layers": 3}, _img(3, 32, 1), None),
    "genas_darts_supernet": ({"C": 4, "layers": 3}, _img(3, 16, 1), "darts"),
    "eclips_cnn_small": ({"width": 2, "embed_dim": 4}, _img(3, 16), None),
    "eclips_cnn_ensemble": ({"k": 2, "width": 2, "embed_dim": 4}, _img(3, 16), None),
    "nara_made": ({"length": 8, "hidden": (16,)}, lambda: ((torch.rand(2, 8) > 0.5).float(),), None),
    "nara_causal_conv": ({"length": 8, "channels": 4, "dilations": (1, 2)}, lambda: (torch.randn(2, 8),), None),
    "nb201_supernet": ({"C": 4, "cells_per_stage": 1}, _img(3, 16, 1), _nb201_genotype),
    "nb201_net": ({"C": 4, "cells_per_stage": 1}, _img(3, 16, 1), None),
    "nb201_tiny_supernet": ({}, _img(1, 8), _nb201_genotype),
    "nb201_tiny_net": ({}, _img(1, 8), None),
    "vit_ti_max": (VIT, _img(3, 32, 1), None),
    "vit_s_max": (VIT, _img(3, 32, 1), None),
    "vit_b_max": (VIT, _img(3, 32, 1), None),
    "vit_s_attn": (VIT, _img(3, 32, 1), None),
    "pit_ti_max": (PIT, _img(3, 32, 1), None),
    "pit_s_max": (PIT, _img(3, 32, 1), None),
    "pit_b_max": (PIT, _img(3, 32, 1), None),
    "resnet50_pf": (R50, _img(3, 32, 1), None),
    "r50_max": (R50, _img(3, 32, 1), None),
    "r50_hybrid": (R50, _img(3, 32, 1), None),
    "prodlda": ({"n_topics": 3, "n_words": 20}, lambda: (torch.rand(2, 20) * 3,) * 2, None),
    "tvq_topic_model": ({"n_topics": 3, "n_words": 20, "n_codes": 6, "code_dim": 4},
                        lambda: (torch.rand(2, 6), torch.rand(2, 20) * 3), None),
    "tvq_vq_autoencoder": ({"input_dim": 8, "hidden_dims": (8,), "code_dim": 4, "n_codes": 6, "n_neighbors": 2},
                           lambda: (torch.randn(4, 8),), None),
    "rm_cnn_digits": ({}, _img(1, 8), None),
    "rm_mlp_digits": ({}, lambda: (torch.randn(2, 64),), None),
    "rm_mlp400": ({"in_features": 12}, lambda: (torch.randn(2, 12),), None),
    "rm_resnet18_cifar": ({}, _img(3, 8, 1), None),
    "rm_resnet32_cifar": ({}, _img(3, 8, 1), None),
    "sinet": ({}, _img(3, 32, 1), None),
    "sinet_encoder": ({}, _img(3, 32, 1), None),
    **{name: (REXNET, _img(3, 32, 1), None) for name in
       ("rexnet_090", "rexnet_100", "rexnet_130", "rexnet_150", "rexnet_200", "rexnet_220", "rexnet_300",
        "rexnet_lite_100", "rexnet_lite_130", "rexnet_lite_150", "rexnet_lite_200")},
}
# full-width models whose constructor has no smaller setting (their cost is the weights, up to tens
# of MB): rexnet_100 and rexnet_lite_100 stand for their class in the fast run
SLOW = {"rexnet_090", "rexnet_130", "rexnet_150", "rexnet_200", "rexnet_220", "rexnet_300", "rexnet_lite_130",
        "rexnet_lite_150", "rexnet_lite_200", "rm_resnet18_cifar"}
# models the test cannot cover, with the reason (none at present)
NOT_COVERED: dict[str, str] = {}


def _prepare(model, how):
    if how == "darts":
        import numpy as np

        from reprozoo.genas.spaces import sample_darts  # a random cell of the search space

        model.set_genotype(sample_darts(np.random.default_rng(0)))
    elif how is not None:
        how(model)
    return model.eval()


def _flat(out):
    if torch.is_tensor(out):
        return [out]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in _flat(out[k])]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _flat(o)]
    return []


def _run(model, inputs, fn="forward"):
    torch.manual_seed(0)  # models that sample (a topic model's reparameterisation) draw the same noise
    with torch.no_grad():
        return _flat(getattr(model, fn)(*inputs))


def _randomise_statistics(model):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                t.normal_()


def _library_models() -> set[str]:
    """Registered by the library (tests register throwaway models of their own)."""
    from reprozoo.runtime import registry

    return {n for n in list_models() if registry._MODELS[n].__module__.startswith("reprozoo.")}


def test_every_registered_model_has_a_spec():
    names = _library_models()
    assert names - set(SPECS) - set(NOT_COVERED) == set(), "add a tiny input spec for the new model(s)"
    assert set(SPECS) - names == set(), "a spec names a model that is no longer registered"


def _params():
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(SPECS)]


@pytest.mark.parametrize("name", _params())
def test_model_contract(name, tmp_path):
    kwargs, make_inputs, how = SPECS[name]
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    _randomise_statistics(model)
    _prepare(model, how)
    inputs = make_inputs()
    out = _run(model, inputs)
    assert out and all(torch.isfinite(t).all() for t in out if t.is_floating_point())
    features = _run(model, inputs, "forward_features") if hasattr(model, "forward_features") else None

    path = save_checkpoint(model, tmp_path / f"{name}.safetensors")
    again = save_checkpoint(model, tmp_path / f"{name}-again.safetensors")
    assert path.read_bytes() == again.read_bytes()  # saving is deterministic, metadata included
    for loaded in (create_model(name, checkpoint_path=path), load_checkpoint(path)[0]):
        mine, theirs = model.state_dict(), loaded.state_dict()
        assert list(mine) == list(theirs) and all(torch.equal(mine[k], theirs[k]) for k in mine)
        _prepare(loaded, how)
        assert all(torch.equal(a, b) for a, b in zip(out, _run(loaded, inputs), strict=True))
        if features is not None:
            assert all(torch.equal(a, b) for a, b in zip(features, _run(loaded, inputs, "forward_features"),
                                                         strict=True))

    with pytest.raises(ConfigError, match=f"model '{name}' does not take not_a_setting="):
        create_model(name, **kwargs, not_a_setting=1)


def test_checkpoints_in_the_former_two_key_metadata_layout_still_load(tmp_path):
    import json

    from safetensors.torch import save_file

    from reprozoo.runtime.checkpoint import FORMAT, META_KEY, checkpoint_meta

    torch.manual_seed(0)
    model = create_model("rm_mlp_digits")
    path = save_checkpoint(model, tmp_path / "new.safetensors")
    meta = checkpoint_meta(path)
    assert meta["format"] == FORMAT and meta["model"] == "rm_mlp_digits"
    old = tmp_path / "old.safetensors"  # written as before: the format also as its own metadata key
    save_file(dict(model.state_dict()), str(old), metadata={"format": FORMAT, META_KEY: json.dumps(meta)})
    loaded, _ = load_checkpoint(old)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    foreign = tmp_path / "foreign.safetensors"  # another tool's JSON under the same key is not ours
    save_file({"w": torch.zeros(1)}, str(foreign), metadata={META_KEY: json.dumps({"x": 1})})
    assert checkpoint_meta(foreign) is None


def test_pretrained_is_refused_where_a_package_ships_no_weights():
    import inspect

    from reprozoo.runtime import registry

    list_models()  # registers every constructor
    for name in sorted(SPECS):
        if "pretrained" in inspect.signature(registry._MODELS[name]).parameters:
            continue
        with pytest.raises(ConfigError, match=f"model '{name}' has no pretrained weights"):
            create_model(name, pretrained=True)


def test_common_argument_names_are_refused_by_name_where_they_do_not_apply():
    with pytest.raises(ConfigError, match=r"model 'rm_cnn_digits' does not take drop_rate=\.\.\.; it takes: "
                                          r"in_chans, num_classes, width"):
        create_model("rm_cnn_digits", drop_rate=0.1)
