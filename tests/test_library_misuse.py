"""Library misuse across the method packages: each call raises a reprozoo error with one line
(not a raw RuntimeError / IndexError / ValueError, and never a silent NaN or a plausible number)."""

import math

import numpy as np
import pytest
import torch

from reprozoo.errors import ReproZooError

NAN = math.nan


def _rng():
    return np.random.default_rng(0)


class _NanNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.full((len(x), 4), NAN) + self.w


def _cases():
    from reprozoo.activeasr import acquisition as aq
    from reprozoo.activeasr import features as af
    from reprozoo.data import grounding as dg
    from reprozoo.data import noisy_digits as ndg
    from reprozoo.eclips import models as em
    from reprozoo.genas import proxies as gp
    from reprozoo.gmp import metrics as gm
    from reprozoo.nara import data as nd
    from reprozoo.nara import training as nt
    from reprozoo.pflayer import ops as po
    from reprozoo.rainbow import memory as rm
    from reprozoo.sinet import inference as si
    from reprozoo.sinet import losses as sl
    from reprozoo.sinet import metrics as sm
    from reprozoo.tvqvae import baselines as tb
    from reprozoo.tvqvae import preprocess as tp

    lp = torch.log_softmax(torch.randn(5, 2, 29, generator=torch.Generator().manual_seed(0)), -1)
    seg = torch.tensor([[[0.1, 0.4], [0.2, 0.6], [0.5, 0.9]]])
    return [
        ("sinet mean_iou NaN", lambda: sm.mean_iou(torch.tensor([[NAN, 1.0], [1.0, 2.0]])),
         r"^confusion matrix must be finite"),
        ("sinet confusion label 5", lambda: sm.confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 5])),
         r"^labels must be class ids in 0..1 or 255 \(ignored\), got 5$"),
        ("sinet confusion float pred", lambda: sm.confusion_matrix(torch.tensor([0.5, 1.0]), torch.tensor([0, 1])),
         r"^pred must be integer class ids, got torch.float32$"),
        ("sinet fg_iou shapes", lambda: sm.per_image_fg_iou(torch.zeros(2, 4, 4, dtype=torch.long),
                                                            torch.zeros(3, 4, 4, dtype=torch.long)),
         r"^pred and labels must have one shape"),
        ("sinet letterbox size", lambda: si.letterbox(torch.rand(1, 3, 8, 8), -1), r"^size must be >= 1, got -1$"),
        ("sinet letterbox fill", lambda: si.letterbox(torch.rand(1, 3, 8, 6), 8, fill=NAN),
         r"^fill must be a finite number, got nan$"),
        ("gmp vote NaN loss", lambda: gm.vote_top1(seg, torch.tensor([[NAN, 1.0, 2.0]])),
         r"^losses must be finite; index \(0, 0\) is nan"),
        ("gmp vote weighting", lambda: gm.vote_top1(seg, torch.rand(1, 3), "x"),
         r"^vote weighting must be 'loss' or 'uniform', got 'x'$"),
        ("gmp vote shapes", lambda: gm.vote_top1(seg, torch.rand(1, 4)), r"^segments must be \(B, K >= 1, 2\)"),
        ("gmp recall n 0", lambda: gm.recall_table(seg[:, 0], seg, seg[:, 0], ns=(0,)), r"^n must be >= 1, got 0$"),
        ("gmp recall iou 2", lambda: gm.recall_table(seg[:, 0], seg, seg[:, 0], ious=(2,)),
         r"^IoU threshold must be <= 1.0, got 2.0$"),
        ("asr least_confidence NaN", lambda: aq.least_confidence(torch.full((5, 2, 29), NAN), torch.tensor([5, 5])),
         r"^log_probs must be finite"),
        ("asr frame_entropy length 9", lambda: aq.frame_entropy(lp, torch.tensor([9, 5])),
         r"^lengths must be in 0..5 \(the frames of log_probs\), got \[9, 5\]$"),
        ("asr select NaN score", lambda: aq.select_top([1.0, NAN, 3.0], 2, rng=_rng()), r"^scores must be finite"),
        ("asr select NaN budget", lambda: aq.select_top([1.0, 2.0], NAN, rng=_rng()),
         r"^budget must be a finite number, got nan$"),
        ("asr select negative cost", lambda: aq.select_top([1.0, 2.0], 2, costs=[1, -1], rng=_rng()),
         r"^costs must be 2 values >= 0 \(one per score\), got 2 values with a negative one$"),
        ("grounding resample NaN", lambda: dg.resample_clips(np.full((4, 3), NAN), 8),
         r"^features must be finite; index \(0, 0\) is nan"),
        ("grounding resample 0 clips", lambda: dg.resample_clips(np.zeros((4, 3)), 0), r"^clips must be >= 1, got 0$"),
        ("rainbow stride NaN uncertainty", lambda: rm.stride_select([NAN, 1.0, 2.0, 3.0], [0, 0, 1, 1], 2, [0, 1],
                                                                    _rng()), r"^uncertainty must be finite"),
        ("rainbow stride float labels", lambda: rm.stride_select([0.0, 1.0, 2.0, 3.0], [0.5, 0, 1, 1], 2, [0, 1],
                                                                 _rng()), r"^labels must be integer labels"),
        ("rainbow herding NaN", lambda: rm.herding_order(torch.full((4, 3), NAN), 2), r"^feats must be finite"),
        ("rainbow herding m > n", lambda: rm.herding_order(torch.rand(4, 3), 9), r"^m must be <= 4, got 9$"),
        ("rainbow stride_pick k -1", lambda: rm.stride_pick([0, 1, 2], -1), r"^k must be >= 1, got -1$"),
        ("rainbow capacity float", lambda: rm.check_capacity(2.5, 2), r"^capacity must be an integer, got 2.5$"),
        ("genas combined NaN weight", lambda: gp.acc_flatness(gp.pure_flatness(), gamma=NAN),
         r"^the weight of pure_flatness in acc\+flatness must be a finite number, got nan$"),
        ("tvqvae tokenize None", lambda: tp.tokenize(None), r"^a document must be a string, got NoneType None$"),
        ("pflayer op channels", lambda: po.make_spatial_op("conv3x3", -1), r"^channels must be >= 1, got -1$"),
        ("nara sines NaN noise", lambda: nd.noisy_sines(4, noise_std=NAN), r"^noise_std must be a finite number"),
        ("nara sines range", lambda: nd.noisy_sines(4, amplitude=(1.0, 0.5)),
         r"^amplitude must be a \(low, high\) range with low <= high, got \(1.0, 0.5\)$"),
        ("nara fit lr NaN", lambda: nt.FitConfig(lr=NAN).validate(), r"lr > 0$"),
        ("eclips predict NaN frames", lambda: em.predict(em.base_learner(8, 8), torch.full((2, 3, 32, 32), NAN)),
         r"^the model's probabilities are not finite"),
        ("tvqvae ctfidf cluster 5", lambda: tb.ctfidf(np.ones((3, 4)), np.array([0, 5, 0]), 2),
         r"^clusters must be <= 1; index 1 is 5$"),
        ("tvqvae ctfidf NaN", lambda: tb.ctfidf(np.full((3, 4), NAN), np.array([0, 1, 0]), 2),
         r"^bow must be finite"),
        ("rainbow votes NaN logits", lambda: rm.vote_uncertainty(_NanNet(), torch.rand(3, 3, 8, 8), n_votes=2),
         r"^the model's logits are not finite on the perturbed copies"),
        ("rainbow votes float n", lambda: rm.vote_uncertainty(_NanNet(), torch.rand(3, 3, 8, 8), n_votes=2.5),
         r"^n_votes must be an integer, got 2.5$"),
        ("sinet class weights c", lambda: sl.class_weights(torch.zeros(2, 4, 4, dtype=torch.long), c=0.5),
         r"^c must be > 1.0, got 0.5$"),
        ("sinet class weights NaN", lambda: sl.class_weights(torch.zeros(2, 4, 4, dtype=torch.long), c=NAN),
         r"^c must be a finite number, got nan$"),
        ("sinet band kernel float", lambda: sl.boundary_band(torch.zeros(1, 4, 4, dtype=torch.long), 2.5),
         r"^the boundary kernel must be an integer, got 2.5$"),
        ("asr augment NaN strength", lambda: af.AugmentConfig(strength=NAN).validate("view1"),
         r"^view1.strength must be a finite number, got nan$"),
        ("asr augment NaN snr", lambda: af.AugmentConfig(noise_snr_db=(NAN, 5.0)).validate(),
         r"^augment.noise_snr_db\[0\] must be a finite number, got nan$"),
        ("asr features NaN mels", lambda: af.FeatureConfig(n_mels=NAN).validate(), r"^n_mels must be an integer, got nan$"),
        ("noisy digits NaN noise", lambda: ndg.noisy_digits(np.arange(4), noise=NAN),
         r"^noise must be a finite number >= 0, got nan$"),
    ]


CASES = _cases()


@pytest.mark.parametrize("name, call, message", CASES, ids=[c[0] for c in CASES])
def test_misuse_raises_one_line_reprozoo_error(name, call, message):
    with pytest.raises(ReproZooError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_valid_calls_still_answer():
    from reprozoo.activeasr.acquisition import select_top
    from reprozoo.rainbow.memory import herding_order, stride_select
    from reprozoo.sinet.metrics import confusion_matrix, mean_iou

    cm = confusion_matrix(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 255, 1]))
    assert cm.tolist() == [[1, 0], [1, 1]] and mean_iou(cm) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert select_top([1.0, 3.0, 2.0], 2, rng=_rng()) == [1, 2]
    assert select_top([1.0, 3.0, 2.0], 2.5, costs=[1.0, 2.0, 1.0], rng=_rng()) == [1]
    assert sorted(stride_select([0.0, 1.0, 2.0, 3.0], [0, 0, 1, 1], 2, [0, 1], _rng()).tolist()) in ([0, 2], [0, 3],
                                                                                                     [1, 2], [1, 3])
    assert sorted(herding_order(torch.eye(3), 3).tolist()) == [0, 1, 2]


def _loaders():
    from reprozoo.eclips.inference import load_antispoofer as eclips_load
    from reprozoo.gmp.inference import load_grounder as gmp_load
    from reprozoo.runtime.checkpoint import load_checkpoint
    from reprozoo.sinet.inference import load_checkpoint as sinet_load

    return [("eclips", eclips_load, "not a reprozoo.checkpoint/1 file"),
            ("sinet", sinet_load, "is not a readable checkpoint"),
            ("gmp", gmp_load, "not a reprozoo.checkpoint/1 file"), ("runtime", load_checkpoint, "not a reprozoo")]


@pytest.mark.parametrize("name, load, message", _loaders(), ids=[x[0] for x in _loaders()])
@pytest.mark.parametrize("content", [b"\x00garbage" * 10, b"", b"PK\x03\x04 not a zip"])
def test_corrupt_checkpoints_are_one_line(tmp_path, name, load, message, content):
    from reprozoo.errors import CheckpointError

    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        load(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    if name != "sinet":  # the library format is a .safetensors file: a damaged one is one line too
        path = path.rename(tmp_path / "model.safetensors")
        with pytest.raises(CheckpointError, match="cannot read checkpoint") as info:
            load(path)
        assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_eclips_checkpoint_without_its_fields(tmp_path):
    from reprozoo.eclips.inference import load_antispoofer
    from reprozoo.errors import CheckpointError
    from reprozoo.runtime.checkpoint import save_checkpoint
    from reprozoo.runtime.registry import create_model

    path = save_checkpoint(create_model("eclips_cnn_small", width=2, embed_dim=4), tmp_path / "e.safetensors")
    with pytest.raises(CheckpointError, match=r"e.safetensors: not an antispoof checkpoint \(it lacks image_size, "
                                              r"mean, std, threshold, mc_samples\)$"):
        load_antispoofer(path)
