"""Tiny digits training used by the distributed test: run as a script, one or N processes.

    python -m tests.runtime.ddp_train OUT.pt            # one process
    torchrun --nproc_per_node 2 -m tests.runtime.ddp_train OUT.pt
"""

import sys

import torch

from reprozoo.data import TensorDataset, load_digits_tensors
from reprozoo.runtime.seeding import seed_everything
from reprozoo.runtime.trainer import TrainConfig, Trainer
from tests.runtime.toy import SmallCNN


def main(out: str) -> None:
    torch.set_num_threads(1)
    x, y = load_digits_tensors()
    seed_everything(0)
    model = SmallCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = Trainer(model, opt, TensorDataset(x[:512], y[:512]),
                      TrainConfig(epochs=2, batch_size=64, seed=0, device="cpu", checkpoint_every=0),
                      val_data=TensorDataset(x[512:700], y[512:700]), progress=False)
    history = trainer.fit()
    if trainer.accelerator.is_main_process:
        torch.save({"state": trainer.unwrapped_model().state_dict(), "history": history,
                    "processes": trainer.accelerator.num_processes}, out)
    # every rank waits for the save, then the process group is torn down before exit: a gloo group left
    # to the interpreter's shutdown can abort a rank ("terminate called without an active exception")
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()


if __name__ == "__main__":
    main(sys.argv[1])
