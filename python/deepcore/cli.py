"""The ``deepcore`` command line: ``deepcore train`` (the main job), ``deepcore generate``,
``deepcore serve``, ``deepcore export``, ``deepcore run`` and ``deepcore info``.

    deepcore train                      # a small CNN on scikit-learn's digits, < 1 minute
    deepcore train --model mlp --epochs 30 --optimizer sgd --lr 0.1
    deepcore train --model lenet --dataset mnist --data-dir ~/mnist --download
    deepcore train --resume runs/cnn-digits/checkpoint.safetensors
    deepcore train --model gpt --text input.txt           # a character-level GPT, ~1 minute
    deepcore generate runs/gpt-input/checkpoint.safetensors --prompt "ROMEO:"
    deepcore serve runs/cnn-digits/checkpoint.safetensors --port 8000     # HTTP, KServe v2
    deepcore export runs/cnn-digits/checkpoint.safetensors --onnx cnn.onnx
    deepcore run --nproc 4 train.py       # an MPI job of 4 ranks (deepcore.distributed)
    deepcore train --nproc 2              # data-parallel on 2 processes (MPI)
    deepcore train --precision bf16       # mixed precision: bfloat16 autocast

Image models train through deepcore.train.Trainer (progress bar, metrics, callbacks), write a
resumable checkpoint after every epoch and TensorBoard logs to ``--out``, and print the final
test accuracy. ``--precision bf16`` (Lightning's ``bf16-mixed``) runs the forward and loss
under ``deepcore.autocast`` in bfloat16, ``16-mixed`` in float16 with loss scaling; the weights
and the checkpoint stay float32. ``--model gpt`` trains deepcore.models.GPT on the characters of a UTF-8 text
file (Note [Character-level GPT checkpoint]) and prints the train/val loss as it goes.
Checkpoints of image models also record the architecture (Note [Model spec in training
checkpoints], deepcore/_model_files.py), so ``serve`` and ``export`` rebuild the model from the
file alone.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time

import numpy as np

from ._model_files import GPT_FORMAT, GPT_FORMAT_VERSION

MODELS = ("cnn", "mlp", "lenet", "resnet18", "gpt")
DATASETS = ("digits", "mnist", "fashion-mnist")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "sgd": 0.05, "rmsprop": 1e-3}
# --precision values -> deepcore.train.Trainer's (Lightning's) names
PRECISIONS = {"fp32": "32-true", "32": "32-true", "bf16": "bf16-mixed", "bf16-mixed": "bf16-mixed",
              "fp16": "16-mixed", "16-mixed": "16-mixed"}


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
    tr.add_argument("--batch-size", type=int, default=None,
                    help="default: 64, or 16 sequences for --model gpt")
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
    tr.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32",
                    help="fp32 (the default); bf16 or bf16-mixed: bfloat16 autocast; fp16 or "
                         "16-mixed: float16 autocast with loss scaling")
    tr.add_argument("--nproc", type=int, default=1,
                    help="train data-parallel on N processes (MPI, deepcore.distributed); "
                         "--batch-size is per process")
    gpt = tr.add_argument_group("--model gpt (a character-level language model)")
    gpt.add_argument("--text", default=None, help="the UTF-8 text file to train on")
    gpt.add_argument("--block-size", type=int, default=64, help="context length in characters")
    gpt.add_argument("--n-layer", type=int, default=4)
    gpt.add_argument("--n-head", type=int, default=4)
    gpt.add_argument("--n-embd", type=int, default=128)
    gpt.add_argument("--dropout", type=float, default=0.0)
    gpt.add_argument("--max-iters", type=int, default=300, help="optimizer steps")
    gpt.add_argument("--eval-interval", type=int, default=100,
                     help="print the train/val loss every this many steps")
    gpt.add_argument("--eval-iters", type=int, default=10,
                     help="batches averaged for each printed loss")
    gpt.add_argument("--weight-decay", type=float, default=0.1)
    gpt.add_argument("--device", default="cpu")
    ge = sub.add_parser("generate", help="sample text from a `train --model gpt` checkpoint")
    ge.add_argument("checkpoint", help="checkpoint.safetensors written by train --model gpt")
    ge.add_argument("--prompt", default=None,
                    help="text to continue (default: a newline, or the first character)")
    ge.add_argument("--max-new-tokens", type=int, default=200)
    ge.add_argument("--temperature", type=float, default=0.8)
    ge.add_argument("--top-k", type=int, default=50, help="0 samples from every character")
    ge.add_argument("--seed", type=int, default=0)
    ge.add_argument("--device", default="cpu")
    sv = sub.add_parser("serve", help="serve a checkpoint or ONNX model over HTTP (KServe v2 "
                        "inference protocol)")
    sv.add_argument("model", help="a checkpoint written by `deepcore train`, or a .onnx file")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    sv.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    sv.add_argument("--name", default=None, help="model name in URLs (default: the file's stem)")
    sv.add_argument("--max-batch-size", type=int, default=32,
                    help="rows merged into one forward pass (1 turns batching off)")
    sv.add_argument("--max-delay-ms", type=float, default=2.0,
                    help="how long the first request of a batch waits for others")
    sv.add_argument("--max-body-mb", type=float, default=64.0,
                    help="larger request bodies get 413")
    sv.add_argument("--log-level", default="info",
                    choices=("critical", "error", "warning", "info", "debug"))
    sv.add_argument("--access-log", action="store_true", help="log every request")
    sv.add_argument("--threads", type=int, default=None,
                    help="CPU threads for the model's kernels (default: deepcore's)")
    ex = sub.add_parser("export", help="write a `deepcore train` checkpoint as an ONNX file")
    ex.add_argument("checkpoint", help="a checkpoint written by `deepcore train`")
    ex.add_argument("--onnx", required=True, metavar="OUT", help="the .onnx file to write")
    ex.add_argument("--opset", type=int, default=None,
                    help="ONNX opset version (default: the exporter's)")
    from .distributed import run as _dist_run
    _dist_run.add_parser(sub)
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

def _build_model(name: str, in_channels: int, side: int, num_classes: int):
    from ._model_files import build_image_model
    return build_image_model(name, in_channels, side, num_classes)


def _input_side(model: str, side: int) -> int:
    if model == "lenet":
        return 28
    if model == "resnet18":
        return max(side, 32)
    return side


def _precision(args) -> str:
    """Trainer's name for ``--precision`` (Namespaces from older launchers lack it: fp32)."""
    value = getattr(args, "precision", None) or "fp32"
    if value not in PRECISIONS:
        raise SystemExit(f"deepcore train: --precision must be one of {', '.join(PRECISIONS)}, "
                         f"got {value!r}")
    return PRECISIONS[value]


def _optimizer(name: str, params, lr: float):
    from . import optim
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9)
    cls = {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop}[name]
    return cls(params, lr=lr)


# ---- the job ----------------------------------------------------------------------------------

def train(args) -> float:
    if args.model == "gpt":
        return train_gpt(args)
    if args.text is not None:
        raise SystemExit(f"deepcore train: --text is for --model gpt, not --model {args.model}")
    import deepcore as dc
    from . import nn
    from ._model_files import ModelSpecRecord, model_spec
    from .keras import callbacks as cb
    from .train import Trainer
    from .utils.data import DataLoader, TensorDataset

    dc.manual_seed(args.seed)
    if args.batch_size is None:
        args.batch_size = 64
    (xtr, ytr), (xte, yte) = _load(args.dataset, args.data_dir, args.download, args.seed)
    side = _input_side(args.model, xtr.shape[-1])
    xtr, xte = _resize(xtr, side), _resize(xte, side)
    epochs = args.epochs if args.epochs is not None else (15 if args.dataset == "digits" else 3)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    out = args.out or os.path.join("runs", f"{args.model}-{args.dataset}")
    os.makedirs(out, exist_ok=True)
    checkpoint = os.path.join(out, "checkpoint.safetensors")

    num_classes = int(max(ytr.max(), yte.max())) + 1
    model = _build_model(args.model, xtr.shape[1], side, num_classes)
    optimizer = _optimizer(args.optimizer, model.parameters(), lr)
    scheduler = dc.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    precision = _precision(args)
    trainer = Trainer(model, optimizer, nn.CrossEntropyLoss(), metrics=["accuracy"],
                      scheduler=scheduler, precision=precision)
    train_loader = DataLoader(TensorDataset(dc.from_numpy(xtr), dc.from_numpy(ytr)),
                              batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(TensorDataset(dc.from_numpy(xte), dc.from_numpy(yte)),
                             batch_size=256)
    if args.tensorboard:
        from .utils import tensorboard
        if not tensorboard.available():
            print(f"no TensorBoard logs: {tensorboard.INSTALL_HINT.split('] ', 1)[1]}")
            args.tensorboard = False
    # First in the list, so its state keeps index 0 (Note [Model spec in training checkpoints]).
    callbacks = [ModelSpecRecord(model_spec(args.model, xtr.shape[1], side, num_classes))]
    if args.tensorboard:
        callbacks.append(cb.TensorBoard(os.path.join(out, "tensorboard")))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"deepcore train: {args.model} ({n_params:,} parameters) on {args.dataset} "
          f"({len(xtr)} train / {len(xte)} test images, {side}x{side}), {epochs} epochs, "
          f"{args.optimizer} lr={lr:g}, batch {args.batch_size}, precision {precision}")
    start = time.perf_counter()
    verbose = args.verbose if args.verbose is not None else ("auto")
    trainer.fit(train_loader, epochs=epochs, val_loader=test_loader, callbacks=callbacks,
                verbose=verbose, checkpoint=checkpoint, resume=args.resume)
    model.eval()
    with dc.no_grad(), trainer._precision_context():
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


# ---- character-level GPT: train --model gpt, generate ---------------------------------------

# Note [Character-level GPT checkpoint]
# `train --model gpt` writes one safetensors file through deepcore.save:
#     {"format": GPT_FORMAT, "version": 1, "config": GPTConfig fields, "vocab": [chars],
#      "iters": steps taken, "val_loss": last estimate, "model": the GPT's state_dict}
# The tensors sit in the tensor table (model.transformer.wte.weight, ...; the tied lm_head
# weight is stored once) and everything else is JSON in the header (Note [Checkpoint format]),
# so `generate` rebuilds the model and the character table without running any code from the
# file. The vocabulary is the sorted set of the text's characters (by code point): token i is
# vocab[i].
# GPT_FORMAT / GPT_FORMAT_VERSION and the reader, gpt_from_checkpoint, are in _model_files.py.


def _read_text(path: str, cmd: str) -> str:
    if not os.path.isfile(path):
        raise SystemExit(f"deepcore {cmd}: --text file not found: '{path}'")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise SystemExit(f"deepcore {cmd}: '{path}' is not UTF-8 text ({e})") from None
    except OSError as e:
        raise SystemExit(f"deepcore {cmd}: cannot read '{path}': {e.strerror}") from None


def _encode_chars(text: str):
    """Returns (vocab, ids): vocab the sorted distinct characters, ids (len(text),) int64."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    uniq, ids = np.unique(codes, return_inverse=True)
    return [chr(int(c)) for c in uniq], ids.astype(np.int64).reshape(-1)


def _check_positive(cmd: str, **values) -> None:
    for name, v in values.items():
        if v is None or v <= 0:
            raise SystemExit(f"deepcore {cmd}: --{name.replace('_', '-')} must be > 0, got {v}")


def _to_device(model, device: str, cmd: str):
    try:
        return model.to(device)
    except (ValueError, RuntimeError) as e:
        raise SystemExit(f"deepcore {cmd}: --device {device}: {e}") from None


def train_gpt(args) -> float:
    """Trains a character-level GPT on ``args.text``; returns the last validation loss."""
    import deepcore as dc
    from . import nn
    from .models import GPT, GPTConfig

    if args.text is None:
        raise SystemExit("deepcore train: --model gpt needs --text FILE (a UTF-8 text file)")
    batch_size = args.batch_size if args.batch_size is not None else 16
    lr = args.lr if args.lr is not None else 1e-3
    _check_positive("train", batch_size=batch_size, lr=lr, eval_interval=args.eval_interval,
                    eval_iters=args.eval_iters)
    if args.max_iters < 0:
        raise SystemExit(f"deepcore train: --max-iters must be >= 0, got {args.max_iters}")
    if args.resume is not None:
        raise SystemExit("deepcore train: --resume is not supported with --model gpt")
    text = _read_text(args.text, "train")
    vocab, data = _encode_chars(text)
    try:
        config = GPTConfig(block_size=args.block_size, vocab_size=max(len(vocab), 1),
                           n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                           dropout=args.dropout, bias=True)
    except ValueError as e:
        raise SystemExit(f"deepcore train: {e}") from None
    n_train = int(0.9 * len(data))
    splits = {"train": data[:n_train], "val": data[n_train:]}
    T = config.block_size
    for name, d in splits.items():
        if len(d) <= T:
            raise SystemExit(
                f"deepcore train: '{args.text}' has {len(data)} characters, so its {name} split "
                f"({len(d)} characters; train/val = 90/10) is not longer than --block-size {T}: "
                "use a longer text or a smaller --block-size")

    dc.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    offsets = np.arange(T)

    def batch(split: str):
        d = splits[split]
        ix = rng.integers(0, len(d) - T, size=batch_size)[:, None] + offsets
        x, y = dc.from_numpy(d[ix]), dc.from_numpy(d[ix + 1])  # (B, T) each
        if args.device != "cpu":
            x, y = x.to(args.device), y.to(args.device)
        return x, y

    model = _to_device(GPT(config), args.device, "train")
    optimizer = model.configure_optimizers(args.weight_decay, lr, (0.9, 0.99))
    precision = _precision(args)
    device_type = str(args.device).split(":", 1)[0]

    def autocast():
        if precision == "32-true":
            return contextlib.nullcontext()
        half = dc.float16 if precision == "16-mixed" else dc.bfloat16
        return dc.autocast(device_type, dtype=half)
    scaler = dc.amp.GradScaler(device_type) if precision == "16-mixed" else None

    def estimate_loss():
        model.eval()
        with dc.no_grad(), autocast():
            out = {s: float(np.mean([model(*batch(s))[1].item() for _ in range(args.eval_iters)]))
                   for s in splits}
        model.train()
        return out

    out = args.out or os.path.join("runs", "gpt-" + os.path.splitext(
        os.path.basename(args.text))[0])
    os.makedirs(out, exist_ok=True)
    checkpoint = os.path.join(out, "checkpoint.safetensors")
    print(f"deepcore train: gpt ({model.get_num_params():,} parameters, {config.n_layer} layers, "
          f"{config.n_head} heads, {config.n_embd} wide) on '{args.text}' ({len(data):,} "
          f"characters, vocabulary {len(vocab)}), block {T}, batch {batch_size}, "
          f"{args.max_iters} steps, adamw lr={lr:g}, precision {precision}")
    start = time.perf_counter()
    losses = {"train": math.nan, "val": math.nan}
    for it in range(args.max_iters + 1):
        if it % args.eval_interval == 0 or it == args.max_iters:
            losses = estimate_loss()
            print(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
        if it == args.max_iters:
            break
        x, y = batch("train")
        with autocast():
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
    dc.save({"format": GPT_FORMAT, "version": GPT_FORMAT_VERSION, "config": config.to_dict(),
             "vocab": vocab, "iters": args.max_iters, "val_loss": losses["val"],
             "model": model.state_dict()}, checkpoint)
    print(f"checkpoint: {checkpoint}")
    return losses["val"]


def _load_gpt(path: str):
    """(model, vocab) from a `train --model gpt` checkpoint (Note [Character-level GPT
    checkpoint]); any other file is a SystemExit naming it."""
    import deepcore as dc
    from ._model_files import gpt_from_checkpoint
    from .serialization import SerializationError

    if not os.path.isfile(path):
        raise SystemExit(f"deepcore generate: checkpoint not found: '{path}'")
    try:
        ckpt = dc.load(path)
    except SerializationError as e:
        raise SystemExit(f"deepcore generate: cannot read '{path}': {e}") from None
    try:
        model, vocab = gpt_from_checkpoint(ckpt, path)
    except ValueError as e:
        raise SystemExit(f"deepcore generate: {e}") from None
    return model, vocab


def generate(args) -> str:
    """Prints (and returns) the prompt continued by ``args.max_new_tokens`` sampled characters."""
    import deepcore as dc

    if args.max_new_tokens < 0:
        raise SystemExit(f"deepcore generate: --max-new-tokens must be >= 0, got "
                         f"{args.max_new_tokens}")
    _check_positive("generate", temperature=args.temperature)
    model, vocab = _load_gpt(args.checkpoint)
    model = _to_device(model, args.device, "generate").eval()
    stoi = {c: i for i, c in enumerate(vocab)}
    prompt = args.prompt if args.prompt else ("\n" if "\n" in stoi else vocab[0])
    unknown = sorted(set(prompt) - set(stoi))
    if unknown:
        known = repr("".join(vocab)) if len(vocab) <= 200 else f"{len(vocab)} characters"
        raise SystemExit(f"deepcore generate: the prompt has characters that are not in the "
                         f"vocabulary of '{args.checkpoint}': "
                         f"{', '.join(repr(c) for c in unknown)} (it knows {known})")
    dc.manual_seed(args.seed)
    idx = dc.tensor([[stoi[c] for c in prompt]], dtype=dc.int64)
    if args.device != "cpu":
        idx = idx.to(args.device)
    top_k = args.top_k if args.top_k and args.top_k > 0 else None
    out = model.generate(idx, args.max_new_tokens, temperature=args.temperature, top_k=top_k)
    sample = "".join(vocab[i] for i in out[0].tolist())
    print(sample)
    return sample


# ---- serve, export ------------------------------------------------------------------------------

def _load_model_file(path: str, cmd: str):
    """(module, input specs) from a model file, or a SystemExit naming it."""
    from ._model_files import load_model_file
    try:
        return load_model_file(path)
    except (OSError, ValueError, TypeError, ImportError, NotImplementedError) as e:
        raise SystemExit(f"deepcore {cmd}: {e}") from None


def serve(args) -> None:
    """Serves ``args.model`` until SIGINT / SIGTERM (deepcore/serve)."""
    _check_positive("serve", max_batch_size=args.max_batch_size, max_body_mb=args.max_body_mb)
    if args.max_delay_ms < 0:
        raise SystemExit(f"deepcore serve: --max-delay-ms must be >= 0, got {args.max_delay_ms}")
    if not 0 <= args.port <= 65535:
        raise SystemExit(f"deepcore serve: --port must be in 0..65535, got {args.port}")
    try:
        from . import serve as server
    except ImportError as e:
        raise SystemExit(f"deepcore serve: {e.name or e} is not installed "
                         "(pip install deepcore[serve])") from None
    if args.threads is not None:
        _check_positive("serve", threads=args.threads)
        import deepcore as dc
        dc.set_num_threads(args.threads)
    name = args.name or os.path.splitext(os.path.basename(args.model))[0]
    if not name or "/" in name:
        raise SystemExit(f"deepcore serve: --name must be a non-empty name without '/', got "
                         f"{name!r}")
    try:
        model = server.load(args.model, name=name)
    except (OSError, ValueError, TypeError, ImportError, NotImplementedError) as e:
        raise SystemExit(f"deepcore serve: {e}") from None
    try:
        server.run(model, host=args.host, port=args.port, max_batch_size=args.max_batch_size,
                   max_delay_ms=args.max_delay_ms, max_body_mb=args.max_body_mb,
                   log_level=args.log_level, access_log=args.access_log)
    except (ValueError, OSError, ImportError) as e:
        raise SystemExit(f"deepcore serve: {e}") from None


def export(args) -> str:
    """Writes ``args.checkpoint``'s model to ``args.onnx``; returns the path."""
    import deepcore as dc
    if args.opset is not None and args.opset < 1:
        raise SystemExit(f"deepcore export: --opset must be >= 1, got {args.opset}")
    if args.checkpoint.lower().endswith(".onnx"):
        raise SystemExit(f"deepcore export: '{args.checkpoint}' is already an ONNX model")
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.onnx))):
        raise SystemExit(f"deepcore export: the directory of --onnx '{args.onnx}' does not "
                         "exist")
    module, inputs = _load_model_file(args.checkpoint, "export")
    if len(inputs) != 1:
        raise SystemExit(f"deepcore export: '{args.checkpoint}' has {len(inputs)} inputs; "
                         "export writes one-input models")
    try:
        from . import onnx as dc_onnx
        exporter = dc_onnx.export
    except ImportError as e:
        raise SystemExit(f"deepcore export: ONNX export is unavailable ({e}); "
                         "pip install deepcore[onnx]") from None
    spec = inputs[0]
    example = dc.from_numpy(spec.example(batch=1, dynamic=1))
    input_axes = {0: "batch"}
    input_axes.update({i + 1: f"dim{i + 1}" for i, d in enumerate(spec.shape) if d == -1})
    options = {} if args.opset is None else {"opset_version": args.opset}
    try:
        exporter(module, example, args.onnx, input_names=["input"], output_names=["output"],
                 dynamic_axes={"input": input_axes, "output": {0: "batch"}}, **options)
    except (ValueError, TypeError, NotImplementedError, RuntimeError) as e:
        raise SystemExit(f"deepcore export: cannot export '{args.checkpoint}': {e}") from None
    print(f"deepcore export: '{args.checkpoint}' -> '{args.onnx}' (input {spec.dtype} "
          f"[batch, {', '.join(str(d) for d in spec.shape)}])")
    return args.onnx


def main(argv=None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        from .config import show_config
        show_config()
        return 0
    if args.command == "train":
        if args.nproc != 1:
            from .train.distributed import train_distributed
            return train_distributed(args)
        train(args)
        return 0
    if args.command == "generate":
        generate(args)
        return 0
    if args.command == "serve":
        serve(args)
        return 0
    if args.command == "export":
        export(args)
        return 0
    if args.command == "run":
        from .distributed import run as _dist_run
        return _dist_run.main(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
