// Bindings of the [optim] kernel family: one fused in-place update per optimiser (csrc/cpu/optim.h).
// Thin: argument conversion and GIL release only. Optional state buffers are passed as None.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "../core/array.h"
#include "../cpu/optim.h"

namespace py = pybind11;
using namespace tocha;

void bind_optim(py::module_& m) {
  using nogil = py::call_guard<py::gil_scoped_release>;
  m.def("sgd_step_", &cpu::sgd_step_, py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"),
        py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"),
        py::arg("nesterov"), py::arg("maximize"), py::arg("first_step"), nogil());
  m.def("adam_step_", &cpu::adam_step_, py::arg("param"), py::arg("grad"), py::arg("exp_avg"),
        py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"), py::arg("lr"), py::arg("beta1"),
        py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("step"), py::arg("amsgrad"),
        py::arg("maximize"), py::arg("decoupled"), nogil());
  m.def("adamax_step_", &cpu::adamax_step_, py::arg("param"), py::arg("grad"), py::arg("exp_avg"),
        py::arg("exp_inf"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("step"), py::arg("maximize"), nogil());
  m.def("rmsprop_step_", &cpu::rmsprop_step_, py::arg("param"), py::arg("grad"), py::arg("square_avg"),
        py::arg("grad_avg"), py::arg("momentum_buffer"), py::arg("lr"), py::arg("alpha"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("momentum"), py::arg("centered"), py::arg("maximize"), nogil());
  m.def("adagrad_step_", &cpu::adagrad_step_, py::arg("param"), py::arg("grad"), py::arg("state_sum"),
        py::arg("lr"), py::arg("lr_decay"), py::arg("weight_decay"), py::arg("eps"), py::arg("step"),
        py::arg("maximize"), nogil());
  m.def("adadelta_step_", &cpu::adadelta_step_, py::arg("param"), py::arg("grad"), py::arg("square_avg"),
        py::arg("acc_delta"), py::arg("lr"), py::arg("rho"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("maximize"), nogil());
  m.def("nadam_step_", &cpu::nadam_step_, py::arg("param"), py::arg("grad"), py::arg("exp_avg"),
        py::arg("exp_avg_sq"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("step"), py::arg("mu"), py::arg("mu_next"), py::arg("mu_product"),
        py::arg("decoupled"), py::arg("maximize"), nogil());
  m.def("radam_step_", &cpu::radam_step_, py::arg("param"), py::arg("grad"), py::arg("exp_avg"),
        py::arg("exp_avg_sq"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("step"), py::arg("decoupled"), py::arg("maximize"), nogil());
}
