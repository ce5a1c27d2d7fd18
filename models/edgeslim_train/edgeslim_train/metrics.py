"""Task metrics of docs/manifest.md (numpy only; the trainer and models/check.py share them).

- accuracy: argmax over axis 1 of the output [N, K] against int labels [N].
- miou: dense logits [N, K, H, W], labels int [N, H, W] in 0..K-1. The confusion matrix over
  every pixel of the set; IoU per class = TP / (TP + FP + FN) over the classes with a non-empty
  union (present in the labels or the predictions), averaged. Also pixel accuracy.
- rmse: dense prediction [N, 1, H, W], labels float [N, H, W] > 0: sqrt(mean((p - y)^2)) over
  every pixel; also abs_rel = mean(|p - y| / y). Lower is better.
"""

import numpy as np


def accuracy(out, y):
    return float((out.argmax(1) == y).mean())


def confusion(pred, y, k):
    p = pred.ravel().astype(np.int64)
    t = y.ravel().astype(np.int64)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def seg_from_confusion(cm):
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    iou = inter[union > 0] / union[union > 0]
    return {"miou": float(iou.mean()), "pixel_accuracy": float(inter.sum() / cm.sum())}


def miou(out, y):
    """out: logits [N, K, H, W]; y: [N, H, W]."""
    return seg_from_confusion(confusion(out.argmax(1), y, out.shape[1]))


def rmse(out, y):
    """out: [N, 1, H, W] (or [N, H, W]); y: [N, H, W] > 0."""
    p = out.reshape(y.shape).astype(np.float64)
    t = y.astype(np.float64)
    return {"rmse": float(np.sqrt(((p - t) ** 2).mean())),
            "abs_rel": float((np.abs(p - t) / t).mean())}


def task_metric(kind, out, y):
    """{metric: value} of one task's outputs over a set."""
    if kind == "accuracy":
        return {"accuracy": accuracy(out, y)}
    if kind == "miou":
        return miou(out, y)
    if kind == "rmse":
        return rmse(out, y)
    raise ValueError(f"unknown metric {kind}")
