"""Continual-learning strategies on task streams: RM, ER (reservoir replay), GDumb, fine-tuning, EWC.

Per task (as in the official code): the classifier head is replaced by a fresh ``Linear(feat, n_out)`` and the
optimiser is re-created (both configurable); the backbone carries over.
Online: one pass over the stream (mixed half/half with memory) -> memory update -> ``epochs`` epochs
on memory only. Offline: ``epochs`` epochs over stream + memory -> memory update. GDumb always
re-initialises the model and trains on its class-balanced memory only.
Inside one training call, epoch 0 runs at 0.1 x lr when ``warmup`` is on (the official code's
warm-up, which also makes the online stream pass run at 0.1 x lr).
Accuracy is taken after the final epoch of each task (``task_acc="best"`` is the official code's
optimistic test-set selection, offered only as a flagged legacy option).
The settings and the learning-rate schedule are in :mod:`reprozoo.rainbow.settings`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import CheckpointError, ConfigError
from reprozoo.rainbow.augment import TrainAugment, cutmix
from reprozoo.rainbow.memory import EpisodicMemory, RainbowPolicy, make_policy
from reprozoo.rainbow.metrics import class_accuracy, summarize
from reprozoo.rainbow.scenarios import Scenario
from reprozoo.rainbow.settings import (  # noqa: F401  (re-exported)
    DEFAULT_POLICY,
    METHODS,
    SCHEDULES,
    CLSettings,
    epoch_lrs,
    make_scheduler,
)
from reprozoo.runtime.accel import resolve_device


class Normalized(nn.Module):
    """``net(normalize(x))`` for raw [0,1] inputs, forwarding ``forward_features`` and ``reset_head``."""

    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self._norm(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(self._norm(x))

    def reset_head(self, num_classes: int) -> nn.Module:
        return self.net.reset_head(num_classes)

    @property
    def head(self) -> nn.Module:
        return self.net.head


def _head_params(model: nn.Module) -> set[int]:
    head = getattr(model, "head", None)
    return {id(p) for p in head.parameters()} if head is not None else set()


@dataclass
class StreamResult:
    """What one continual run produced (per-task accuracy, per-class accuracy matrix, memories)."""

    task_acc: list[float]
    class_acc: np.ndarray
    major: list[np.ndarray]
    memory_labels: list[np.ndarray] = field(default_factory=list)
    memory_keys: list[np.ndarray] = field(default_factory=list)
    selections: list[dict | None] = field(default_factory=list)
    best_acc: list[float] = field(default_factory=list)

    def summary(self, joint_acc: float | None = None) -> dict[str, float]:
        return summarize(self.task_acc, self.class_acc, self.major, joint_acc)


class ContinualLearner:
    """Runs one strategy over a :class:`Scenario`.

    ``model_fn()`` builds a fresh model taking raw [0,1] inputs (wrap with :class:`Normalized`).
    ``x_train`` is indexed by the scenario's sample indices; ``y_test`` uses the scenario's labels.
    """

    def __init__(self, model_fn: Callable[[], nn.Module], settings: CLSettings | None = None,
                 device: str | torch.device = "auto", seed: int = 0, progress: Callable | None = None):
        self.model_fn, self.s = model_fn, settings or CLSettings()
        self.device, self.seed = torch.device(resolve_device(device)), seed
        self.progress = progress

    # ------------------------------------------------------------------ helpers
    @contextlib.contextmanager
    def _seeded(self, index: int) -> Iterator[None]:
        """Weight initialisation (torch draws it from the global RNG) on a fork of the global RNG
        seeded from ``seed`` and ``index``: initial weights depend on those only, and the caller's
        global RNG state is left as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1000 + index)
            yield

    def _build(self, index: int) -> nn.Module:
        with self._seeded(index):
            return self.model_fn().to(self.device)

    def _fetch(self, keys: np.ndarray) -> torch.Tensor:
        x = self.x_train[torch.as_tensor(keys, dtype=torch.long)]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x
        return x.to(self.device)

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        s = self.s
        return torch.optim.SGD(model.parameters(), lr=s.lr, momentum=s.momentum, nesterov=s.nesterov,
                               weight_decay=s.weight_decay)

    def _loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s = self.s
        x = self.augment(x, self.gen)
        if s.cutmix and float(torch.rand((), generator=self.gen)) < s.cutmix_p:
            x, soft = cutmix(x, y, self.n_out, self.gen, s.cutmix_alpha)
            loss = F.cross_entropy(model(x), soft)  # = lam * CE(y) + (1 - lam) * CE(y_partner)
        else:
            loss = F.cross_entropy(model(x), y)
        if self.ewc_state is not None:
            loss = loss + self.s.ewc_lambda * self._ewc_penalty(model)
        return loss

    def _step(self, model, opt, keys: np.ndarray) -> None:
        x = self._fetch(keys)
        y = torch.as_tensor(self.labels[keys], device=self.device)
        opt.zero_grad(set_to_none=True)
        self._loss(model, x, y).backward()
        opt.step()

    def _train(self, model, opt, stream: np.ndarray | None, epochs: int, eval_fn=None) -> list[float]:
        """One training call (one stream pass or E memory epochs). Returns per-epoch test accuracy if ``eval_fn``."""
        s, rng, mem = self.s, self.rng, self.memory
        accs = []
        for g in opt.param_groups:  # every training call starts its schedule from the base lr
            g["lr"] = s.lr
            g.pop("initial_lr", None)
        with warnings.catch_warnings():  # SequentialLR hands its milestone to the next scheduler
            warnings.simplefilter("ignore", UserWarning)
            sched = make_scheduler(opt, epochs, s.schedule, s.warmup, s.eta_min_ratio)
        for _ in range(epochs):
            if stream is not None and len(stream):
                with_mem = len(mem) > 0
                bs = s.batch_size // 2 if with_mem else s.batch_size
                order = rng.permutation(stream)
                n_steps = max(1, len(order) // bs)  # drop_last, but never skip a short stream
                for i in range(n_steps):
                    sb = order[i * bs:(i + 1) * bs]
                    keys = sb
                    if with_mem:
                        mb = mem.keys[rng.choice(len(mem), min(s.batch_size - bs, len(mem)), replace=False)]
                        keys = np.concatenate([sb, mb])
                    self._step(model, opt, keys)
                    mem.observe(sb, self.labels[sb], rng)
            else:
                order = rng.permutation(mem.keys)
                for i in range(0, len(order), s.memory_batch):
                    self._step(model, opt, order[i:i + s.memory_batch])
            if eval_fn is not None:
                accs.append(eval_fn(model)[0])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                sched.step()
        return accs

    @torch.no_grad()
    def evaluate(self, model: nn.Module, classes: np.ndarray) -> tuple[float, np.ndarray]:
        """(accuracy on test samples of ``classes``, per-class accuracy over all classes; NaN if absent)."""
        was = model.training
        model.eval()
        preds = []
        for i in range(0, len(self.x_test), self.s.eval_batch):
            xb = self.x_test[i:i + self.s.eval_batch]
            xb = (xb.float() / 255.0 if xb.dtype == torch.uint8 else xb).to(self.device)
            preds.append(model(xb).argmax(1).cpu())
        model.train(was)
        pred = torch.cat(preds).numpy()
        correct = pred == self.y_test
        per_class = class_accuracy(pred, self.y_test, self.num_classes)
        mask = np.isin(self.y_test, classes)
        return float(correct[mask].mean()) if mask.any() else float("nan"), per_class

    # ------------------------------------------------------------------ EWC
    def _ewc_penalty(self, model: nn.Module) -> torch.Tensor:
        fisher, anchor = self.ewc_state
        total = torch.zeros((), device=self.device)
        for name, p in model.named_parameters():
            if name in fisher:
                total = total + (fisher[name] * (p - anchor[name]) ** 2).sum()
        return total

    def _update_fisher(self, model: nn.Module, keys: np.ndarray) -> None:
        """Mean over minibatches of squared CE gradients w.r.t. the model's own argmax labels (head excluded)."""
        head = _head_params(model)
        params = {n: p for n, p in model.named_parameters() if id(p) not in head and p.requires_grad}
        fisher = {n: torch.zeros_like(p) for n, p in params.items()}
        was = model.training
        model.eval()
        n_batches = 0
        for i in range(0, len(keys), self.s.batch_size):
            x = self._fetch(keys[i:i + self.s.batch_size])
            model.zero_grad(set_to_none=True)
            out = model(x)
            F.cross_entropy(out, out.argmax(1).detach()).backward()
            for n, p in params.items():
                if p.grad is not None:
                    fisher[n] += p.grad.detach() ** 2
            n_batches += 1
        model.zero_grad(set_to_none=True)
        model.train(was)
        fisher = {n: f / max(1, n_batches) for n, f in fisher.items()}
        if self.s.ewc_mode == "ema" and self.ewc_state is not None:
            old = self.ewc_state[0]
            a = self.s.ewc_alpha
            fisher = {n: a * f + (1 - a) * old[n] for n, f in fisher.items()}
        self.ewc_state = (fisher, {n: p.detach().clone() for n, p in params.items()})

    # ------------------------------------------------------------------ main loop
    def fit(self, scenario: Scenario, x_train: torch.Tensor, x_test: torch.Tensor, y_test: np.ndarray, *,
            out_dir: str | Path | None = None, resume: bool = False) -> StreamResult:
        """Run the stream. With ``out_dir`` the state after every task goes to ``out_dir/stream_state.pt``
        and ``resume=True`` continues an interrupted run from its last finished task (same settings and
        data, checked; see :mod:`reprozoo.rainbow.stream_state`); without ``resume`` an ``out_dir``
        that holds a state is refused."""
        from reprozoo.rainbow import stream_state

        s = self.s
        s.validate(scenario.num_classes)
        if resume and out_dir is None:
            raise ConfigError("resume=True needs the out_dir of the run to continue")
        if out_dir is not None and s.reset_head and not s.reset_optimizer:
            raise ConfigError("out_dir/resume needs reset_optimizer=True: with reset_optimizer=False the optimiser "
                              "carried across tasks holds the replaced head's parameters, which no checkpoint restores")
        self.x_train, self.labels = x_train, np.asarray(scenario.labels, dtype=np.int64)
        self.x_test, self.y_test = x_test, np.asarray(y_test, dtype=np.int64)
        self.num_classes = scenario.num_classes
        absent = np.setdiff1d(np.arange(self.num_classes), self.labels[np.concatenate(scenario.tasks)])
        if absent.size:
            raise ConfigError(f"class {absent.tolist()} is absent from every task; rebuild the scenario so "
                              "every class has training samples")
        self.rng = np.random.default_rng(self.seed)
        self.gen = torch.Generator().manual_seed(self.seed)  # augmentation stream (CutMix, crops, policies)
        self.augment = TrainAugment(s.crop_pad, s.hflip, s.aug_policy)
        capacity = 0 if s.method == "finetune" else s.memory_size
        policy = make_policy(s.policy_name, perturbation=s.perturbation, n_votes=s.n_votes,
                             batch_size=s.score_batch) if s.policy_name == "rainbow" else make_policy(s.policy_name)
        self.memory = EpisodicMemory(policy, capacity)
        self.ewc_state = None
        model = self._build(0)
        opt, n_out, first = None, 0, 0
        results: dict[str, list] = {k: [] for k in ("task_acc", "best_acc", "class_acc", "mem_labels", "mem_keys",
                                                    "selections")}
        seen: set[int] = set()
        if out_dir is not None:
            settings = stream_state.run_settings(self, scenario, x_train, x_test, y_test)
            state = stream_state.check_out_dir(out_dir, resume, settings)
            if state is not None:
                n_out, seen, results = stream_state.restore(state, self, model)
                first = int(state["task"]) + 1
        task_acc, best_acc, class_acc = results["task_acc"], results["best_acc"], results["class_acc"]
        mem_labels, mem_keys, selections = results["mem_labels"], results["mem_keys"], results["selections"]
        for t, stream in enumerate(scenario.tasks):
            if t < first:
                continue
            stream_labels = self.labels[stream]
            seen |= set(np.unique(stream_labels).tolist())
            exposed = np.asarray(sorted(seen), dtype=np.int64)
            n_out = max(n_out, int(exposed.max()) + 1)
            self.n_out = n_out
            eval_classes = scenario.eval_classes(t)

            def eval_fn(m, _c=eval_classes):
                return self.evaluate(m, _c)

            track = eval_fn if s.task_acc == "best" else None
            if s.method == "gdumb":
                self.memory.rebuild(stream, stream_labels, self.rng, classes=exposed)
                model = self._build(t)
                with self._seeded(500 + t):
                    model.reset_head(n_out)
                opt = self._optimizer(model)
                accs = self._train(model, opt, None, s.epochs, track)
            else:
                with self._seeded(500 + t):
                    if s.reset_head or t == 0:
                        model.reset_head(n_out)
                    elif model.head.out_features < n_out:
                        _grow_head(model, n_out)
                if s.reset_optimizer or opt is None or not s.reset_head:
                    opt = self._optimizer(model)
                rebuild = dict(fetch=self._fetch, model=model, classes=exposed, first_task=t == 0)
                if s.online:
                    self._train(model, opt, stream, 1)
                    self.memory.rebuild(stream, stream_labels, self.rng, **rebuild)
                    accs = self._train(model, opt, None, s.epochs, track) if len(self.memory) else []
                else:
                    accs = self._train(model, opt, stream, s.epochs, track)
                    self.memory.rebuild(stream, stream_labels, self.rng, **rebuild)
                if s.method == "ewc":
                    self._update_fisher(model, np.concatenate([stream, self.memory.keys]))
            acc, per_class = self.evaluate(model, eval_classes)
            task_acc.append(acc)
            best_acc.append(max(accs + [acc]) if accs else acc)
            class_acc.append(per_class)
            mem_labels.append(self.memory.labels.copy())
            mem_keys.append(self.memory.keys.copy())
            sel = self.memory.last_candidates_ if isinstance(policy, RainbowPolicy) else None
            selections.append(sel)
            if out_dir is not None:
                stream_state.save_state(out_dir, self, t, model, n_out, seen, results, settings)
            if self.progress is not None:
                self.progress()
        self.model_ = model
        reported = best_acc if s.task_acc == "best" else task_acc
        return StreamResult(reported, np.stack(class_acc), list(scenario.major), mem_labels, mem_keys,
                            selections, best_acc)


def save_model(model: nn.Module, path: str | Path, **extra) -> Path:
    """Write a trained continual learner's model (``learner.model_``) as a library checkpoint.

    ``model`` is a backbone built by ``create_model`` or a :class:`Normalized` wrapper of one; the
    checkpoint stores the backbone with its final head size as ``num_classes`` and, for a wrapper, the
    normalisation as ``extra["mean"]`` / ``extra["std"]``. :func:`load_model` rebuilds it."""
    from reprozoo.runtime.checkpoint import model_spec, save_checkpoint

    net = model.net if isinstance(model, Normalized) else model
    name, kwargs = model_spec(net)
    if name is None:
        raise CheckpointError(f"{type(net).__name__} was not built by create_model; build the backbone with "
                              "reprozoo.create_model(name, ...) so its checkpoint can name it")
    kwargs["num_classes"] = int(net.head.out_features)
    if isinstance(model, Normalized):
        extra = {"mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist(), **extra}
    return save_checkpoint(net, path, model_name=name, model_kwargs=kwargs, **extra)


def load_model(path: str | Path) -> tuple[nn.Module, dict]:
    """``(model, extra)`` from :func:`save_model`: the backbone, wrapped in :class:`Normalized` when the
    file holds a normalisation; eval mode."""
    from reprozoo.runtime.checkpoint import load_checkpoint

    net, extra = load_checkpoint(path)
    if "mean" in extra and "std" in extra:
        return Normalized(net, tuple(extra["mean"]), tuple(extra["std"])).eval(), extra
    return net, extra

def _grow_head(model: nn.Module, n_out: int) -> None:
    old = model.head
    new = model.reset_head(n_out)
    with torch.no_grad():
        new.weight[: old.out_features] = old.weight
        new.bias[: old.out_features] = old.bias


def joint_accuracy(model_fn: Callable[[], nn.Module], x_train: torch.Tensor, y_train: np.ndarray,
                   x_test: torch.Tensor, y_test: np.ndarray, settings: CLSettings | None = None,
                   epochs: int = 10, device: str | torch.device = "auto", seed: int = 0) -> float:
    """Upper bound for intransigence: one model trained offline on all training data at once."""
    from reprozoo.rainbow.scenarios import scenario_from_tasks

    y_train = np.asarray(y_train, dtype=np.int64)
    c = int(max(y_train.max(), np.max(y_test))) + 1
    scen = scenario_from_tasks(y_train, [np.arange(len(y_train))], [np.arange(c)], c, blur=1e-9)
    s = CLSettings(**{**(settings.__dict__ if settings else {}), "method": "finetune", "online": False,
                      "epochs": epochs, "cutmix": False, "aug_policy": "none", "task_acc": "last"})
    res = ContinualLearner(model_fn, s, device, seed).fit(scen, x_train, x_test, y_test)
    return res.task_acc[-1]
