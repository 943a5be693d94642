"""[conv] work: convolution layers (Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d)."""

import math

from ..._ops import empty
from .. import _functional_conv as F
from .. import init
from ..parameter import Parameter
from .module import Module

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(v, n):
    if isinstance(v, (tuple, list)):
        return tuple(v) if len(v) == n else tuple(v) * n if len(v) == 1 else tuple(v)
    return (v,) * n


class _ConvNd(Module):
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", output_padding=0, device=None, dtype=None):
        super().__init__()
        nd = self._nd
        name = type(self).__name__
        if groups <= 0:
            raise ValueError(f"[{name}] groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError(f"[{name}] in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups != 0:
            raise ValueError(f"[{name}] out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"[{name}] padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"[{name}] invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in _ntuple(stride, nd)):
                raise ValueError(f"[{name}] padding='same' is not supported for strided convolutions")
            if self._transposed:
                raise ValueError(f"[{name}] string padding is not supported for transposed convolutions")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _ntuple(kernel_size, nd)
        self.stride = _ntuple(stride, nd)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, nd)
        self.dilation = _ntuple(dilation, nd)
        self.output_padding = _ntuple(output_padding, nd)
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = self._transposed
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(empty(*shape, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch's default: kaiming-uniform with a=sqrt(5), bias uniform in +-1/sqrt(fan_in)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self._transposed and self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _conv_forward(self, input, weight, bias):
        conv = F.conv1d if self._nd == 1 else F.conv2d
        if self.padding_mode != "zeros":
            # non-zero padding modes: pad explicitly (last dim first, as F.pad expects), then no conv padding
            if isinstance(self.padding, str):
                if self.padding == "valid":
                    pads = (0,) * (2 * self._nd)
                else:
                    pads = []
                    for d, k in zip(reversed(self.dilation), reversed(self.kernel_size)):
                        total = d * (k - 1)
                        pads += [total // 2, total - total // 2]
            else:
                pads = []
                for p in reversed(self.padding):
                    pads += [p, p]
            input = F.pad(input, tuple(pads), mode=self.padding_mode)
            return conv(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """1-d convolution layer (cross-correlation), as ``torch.nn.Conv1d``.

    Args:
        in_channels, out_channels: channel counts. kernel_size, stride, padding ('same'/'valid' too),
        dilation, groups, bias, padding_mode ('zeros', 'reflect', 'replicate', 'circular').

    Shape:
        (N, C_in, L) -> (N, C_out, L_out); weight (C_out, C_in/groups, k).
    """

    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class Conv2d(_ConvNd):
    """2-d convolution layer (cross-correlation), as ``torch.nn.Conv2d``.

    Shape:
        (N, C_in, H, W) -> (N, C_out, H_out, W_out); weight (C_out, C_in/groups, kH, kW),
        H_out = (H + 2*padding - dilation*(kH-1) - 1) // stride + 1.
    """

    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class _ConvTransposeNd(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'[{type(self).__name__}] only "zeros" padding mode is supported')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device=device, dtype=dtype)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        nd = self._nd
        output_size = tuple(output_size)[-nd:]
        res = []
        for i in range(nd):
            base = ((input.shape[-nd + i] - 1) * self.stride[i] - 2 * self.padding[i]
                    + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            extra = output_size[i] - base
            if not 0 <= extra < max(self.stride[i], self.dilation[i]):
                raise ValueError(f"[{type(self).__name__}] requested output_size {output_size} is not reachable "
                                 f"from input {tuple(input.shape)}")
            res.append(extra)
        return tuple(res)

    def forward(self, input, output_size=None):
        fn = F.conv_transpose1d if self._nd == 1 else F.conv_transpose2d
        return fn(input, self.weight, self.bias, self.stride, self.padding,
                  self._output_padding(input, output_size), self.groups, self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """1-d transposed convolution layer, as ``torch.nn.ConvTranspose1d``.

    Shape:
        (N, C_in, L) -> (N, C_out, L_out), L_out = (L-1)*stride - 2*padding + dilation*(k-1) +
        output_padding + 1; weight (C_in, C_out/groups, k).
    """

    _nd = 1


class ConvTranspose2d(_ConvTransposeNd):
    """2-d transposed convolution layer, as ``torch.nn.ConvTranspose2d``.

    Shape:
        (N, C_in, H, W) -> (N, C_out, H_out, W_out); weight (C_in, C_out/groups, kH, kW).
    """

    _nd = 2
