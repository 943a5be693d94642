// tocha._C: thin pybind11 bindings. Converts arguments, releases the GIL around kernels, maps C++
// exceptions to Python ones. No logic lives here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "../core/ops.h"
#include "../core/parallel.h"
#include "../cpu/gemm.h"
#include "../cpu/vecmath.h"

namespace py = pybind11;
using namespace tocha;

void bind_nn(py::module_& m);     // bind_nn.cpp: activations, norms, dropout, embedding
void bind_conv(py::module_& m);   // bind_conv.cpp: convolution and pooling
void bind_optim(py::module_& m);  // bind_optim.cpp: fused optimiser updates
void bind_cuda(py::module_& m);   // bind_cuda.cpp: CUDA runtime + kernels (no-op without TOCHA_WITH_CUDA)
void bind_tensor_base(py::module_& m);  // tensor_base.cpp: the C base of tocha.Tensor (after Array)

namespace {

using nogil = py::call_guard<py::gil_scoped_release>;

const char* buffer_format(DType dt) {
  switch (dt) {
    case DType::Bool: return "?";
    case DType::UInt8: return "B";
    case DType::Int32: return "i";
    case DType::Int64: return "q";
    case DType::Float32: return "f";
    case DType::Float64: return "d";
  }
  return "?";
}

DType dtype_from_format(std::string f, py::ssize_t itemsize) {
  while (!f.empty() && (f[0] == '<' || f[0] == '=' || f[0] == '@' || f[0] == '!' || f[0] == '>')) {
    if (f[0] == '>' || f[0] == '!') throw TypeError("[from_numpy] big-endian arrays are not supported");
    f = f.substr(1);
  }
  if (f == "?") return DType::Bool;
  if (f == "B") return DType::UInt8;
  if (f == "f") return DType::Float32;
  if (f == "d") return DType::Float64;
  if ((f == "i" || f == "l" || f == "q") && itemsize == 4) return DType::Int32;
  if ((f == "l" || f == "q") && itemsize == 8) return DType::Int64;
  throw TypeError("[from_numpy] can't convert a buffer of format '" + f +
                  "'. The only supported types are: float64, float32, int64, int32, uint8, and bool.");
}

Array from_buffer(py::buffer obj) {
  py::buffer_info info = obj.request();
  DType dt = dtype_from_format(info.format, info.itemsize);
  Shape shape(info.shape.begin(), info.shape.end());
  Shape strides(info.ndim);
  int64_t hi = 0;
  for (py::ssize_t i = 0; i < info.ndim; ++i) {
    if (info.strides[i] % info.itemsize != 0)
      throw ValueError("[from_numpy] strides that are not a multiple of the element size are not supported");
    if (info.strides[i] < 0)
      throw ValueError("[from_numpy] at least one stride in the given numpy array is negative, and tensors with "
                       "negative strides are not currently supported. (You can probably work around this by "
                       "making a copy of your array with array.copy().)");
    strides[i] = info.strides[i] / info.itemsize;
    if (shape[i] > 0) hi += (shape[i] - 1) * strides[i];
  }
  Array a;
  auto st = std::make_shared<Storage>();
  st->data = info.ptr;   // borrowed: owns_data stays false
  st->nbytes = shape_numel(shape) == 0 ? 0 : (size_t)(hi + 1) * info.itemsize;
  // keep the exporting object alive; drop it with the GIL held
  py::object keep = py::reinterpret_borrow<py::object>(obj);
  st->owner = std::shared_ptr<void>(new py::object(keep), [](void* p) {
    py::gil_scoped_acquire g;
    delete static_cast<py::object*>(p);
  });
  a.storage = st;
  a.dtype = dt;
  a.shape = shape;
  a.strides = strides;
  a.offset = 0;
  return a;
}

py::object item(const Array& a) {
  if (a.numel() != 1)
    throw ValueError("[item] a Tensor with " + std::to_string(a.numel()) + " elements cannot be converted to Scalar");
  py::object r;
  TOCHA_DISPATCH_ALL(a.dtype, T, {
    const T* p = reinterpret_cast<const T*>(a.data_ptr());
    T v = *p;
    if constexpr (std::is_same_v<T, bool>) r = py::bool_(v);
    else if constexpr (std::is_floating_point_v<T>) r = py::float_((double)v);
    else r = py::int_((int64_t)v);
  });
  return r;
}

template <typename E>
E enum_arg(int v, int count, const char* what) {
  if (v < 0 || v >= count) throw ValueError(std::string("[_C] invalid ") + what + " code " + std::to_string(v));
  return (E)v;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "tocha C++ core: arrays and CPU kernels";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const tocha::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const tocha::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const tocha::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const tocha::NotImplementedError& e) {
      PyErr_SetString(PyExc_NotImplementedError, e.what());
    }
  });

  py::class_<Array>(m, "Array", py::buffer_protocol())
      .def_buffer([](Array& a) -> py::buffer_info {
        if (a.device().type != DeviceType::CPU)
          throw TypeError("can't convert " + a.device().str() + " tensor to numpy. Use Tensor.cpu() first.");
        std::vector<py::ssize_t> shape(a.shape.begin(), a.shape.end()), strides(a.ndim());
        for (int64_t i = 0; i < a.ndim(); ++i) strides[i] = a.strides[i] * (py::ssize_t)a.itemsize();
        return py::buffer_info(a.data_ptr(), (py::ssize_t)a.itemsize(), buffer_format(a.dtype), a.ndim(), shape, strides);
      })
      .def_property_readonly("shape", [](const Array& a) {
        py::tuple t(a.shape.size());
        for (size_t i = 0; i < a.shape.size(); ++i) t[i] = py::int_(a.shape[i]);
        return t;
      })
      .def_property_readonly("strides", [](const Array& a) { return py::tuple(py::cast(a.strides)); })
      .def_property_readonly("offset", [](const Array& a) { return a.offset; })
      .def_property_readonly("dtype", [](const Array& a) { return (int)a.dtype; })
      .def_property_readonly("ndim", &Array::ndim)
      .def_property_readonly("numel", &Array::numel)
      .def_property_readonly("itemsize", &Array::itemsize)
      .def_property_readonly("version", &Array::version)
      .def_property_readonly("device_type", [](const Array& a) { return (int)a.device().type; })
      .def_property_readonly("device_index", [](const Array& a) { return a.device().index; })
      .def_property_readonly("data_ptr", [](const Array& a) { return (uintptr_t)a.raw_ptr(); })
      .def_property_readonly("storage_ptr", [](const Array& a) { return (uintptr_t)a.storage->data; })
      .def_property_readonly("storage_nbytes", [](const Array& a) { return a.storage->nbytes; })
      .def("is_contiguous", &Array::is_contiguous)
      .def("same_storage", [](const Array& a, const Array& b) { return a.storage == b.storage; })
      .def("bump_version", &Array::bump_version)
      .def("as_strided", &Array::as_strided)
      .def("view", &Array::view)
      .def("reshape", &Array::reshape, nogil())
      .def("transpose", &Array::transpose)
      .def("permute", &Array::permute)
      .def("slice", &Array::slice)
      .def("select", &Array::select)
      .def("expand", &Array::expand)
      .def("squeeze", &Array::squeeze)
      .def("unsqueeze", &Array::unsqueeze)
      .def("diagonal", &Array::diagonal)
      .def("contiguous", &Array::contiguous, nogil())
      .def("clone", &Array::clone, nogil())
      .def("astype", [](const Array& a, int dt) { return a.astype(enum_arg<DType>(dt, kNumDTypes, "dtype")); }, nogil())
      .def("item", &item);

  m.def("empty", [](const Shape& s, int dt) { return Array::empty(s, enum_arg<DType>(dt, kNumDTypes, "dtype")); });
  m.def("zeros", [](const Shape& s, int dt) { return Array::zeros(s, enum_arg<DType>(dt, kNumDTypes, "dtype")); }, nogil());
  m.def("full", [](const Shape& s, double v, int dt) {
    Array a = Array::empty(s, enum_arg<DType>(dt, kNumDTypes, "dtype"));
    cpu::fill_(a, v);
    return a;
  }, nogil());
  m.def("from_buffer", &from_buffer);
  m.def("broadcast_shapes", [](const Shape& a, const Shape& b) { return broadcast_shapes(a, b, "broadcast_shapes"); });
  m.def("promote_types", [](int a, int b) {
    return (int)promote_types(enum_arg<DType>(a, kNumDTypes, "dtype"), enum_arg<DType>(b, kNumDTypes, "dtype"));
  });

  // copy / fill
  m.def("copy_", &cpu::copy_, nogil());
  m.def("fill_", &cpu::fill_, nogil());
  m.def("arange", [](double s, double e, double st, int dt) { return cpu::arange(s, e, st, enum_arg<DType>(dt, kNumDTypes, "dtype")); }, nogil());
  m.def("linspace", [](double s, double e, int64_t n, int dt) { return cpu::linspace(s, e, n, enum_arg<DType>(dt, kNumDTypes, "dtype")); }, nogil());

  // elementwise
  m.def("unary", [](int op, const Array& a) { return cpu::unary(enum_arg<cpu::Unary>(op, (int)cpu::Unary::Count, "unary op"), a); }, nogil());
  m.def("unary_", [](int op, const Array& a) { cpu::unary_(enum_arg<cpu::Unary>(op, (int)cpu::Unary::Count, "unary op"), a); }, nogil());
  m.def("binary", [](int op, const Array& a, const Array& b) { return cpu::binary(enum_arg<cpu::Binary>(op, (int)cpu::Binary::Count, "binary op"), a, b); }, nogil());
  m.def("binary_", [](int op, const Array& a, const Array& b) { cpu::binary_(enum_arg<cpu::Binary>(op, (int)cpu::Binary::Count, "binary op"), a, b); }, nogil());
  m.def("binary_scalar", [](int op, const Array& a, double s, bool is_float, bool rev) {
    return cpu::binary_scalar(enum_arg<cpu::Binary>(op, (int)cpu::Binary::Count, "binary op"), a, s, is_float, rev);
  }, nogil());
  m.def("binary_scalar_", [](int op, const Array& a, double s) {
    cpu::binary_scalar_(enum_arg<cpu::Binary>(op, (int)cpu::Binary::Count, "binary op"), a, s);
  }, nogil());
  m.def("where", &cpu::where, nogil());
  m.def("clamp", &cpu::clamp, nogil());
  m.def("axpy_", &cpu::axpy_, nogil());
  m.def("lerp", &cpu::lerp, nogil());

  // reductions
  m.def("reduce", [](int op, const Array& a, std::vector<int64_t> dims, bool keepdim, std::optional<int> odt) {
    std::optional<DType> o;
    if (odt) o = enum_arg<DType>(*odt, kNumDTypes, "dtype");
    return cpu::reduce(enum_arg<cpu::Reduce>(op, (int)cpu::Reduce::Count, "reduction"), a, dims, keepdim, o);
  }, nogil());
  m.def("reduce_arg", &cpu::reduce_arg, nogil());
  m.def("argreduce_all", &cpu::argreduce_all, nogil());
  m.def("var", &cpu::var, nogil());
  m.def("cumsum", &cpu::cumsum, nogil());
  m.def("cumprod", &cpu::cumprod, nogil());
  m.def("logsumexp", &cpu::logsumexp, nogil());
  m.def("softmax", &cpu::softmax, nogil());
  m.def("softmax_backward", &cpu::softmax_backward, nogil());
  m.def("cross_entropy_forward", &cpu::cross_entropy_forward, nogil());
  m.def("cross_entropy_backward", &cpu::cross_entropy_backward, nogil());

  // linear algebra
  m.def("matmul", &cpu::matmul, nogil());
  m.def("linear", &cpu::linear, nogil());
  m.def("gemm_isa", &cpu::gemm_isa);
  m.def("vec_isa", [] { return cpu::vec::kernels().name; },
        "SIMD build of the elementwise math and reductions in use: 'avx512', 'avx2' or 'generic'.");
  m.def("gemm_prepacked_check", &cpu::gemm_prepacked_check, nogil());  // test hook (tests/test_gemm.py)
  m.def("fma_peak_gflops", &cpu::fma_peak_gflops, py::arg("seconds") = 0.2,
        py::call_guard<py::gil_scoped_release>(),
        "Measured single-core float32 FMA peak (GFLOP/s) of the GEMM's ISA path; 0.0 on the generic path.");

  // indexing
  m.def("index_select", &cpu::index_select, nogil());
  m.def("index_put_", &cpu::index_put_, nogil());
  m.def("gather", &cpu::gather, nogil());
  m.def("scatter_add_", &cpu::scatter_add_, nogil());
  m.def("scatter_", &cpu::scatter_, nogil());
  m.def("nonzero", &cpu::nonzero, nogil());
  m.def("one_hot", &cpu::one_hot, nogil());

  // random
  m.def("manual_seed", &cpu::manual_seed);
  m.def("initial_seed", &cpu::initial_seed);
  m.def("get_rng_state", &cpu::get_rng_state);
  m.def("set_rng_state", &cpu::set_rng_state);
  m.def("uniform_", &cpu::uniform_, nogil());
  m.def("normal_", &cpu::normal_, nogil());
  m.def("randint_", &cpu::randint_, nogil());
  m.def("bernoulli_", &cpu::bernoulli_, nogil());
  m.def("randperm", &cpu::randperm, nogil());
  m.def("multinomial", &cpu::multinomial, nogil());

  // threads
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw ValueError("[set_num_threads] number of threads must be positive, got " + std::to_string(n));
    set_num_threads(n);
  });
  m.def("get_num_threads", &get_num_threads);
  m.def("cpu_cache_bytes", &cpu_cache_bytes);
  m.def("cpu_empty_cache", &cpu_empty_cache);
  m.attr("has_cuda") = false;

  bind_tensor_base(m);
  bind_nn(m);
  bind_conv(m);
  bind_optim(m);
  bind_cuda(m);  // after has_cuda = false: overrides it when built with CUDA
}
