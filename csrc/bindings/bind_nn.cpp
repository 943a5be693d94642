// Bindings of the [nn] kernel family: parametrised activations, PReLU, fused normalisation, CTC.
// Thin: argument conversion only; the GIL is released around every kernel.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "../core/ops.h"
#include "../cpu/activation.h"
#include "../cpu/ctc.h"
#include "../cpu/norm.h"

namespace py = pybind11;
using namespace tocha;

void bind_nn(py::module_& m) {
  using nogil = py::call_guard<py::gil_scoped_release>;
  m.def("activation_forward", &cpu::activation_forward, nogil());
  m.def("activation_backward", &cpu::activation_backward, nogil());
  m.def("prelu_forward", &cpu::prelu_forward, nogil());
  m.def("prelu_backward", &cpu::prelu_backward, nogil());
  m.def("batch_norm_forward", &cpu::batch_norm_forward, nogil());
  m.def("batch_norm_backward", &cpu::batch_norm_backward, nogil());
  m.def("layer_norm_forward", &cpu::layer_norm_forward, nogil());
  m.def("layer_norm_backward", &cpu::layer_norm_backward, nogil());
  m.def("ctc_loss_forward", &cpu::ctc_loss_forward, nogil());
  m.def("ctc_loss_backward", &cpu::ctc_loss_backward, nogil());
}
