// Array: the n-d array every kernel works on.
// A ref-counted Storage (64-byte aligned on CPU, or memory owned by another object such as a NumPy
// array) plus dtype, shape, strides (in elements, may be 0 for broadcast), offset and device.
// Views (reshape, transpose, permute, slice, expand) share the Storage. Errors are thrown as
// tocha::ValueError / IndexError / TypeError / RuntimeError, which the bindings map to Python.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace tocha {

// ---- errors (mapped to the Python exception of the same name) ----
struct ValueError : std::runtime_error { using std::runtime_error::runtime_error; };
struct IndexError : std::runtime_error { using std::runtime_error::runtime_error; };
struct TypeError : std::runtime_error { using std::runtime_error::runtime_error; };
struct NotImplementedError : std::runtime_error { using std::runtime_error::runtime_error; };
// std::runtime_error itself maps to RuntimeError.

// ---- dtypes ----
enum class DType : uint8_t { Bool = 0, UInt8, Int32, Int64, Float32, Float64 };
constexpr int kNumDTypes = 6;

size_t dtype_size(DType dt);
const char* dtype_name(DType dt);
inline bool is_floating(DType dt) { return dt == DType::Float32 || dt == DType::Float64; }
inline bool is_integral(DType dt) { return !is_floating(dt); }  // bool counts as integral
// PyTorch-style promotion between two tensors: bool < uint8 < int32 < int64 < float32 < float64.
DType promote_types(DType a, DType b);

template <typename T> struct dtype_of;
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::UInt8; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };

// Run `__VA_ARGS__` with `T` bound to the C++ type of `dt`.
#define TOCHA_DISPATCH_CASE(DT, CT, T, ...) \
  case ::tocha::DType::DT: { using T = CT; __VA_ARGS__; break; }
#define TOCHA_DISPATCH_ALL(dt, T, ...)                                        \
  switch (dt) {                                                               \
    TOCHA_DISPATCH_CASE(Bool, bool, T, __VA_ARGS__)                           \
    TOCHA_DISPATCH_CASE(UInt8, uint8_t, T, __VA_ARGS__)                       \
    TOCHA_DISPATCH_CASE(Int32, int32_t, T, __VA_ARGS__)                       \
    TOCHA_DISPATCH_CASE(Int64, int64_t, T, __VA_ARGS__)                       \
    TOCHA_DISPATCH_CASE(Float32, float, T, __VA_ARGS__)                       \
    TOCHA_DISPATCH_CASE(Float64, double, T, __VA_ARGS__)                      \
    default: throw std::runtime_error("unknown dtype");                       \
  }
#define TOCHA_DISPATCH_FLOAT(dt, T, OPNAME, ...)                              \
  switch (dt) {                                                               \
    TOCHA_DISPATCH_CASE(Float32, float, T, __VA_ARGS__)                       \
    TOCHA_DISPATCH_CASE(Float64, double, T, __VA_ARGS__)                      \
    default:                                                                  \
      throw ::tocha::TypeError(std::string("[") + OPNAME +                    \
                               "] expected a floating-point tensor, got " +   \
                               ::tocha::dtype_name(dt));                      \
  }

// ---- device ----
enum class DeviceType : uint8_t { CPU = 0, CUDA = 1 };
struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
};

// ---- storage ----
struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  uint64_t version = 0;              // bumped by in-place ops; shared by all views
  std::shared_ptr<void> owner;       // keeps foreign memory (NumPy) alive
  bool owns_data = false;            // true only for memory from allocate(): freed in the destructor
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device);
};

using Shape = std::vector<int64_t>;

// CPU block cache (see array.cpp): bytes held for reuse, and releasing them to the OS.
size_t cpu_cache_bytes();
void cpu_empty_cache();

int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
std::string shape_str(const Shape& s);
// NumPy broadcasting of two shapes; throws ValueError naming both shapes and `op`.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Wrap a possibly negative dim into [0, ndim); throws IndexError.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op = "dim");

class Array {
 public:
  std::shared_ptr<Storage> storage;
  DType dtype = DType::Float32;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements

  Array() = default;
  static Array empty(Shape shape, DType dtype, Device device = Device{});
  static Array zeros(const Shape& shape, DType dtype, Device device = Device{});

  int64_t ndim() const { return (int64_t)shape.size(); }
  int64_t numel() const { return shape_numel(shape); }
  size_t itemsize() const { return dtype_size(dtype); }
  Device device() const { return storage->device; }
  bool is_contiguous() const;
  // Host pointer to element 0. Every CPU kernel goes through this, so a device array can never be
  // dereferenced on the host: it throws instead. Device code uses raw_ptr()/raw<T>().
  char* data_ptr() const {
    if (storage->device.type != DeviceType::CPU)
      throw NotImplementedError("expected a CPU tensor but got one on " + storage->device.str() +
                                "; this op has no CUDA implementation yet");
    return raw_ptr();
  }
  template <typename T> T* data() const { return reinterpret_cast<T*>(data_ptr()); }
  char* raw_ptr() const { return static_cast<char*>(storage->data) + offset * (int64_t)itemsize(); }
  template <typename T> T* raw() const { return reinterpret_cast<T*>(raw_ptr()); }
  void bump_version() const { storage->version++; }
  uint64_t version() const { return storage->version; }

  // ---- views (share storage) ----
  Array as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;
  Array view(Shape shape) const;              // throws if strides do not allow it
  Array reshape(Shape shape) const;           // view when possible, else a contiguous copy
  Array transpose(int64_t d0, int64_t d1) const;
  Array permute(const Shape& dims) const;
  Array slice(int64_t dim, int64_t start, int64_t stop, int64_t step) const;  // python-style clamping
  Array select(int64_t dim, int64_t index) const;  // drops `dim`
  Array expand(const Shape& shape) const;           // -1 keeps a size
  Array squeeze(const std::vector<int64_t>& dims) const;  // empty = all size-1 dims
  Array unsqueeze(int64_t dim) const;
  Array diagonal() const;                             // 2-d main diagonal view

  // ---- copies ----
  Array contiguous() const;                 // self when already contiguous
  Array clone() const;                      // always a fresh contiguous copy
  Array astype(DType dt) const;             // self when dtype matches
};

// Infer a -1 entry and check the element count; throws ValueError.
Shape infer_shape(Shape shape, int64_t numel, const char* op);

}  // namespace tocha
