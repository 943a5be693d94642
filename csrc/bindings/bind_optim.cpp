// Bindings of the [optim] kernel family (fused optimiser updates) (kept apart from module.cpp so families can grow independently).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "../core/ops.h"

namespace py = pybind11;

void bind_optim(py::module_& m) {
  (void)m;
}
