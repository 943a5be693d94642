"""``tocha.transforms``: data augmentation with torchvision names, plus SMOTE for tabular data.

Images are tensors shaped (C, H, W) or batches (N, C, H, W) (also (H, W)); NumPy images straight
from a dataset — (H, W) or (H, W, C), uint8 — are accepted too and come back as NumPy in the same
layout, so ``Compose([RandomCrop(28, padding=2), ToTensor()])`` works on ``MNIST`` samples. On a
batch, one set of random parameters is drawn for the whole batch (as torchvision does); put the
transform in the dataset to get per-sample randomness.

Randomness comes from tocha's global Philox stream (``tocha.manual_seed``) or a ``generator=``
(``tocha.Generator``) given to the transform, so augmentation is reproducible.
"""

import math
import numbers

import numpy as np

from . import _ops
from ._tensor import Tensor


def _contig(a):
    """C-contiguous, writable array (keeps 0-d arrays 0-d, unlike np.ascontiguousarray)."""
    return np.require(a, requirements=["C", "W"])


__all__ = [
    "SMOTE",
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "GaussianNoise",
    "Lambda",
    "Normalize",
    "Pad",
    "RandomAffine",
    "RandomApply",
    "RandomChoice",
    "RandomCrop",
    "RandomErasing",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomVerticalFlip",
    "Resize",
    "ToTensor",
    "functional",
]


# ----------------------------------------------------------------------------------------- helpers
def _rand(gen):
    return float(_ops.rand(1, generator=gen, dtype=_ops.float64).item())


def _uniform(lo, hi, gen):
    return lo + (hi - lo) * _rand(gen)


def _randint(lo, hi, gen):
    """Integer in [lo, hi] inclusive."""
    return int(_ops.randint(lo, hi + 1, (1,), generator=gen).item())


class _Img:
    """An image as a NumPy array (..., H, W) plus the recipe to turn a result back into the input kind."""

    def __init__(self, img):
        if isinstance(img, Tensor):
            self.kind, self.dtype = "tensor", img.dtype
            self.a = img.detach().numpy()
            self.npdtype = self.a.dtype
        elif isinstance(img, np.ndarray):
            self.kind, self.dtype = "numpy", img.dtype
            self.npdtype = img.dtype
            # HWC NumPy (PIL-like) -> CHW for processing
            self.hwc = img.ndim == 3 and img.shape[-1] in (1, 3, 4) and img.shape[0] not in (1, 3, 4)
            self.a = np.moveaxis(img, -1, 0) if self.hwc else img
        else:
            raise TypeError(f"expected a tocha.Tensor or np.ndarray image, got {type(img).__name__}")
        if self.a.ndim < 2:
            raise ValueError(f"image needs at least 2 dimensions (H, W), got shape {self.a.shape}")

    @property
    def hw(self):
        return self.a.shape[-2], self.a.shape[-1]

    def out(self, a):
        if self.kind == "tensor":
            a = _cast(a, self.dtype.np)
            return _ops.tensor(_contig(a))
        a = _cast(a, self.dtype)
        return _contig(np.moveaxis(a, 0, -1) if self.hwc else a)


def _cast(a, dtype):
    dtype = np.dtype(dtype)
    if a.dtype == dtype:
        return a
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(a), info.min, info.max).astype(dtype)
    return a.astype(dtype)


def _max_value(dtype):
    return 255.0 if np.dtype(dtype) == np.uint8 else 1.0


def _size2(size, name="size"):
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        return size[0], size[0]
    if len(size) != 2:
        raise ValueError(f"{name} should be an int or a sequence of 1 or 2 ints, got {size}")
    return size


def _range(value, name, center=1.0, bound=(0, float("inf"))):
    if value is None:
        return None
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"If {name} is a single number, it must be non negative.")
        value = (center - value, center + value)
        value = (max(value[0], bound[0]), value[1])
    lo, hi = float(value[0]), float(value[1])
    if not bound[0] <= lo <= hi <= bound[1]:
        raise ValueError(f"{name} values should be between {bound}, got {(lo, hi)}")
    return None if lo == hi == center else (lo, hi)


# ----------------------------------------------------------------------------------------- functional
class functional:
    """Deterministic image operations used by the random transforms."""

    @staticmethod
    def pad(a, padding, fill=0, padding_mode="constant"):
        """Pad the last two dims; padding: int, (lr, tb) or (left, top, right, bottom)."""
        if isinstance(padding, numbers.Number):
            l = t = r = b = int(padding)
        elif len(padding) == 2:
            l = r = int(padding[0])
            t = b = int(padding[1])
        elif len(padding) == 4:
            l, t, r, b = (int(p) for p in padding)
        else:
            raise ValueError(f"padding must be an int or a 2/4-element sequence, got {padding}")
        width = [(0, 0)] * (a.ndim - 2) + [(t, b), (l, r)]
        if padding_mode == "constant":
            return np.pad(a, width, mode="constant", constant_values=fill)
        if padding_mode not in ("edge", "reflect", "symmetric"):
            raise ValueError(f"padding_mode must be constant, edge, reflect or symmetric, got {padding_mode!r}")
        return np.pad(a, width, mode=padding_mode)

    @staticmethod
    def crop(a, top, left, height, width):
        return a[..., top:top + height, left:left + width]

    @staticmethod
    def resize(a, size):
        """Bilinear resize of the last two dims (``align_corners=False``, no antialias, like
        ``torch.nn.functional.interpolate(mode='bilinear')``)."""
        h, w = a.shape[-2:]
        oh, ow = size
        if (oh, ow) == (h, w):
            return a.astype(np.float64)

        def coords(n_out, n_in):
            x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
            x = np.clip(x, 0, n_in - 1)
            x0 = np.floor(x).astype(np.int64)
            x1 = np.minimum(x0 + 1, n_in - 1)
            return x0, x1, x - x0

        y0, y1, wy = coords(oh, h)
        x0, x1, wx = coords(ow, w)
        a = a.astype(np.float64)
        top = a[..., y0, :][..., :, x0] * (1 - wx) + a[..., y0, :][..., :, x1] * wx
        bot = a[..., y1, :][..., :, x0] * (1 - wx) + a[..., y1, :][..., :, x1] * wx
        return top * (1 - wy)[:, None] + bot * wy[:, None]

    @staticmethod
    def affine(a, angle=0.0, translate=(0, 0), scale=1.0, shear=(0.0, 0.0), interpolation="nearest", fill=0,
               center=None):
        """Rotate (degrees, counter-clockwise), translate (pixels), scale and shear (degrees) about
        ``center`` (default: the image centre), sampling by inverse mapping; outside pixels = ``fill``."""
        h, w = a.shape[-2:]
        cx, cy = ((w - 1) * 0.5, (h - 1) * 0.5) if center is None else center
        rot = math.radians(angle)
        sx, sy = (math.radians(s) for s in (shear if isinstance(shear, (tuple, list)) else (shear, 0.0)))
        # forward matrix M = T * C * R * Sh * S * C^-1 (torchvision's convention, y axis down)
        a_ = math.cos(rot - sy) / math.cos(sy)
        b_ = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
        c_ = math.sin(rot - sy) / math.cos(sy)
        d_ = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
        m = np.array([[a_, b_], [c_, d_]]) * scale
        # image rows grow downwards: a counter-clockwise visual rotation is clockwise in (x, y)
        flip = np.array([[1, 0], [0, -1]])
        m = flip @ m @ flip
        inv = np.linalg.inv(m)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        px = xs - cx - translate[0]
        py = ys - cy - translate[1]
        src_x = inv[0, 0] * px + inv[0, 1] * py + cx
        src_y = inv[1, 0] * px + inv[1, 1] * py + cy
        return functional._sample(a, src_y, src_x, interpolation, fill)

    @staticmethod
    def _sample(a, sy, sx, interpolation, fill):
        h, w = a.shape[-2:]
        af = a.astype(np.float64)
        if interpolation == "nearest":
            iy, ix = np.rint(sy).astype(np.int64), np.rint(sx).astype(np.int64)
            ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
            out = af[..., np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1)]
            return np.where(ok, out, fill)
        if interpolation != "bilinear":
            raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
        y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
        wy, wx = sy - y0, sx - x0
        out = 0.0
        for dy, wgt_y in ((0, 1 - wy), (1, wy)):
            for dx, wgt_x in ((0, 1 - wx), (1, wx)):
                yy, xx = y0 + dy, x0 + dx
                ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
                v = np.where(ok, af[..., np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], fill)
                out = out + v * (wgt_y * wgt_x)
        return out


F = functional


# ----------------------------------------------------------------------------------------- containers
class Compose:
    """Apply transforms in sequence."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        return "Compose(\n" + "".join(f"    {t!r}\n" for t in self.transforms) + ")"


class Lambda:
    """Apply a user function."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self):
        return "Lambda()"


class RandomApply:
    """Apply the list of transforms with probability ``p``."""

    def __init__(self, transforms, p=0.5, generator=None):
        self.transforms, self.p, self.generator = list(transforms), p, generator

    def __call__(self, img):
        if self.p < _rand(self.generator):
            return img
        for t in self.transforms:
            img = t(img)
        return img


class RandomChoice:
    """Apply one transform picked at random (optionally weighted by ``p``)."""

    def __init__(self, transforms, p=None, generator=None):
        self.transforms, self.p, self.generator = list(transforms), p, generator

    def __call__(self, img):
        w = _ops.tensor(self.p if self.p is not None else [1.0] * len(self.transforms), dtype=_ops.float64)
        i = int(_ops.multinomial(w, 1, generator=self.generator).item())
        return self.transforms[i](img)


# ----------------------------------------------------------------------------------------- conversion
class ToTensor:
    """uint8 image in [0, 255] -> float32 tensor in [0, 1], channels first.

    NumPy (H, W) -> (1, H, W); NumPy (H, W, C) -> (C, H, W); a uint8 tensor keeps its layout
    ((H, W) gains a channel dim). Float inputs are not rescaled (torchvision's rule).
    """

    def __call__(self, pic):
        if isinstance(pic, Tensor):
            t = pic if pic.ndim != 2 else pic.unsqueeze(0)
            return t.float().div(255.0) if t.dtype == _ops.uint8 else t.float()
        if not isinstance(pic, np.ndarray):
            raise TypeError(f"pic should be an ndarray or Tensor, got {type(pic).__name__}")
        if pic.ndim == 2:
            pic = pic[:, :, None]
        if pic.ndim != 3:
            raise ValueError(f"pic should be 2 or 3 dimensional, got {pic.ndim} dimensions")
        a = _contig(pic.transpose(2, 0, 1))
        if a.dtype == np.uint8:
            return _ops.from_numpy(a.astype(np.float32) / np.float32(255))
        return _ops.tensor(a.astype(np.float32) if a.dtype.kind != "f" else a)

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel on a float tensor (C, H, W) or (N, C, H, W)."""

    def __init__(self, mean, std, inplace=False):
        self.mean = [float(m) for m in (mean if isinstance(mean, (list, tuple)) else [mean])]
        self.std = [float(s) for s in (std if isinstance(std, (list, tuple)) else [std])]
        if any(s == 0 for s in self.std):
            raise ValueError(f"std evaluated to zero after conversion to float, leading to division by zero: {std}")
        self.inplace = inplace

    def __call__(self, tensor):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"Normalize expects a tocha.Tensor, got {type(tensor).__name__}")
        if not tensor.is_floating_point():
            raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
        if tensor.ndim < 3:
            raise ValueError(f"Expected tensor to be a tensor image of size (..., C, H, W). Got {tuple(tensor.shape)}")
        c = tensor.shape[-3]
        mean, std = self.mean, self.std
        if len(mean) == 1:
            mean = mean * c
        if len(std) == 1:
            std = std * c
        if len(mean) != c or len(std) != c:
            raise ValueError(f"Normalize: {c} channels but mean/std have {len(self.mean)}/{len(self.std)} values")
        m = _ops.tensor(mean, dtype=tensor.dtype).reshape(c, 1, 1)
        s = _ops.tensor(std, dtype=tensor.dtype).reshape(c, 1, 1)
        if self.inplace:
            return tensor.sub_(m).div_(s)
        return (tensor - m) / s

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


# ----------------------------------------------------------------------------------------- geometry
class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``."""

    def __init__(self, p=0.5, generator=None):
        self.p, self.generator = p, generator

    def __call__(self, img):
        if _rand(self.generator) >= self.p:
            return img
        im = _Img(img)
        return im.out(im.a[..., ::-1])

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


class RandomVerticalFlip(RandomHorizontalFlip):
    """Mirror top-bottom with probability ``p``."""

    def __call__(self, img):
        if _rand(self.generator) >= self.p:
            return img
        im = _Img(img)
        return im.out(im.a[..., ::-1, :])


class Pad:
    """Pad the borders (see ``functional.pad``)."""

    def __init__(self, padding, fill=0, padding_mode="constant"):
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img):
        im = _Img(img)
        return im.out(F.pad(im.a, self.padding, self.fill, self.padding_mode))


class CenterCrop:
    """Crop the central ``size`` region (zero-padding when the image is smaller)."""

    def __init__(self, size):
        self.size = _size2(size)

    def __call__(self, img):
        im = _Img(img)
        a = im.a
        th, tw = self.size
        h, w = im.hw
        if th > h or tw > w:
            ph, pw = max(th - h, 0), max(tw - w, 0)
            a = F.pad(a, (pw // 2, ph // 2, (pw + 1) // 2, (ph + 1) // 2))
            h, w = a.shape[-2:]
        top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
        return im.out(F.crop(a, top, left, th, tw))


class Resize:
    """Bilinear resize to ``size`` (int: the shorter side becomes ``size``, aspect kept)."""

    def __init__(self, size):
        self.size = size

    def __call__(self, img):
        im = _Img(img)
        h, w = im.hw
        if isinstance(self.size, numbers.Number):
            s = int(self.size)
            size = (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
        else:
            size = _size2(self.size)
        return im.out(F.resize(im.a, size))


class RandomCrop:
    """Crop a random ``size`` window, after optional ``padding`` (as torchvision's RandomCrop).

    The offsets are uniform: top in [0, H - h], left in [0, W - w] (H, W after padding).
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant", generator=None):
        self.size = _size2(size)
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode
        self.generator = generator

    def get_params(self, hw):
        h, w = hw
        th, tw = self.size
        if h < th or w < tw:
            raise ValueError(f"Required crop size {(th, tw)} is larger than input image size {(h, w)}")
        return _randint(0, h - th, self.generator), _randint(0, w - tw, self.generator), th, tw

    def __call__(self, img):
        im = _Img(img)
        a = im.a
        if self.padding is not None:
            a = F.pad(a, self.padding, self.fill, self.padding_mode)
        h, w = a.shape[-2:]
        th, tw = self.size
        if self.pad_if_needed and (w < tw or h < th):
            a = F.pad(a, (max(tw - w, 0), max(th - h, 0)), self.fill, self.padding_mode)
        top, left, th, tw = self.get_params(a.shape[-2:])
        return im.out(F.crop(a, top, left, th, tw))

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomResizedCrop:
    """Crop a random area fraction ``scale`` with aspect ``ratio``, then resize to ``size``."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), generator=None):
        self.size = _size2(size)
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError("Scale and ratio should be of kind (min, max)")
        self.scale, self.ratio, self.generator = scale, ratio, generator

    def get_params(self, hw):
        h, w = hw
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * _uniform(self.scale[0], self.scale[1], self.generator)
            aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], self.generator))
            cw = int(round(math.sqrt(target * aspect)))
            ch = int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                return _randint(0, h - ch, self.generator), _randint(0, w - cw, self.generator), ch, cw
        in_ratio = w / h  # fallback: central crop with the ratio clamped into range
        if in_ratio < min(self.ratio):
            cw, ch = w, int(round(w / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            ch, cw = h, int(round(h * max(self.ratio)))
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def __call__(self, img):
        im = _Img(img)
        top, left, ch, cw = self.get_params(im.hw)
        return im.out(F.resize(F.crop(im.a, top, left, ch, cw), self.size))


class RandomAffine:
    """Random rotation/translation/scale/shear (torchvision's ``RandomAffine``).

    Args:
        degrees: rotation range (d -> (-d, d)).
        translate: (fx, fy) max fraction of width/height to shift by.
        scale: (lo, hi) scaling range.
        shear: x-shear range in degrees (number or (lo, hi)), or (xlo, xhi, ylo, yhi).
        interpolation: 'nearest' (default) or 'bilinear'.
        fill: value for pixels from outside the image.
    """

    def __init__(self, degrees, translate=None, scale=None, shear=None, interpolation="nearest", fill=0,
                 center=None, generator=None):
        self.degrees = (-float(degrees), float(degrees)) if isinstance(degrees, numbers.Number) else tuple(degrees)
        if translate is not None and not all(0.0 <= t <= 1.0 for t in translate):
            raise ValueError("translation values should be between 0 and 1")
        if scale is not None and any(s <= 0 for s in scale):
            raise ValueError("scale values should be positive")
        self.translate, self.scale = translate, scale
        if shear is None or isinstance(shear, (tuple, list)):
            self.shear = shear
        else:
            self.shear = (-float(shear), float(shear))
        self.interpolation, self.fill, self.center, self.generator = interpolation, fill, center, generator

    def get_params(self, hw):
        h, w = hw
        g = self.generator
        angle = _uniform(self.degrees[0], self.degrees[1], g)
        if self.translate is not None:
            mx, my = self.translate[0] * w, self.translate[1] * h
            tx, ty = int(round(_uniform(-mx, mx, g))), int(round(_uniform(-my, my, g)))
        else:
            tx = ty = 0
        sc = _uniform(self.scale[0], self.scale[1], g) if self.scale is not None else 1.0
        shx = shy = 0.0
        if self.shear is not None:
            shx = _uniform(self.shear[0], self.shear[1], g)
            if len(self.shear) == 4:
                shy = _uniform(self.shear[2], self.shear[3], g)
        return angle, (tx, ty), sc, (shx, shy)

    def __call__(self, img):
        im = _Img(img)
        angle, tr, sc, sh = self.get_params(im.hw)
        return im.out(F.affine(im.a, angle, tr, sc, sh, self.interpolation, self.fill, self.center))


class RandomRotation(RandomAffine):
    """Rotate by a random angle in ``degrees`` (counter-clockwise positive), keeping the size."""

    def __init__(self, degrees, interpolation="nearest", expand=False, center=None, fill=0, generator=None):
        if expand:
            raise NotImplementedError("RandomRotation(expand=True) is not supported")
        super().__init__(degrees, interpolation=interpolation, fill=fill, center=center, generator=generator)


# ----------------------------------------------------------------------------------------- photometric
class ColorJitter:
    """Random brightness / contrast / saturation (hue is not supported), applied in random order.

    A factor f is drawn uniformly from [max(0, 1 - v), 1 + v] for each given v: brightness scales
    the image, contrast blends it with the mean grey level, saturation with its grey version;
    results are clipped to the valid range ([0, 1] for floats, [0, 255] for uint8).
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0, generator=None):
        self.brightness = _range(brightness, "brightness")
        self.contrast = _range(contrast, "contrast")
        self.saturation = _range(saturation, "saturation")
        if hue:
            raise NotImplementedError("ColorJitter(hue=...) is not supported")
        self.generator = generator

    @staticmethod
    def _gray(a):
        if a.shape[-3:-2] == (3,) and a.ndim >= 3:
            r, g, b = a[..., 0, :, :], a[..., 1, :, :], a[..., 2, :, :]
            return (0.2989 * r + 0.587 * g + 0.114 * b)[..., None, :, :]
        return a

    def __call__(self, img):
        im = _Img(img)
        a = im.a.astype(np.float64)
        top = _max_value(im.npdtype)
        order = _ops.randperm(3, generator=self.generator).tolist()
        for k in order:
            if k == 0 and self.brightness:
                a = np.clip(a * _uniform(*self.brightness, self.generator), 0, top)
            elif k == 1 and self.contrast:
                f = _uniform(*self.contrast, self.generator)
                mean = self._gray(a).mean(axis=(-3, -2, -1), keepdims=True) if a.ndim >= 3 else a.mean()
                a = np.clip(f * a + (1 - f) * mean, 0, top)
            elif k == 2 and self.saturation:
                f = _uniform(*self.saturation, self.generator)
                a = np.clip(f * a + (1 - f) * self._gray(a), 0, top)
        return im.out(a)


class GaussianNoise:
    """Add N(mean, sigma^2) noise to a float image; ``clip`` keeps values in [0, 1]."""

    def __init__(self, mean=0.0, sigma=0.1, clip=True, generator=None):
        self.mean, self.sigma, self.clip, self.generator = float(mean), float(sigma), clip, generator

    def __call__(self, img):
        if not isinstance(img, Tensor) or not img.is_floating_point():
            raise TypeError("GaussianNoise expects a float tensor (apply ToTensor first)")
        noise = _ops.randn(*img.shape, generator=self.generator, dtype=img.dtype) * self.sigma + self.mean
        out = img + noise
        return out.clamp(0.0, 1.0) if self.clip else out


class RandomErasing:
    """Erase a random rectangle (torchvision's ``RandomErasing``; use after ``ToTensor``).

    Args:
        p: probability of erasing.
        scale: area fraction range of the rectangle.
        ratio: aspect-ratio range.
        value: fill value (number or per-channel sequence) or 'random' for N(0, 1) noise.
    """

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False, generator=None):
        if not 0 <= p <= 1:
            raise ValueError("Random erasing probability should be between 0 and 1")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError("Scale and ratio should be of kind (min, max)")
        self.p, self.scale, self.ratio, self.value, self.inplace = p, scale, ratio, value, inplace
        self.generator = generator

    def get_params(self, hw):
        h, w = hw
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * _uniform(self.scale[0], self.scale[1], self.generator)
            aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], self.generator))
            eh = int(round(math.sqrt(target * aspect)))
            ew = int(round(math.sqrt(target / aspect)))
            if eh < h and ew < w:
                return _randint(0, h - eh, self.generator), _randint(0, w - ew, self.generator), eh, ew
        return None

    def __call__(self, img):
        if _rand(self.generator) >= self.p:
            return img
        im = _Img(img)
        params = self.get_params(im.hw)
        if params is None:
            return img
        top, left, eh, ew = params
        a = im.a.astype(np.float64, copy=True)
        if self.value == "random":
            shape = a[..., top:top + eh, left:left + ew].shape
            a[..., top:top + eh, left:left + ew] = _ops.randn(*shape, generator=self.generator,
                                                              dtype=_ops.float64).numpy()
        else:
            v = np.asarray(self.value, dtype=np.float64)
            if v.ndim == 1 and a.ndim >= 3:
                v = v.reshape(-1, 1, 1)
            a[..., top:top + eh, left:left + ew] = v
        out = im.out(a)
        if self.inplace and isinstance(img, Tensor):
            img.copy_(out)
            return img
        return out


# ----------------------------------------------------------------------------------------- tabular
class SMOTE:
    """Synthetic Minority Over-sampling TEchnique (Chawla et al., 2002) for tabular data.

    Each synthetic sample lies on the segment between a minority sample and one of its
    ``k_neighbors`` nearest same-class neighbours: ``x + u * (x_nn - x)``, ``u ~ U[0, 1)``.

    Args:
        sampling_strategy: 'auto'/'not majority' (every class up to the majority count),
            'minority' (only the smallest class), a float (binary: minority/majority ratio to
            reach), or a dict {class: target count}.
        k_neighbors: neighbours considered per sample (reduced when a class is smaller).
        random_state: int seed (``None``: drawn from tocha's global stream).

    Example:
        >>> X_res, y_res = SMOTE(random_state=0).fit_resample(X, y)
    """

    def __init__(self, sampling_strategy="auto", k_neighbors=5, random_state=None):
        if not isinstance(k_neighbors, int) or k_neighbors < 1:
            raise ValueError(f"k_neighbors must be a positive int, got {k_neighbors}")
        self.sampling_strategy, self.k_neighbors, self.random_state = sampling_strategy, k_neighbors, random_state

    def _targets(self, classes, counts):
        top = counts.max()
        s = self.sampling_strategy
        if s in ("auto", "not majority"):
            return {c: top for c, n in zip(classes, counts) if n < top}
        if s == "minority":
            return {classes[int(np.argmin(counts))]: top}
        if s == "all":
            return {c: top for c in classes}
        if isinstance(s, float):
            if len(classes) != 2:
                raise ValueError("a float sampling_strategy is only for binary problems")
            minority = classes[int(np.argmin(counts))]
            return {minority: max(int(round(s * top)), counts.min())}
        if isinstance(s, dict):
            known = dict(zip(classes, counts))
            for c, n in s.items():
                if c not in known:
                    raise ValueError(f"class {c!r} from sampling_strategy is not in y")
                if n < known[c]:
                    raise ValueError(f"SMOTE over-samples only: class {c!r} has {known[c]} samples, asked for {n}")
            return dict(s)
        raise ValueError(f"unknown sampling_strategy {s!r}")

    def fit_resample(self, X, y):
        """Return ``(X_resampled, y_resampled)``: the originals followed by the synthetic samples.

        Accepts NumPy arrays or tensors (X: (n, d) float, y: (n,) labels); returns the same kind.
        """
        is_t = isinstance(X, Tensor)
        Xa = X.detach().numpy() if is_t else np.asarray(X)
        ya = y.detach().numpy() if isinstance(y, Tensor) else np.asarray(y)
        if Xa.ndim != 2 or ya.ndim != 1 or len(Xa) != len(ya):
            raise ValueError(f"SMOTE expects X (n, d) and y (n,), got {Xa.shape} and {ya.shape}")
        rng = np.random.default_rng(self.random_state if self.random_state is not None
                                    else int(_ops.randint(0, 1 << 62, (1,)).item()))
        classes, counts = np.unique(ya, return_counts=True)
        new_X, new_y = [Xa.astype(np.float64)], [ya]
        for c, target in self._targets(list(classes), counts).items():
            members = Xa[ya == c].astype(np.float64)
            n_new = int(target) - len(members)
            if n_new <= 0:
                continue
            if len(members) < 2:
                raise ValueError(f"SMOTE needs at least 2 samples of class {c!r} to interpolate, found {len(members)}")
            k = min(self.k_neighbors, len(members) - 1)
            d2 = ((members[:, None, :] - members[None, :, :]) ** 2).sum(-1)
            np.fill_diagonal(d2, np.inf)
            nn = np.argsort(d2, axis=1, kind="stable")[:, :k]
            base = rng.integers(0, len(members), n_new)
            pick = nn[base, rng.integers(0, k, n_new)]
            gap = rng.random((n_new, 1))
            new_X.append(members[base] + gap * (members[pick] - members[base]))
            new_y.append(np.full(n_new, c, dtype=ya.dtype))
        Xr = np.concatenate(new_X).astype(Xa.dtype if Xa.dtype.kind == "f" else np.float64)
        yr = np.concatenate(new_y)
        if is_t:
            return _ops.tensor(Xr, dtype=X.dtype if X.is_floating_point() else None), _ops.tensor(yr)
        return Xr, yr
