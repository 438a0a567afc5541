"""``reprozoo rainbow-split``: write a BlurryM task split of a dataset as JSON (indices per task)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("rainbow-split")
    def rainbow_split(
        dataset: Annotated[str, typer.Option(help="digits | cifar10 | cifar100 | folder")] = "digits",
        data_root: Annotated[str, typer.Option(help="folder holding the dataset (not for digits)")] = "",
        tasks: Annotated[int, typer.Option(help="number of tasks T")] = 5,
        blur: Annotated[float, typer.Option(help="blur ratio M (0 = disjoint)")] = 0.1,
        share: Annotated[str, typer.Option(help="exact (foreign share M) | legacy (M*(T-1)/T)")] = "exact",
        seed: Annotated[int, typer.Option(help="seed of the class order and the split")] = 0,
        out: Annotated[Path, typer.Option(help="output JSON file")] = Path("blurry_split.json"),
        overwrite: Annotated[bool, typer.Option(help="replace an existing --out file")] = False,
    ) -> None:
        """Partition a dataset's training set into BlurryM tasks and save the indices per task."""
        from reprozoo.cli_commands import check_new_file
        from reprozoo.errors import ConfigError

        if not 0 <= seed < 2**32:
            raise ConfigError(f"--seed must be in [0, 2**32), got {seed}")
        if tasks < 1:
            raise ConfigError(f"--tasks must be >= 1, got {tasks}")
        if not 0.0 <= blur < 1.0:
            raise ConfigError(f"--blur must be in [0, 1) (0.1 for Blurry10, 0 for disjoint tasks), got {blur}")
        if share not in ("exact", "legacy"):
            raise ConfigError(f"--share must be exact or legacy, got '{share}'")
        check_new_file(out, "--out", overwrite)
        from reprozoo.rainbow.data import load_data
        from reprozoo.rainbow.scenarios import blurry_split, check_partition
        from reprozoo.runtime.report import atomic_write_text

        data = load_data(dataset, data_root, seed)
        scen = blurry_split(data.y_train, tasks, blur, seed, share=share)
        check_partition(scen, len(data.y_train))
        payload = {"dataset": dataset, "blur": blur, "share": share, "seed": seed,
                   "class_order": scen.class_order.tolist(),
                   "tasks": [{"indices": t.tolist(), "major_labels": m.tolist(),
                              "foreign_share": round(scen.foreign_share(i), 4)}
                             for i, (t, m) in enumerate(zip(scen.tasks, scen.major))]}
        atomic_write_text(out, json.dumps(payload) + "\n")
        shares = ", ".join(f"{scen.foreign_share(i):.3f}" for i in range(scen.n_tasks))
        typer.echo(f"wrote {out}: {scen.n_tasks} tasks, sizes {[len(t) for t in scen.tasks]}, "
                   f"foreign shares {shares}")
