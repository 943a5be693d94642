// Bindings of the CUDA backend (csrc/cuda). Always compiled; without TOCHA_WITH_CUDA it adds nothing
// (module.cpp sets has_cuda = False). With it: has_cuda = True, device queries that never throw
// (cuda_device_count() is 0 without a driver), the allocator counters, to_device, and the kernels as
// cuda_<name> functions taking CUDA arrays (used by tests/test_cuda.py and the self test).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#ifdef TOCHA_WITH_CUDA
#include "../cuda/ops_cuda.h"
#endif

namespace py = pybind11;

#ifdef TOCHA_WITH_CUDA
namespace {
using namespace tocha;
using nogil = py::call_guard<py::gil_scoped_release>;

template <typename E>
E code(int v, int count, const char* what) {
  if (v < 0 || v >= count) throw ValueError(std::string("[_C] invalid ") + what + " code " + std::to_string(v));
  return (E)v;
}
}  // namespace

void bind_cuda(py::module_& m) {
  m.attr("has_cuda") = true;
  m.def("cuda_device_count", &cuda::device_count, "Number of visible CUDA devices (0 without a driver; never raises)");
  m.def("cuda_device_status", &cuda::device_status, "Why cuda_device_count() is 0, or 'ok'");
  m.def("cuda_synchronize", &cuda::synchronize, nogil());
  m.def("cuda_memory_allocated", &cuda::memory_allocated);
  m.def("cuda_max_memory_allocated", &cuda::max_memory_allocated);
  m.def("cuda_memory_reserved", &cuda::memory_reserved);
  m.def("cuda_reset_peak_memory_stats", &cuda::reset_peak_memory_stats);
  m.def("cuda_empty_cache", &cuda::empty_cache, nogil());
  m.def("cuda_size_class", &cuda::size_class);
  m.def("cuda_self_test", &cuda::self_test, nogil());
  m.def(
      "to_device",
      [](const Array& a, int device_type, int index) {
        DeviceType t = code<DeviceType>(device_type, 2, "device type");
        if (index < 0) throw ValueError("[to_device] device index must be non-negative, got " + std::to_string(index));
        return cuda::to_device(a, Device{t, t == DeviceType::CPU ? 0 : index});
      },
      py::arg("array"), py::arg("device_type"), py::arg("index") = 0, nogil());
  m.def(
      "cuda_empty",
      [](const Shape& shape, int dtype, int index) {
        if (index < 0) throw ValueError("[cuda_empty] device index must be non-negative, got " + std::to_string(index));
        return Array::empty(shape, code<DType>(dtype, kNumDTypes, "dtype"), Device{DeviceType::CUDA, index});
      },
      py::arg("shape"), py::arg("dtype"), py::arg("index") = 0, nogil());
  m.def("cuda_copy_", &cuda::copy_, nogil());
  m.def("cuda_fill_", &cuda::fill_, nogil());
  m.def("cuda_unary", [](int op, const Array& a) { return cuda::unary(code<cuda::Unary>(op, (int)cuda::Unary::Count, "unary op"), a); }, nogil());
  m.def("cuda_binary", [](int op, const Array& a, const Array& b) {
    return cuda::binary(code<cuda::Binary>(op, (int)cuda::Binary::Count, "binary op"), a, b);
  }, nogil());
  m.def("cuda_reduce", [](int op, const Array& a, std::vector<int64_t> dims, bool keepdim, std::optional<int> odt) {
    std::optional<DType> dt;
    if (odt) dt = code<DType>(*odt, kNumDTypes, "dtype");
    return cuda::reduce(code<cuda::Reduce>(op, (int)cuda::Reduce::Count, "reduce op"), a, dims, keepdim, dt);
  }, nogil());
  m.def("cuda_softmax", &cuda::softmax, nogil());
  m.def("cuda_softmax_backward", &cuda::softmax_backward, nogil());
  m.def("cuda_cross_entropy_forward", &cuda::cross_entropy_forward, nogil());
  m.def("cuda_cross_entropy_backward", &cuda::cross_entropy_backward, nogil());
  m.def("cuda_matmul", &cuda::matmul, nogil());
  m.def("cuda_uniform_", &cuda::uniform_, nogil());
  m.def("cuda_normal_", &cuda::normal_, nogil());
  m.def("cuda_bernoulli_", &cuda::bernoulli_, nogil());
  m.def("cuda_layer_norm_forward", &cuda::layer_norm_forward, nogil());
  m.def("cuda_layer_norm_backward", &cuda::layer_norm_backward, nogil());
  m.def("cuda_sgd_step_", &cuda::sgd_step_, py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"),
        py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"),
        py::arg("maximize"), py::arg("first_step"), nogil());
  m.def("cuda_adam_step_", &cuda::adam_step_, py::arg("param"), py::arg("grad"), py::arg("exp_avg"),
        py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"),
        py::arg("eps"), py::arg("weight_decay"), py::arg("step"), py::arg("amsgrad"), py::arg("maximize"),
        py::arg("decoupled"), nogil());
}
#else
void bind_cuda(py::module_&) {}
#endif
