"""Training throughput of the ``rexnet-channels`` study network, three ways in one run.

The same ReXNet study arm (linear schedule, SiLU, width 0.25) takes training steps (AdamW, batch 128,
one torch thread) in the former trial setting (32x32 canvas, 10 classes, contiguous NCHW tensors), in
that setting with the channels-last memory format, and in the current one (16x16 mirror digits, 20
classes, channels-last). Rates are images per CPU-second of this process and trials per CPU-second for
the current trial (2,876 images x 12 epochs); ratios are against the former setting.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.nn import functional as F

SETTINGS = {"former_32px_nchw": (32, 10, False), "32px_channels_last": (32, 10, True),
            "current_16px_channels_last": (16, 20, True)}
TRIAL_IMAGES = 2876 * 12


def trial_throughput(steps: int = 6, batch: int = 128, rounds: int = 2) -> dict[str, Any]:
    from reprozoo.rexnet.study import Arm, build_study_model

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    cpu = dict.fromkeys(SETTINGS, 0.0)
    try:
        torch.manual_seed(0)
        nets = {}
        for name, (size, classes, cl) in SETTINGS.items():
            model = build_study_model(Arm("linear", "silu", 0.25), image_size=size, num_classes=classes)
            x, y = torch.randn(batch, 1, size, size), torch.randint(0, classes, (batch,))
            if cl:
                model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
            nets[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3), x, y)
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
    images = steps * batch * rounds
    base = images / cpu["former_32px_nchw"]
    rows, ratios = [], {}
    for name in SETTINGS:
        rate = images / cpu[name]
        rows.append({"group": "trials", "setting": name, "images_per_cpu_s": round(rate, 1),
                     "trials_per_cpu_s": round(rate / TRIAL_IMAGES, 6), "ratio_vs_former": round(rate / base, 3)})
        if name != "former_32px_nchw":
            ratios[f"train images/cpu-s {name}/former_32px_nchw"] = rate / base
    return {"rows": rows, "ratios": ratios}
