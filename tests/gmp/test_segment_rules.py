import math

import numpy as np
import pytest
import torch

from reprozoo.errors import ConfigError
from reprozoo.gmp.experiment import oracle_splice
from reprozoo.gmp.models import build_grounder
from reprozoo.gmp.proposals import mixture_segments
from reprozoo.gmp.segment_rules import density_segments, mixture_usage, planted_mixture, segments_by_rule

from .conftest import tiny_batch, tiny_config


def test_density_rule_gives_a_single_gaussian_the_papers_segment():
    g = torch.Generator().manual_seed(0)
    c, w = torch.rand(200, 1, generator=g), 0.02 + 0.6 * torch.rand(200, generator=g)
    one = torch.ones(200, 1)
    for fraction in (0.5, 0.2):
        dens = density_segments(c, w, one, fraction)
        assert torch.allclose(dens, mixture_segments(c, w, one), atol=5e-5)  # c +- w/2, clamped to [0, 1]
    # two Gaussians at the same place are one Gaussian
    same = density_segments(torch.tensor([[0.4, 0.4]]), torch.tensor([0.2]), torch.tensor([[0.3, 0.7]]))
    assert torch.allclose(same, torch.tensor([[0.3, 0.5]]), atol=5e-5)


def test_density_rule_spans_the_parts_of_a_planted_mixture():
    gt = torch.tensor([[0.2, 0.6], [0.1, 0.3], [0.5, 0.95]])
    c, w, a = planted_mixture(gt)
    assert torch.allclose(w, 0.4 * (gt[:, 1] - gt[:, 0]))
    assert torch.allclose(density_segments(c, w, a), gt, atol=5e-4)  # the hull of both parts
    # the paper's rule puts the segment between the parts: the middle 40% of the span
    mid = gt.mean(-1)
    assert torch.allclose(mixture_segments(c, w, a), torch.stack([mid - w / 2, mid + w / 2], -1), atol=1e-6)
    # a second Gaussian below half of the peak does not move the segment: [0.1, 0.3] stays
    weak = density_segments(torch.tensor([[0.2, 0.7]]), torch.tensor([0.2]), torch.tensor([[0.8, 0.2]]))
    assert torch.allclose(weak, torch.tensor([[0.1, 0.3]]), atol=5e-5)
    strong = density_segments(torch.tensor([[0.2, 0.7]]), torch.tensor([0.2]), torch.tensor([[0.6, 0.4]]))
    assert strong[0, 0] == pytest.approx(0.1, abs=5e-5) and strong[0, 1] > 0.75


def test_mixture_usage_measures_a_planted_mixture():
    gt = torch.tensor([[0.2, 0.6]])
    c, w, a = planted_mixture(gt)
    use = mixture_usage(c, w, a)
    assert use["nondominant"].item() == pytest.approx(0.5)
    assert use["centre_span"].item() == pytest.approx(0.4 - 0.16, abs=1e-6)  # centres 0.28 and 0.52
    # density segment [0.2, 0.6] vs centre segment [0.32, 0.48]: IoU 0.16 / 0.4
    assert use["rule_iou"].item() == pytest.approx(0.4, abs=1e-3)
    # a one-Gaussian choice (padding importance 0): nothing outside the dominant Gaussian
    pad = mixture_usage(torch.tensor([[0.3, 0.0]]), torch.tensor([0.2]), torch.tensor([[1.0, 0.0]]))
    assert pad["nondominant"].item() == 0 and pad["centre_span"].item() == 0 and pad["rule_iou"].item() == pytest.approx(1, abs=1e-4)


def test_bad_rules_are_refused():
    with pytest.raises(ConfigError, match="segment rule"):
        segments_by_rule("hull", torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1))
    with pytest.raises(ConfigError, match="fraction"):
        density_segments(torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1), fraction=1.0)
    with pytest.raises(ConfigError, match="segment_rule"):
        tiny_config(segment_rule="span").validate()


@pytest.mark.parametrize("kind", ["gmp", "cpl"])
def test_a_model_with_the_density_rule_differs_only_on_mixtures(kind):
    comps = [1, 2, 3] if kind == "gmp" else [1, 1, 1]
    torch.manual_seed(0)
    paper = build_grounder(kind, tiny_config(components=comps)).eval()
    dens = build_grounder(kind, tiny_config(components=comps, segment_rule="density")).eval()
    dens.load_state_dict(paper.state_dict())
    batch = tiny_batch(4)
    with torch.no_grad():
        a, b = paper(batch), dens(batch)
    assert torch.equal(a["loss"], b["loss"]) and torch.equal(a["masks"], b["masks"])
    single = [i for i, k in enumerate(comps) if k == 1]
    assert torch.allclose(a["segments"][:, single], b["segments"][:, single], atol=5e-5)
    if kind == "gmp":  # recomputed from the model's own mixture parameters
        k = 2
        want = density_segments(b["centres"][k], b["widths"][:, k], b["importance"][k])
        assert torch.allclose(b["segments"][:, k], want)


def test_oracle_splice_plants_mixtures_on_the_chosen_share_of_two_part_events():
    n = 50
    two = np.arange(n) % 2 == 0  # 25 two-part events
    gt = torch.stack([torch.full((n,), 0.2), torch.full((n,), 0.7)], -1)
    top1 = torch.tensor([[0.0, 0.1]]).expand(n, 2)
    out = oracle_splice(top1, gt, two, seed=3, fraction=0.5, share=0.2)
    changed = (out != top1).any(-1).numpy()
    assert changed.sum() == 5 and not changed[~two].any()  # round(0.2 x 25) two-part events, nothing else
    assert torch.allclose(out[torch.as_tensor(changed)], gt[torch.as_tensor(changed)], atol=5e-4)
    assert torch.equal(out, oracle_splice(top1, gt, two, seed=3))  # the seed fixes the choice
    assert not torch.equal(out, oracle_splice(top1, gt, two, seed=4))
    # the known effect: share x the miss rate of the spliced predictions (here every query is a miss)
    hits = lambda s: float(((torch.minimum(s[:, 1], gt[:, 1]) - torch.maximum(s[:, 0], gt[:, 0])).clamp(min=0)  # noqa: E731
                            / (torch.maximum(s[:, 1], gt[:, 1]) - torch.minimum(s[:, 0], gt[:, 0])) >= 0.5)[two]
                           .float().mean())
    assert hits(out) - hits(top1) == pytest.approx(0.2) and math.isclose(hits(top1), 0.0)
