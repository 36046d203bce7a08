"""The ``deepcore`` command line: ``deepcore train`` (the main job) and ``deepcore info``.

    deepcore train                      # a small CNN on scikit-learn's digits, < 1 minute
    deepcore train --model mlp --epochs 30 --optimizer sgd --lr 0.1
    deepcore train --model lenet --dataset mnist --data-dir ~/mnist --download
    deepcore train --resume runs/cnn-digits/checkpoint.safetensors

Training runs through deepcore.train.Trainer (progress bar, metrics, callbacks), writes a
resumable checkpoint after every epoch and TensorBoard logs to ``--out``, and prints the final
test accuracy.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

MODELS = ("cnn", "mlp", "lenet", "resnet18")
DATASETS = ("digits", "mnist", "fashion-mnist")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "sgd": 0.05, "rmsprop": 1e-3}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepcore", description="deepcore command line")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="print the build configuration")
    tr = sub.add_parser("train", help="train a model and report its test accuracy")
    tr.add_argument("--model", choices=MODELS, default="cnn")
    tr.add_argument("--dataset", choices=DATASETS, default="digits")
    tr.add_argument("--data-dir", default=None,
                    help="directory with the MNIST / Fashion-MNIST IDX files")
    tr.add_argument("--download", action="store_true",
                    help="download missing IDX files (checksums are verified)")
    tr.add_argument("--epochs", type=int, default=None,
                    help="default: 15 for digits, 3 for MNIST-style datasets")
    tr.add_argument("--batch-size", type=int, default=64)
    tr.add_argument("--lr", type=float, default=None, help="default depends on --optimizer")
    tr.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--out", default=None, help="output directory (default runs/MODEL-DATASET)")
    tr.add_argument("--resume", default=None, help="checkpoint to continue from")
    tr.add_argument("--tensorboard", action="store_true", default=True,
                    help="write TensorBoard logs to OUT/tensorboard (the default)")
    tr.add_argument("--no-tensorboard", dest="tensorboard", action="store_false")
    tr.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                    help="0 silent, 1 progress bar, 2 one line per epoch")
    return parser


# ---- data -----------------------------------------------------------------------------------

def _load(dataset: str, data_dir, download: bool, seed: int):
    """Returns ((x_train, y_train), (x_test, y_test)) as float32 NCHW images in [0, 1]."""
    from . import datasets
    if dataset == "digits":
        (xtr, ytr), (xte, yte) = datasets.load_digits(seed=seed, flatten=False)
    else:
        if data_dir is None:
            raise SystemExit(f"deepcore train: --dataset {dataset} needs --data-dir "
                             "(the directory holding the IDX files; add --download to fetch)")
        loader = datasets.load_mnist if dataset == "mnist" else datasets.load_fashion_mnist
        (xtr, ytr), (xte, yte) = loader(data_dir, download=download)
        xtr, xte = xtr.astype(np.float32) / 255.0, xte.astype(np.float32) / 255.0
    return (xtr[:, None], ytr.astype(np.int64)), (xte[:, None], yte.astype(np.int64))


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of NCHW images (LeNet/ResNet want 28-32 pixel inputs)."""
    if x.shape[-1] == size:
        return x
    import deepcore as dc
    import deepcore.nn.functional as F
    with dc.no_grad():
        return F.interpolate(dc.from_numpy(np.ascontiguousarray(x)), size=(size, size),
                             mode="bilinear", align_corners=False).numpy()


# ---- models ---------------------------------------------------------------------------------

def _small_cnn(in_channels: int, side: int, num_classes: int):
    """conv3x3(32) - relu - conv3x3(64) - relu - maxpool2 - dropout - fc(128) - relu - fc."""
    from . import nn
    flat = 64 * (side // 2) * (side // 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, num_classes))


def _build_model(name: str, in_channels: int, side: int, num_classes: int):
    from . import nn
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * side * side, 128), nn.ReLU(),
                             nn.Linear(128, num_classes))
    if name == "cnn":
        return _small_cnn(in_channels, side, num_classes)
    from . import models
    if name == "lenet":
        return models.lenet5(num_classes=num_classes, in_channels=in_channels)
    return models.resnet18(num_classes=num_classes, in_channels=in_channels, small_input=True)


def _input_side(model: str, side: int) -> int:
    if model == "lenet":
        return 28
    if model == "resnet18":
        return max(side, 32)
    return side


def _optimizer(name: str, params, lr: float):
    from . import optim
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9)
    cls = {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop}[name]
    return cls(params, lr=lr)


# ---- the job ----------------------------------------------------------------------------------

def train(args) -> float:
    import deepcore as dc
    from . import nn
    from .keras import callbacks as cb
    from .train import Trainer
    from .utils.data import DataLoader, TensorDataset

    dc.manual_seed(args.seed)
    (xtr, ytr), (xte, yte) = _load(args.dataset, args.data_dir, args.download, args.seed)
    side = _input_side(args.model, xtr.shape[-1])
    xtr, xte = _resize(xtr, side), _resize(xte, side)
    epochs = args.epochs if args.epochs is not None else (15 if args.dataset == "digits" else 3)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    out = args.out or os.path.join("runs", f"{args.model}-{args.dataset}")
    os.makedirs(out, exist_ok=True)
    checkpoint = os.path.join(out, "checkpoint.safetensors")

    model = _build_model(args.model, xtr.shape[1], side, int(max(ytr.max(), yte.max())) + 1)
    optimizer = _optimizer(args.optimizer, model.parameters(), lr)
    scheduler = dc.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    trainer = Trainer(model, optimizer, nn.CrossEntropyLoss(), metrics=["accuracy"],
                      scheduler=scheduler)
    train_loader = DataLoader(TensorDataset(dc.from_numpy(xtr), dc.from_numpy(ytr)),
                              batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(TensorDataset(dc.from_numpy(xte), dc.from_numpy(yte)),
                             batch_size=256)
    if args.tensorboard:
        from .utils import tensorboard
        if not tensorboard.available():
            print(f"no TensorBoard logs: {tensorboard.INSTALL_HINT.split('] ', 1)[1]}")
            args.tensorboard = False
    callbacks = [cb.TensorBoard(os.path.join(out, "tensorboard"))] if args.tensorboard else []
    n_params = sum(p.numel() for p in model.parameters())
    print(f"deepcore train: {args.model} ({n_params:,} parameters) on {args.dataset} "
          f"({len(xtr)} train / {len(xte)} test images, {side}x{side}), {epochs} epochs, "
          f"{args.optimizer} lr={lr:g}, batch {args.batch_size}")
    start = time.perf_counter()
    verbose = args.verbose if args.verbose is not None else ("auto")
    trainer.fit(train_loader, epochs=epochs, val_loader=test_loader, callbacks=callbacks,
                verbose=verbose, checkpoint=checkpoint, resume=args.resume)
    model.eval()
    with dc.no_grad():
        correct = 0
        for xb, yb in test_loader:
            correct += int((model(xb).argmax(1) == yb).sum().item())
    acc = correct / len(xte)
    took = time.perf_counter() - start
    print(f"test accuracy: {acc * 100:.2f}% ({correct}/{len(xte)}) in {took:.1f} s")
    print(f"checkpoint: {checkpoint}")
    if args.tensorboard:
        print(f"TensorBoard logs: {os.path.join(out, 'tensorboard')}")
    if not math.isfinite(acc):
        return 0.0
    return acc


def main(argv=None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        from .config import show_config
        show_config()
        return 0
    if args.command == "train":
        train(args)
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
