"""A small, reproducible training loop for per-pixel networks (segmentation, probability maps).

Images are held in memory; each step draws random patches (optionally centred on foreground),
augments them with a seeded ``numpy.random.Generator`` and takes one Adam step. Validation uses
a fixed set of patches from frames that :func:`atomscope.nn.data.grouped_split` kept apart (whole
segments of a movie), so neighbouring frames never leak across the split. With the same inputs,
``seed`` and thread count, two runs give identical weights; the global torch random state is
restored afterwards.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .._progress import progress_bar
from ..errors import ParameterError
from ._device import resolve_device, torch_threads
from .augment import Augmentation
from .data import grouped_split
from .networks import probabilities
from .scores import pixel_scores

__all__ = ["train_model", "TrainingHistory", "LOSSES", "pixel_scores"]

LOSSES = ("ce", "ce_dice", "dice", "bce", "bce_dice")


@dataclass
class TrainingHistory:
    """What happened during training.

    Attributes
    ----------
    records : list of dict
        One per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_precision``,
        ``val_recall``, ``val_f1`` (foreground pixels at probability 0.5), ``lr``, ``seconds``.
    best_epoch : int or None
        Epoch with the lowest validation loss (its weights are restored when
        ``restore_best=True``).
    seconds : float
        Wall time of the whole run.
    cpu_seconds : float
        CPU time of this process during the run (all threads; on a shared machine,
        ``cpu_seconds / n_threads`` estimates the wall time the run would take alone).
    stopped_early : bool
        True when early stopping ended the run.
    settings : dict
        Every training setting (JSON-compatible), for the weight manifest.
    split : dict
        Indices of the training and validation items.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    stopped_early: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    split: dict[str, list[int]] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.records)

    def summary(self) -> dict[str, Any]:
        last = self.records[-1] if self.records else {}
        best = (
            self.records[self.best_epoch - 1]
            if self.best_epoch is not None and self.records
            else last
        )
        return {
            "epochs": len(self.records),
            "best_epoch": self.best_epoch,
            "seconds": round(self.seconds, 2),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "stopped_early": self.stopped_early,
            "final": last,
            "best": best,
            "settings": self.settings,
            "n_train": len(self.split.get("train", [])),
            "n_val": len(self.split.get("val", [])),
        }

    def plot(self, ax: Any = None) -> Any:
        """Training and validation loss per epoch (validation F1 on a twin axis)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        df = self.to_frame()
        if len(df):
            ax.plot(df["epoch"], df["train_loss"], "o-", ms=3, label="train loss")
            if df["val_loss"].notna().any():
                ax.plot(df["epoch"], df["val_loss"], "s-", ms=3, label="validation loss")
                ax2 = ax.twinx()
                ax2.plot(
                    df["epoch"], df["val_f1"], "^-", ms=3, color="tab:green", label="validation F1"
                )
                ax2.set_ylabel("F1")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        return ax


def _make_loss(
    name: str,
    n_classes: int,
    class_weights: Sequence[float] | None,
    device: torch.device,
    ignore_index: int | None = None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name not in LOSSES:
        raise ParameterError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}")
    if name.startswith("bce") and n_classes != 1:
        raise ParameterError(f"loss {name!r} needs a network with one output channel")
    if name in ("ce", "ce_dice") and n_classes < 2:
        raise ParameterError(f"loss {name!r} needs ≥ 2 output classes; use 'bce' for one")
    weight = (
        torch.as_tensor(class_weights, dtype=torch.float32, device=device)
        if class_weights is not None
        else None
    )

    def dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prob = probabilities(logits)
        fg = prob[:, 0] if n_classes == 1 else 1.0 - prob[:, 0]
        t = (target > 0).float()
        if ignore_index is not None:  # ignored pixels count neither way
            valid = (target != ignore_index).float()
            fg, t = fg * valid, t * valid
        inter = (fg * t).sum()
        return 1.0 - (2 * inter + 1.0) / (fg.sum() + t.sum() + 1.0)

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if name in ("bce", "bce_dice"):
            pos = None if weight is None else weight[-1:]
            if ignore_index is None:
                value = F.binary_cross_entropy_with_logits(
                    logits[:, 0], target.float(), pos_weight=pos
                )
            else:
                valid = target != ignore_index
                per_pixel = F.binary_cross_entropy_with_logits(
                    logits[:, 0], ((target > 0) & valid).float(), pos_weight=pos, reduction="none"
                )
                value = (per_pixel * valid).sum() / valid.sum().clamp(min=1)
            return value + dice(logits, target) if name == "bce_dice" else value
        if name == "dice":
            return dice(logits, target)
        value = F.cross_entropy(
            logits,
            target.long(),
            weight=weight,
            ignore_index=-100 if ignore_index is None else ignore_index,
        )
        return value + dice(logits, target) if name == "ce_dice" else value

    return loss


def _sample(
    images: list[np.ndarray],
    targets: list[np.ndarray],
    positives: list[np.ndarray],
    n: int,
    patch: int,
    positive_fraction: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    xs = np.empty((n, patch, patch), np.float32)
    ys = np.empty((n, patch, patch), targets[0].dtype)
    for k in range(n):
        i = int(rng.integers(len(images)))
        img, tgt = images[i], targets[i]
        h, w = img.shape
        pos = positives[i]
        if len(pos) and rng.random() < positive_fraction:
            cy, cx = pos[int(rng.integers(len(pos)))]
            y0 = int(np.clip(cy - rng.integers(0, patch), 0, h - patch))
            x0 = int(np.clip(cx - rng.integers(0, patch), 0, w - patch))
        else:
            y0 = int(rng.integers(0, h - patch + 1))
            x0 = int(rng.integers(0, w - patch + 1))
        xs[k] = img[y0 : y0 + patch, x0 : x0 + patch]
        ys[k] = tgt[y0 : y0 + patch, x0 : x0 + patch]
    return xs, ys


def _pad_to(a: np.ndarray, patch: int) -> np.ndarray:
    h, w = a.shape
    if h >= patch and w >= patch:
        return a
    return np.pad(a, ((0, max(patch - h, 0)), (0, max(patch - w, 0))), mode="reflect")


def train_model(
    model: nn.Module,
    images: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    *,
    val_images: Sequence[np.ndarray] | None = None,
    val_targets: Sequence[np.ndarray] | None = None,
    groups: Sequence[Any] | None = None,
    segment_length: int | None = None,
    val_fraction: float = 0.2,
    epochs: int = 10,
    steps_per_epoch: int = 32,
    batch_size: int = 8,
    patch_size: int = 128,
    positive_fraction: float = 0.5,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    lr_schedule: str = "cosine",
    loss: str = "ce",
    class_weights: Sequence[float] | None = None,
    augmentation: Augmentation | None = None,
    val_patches: int = 32,
    early_stopping: int | None = None,
    restore_best: bool = True,
    seed: int = 0,
    device: str | torch.device | None = None,
    n_threads: int | None = None,
    channels_last: bool = True,
    show_progress: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
    ignore_index: int | None = None,
) -> TrainingHistory:
    """Train *model* in place on (image, per-pixel target) pairs.

    Parameters
    ----------
    model : torch.nn.Module
        A network returning (N, C, H, W) logits (e.g. :class:`~atomscope.nn.UNet`).
    images : sequence of 2-D float arrays
        Preprocessed frames (see :func:`atomscope.nn.data.preprocess`).
    targets : sequence of 2-D int arrays
        Class index per pixel (0 = background), same shapes as *images*.
    val_images, val_targets : optional
        An explicit validation set; otherwise :func:`~atomscope.nn.data.grouped_split` takes
        ``val_fraction`` of the frames, keeping *groups* (e.g. movie ids) and segments of
        *segment_length* consecutive frames together (default 1: frames are independent —
        give the movie's segment length for in-situ data).
    epochs, steps_per_epoch, batch_size, patch_size : int
        Each epoch takes *steps_per_epoch* Adam steps on batches of random *patch_size*² crops.
    positive_fraction : float
        Fraction of patches forced to contain a foreground pixel (class imbalance).
    lr, weight_decay : float
        Adam learning rate and weight decay (the paper: 1e-4; 1e-3 converges faster on CPU
        budgets).
    lr_schedule : {"cosine", "constant"}
        Cosine decay to 5 % of *lr* over the run, or constant.
    loss : {"ce", "ce_dice", "dice", "bce", "bce_dice"}
        Cross-entropy (the paper), optionally plus soft Dice on the foreground; "bce*" for a
        one-channel (sigmoid) network.
    class_weights : sequence of float, optional
        Cross-entropy class weights (for "bce*": the last one is the positive weight).
    augmentation : Augmentation, optional
        Random augmentation of training patches (default: flips and 90° rotations).
    val_patches : int
        Number of fixed validation patches.
    early_stopping : int, optional
        Stop when the validation loss has not improved for this many epochs.
    restore_best : bool
        Load the weights of the best validation epoch at the end.
    seed : int
        Seeds patch sampling, augmentation and any torch randomness; the global torch random
        state is restored afterwards.
    device : str, optional
        "cpu" (default), "cuda", "auto" …
    n_threads : int, optional
        CPU threads for torch during training (restored afterwards).
    channels_last : bool
        Use the channels-last memory format (faster convolutions on CPU).
    show_progress : bool
        Progress bar over all steps.
    callback : callable, optional
        Called with each epoch's record.
    ignore_index : int, optional
        Target value of pixels that count neither as foreground nor as background (in the
        loss and the validation scores), e.g. ambiguous objects.

    Returns
    -------
    TrainingHistory
    """
    if len(images) == 0 or len(images) != len(targets):
        raise ParameterError("train_model needs at least one image and one target per image")
    for img, tgt in zip(images, targets, strict=True):
        if np.shape(img) != np.shape(tgt) or np.ndim(img) != 2:
            raise ParameterError("each target must be a 2-D array of its image's shape")
    if epochs < 1 or steps_per_epoch < 1 or batch_size < 1 or patch_size < 8:
        raise ParameterError("epochs, steps_per_epoch, batch_size ≥ 1 and patch_size ≥ 8")
    if lr_schedule not in ("cosine", "constant"):
        raise ParameterError("lr_schedule must be 'cosine' or 'constant'")
    dev = resolve_device(device)
    aug = augmentation if augmentation is not None else Augmentation()
    n_classes = int(getattr(model, "config", {}).get("n_classes", 2))
    loss_fn = _make_loss(loss, n_classes, class_weights, dev, ignore_index)
    settings = {
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "batch_size": batch_size,
        "patch_size": patch_size,
        "positive_fraction": positive_fraction,
        "lr": lr,
        "weight_decay": weight_decay,
        "lr_schedule": lr_schedule,
        "loss": loss,
        "class_weights": list(class_weights) if class_weights is not None else None,
        "augmentation": aug.to_dict(),
        "val_patches": val_patches,
        "early_stopping": early_stopping,
        "seed": seed,
        "segment_length": segment_length,
        "val_fraction": val_fraction,
        "optimizer": "Adam",
        "device": str(dev),
        "n_threads": n_threads,
        "torch": torch.__version__,
    }
    if ignore_index is not None:
        settings["ignore_index"] = ignore_index

    imgs = [_pad_to(np.asarray(a, np.float32), patch_size) for a in images]
    tgts = [_pad_to(np.asarray(t), patch_size) for t in targets]
    if val_images is not None:
        if val_targets is None or len(val_targets) != len(val_images):
            raise ParameterError("val_targets must accompany val_images")
        train_idx = np.arange(len(imgs))
        val_idx = np.zeros(0, int)
        v_imgs = [_pad_to(np.asarray(a, np.float32), patch_size) for a in val_images]
        v_tgts = [_pad_to(np.asarray(t), patch_size) for t in val_targets]
        tr_imgs, tr_tgts = imgs, tgts
    else:
        train_idx, val_idx = grouped_split(
            len(imgs),
            groups=groups,
            segment_length=segment_length or 1,
            val_fraction=val_fraction,
            seed=seed,
        )
        tr_imgs = [imgs[i] for i in train_idx]
        tr_tgts = [tgts[i] for i in train_idx]
        v_imgs = [imgs[i] for i in val_idx]
        v_tgts = [tgts[i] for i in val_idx]
    positives = []
    for t in tr_tgts:
        yx = np.argwhere(t[::2, ::2] > 0) * 2
        positives.append(yx)

    history = TrainingHistory(
        settings=settings,
        split={"train": [int(i) for i in train_idx], "val": [int(i) for i in val_idx]},
    )
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    total_steps = epochs * steps_per_epoch
    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch_threads(n_threads), torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(int(seed))
        rng = np.random.default_rng(seed)
        val_rng = np.random.default_rng([int(seed), 1])
        vx = vy = None
        if v_imgs and val_patches > 0:
            v_pos = [np.argwhere(t[::2, ::2] > 0) * 2 for t in v_tgts]
            vx_np, vy_np = _sample(
                v_imgs, v_tgts, v_pos, val_patches, patch_size, positive_fraction, val_rng
            )
            vx = torch.from_numpy(vx_np[:, None]).to(dev).contiguous(memory_format=memory_format)
            vy = torch.from_numpy(vy_np.astype(np.int64)).to(dev)
        model.to(dev)
        model.to(memory_format=memory_format)
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        if lr_schedule == "cosine":
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / total_steps))
            )
        else:
            sched = None
        best_loss = math.inf
        best_state: dict[str, torch.Tensor] | None = None
        since_best = 0
        bar = progress_bar(
            show_progress=show_progress, total=total_steps, desc="training", unit="step"
        )
        try:
            for epoch in range(1, epochs + 1):
                t_epoch = time.perf_counter()
                model.train()
                losses = []
                for _ in range(steps_per_epoch):
                    xb, yb = _sample(
                        tr_imgs, tr_tgts, positives, batch_size, patch_size, positive_fraction, rng
                    )
                    for k in range(batch_size):
                        xb[k], yb[k] = aug(xb[k], yb[k], rng)
                    x = (
                        torch.from_numpy(xb[:, None])
                        .to(dev)
                        .contiguous(memory_format=memory_format)
                    )
                    y = torch.from_numpy(yb.astype(np.int64)).to(dev)
                    opt.zero_grad(set_to_none=True)
                    value = loss_fn(model(x), y)
                    value.backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    losses.append(float(value.detach()))
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.4f}")
                record: dict[str, Any] = {
                    "epoch": epoch,
                    "train_loss": float(np.mean(losses)),
                    "val_loss": None,
                    "val_precision": None,
                    "val_recall": None,
                    "val_f1": None,
                    "lr": float(opt.param_groups[0]["lr"]),
                }
                if vx is not None and vy is not None:
                    model.eval()
                    with torch.inference_mode():
                        vl, vp = [], []
                        for s in range(0, len(vx), batch_size):
                            logits = model(vx[s : s + batch_size])
                            vl.append(float(loss_fn(logits, vy[s : s + batch_size])) * len(logits))
                            prob = probabilities(logits)
                            fg = prob[:, 0] if n_classes == 1 else 1.0 - prob[:, 0]
                            vp.append(fg > 0.5)
                        pred, truth = torch.cat(vp).cpu(), (vy > 0).cpu()
                        if ignore_index is not None:
                            keep = (vy != ignore_index).cpu()
                            pred, truth = pred[keep], truth[keep]
                        scores = pixel_scores(pred, truth)
                    record.update(
                        val_loss=sum(vl) / len(vx),
                        val_precision=scores["precision"],
                        val_recall=scores["recall"],
                        val_f1=scores["f1"],
                    )
                    if record["val_loss"] < best_loss - 1e-6:
                        best_loss = record["val_loss"]
                        history.best_epoch = epoch
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                        since_best = 0
                    else:
                        since_best += 1
                record["seconds"] = time.perf_counter() - t_epoch
                history.records.append(record)
                if callback is not None:
                    callback(record)
                if early_stopping is not None and since_best >= early_stopping:
                    history.stopped_early = True
                    break
        finally:
            bar.close()
        if restore_best and best_state is not None:
            model.load_state_dict(best_state)
        model.to(memory_format=torch.contiguous_format)
        model.eval()
    history.seconds = time.perf_counter() - t_start
    history.cpu_seconds = time.process_time() - cpu_start
    return history
