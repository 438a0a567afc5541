import copy

import torch
import torch.nn.functional as F

from reprozoo.rexnet.channels_batched import StackedSeeds, sequential_steps
from reprozoo.rexnet.study import Arm, build_study_model


def _models(n: int):
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(build_study_model(Arm("linear", "silu", 0.25), image_size=16, num_classes=20))
    return out


def _data(n: int):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 8, 1, 16, 16, generator=g), torch.randint(0, 20, (n, 8), generator=g)


def test_batched_seeds_have_the_one_at_a_time_gradients_and_bn_statistics():
    torch.set_num_threads(1)
    x, y = _data(3)
    models = _models(3)
    stacked = StackedSeeds([copy.deepcopy(m) for m in models], lr=0.0, weight_decay=0.0)
    logits = stacked.step(x, y)  # lr 0: the weights stay, .grad keeps the batched gradients
    for i, model in enumerate(models):
        model.train()
        out = model(x[i])
        F.cross_entropy(out, y[i]).backward()
        assert torch.allclose(logits[i], out.detach(), atol=1e-5, rtol=1e-4)
        for name, p in model.named_parameters():
            assert torch.allclose(stacked.params[name].grad[i], p.grad, atol=1e-6, rtol=1e-3), name
        state = stacked.state(i)
        for name, b in model.named_buffers():  # each seed's own BN running statistics
            if b.is_floating_point():
                assert torch.allclose(state[name], b, atol=1e-6, rtol=1e-4), name
    # the seeds differ (own init, own batches), so the equality is not trivial
    assert not torch.allclose(logits[0], logits[1], atol=1e-2)
    assert not torch.allclose(stacked.state(0)["stem.bn.running_mean"], stacked.state(1)["stem.bn.running_mean"])


def test_batched_training_steps_match_one_at_a_time():
    torch.set_num_threads(1)
    x, y = _data(2)
    models = _models(2)
    stacked = StackedSeeds([copy.deepcopy(m) for m in models], lr=1e-2)
    for _ in range(2):
        logits = stacked.step(x, y)
    alone = sequential_steps(models, x, y, steps=2, lr=1e-2)
    for i in range(2):  # step 2 runs on the weights and BN statistics after one AdamW step
        assert torch.allclose(logits[i], alone[i], atol=1e-4, rtol=1e-4)
