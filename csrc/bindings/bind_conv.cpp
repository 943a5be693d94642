// Bindings of the [conv] kernel family (kept apart from module.cpp so families can grow independently).
// Convolution parameters travel as a flat tuple (sh, sw, ph, pw, dh, dw, groups); pooling as
// (kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <optional>

#include "../core/ops.h"
#include "../cpu/conv.h"
#include "../cpu/pool.h"

namespace py = pybind11;
using namespace tocha;
using cpu::ConvParams;
using cpu::PoolParams;

namespace {
using nogil = py::call_guard<py::gil_scoped_release>;
using CP = std::array<int64_t, 7>;
using PP = std::array<int64_t, 9>;

ConvParams cp(const CP& a) {
  ConvParams p;
  p.sh = a[0]; p.sw = a[1]; p.ph = a[2]; p.pw = a[3]; p.dh = a[4]; p.dw = a[5]; p.groups = a[6];
  return p;
}
PoolParams pp(const PP& a) {
  PoolParams p;
  p.kh = a[0]; p.kw = a[1]; p.sh = a[2]; p.sw = a[3]; p.ph = a[4]; p.pw = a[5]; p.dh = a[6]; p.dw = a[7];
  p.ceil_mode = a[8] != 0;
  return p;
}
}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d_forward", [](const Array& x, const Array& w, std::optional<Array> b, CP p) {
    return cpu::conv2d_forward(x, w, b, cp(p));
  }, nogil());
  m.def("conv2d_backward_input", [](const Array& gy, const Array& w, int64_t H, int64_t W, CP p) {
    return cpu::conv2d_backward_input(gy, w, H, W, cp(p));
  }, nogil());
  m.def("conv2d_backward_weight", [](const Array& x, const Array& gy, int64_t kh, int64_t kw, CP p) {
    return cpu::conv2d_backward_weight(x, gy, kh, kw, cp(p));
  }, nogil());
  m.def("conv2d_backward_bias", &cpu::conv2d_backward_bias, nogil());
  m.def("unfold_forward", [](const Array& x, int64_t kh, int64_t kw, CP p) {
    return cpu::unfold_forward(x, kh, kw, cp(p));
  }, nogil());
  m.def("fold_forward", [](const Array& c, int64_t H, int64_t W, int64_t kh, int64_t kw, CP p) {
    return cpu::fold_forward(c, H, W, kh, kw, cp(p));
  }, nogil());
  m.def("set_conv_algo", &cpu::set_conv_algo);
  m.def("last_conv_forward_algo", &cpu::last_conv_forward_algo);
  m.def("set_conv_band_bytes", &cpu::set_conv_band_bytes);

  m.def("max_pool2d_forward", [](const Array& x, PP p) { return cpu::max_pool2d_forward(x, pp(p)); }, nogil());
  m.def("max_pool2d_backward", &cpu::max_pool2d_backward, nogil());
  m.def("avg_pool2d_forward", [](const Array& x, PP p, bool cip, int64_t div) {
    return cpu::avg_pool2d_forward(x, pp(p), cip, div);
  }, nogil());
  m.def("avg_pool2d_backward", [](const Array& gy, int64_t H, int64_t W, PP p, bool cip, int64_t div) {
    return cpu::avg_pool2d_backward(gy, H, W, pp(p), cip, div);
  }, nogil());
  m.def("adaptive_avg_pool2d_forward", &cpu::adaptive_avg_pool2d_forward, nogil());
  m.def("adaptive_avg_pool2d_backward", &cpu::adaptive_avg_pool2d_backward, nogil());
  m.def("adaptive_max_pool2d_forward", &cpu::adaptive_max_pool2d_forward, nogil());
  m.def("pad2d_forward", &cpu::pad2d_forward, nogil());
  m.def("pad2d_backward", &cpu::pad2d_backward, nogil());
}
