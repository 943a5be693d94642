// Bindings of the [nn] kernel family (kept apart from module.cpp so families can grow independently).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "../core/ops.h"

namespace py = pybind11;

void bind_nn(py::module_& m) {
  (void)m;
}
