// CUDA runtime pieces: device queries, the caching allocator, host<->device copies, self test.
// Allocator: a request is rounded to a size class (512 B multiples up to 1 MiB, then 2 MiB
// multiples) and served from that class's free list when possible, else cudaMalloc. Freed blocks
// go back to their list (no cudaFree) until empty_cache(). Counters follow torch.cuda's meaning.
#include <cmath>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "../cpu/gemm.h"
#include "common.cuh"

namespace tocha::cuda {

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver"/"no device" error
    return 0;
  }
  return n;
}

std::string device_status() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("no usable CUDA device: ") + cudaGetErrorString(e);
  }
  return n > 0 ? "ok" : "no CUDA device";
}

void synchronize() { check(cudaDeviceSynchronize(), "synchronize (an earlier asynchronous kernel failed)"); }

size_t size_class(size_t nbytes) {
  if (nbytes == 0) nbytes = 1;
  constexpr size_t kSmall = 512, kLarge = 2u << 20;
  if (nbytes <= (1u << 20)) return (nbytes + kSmall - 1) / kSmall * kSmall;
  return (nbytes + kLarge - 1) / kLarge * kLarge;
}

namespace {
struct Allocator {
  std::mutex mu;
  std::map<std::pair<int, size_t>, std::vector<void*>> free_lists;  // (device, class) -> blocks
  int64_t allocated = 0, peak = 0, reserved = 0;
};
Allocator& alloc() {
  static Allocator* a = new Allocator();  // leaked on purpose: storages may die after static teardown
  return *a;
}
}  // namespace

void* device_alloc(size_t nbytes, int device) {
  const size_t cls = size_class(nbytes);
  Allocator& A = alloc();
  {
    std::lock_guard<std::mutex> g(A.mu);
    auto it = A.free_lists.find({device, cls});
    if (it != A.free_lists.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      A.allocated += (int64_t)cls;
      if (A.allocated > A.peak) A.peak = A.allocated;
      return p;
    }
  }
  int n = device_count();
  if (device < 0 || device >= n)
    throw std::runtime_error("[cuda allocator] device cuda:" + std::to_string(device) + " is not available (" +
                             std::to_string(n) + " CUDA devices; " + device_status() + ")");
  check(cudaSetDevice(device), "cuda allocator");
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, cls);
  if (e == cudaErrorMemoryAllocation) {  // release the cache and retry once
    cudaGetLastError();
    empty_cache();
    e = cudaMalloc(&p, cls);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("[cuda allocator] out of memory allocating " + std::to_string(nbytes) + " bytes on cuda:" +
                             std::to_string(device) + ": " + cudaGetErrorString(e));
  }
  std::lock_guard<std::mutex> g(A.mu);
  A.allocated += (int64_t)cls;
  A.reserved += (int64_t)cls;
  if (A.allocated > A.peak) A.peak = A.allocated;
  return p;
}

void device_free(void* p, size_t nbytes, int device) noexcept {
  if (!p) return;
  const size_t cls = size_class(nbytes);
  Allocator& A = alloc();
  std::lock_guard<std::mutex> g(A.mu);
  A.free_lists[{device, cls}].push_back(p);
  A.allocated -= (int64_t)cls;
}

int64_t memory_allocated() { std::lock_guard<std::mutex> g(alloc().mu); return alloc().allocated; }
int64_t max_memory_allocated() { std::lock_guard<std::mutex> g(alloc().mu); return alloc().peak; }
int64_t memory_reserved() { std::lock_guard<std::mutex> g(alloc().mu); return alloc().reserved; }
void reset_peak_memory_stats() { std::lock_guard<std::mutex> g(alloc().mu); alloc().peak = alloc().allocated; }

void empty_cache() {
  Allocator& A = alloc();
  std::lock_guard<std::mutex> g(A.mu);
  for (auto& kv : A.free_lists) {
    if (kv.second.empty()) continue;
    cudaSetDevice(kv.first.first);
    // blocks may still be in use by queued kernels: finish them before freeing
    cudaDeviceSynchronize();
    for (void* p : kv.second) {
      cudaFree(p);
      A.reserved -= (int64_t)kv.first.second;
    }
    kv.second.clear();
  }
}

Array to_device(const Array& a, Device device) {
  const Device from = a.device();
  if (from.type == DeviceType::CPU && device.type == DeviceType::CPU) return a.contiguous();
  if (from.type == DeviceType::CPU) {
    Array src = a.contiguous();
    Array out = Array::empty(a.shape, a.dtype, device);
    check(cudaSetDevice(device.index), "to_device");
    if (out.numel() > 0)
      check(cudaMemcpy(out.raw_ptr(), src.raw_ptr(), out.numel() * out.itemsize(), cudaMemcpyHostToDevice),
            "to_device (host to device copy)");
    return out;
  }
  Array src = contiguous(a);  // on its device
  if (device.type == DeviceType::CPU) {
    Array out = Array::empty(a.shape, a.dtype);
    check(cudaSetDevice(from.index), "to_device");
    if (out.numel() > 0)
      check(cudaMemcpy(out.raw_ptr(), src.raw_ptr(), out.numel() * out.itemsize(), cudaMemcpyDeviceToHost),
            "to_device (device to host copy; may report an earlier asynchronous kernel error)");
    return out;
  }
  if (device == from) {  // a real copy, like torch's .clone() (never aliases `a`)
    Array out = Array::empty(a.shape, a.dtype, device);
    copy_(out, a);
    return out;
  }
  Array out = Array::empty(a.shape, a.dtype, device);
  if (out.numel() > 0)
    check(cudaMemcpyPeer(out.raw_ptr(), device.index, src.raw_ptr(), from.index, out.numel() * out.itemsize()),
          "to_device (device to device copy)");
  return out;
}

}  // namespace tocha::cuda

// ======================= self test =======================
namespace tocha::cuda {
namespace {
double max_abs_diff(const Array& cpu_ref, const Array& dev) {
  Array h = to_device(dev, Device{}).astype(DType::Float64);
  Array r = cpu_ref.astype(DType::Float64).contiguous();
  if (h.shape != r.shape) throw std::runtime_error("[cuda_self_test] shape mismatch " + shape_str(h.shape) + " vs " + shape_str(r.shape));
  double m = 0;
  for (int64_t i = 0; i < r.numel(); ++i) {
    double a = h.raw<double>()[i], b = r.raw<double>()[i];
    if (std::isnan(a) != std::isnan(b)) return INFINITY;
    if (!std::isnan(a)) m = std::max(m, std::fabs(a - b));
  }
  return m;
}
void expect(std::ostringstream& rep, const char* what, double diff, double tol) {
  rep << (diff <= tol ? "ok   " : "FAIL ") << what << " max|diff|=" << diff << " (tol " << tol << ")\n";
  if (!(diff <= tol)) throw std::runtime_error("[cuda_self_test] " + std::string(what) + " differs from the CPU: max|diff|=" +
                                               std::to_string(diff) + "\n" + rep.str());
}
}  // namespace

std::string self_test() {
  if (device_count() == 0) throw std::runtime_error("[cuda_self_test] needs a CUDA GPU: " + device_status());
  std::ostringstream rep;
  const Device dev{DeviceType::CUDA, 0};
  auto seed_state = cpu::get_rng_state();
  // Philox: same seed -> identical numbers on both devices
  for (DType dt : {DType::Float32, DType::Float64}) {
    Array hc = Array::empty({1001}, dt), dc = Array::empty({1001}, dt, dev);
    cpu::set_rng_state(123, 7); cpu::uniform_(hc, -2.0, 3.0);
    cpu::set_rng_state(123, 7); cuda::uniform_(dc, -2.0, 3.0);
    expect(rep, dt == DType::Float32 ? "uniform_ f32 (bitwise)" : "uniform_ f64 (bitwise)", max_abs_diff(hc, dc), 0.0);
    cpu::set_rng_state(5, 0); cpu::normal_(hc, 1.0, 2.0);
    cpu::set_rng_state(5, 0); cuda::normal_(dc, 1.0, 2.0);
    expect(rep, "normal_", max_abs_diff(hc, dc), dt == DType::Float32 ? 1e-5 : 1e-12);
  }
  // elementwise (strided + broadcast), reductions, softmax, CE, GEMM vs the CPU kernels
  Array x = Array::empty({37, 53}, DType::Float32), y = Array::empty({53}, DType::Float32);
  cpu::set_rng_state(1, 0); cpu::normal_(x, 0, 1); cpu::normal_(y, 0, 1);
  Array xd = cuda::to_device(x, dev), yd = cuda::to_device(y, dev);
  expect(rep, "binary add broadcast", max_abs_diff(cpu::binary(Binary::Add, x, y), cuda::binary(Binary::Add, xd, yd)), 0.0);
  expect(rep, "binary mul transposed", max_abs_diff(cpu::binary(Binary::Mul, x.transpose(0, 1), x.transpose(0, 1)),
                                                    cuda::binary(Binary::Mul, xd.transpose(0, 1), xd.transpose(0, 1))), 0.0);
  expect(rep, "unary tanh", max_abs_diff(cpu::unary(Unary::Tanh, x), cuda::unary(Unary::Tanh, xd)), 1e-6);
  expect(rep, "sum dim 0", max_abs_diff(cpu::reduce(Reduce::Sum, x, {0}, false, {}), cuda::reduce(Reduce::Sum, xd, {0}, false, {})), 1e-4);
  expect(rep, "mean all", max_abs_diff(cpu::reduce(Reduce::Mean, x, {}, false, {}), cuda::reduce(Reduce::Mean, xd, {}, false, {})), 1e-5);
  expect(rep, "max dim 1", max_abs_diff(cpu::reduce(Reduce::Amax, x, {1}, true, {}), cuda::reduce(Reduce::Amax, xd, {1}, true, {})), 0.0);
  expect(rep, "log_softmax dim 1", max_abs_diff(cpu::softmax(x, 1, true), cuda::softmax(xd, 1, true)), 1e-5);
  expect(rep, "softmax dim 0", max_abs_diff(cpu::softmax(x, 0, false), cuda::softmax(xd, 0, false)), 1e-6);
  Array t = Array::empty({37}, DType::Int64);
  for (int64_t i = 0; i < 37; ++i) t.raw<int64_t>()[i] = (i * 7) % 53;
  Array td = cuda::to_device(t, dev);
  auto ce = cpu::cross_entropy_forward(x, t, -100, std::nullopt, 0.1);
  auto ced = cuda::cross_entropy_forward(xd, td, -100, std::nullopt, 0.1);
  expect(rep, "cross_entropy fwd", max_abs_diff(ce.first, ced.first), 1e-5);
  Array g = Array::empty({37}, DType::Float32);
  cpu::fill_(g, 0.5);
  expect(rep, "cross_entropy bwd", max_abs_diff(cpu::cross_entropy_backward(g, ce.second, t, -100, std::nullopt, 0.1),
                                               cuda::cross_entropy_backward(cuda::to_device(g, dev), ced.second, td, -100, std::nullopt, 0.1)), 1e-6);
  for (DType dt : {DType::Float32, DType::Float64}) {
    Array a = Array::empty({131, 77}, dt), b = Array::empty({77, 259}, dt);
    cpu::set_rng_state(2, 0); cpu::normal_(a, 0, 1); cpu::normal_(b, 0, 1);
    Array ad = cuda::to_device(a, dev), bd = cuda::to_device(b, dev);
    expect(rep, dt == DType::Float32 ? "gemm f32 edge tiles" : "gemm f64 edge tiles",
           max_abs_diff(cpu::matmul(a, b), cuda::matmul(ad, bd)), dt == DType::Float32 ? 1e-3 : 1e-10);
    expect(rep, "gemm transposed operand", max_abs_diff(cpu::matmul(b.transpose(0, 1), a.transpose(0, 1)),
                                                        cuda::matmul(bd.transpose(0, 1), ad.transpose(0, 1))), dt == DType::Float32 ? 1e-3 : 1e-10);
  }
  synchronize();
  cpu::set_rng_state(seed_state.first, seed_state.second);
  rep << "allocator: allocated=" << memory_allocated() << " peak=" << max_memory_allocated() << " reserved=" << memory_reserved() << "\n";
  return rep.str();
}

}  // namespace tocha::cuda
