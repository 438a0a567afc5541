"""Several seeds of one continual-learning arm trained as ONE batched model (``torch.func``).

The per-seed models are stacked with ``torch.func.stack_module_state`` and run with ``vmap`` over
``functional_call``; a hand-written SGD (momentum, Nesterov, weight decay, as ``torch.optim.SGD``
computes it) updates every seed's slice, masked for seeds that have no batch at a step (their
streams differ in length). Everything random stays per seed and is drawn in the same order as
:class:`~reprozoo.rainbow.strategies.ContinualLearner` draws it: initial weights and heads from the
same seeded forks, batch orders, memory draws, reservoir updates and RM's vote perturbations from
each seed's own generators. So a seed gives the numbers it gives alone, up to float rounding
(batched matrix products sum in another order). Heads of different widths (a class missing from a
seed's stream) are zero-padded and their extra logits masked out.

Supported: methods rm / er / gdumb / finetune (any memory policy), online or offline, no
augmentation or CutMix, fresh head and optimiser per task, final-epoch accuracy, and models without
batch norm or dropout (:func:`can_batch`); everything else runs one seed at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from reprozoo.rainbow.memory import EpisodicMemory, RainbowPolicy, make_policy
from reprozoo.rainbow.metrics import class_accuracy
from reprozoo.rainbow.strategies import CLSettings, StreamResult, epoch_lrs
from reprozoo.runtime.accel import resolve_device

BATCHABLE_METHODS = ("rm", "er", "gdumb", "finetune")


def can_batch(settings: CLSettings, model_fn: Callable[[], nn.Module]) -> bool:
    """Whether :class:`BatchedLearner` runs these settings and this model exactly as the sequential
    learner does (no augmentation, no EWC, no batch norm / dropout, per-task head and optimiser)."""
    s = settings
    if (s.method not in BATCHABLE_METHODS or s.cutmix or s.aug_policy != "none" or s.crop_pad or s.hflip
            or not s.reset_head or not s.reset_optimizer or s.task_acc != "last"):
        return False
    with torch.random.fork_rng(devices=[]):
        model = model_fn()
    return not any(isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Dropout)) for m in model.modules())


class _SeedView(nn.Module):
    """One seed's slice of the stacked model as a plain module (for vote scoring and evaluation)."""

    def __init__(self, template: nn.Module, params: dict, buffers: dict, n_out: int, head: set[str]):
        super().__init__()
        self._template = [template]  # a list: not registered as a submodule
        self._p = {k: (v[:n_out] if k in head else v) for k, v in params.items()}
        self._b = buffers
        self.anchor = nn.Parameter(torch.zeros(0, device=next(iter(params.values())).device), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self._template[0], (self._p, self._b), (x,))


class BatchedLearner:
    """Runs one arm for ``len(seeds)`` seeds at once; ``fit`` returns one StreamResult per seed."""

    def __init__(self, model_fns: Sequence[Callable[[], nn.Module]], settings: CLSettings,
                 device: str | torch.device = "auto", seeds: Sequence[int] = (0,)):
        if len(model_fns) != len(seeds):
            raise ValueError("one model_fn per seed")
        self.model_fns, self.s = list(model_fns), settings
        self.device, self.seeds = torch.device(resolve_device(device)), list(seeds)

    # ------------------------------------------------------------------ model state
    def _seeded_build(self, i: int, index: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seeds[i] * 1000 + index)
            return self.model_fns[i]().to(self.device)

    def _load(self, models: list[nn.Module]) -> None:
        params, buffers = stack_module_state(models)
        self.params = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
        self.buffers = {k: v.detach().clone() for k, v in buffers.items()}

    def _reset_heads(self, models: list[nn.Module], t: int, n_outs: list[int]) -> None:
        heads = []
        for i, m in enumerate(models):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seeds[i] * 1000 + 500 + t)
                heads.append(m.reset_head(n_outs[i]))
        width = max(n_outs)
        for name in ("weight", "bias"):
            rows = [getattr(h, name).detach() for h in heads]
            rows = [torch.cat([r, r.new_zeros((width - len(r), *r.shape[1:]))]) for r in rows]
            self.params[self.head_names[name]] = torch.stack(rows).requires_grad_()
        self.n_outs = list(n_outs)
        self.logit_mask = torch.stack([torch.arange(width, device=self.device) >= n for n in n_outs])
        self.padded_heads = bool(self.logit_mask.any())

    def _reset_optimizer(self) -> None:
        self.bufs = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.started = torch.zeros(len(self.seeds), dtype=torch.bool, device=self.device)

    def view(self, i: int) -> nn.Module:
        p = {k: v[i].detach() for k, v in self.params.items()}
        b = {k: v[i] for k, v in self.buffers.items()}
        return _SeedView(self.template, p, b, self.n_outs[i], set(self.head_names.values()))

    # ------------------------------------------------------------------ training
    def _fetch(self, i: int, keys: np.ndarray) -> torch.Tensor:
        x = self.x_train[i][torch.as_tensor(keys, dtype=torch.long)]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x
        return x.to(self.device)

    def _stack_data(self) -> None:
        """Every seed's training inputs as one float tensor ``[S, N_max, ...]`` (zero rows pad shorter
        sets; a pad is never indexed as a real sample) and labels ``[S, N_max]``, for one gather per step."""
        n_max = max(len(x) for x in self.x_train)
        xs, ys = [], []
        for x, y in zip(self.x_train, self.labels):
            x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
            xs.append(torch.cat([x, x.new_zeros((n_max - len(x), *x.shape[1:]))]))
            ys.append(np.concatenate([y, np.zeros(n_max - len(y), np.int64)]))
        self.x_all = torch.stack(xs).to(self.device)
        self.y_all = torch.as_tensor(np.stack(ys), device=self.device)
        self.rows = torch.arange(len(self.seeds), device=self.device)[:, None]

    def _step(self, keys: list[np.ndarray | None], lr: float) -> None:
        s, n = self.s, len(self.seeds)
        width = max(len(k) for k in keys if k is not None)
        idx = np.zeros((n, width), np.int64)
        w = np.zeros((n, width), np.float32)
        for i, k in enumerate(keys):
            if k is not None:
                idx[i, :len(k)] = k
                w[i, :len(k)] = 1.0
        idx_t = torch.as_tensor(idx, device=self.device)
        x, y = self.x_all[self.rows, idx_t], self.y_all[self.rows, idx_t]
        wt = torch.as_tensor(w, device=self.device)
        y = y.masked_fill(wt == 0, 0)  # padding rows: any valid class (their weight is 0)
        logits = vmap(self._forward)(self.params, self.buffers, x)
        if self.padded_heads:
            logits = logits.masked_fill(self.logit_mask[:, None, :], float("-inf"))
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none").view(n, width)
        count = wt.sum(1)
        loss = ((ce * wt).sum(1) / count.clamp(min=1)).sum()
        names = list(self.params)
        grads = torch.autograd.grad(loss, [self.params[k] for k in names])
        active = count > 0
        every = bool(active.all())
        first, started = not bool(self.started.any()), bool(self.started.all())
        with torch.no_grad():
            for name, g in zip(names, grads):
                p, buf = self.params[name], self.bufs[name]
                d_p = g.add(p, alpha=s.weight_decay) if s.weight_decay else g
                if every and (first or started):  # the common step: every seed moves, same momentum state
                    if s.momentum:
                        if first:
                            buf.copy_(d_p)
                        else:
                            buf.mul_(s.momentum).add_(d_p)
                        d_p = d_p.add(buf, alpha=s.momentum) if s.nesterov else buf
                    p.add_(d_p, alpha=-lr)
                    continue
                shape = (n,) + (1,) * (p.dim() - 1)
                act, on = active.view(shape), self.started.view(shape)
                if s.momentum:
                    new_buf = torch.where(on, buf * s.momentum + d_p, d_p)
                    buf.copy_(torch.where(act, new_buf, buf))
                    d_p = d_p.add(new_buf, alpha=s.momentum) if s.nesterov else new_buf
                p.copy_(torch.where(act, p - lr * d_p, p))
            self.started |= active

    def _forward(self, p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.template, (p, b), (x,))

    def _train(self, streams: list[np.ndarray] | None, epochs: int, who: list[int]) -> None:
        """One training call for the seeds in ``who`` (a stream pass, or ``epochs`` memory epochs)."""
        s = self.s
        for lr in epoch_lrs(epochs, s.lr, s.schedule, s.warmup, s.eta_min_ratio):
            if streams is not None:
                plans = {}
                for i in who:
                    mem = self.memory[i]
                    with_mem = len(mem) > 0
                    bs = s.batch_size // 2 if with_mem else s.batch_size
                    order = self.rng[i].permutation(streams[i])
                    plans[i] = (with_mem, bs, order, max(1, len(order) // bs))
                for step in range(max(p[3] for p in plans.values())):
                    keys: list[np.ndarray | None] = [None] * len(self.seeds)
                    sbs = {}
                    for i, (with_mem, bs, order, n_steps) in plans.items():
                        if step >= n_steps:
                            continue
                        sb = order[step * bs:(step + 1) * bs]
                        keys[i], sbs[i] = sb, sb
                        if with_mem:
                            mem = self.memory[i]
                            mb = mem.keys[self.rng[i].choice(len(mem), min(s.batch_size - bs, len(mem)), replace=False)]
                            keys[i] = np.concatenate([sb, mb])
                    self._step(keys, lr)
                    for i, sb in sbs.items():
                        self.memory[i].observe(sb, self.labels[i][sb], self.rng[i])
            else:
                batches = {}
                for i in who:
                    order = self.rng[i].permutation(self.memory[i].keys)
                    batches[i] = [order[j:j + s.memory_batch] for j in range(0, len(order), s.memory_batch)]
                for step in range(max((len(b) for b in batches.values()), default=0)):
                    self._step([batches[i][step] if i in batches and step < len(batches[i]) else None
                                for i in range(len(self.seeds))], lr)

    @torch.no_grad()
    def _evaluate(self, i: int, classes: np.ndarray) -> tuple[float, np.ndarray]:
        model, xt, yt = self.view(i), self.x_test[i], self.y_test[i]
        preds = []
        for j in range(0, len(xt), self.s.eval_batch):
            xb = xt[j:j + self.s.eval_batch]
            xb = (xb.float() / 255.0 if xb.dtype == torch.uint8 else xb).to(self.device)
            preds.append(model(xb).argmax(1).cpu())
        pred = torch.cat(preds).numpy()
        correct = pred == yt
        per_class = class_accuracy(pred, yt, self.num_classes)
        mask = np.isin(yt, classes)
        return float(correct[mask].mean()) if mask.any() else float("nan"), per_class

    # ------------------------------------------------------------------ main loop
    def fit(self, scenarios: Sequence, x_train: Sequence[torch.Tensor], x_test: Sequence[torch.Tensor],
            y_test: Sequence[np.ndarray]) -> list[StreamResult]:
        s, n = self.s, len(self.seeds)
        if not (len(scenarios) == len(x_train) == len(x_test) == len(y_test) == n):
            raise ValueError("one scenario, train set and test set per seed")
        if len({sc.n_tasks for sc in scenarios}) != 1 or len({sc.num_classes for sc in scenarios}) != 1:
            raise ValueError("the seeds of one batch need the same number of tasks and classes")
        s.validate(scenarios[0].num_classes)
        self.x_train, self.x_test = list(x_train), list(x_test)
        self.labels = [np.asarray(sc.labels, dtype=np.int64) for sc in scenarios]
        self.y_test = [np.asarray(y, dtype=np.int64) for y in y_test]
        self.num_classes = scenarios[0].num_classes
        self._stack_data()
        self.rng = [np.random.default_rng(seed) for seed in self.seeds]
        capacity = 0 if s.method == "finetune" else s.memory_size
        self.memory = []
        for _ in self.seeds:
            policy = make_policy(s.policy_name, perturbation=s.perturbation, n_votes=s.n_votes,
                                 batch_size=s.score_batch) if s.policy_name == "rainbow" else make_policy(s.policy_name)
            self.memory.append(EpisodicMemory(policy, capacity))
        models = [self._seeded_build(i, 0) for i in range(n)]
        self.template = models[0]
        head_ids = {id(p): name for name, p in models[0].head.named_parameters()}
        self.head_names = {head_ids[id(p)]: name for name, p in models[0].named_parameters() if id(p) in head_ids}
        self._load(models)
        n_outs = [0] * n
        out = [dict(task_acc=[], class_acc=[], mem_labels=[], mem_keys=[], selections=[]) for _ in range(n)]
        seen: list[set[int]] = [set() for _ in range(n)]
        for t in range(scenarios[0].n_tasks):
            streams = [sc.tasks[t] for sc in scenarios]
            exposed = []
            for i in range(n):
                seen[i] |= set(np.unique(self.labels[i][streams[i]]).tolist())
                exposed.append(np.asarray(sorted(seen[i]), dtype=np.int64))
                n_outs[i] = max(n_outs[i], int(exposed[i].max()) + 1)
            if s.method == "gdumb":
                for i in range(n):
                    self.memory[i].rebuild(streams[i], self.labels[i][streams[i]], self.rng[i], classes=exposed[i])
                models = [self._seeded_build(i, t) for i in range(n)]
                self.template = models[0]
                self._load(models)
                self._reset_heads(models, t, n_outs)
                self._reset_optimizer()
                self._train(None, s.epochs, list(range(n)))
            else:
                self._reset_heads(models, t, n_outs)
                self._reset_optimizer()
                if s.online:
                    self._train(streams, 1, list(range(n)))
                    self._rebuild(streams, exposed, t)
                    self._train(None, s.epochs, [i for i in range(n) if len(self.memory[i])])
                else:
                    self._train(streams, s.epochs, list(range(n)))
                    self._rebuild(streams, exposed, t)
            for i in range(n):
                acc, per_class = self._evaluate(i, scenarios[i].eval_classes(t))
                mem = self.memory[i]
                o = out[i]
                o["task_acc"].append(acc)
                o["class_acc"].append(per_class)
                o["mem_labels"].append(mem.labels.copy())
                o["mem_keys"].append(mem.keys.copy())
                o["selections"].append(mem.last_candidates_ if isinstance(mem.policy, RainbowPolicy) else None)
        return [StreamResult(o["task_acc"], np.stack(o["class_acc"]), list(sc.major), o["mem_labels"],
                             o["mem_keys"], o["selections"], list(o["task_acc"])) for o, sc in zip(out, scenarios)]

    def _rebuild(self, streams: list[np.ndarray], exposed: list[np.ndarray], t: int) -> None:
        for i in range(len(self.seeds)):
            self.memory[i].rebuild(streams[i], self.labels[i][streams[i]], self.rng[i],
                                   fetch=lambda keys, _i=i: self._fetch(_i, keys), model=self.view(i),
                                   classes=exposed[i], first_task=t == 0)


def batched_joint(setups: Sequence, settings: CLSettings, epochs: int, seeds: Sequence[int],
                  device: str | torch.device = "auto") -> list[float]:
    """:func:`~reprozoo.rainbow.strategies.joint_accuracy` for several seeds as one batched model;
    ``setups``: ``(data, scenario, model_fn)`` per seed."""
    from reprozoo.rainbow.scenarios import scenario_from_tasks

    s = CLSettings(**{**settings.__dict__, "method": "finetune", "online": False, "epochs": epochs,
                      "cutmix": False, "aug_policy": "none", "task_acc": "last"})
    scens, xs, xt, yt = [], [], [], []
    for data, scen, _ in setups:
        y_train = np.asarray(scen.labels, dtype=np.int64)
        y_test = np.asarray(scen.relabel(data.y_test), dtype=np.int64)
        c = int(max(y_train.max(), np.max(y_test))) + 1
        scens.append(scenario_from_tasks(y_train, [np.arange(len(y_train))], [np.arange(c)], c, blur=1e-9))
        xs.append(data.x_train)
        xt.append(data.x_test)
        yt.append(y_test)
    res = BatchedLearner([fn for _, _, fn in setups], s, device, seeds).fit(scens, xs, xt, yt)
    return [r.task_acc[-1] for r in res]
