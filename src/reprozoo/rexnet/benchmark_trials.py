"""Training throughput of the ``rexnet-channels`` study network, in several trial settings, in one run.

The same ReXNet study arm (linear schedule, SiLU, width 0.25) takes training steps (AdamW, one torch
thread) in each setting: the former trial (32x32 canvas, 10 classes, contiguous NCHW tensors, batch 64;
1,438 images x 3 epochs), that setting in the channels-last memory format, the first redesign's trial
(16x16 mirror digits, 20 classes, channels-last, batch 128; 2,876 images x 12 epochs), the second
redesign's (batch 256, 4 distorted copies x 2 epochs), the fixed-set plateau budget (2 copies x 12
epochs) and the current presets' fresh draws (:mod:`reprozoo.rexnet.channels_experiment`: 2,876 new
images every epoch x 36 epochs; drawing them costs about 3% of a trial and is not timed here). Rates are images per CPU-second of
this process, and trials per CPU-second from each setting's own trial size; ratios are against the
former trial. :func:`seed_batching` measures, in one run, several seeds trained as ONE batched model
(:class:`reprozoo.rexnet.channels_batched.StackedSeeds`, ``vmap``) against the same seeds trained one
at a time in channels-last, the experiment's way.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.nn import functional as F

# name -> (image size, classes, channels-last, batch, training images per trial)
SETTINGS = {
    "former_32px_nchw": (32, 10, False, 64, 1438 * 3),
    "32px_channels_last": (32, 10, True, 64, 1438 * 3),
    "redesign_16px_b128": (16, 20, True, 128, 2876 * 12),
    "redesign2_16px_b256": (16, 20, True, 256, 11504 * 2),
    "plateau_16px_b256": (16, 20, True, 256, 5752 * 12),
    "fresh_16px_b256": (16, 20, True, 256, 2876 * 36),
}
BASE = "former_32px_nchw"


def trial_throughput(steps: int = 6, batch: int | None = None, rounds: int = 2) -> dict[str, Any]:
    """``batch`` overrides every setting's own batch size (tests)."""
    from reprozoo.rexnet.study import Arm, build_study_model

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    cpu = dict.fromkeys(SETTINGS, 0.0)
    images = {}
    try:
        nets = {}
        gen = torch.Generator().manual_seed(0)
        for name, (size, classes, cl, bs, _) in SETTINGS.items():
            bs = batch or bs
            with torch.random.fork_rng(devices=[]):  # fixed initial weights; the caller's RNG untouched
                torch.manual_seed(0)
                model = build_study_model(Arm("linear", "silu", 0.25), image_size=size, num_classes=classes)
            x, y = torch.randn(bs, 1, size, size, generator=gen), torch.randint(0, classes, (bs,), generator=gen)
            if cl:
                model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
            nets[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3), x, y)
            images[name] = steps * bs * rounds
        for r in range(rounds + 1):  # the first round warms up and is not counted
            for name, (model, opt, x, y) in nets.items():
                start = time.process_time()
                for _ in range(steps):
                    loss = F.cross_entropy(model(x), y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                if r:
                    cpu[name] += time.process_time() - start
    finally:
        torch.set_num_threads(before)
    rate = {name: images[name] / cpu[name] for name in SETTINGS}
    trials = {name: rate[name] / SETTINGS[name][4] for name in SETTINGS}
    rows, ratios = [], {}
    for name, (*_, bs, per_trial) in SETTINGS.items():
        rows.append({"group": "trials", "setting": name, "batch": batch or bs, "trial_images": per_trial,
                     "images_per_cpu_s": round(rate[name], 1), "trials_per_cpu_s": round(trials[name], 6),
                     "ratio_vs_former": round(rate[name] / rate[BASE], 3),
                     "trial_ratio_vs_former": round(trials[name] / trials[BASE], 3)})
        if name != BASE:
            ratios[f"train images/cpu-s {name}/{BASE}"] = rate[name] / rate[BASE]
            ratios[f"trials/cpu-s {name}/{BASE}"] = trials[name] / trials[BASE]
    return {"rows": rows, "ratios": ratios}


def seed_batching(n_seeds: int = 4, steps: int = 3, batch: int = 256, size: int = 16, rounds: int = 2) -> dict[str, Any]:
    """Trials per CPU-second of ``n_seeds`` seeds of the ReXNet study arm trained as one ``vmap``-batched model
    vs one at a time (channels-last), same steps, batch and inputs, one thread, interleaved rounds."""
    import copy

    from reprozoo.rexnet.channels_batched import StackedSeeds
    from reprozoo.rexnet.study import Arm, build_study_model

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        models = []
        for seed in range(n_seeds):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                models.append(build_study_model(Arm("linear", "silu", 0.25), image_size=size, num_classes=20))
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(n_seeds, batch, 1, size, size, generator=gen)
        y = torch.randint(0, 20, (n_seeds, batch), generator=gen)
        stacked = StackedSeeds([copy.deepcopy(m) for m in models])
        alone = [m.to(memory_format=torch.channels_last) for m in models]
        opts = [torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01) for m in alone]
        xs = [xi.contiguous(memory_format=torch.channels_last) for xi in x]

        def batched():
            for _ in range(steps):
                stacked.step(x, y)

        def one_at_a_time():
            for m, opt, xi, yi in zip(alone, opts, xs, y):
                for _ in range(steps):
                    loss = F.cross_entropy(m(xi), yi)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()

        cpu = {"batched_vmap": 0.0, "one_at_a_time": 0.0}
        for r in range(rounds + 1):  # the first round warms up and is not counted
            for name, fn in (("batched_vmap", batched), ("one_at_a_time", one_at_a_time)):
                start = time.process_time()
                fn()
                if r:
                    cpu[name] += time.process_time() - start
    finally:
        torch.set_num_threads(before)
    images = n_seeds * steps * batch * rounds
    rows = [{"group": "seed batching", "setting": name, "seeds": n_seeds, "batch": batch,
             "images_per_cpu_s": round(images / cpu[name], 1),
             "ratio_vs_one_at_a_time": round(cpu["one_at_a_time"] / cpu[name], 3)} for name in cpu]
    return {"rows": rows, "ratios": {"trials/cpu-s batched_vmap/one_at_a_time": cpu["one_at_a_time"] / cpu["batched_vmap"]}}
