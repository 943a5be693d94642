// Declarations of the CUDA backend (csrc/cuda/*.cu), namespace tocha::cuda. Plain C++ (no CUDA
// headers) so array.cpp and the bindings can include it; only compiled in when TOCHA_WITH_CUDA.
// Functions mirror the CPU kernels of csrc/core/ops.h (same names/arguments) and take arrays whose
// storage lives on a CUDA device. All launchers check the launch (cudaGetLastError) and throw
// std::runtime_error("[op] ...") on failure; kernels run on the default stream (asynchronous), so a
// fault inside a kernel surfaces at the next synchronize()/device->host copy, naming that call.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "../core/ops.h"

namespace tocha::cuda {

using cpu::Binary;
using cpu::Reduce;
using cpu::Unary;

// ---- runtime (runtime.cu) ----
int device_count() noexcept;        // 0 when there is no driver or no GPU; never throws
std::string device_status();        // human-readable reason why device_count() is 0 (or "ok")
void synchronize();                 // cudaDeviceSynchronize; throws with the pending error
// Caching allocator: blocks rounded up to size classes (512 B multiples below 1 MiB, then
// 2 MiB multiples), kept on per-(device, class) free lists on release and reused.
void* device_alloc(size_t nbytes, int device);
void device_free(void* p, size_t nbytes, int device) noexcept;
int64_t memory_allocated();         // bytes in live blocks (rounded sizes)
int64_t max_memory_allocated();     // peak of memory_allocated since start / reset
int64_t memory_reserved();          // live + cached bytes obtained from cudaMalloc
void reset_peak_memory_stats();
void empty_cache();                 // cudaFree every cached (unused) block
size_t size_class(size_t nbytes);   // the rounded size a request uses (exposed for tests)

// Copy `a` to `device` (CPU <-> CUDA, CUDA -> same CUDA = clone). The result is contiguous.
Array to_device(const Array& a, Device device);

// ---- copy / fill / cast (kernels.cu) ----
void copy_(const Array& dst, const Array& src);  // both on the same CUDA device; broadcast + cast
void fill_(const Array& dst, double value);
Array contiguous(const Array& a);
Array astype(const Array& a, DType dt);

// ---- elementwise (kernels.cu). Supported ops: see kernels.cu; others throw "not implemented" ----
Array unary(Unary op, const Array& a);
Array binary(Binary op, const Array& a, const Array& b);

// ---- reductions (kernels.cu): Sum, Mean, Max/Amax, Min/Amin over any dims; deterministic ----
Array reduce(Reduce op, const Array& a, std::vector<int64_t> dims, bool keepdim,
             std::optional<DType> out_dtype);
Array softmax(const Array& a, int64_t dim, bool log);
Array softmax_backward(const Array& grad, const Array& y, int64_t dim, bool log);
std::pair<Array, Array> cross_entropy_forward(const Array& logits, const Array& target,
                                              int64_t ignore_index, const std::optional<Array>& weight,
                                              double label_smoothing);
Array cross_entropy_backward(const Array& grad_loss, const Array& logsm, const Array& target,
                             int64_t ignore_index, const std::optional<Array>& weight,
                             double label_smoothing);

// ---- GEMM (kernels.cu): C(i,j) (+)= sum_k A(i,k) B(k,j), device pointers, arbitrary strides ----
template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
          int64_t csb, T* C, int64_t ldc, bool accumulate);
Array matmul(const Array& a, const Array& b);  // 2-d (M,K) @ (K,N) only for now

// ---- random (kernels.cu): the CPU Philox stream (random.cpp), shared generator state ----
void uniform_(const Array& a, double lo, double hi);
void normal_(const Array& a, double mean, double std);
void bernoulli_(const Array& a, double p);  // 1 with probability p (any dtype); the CPU's draws

// ---- optimiser updates (optim.cu): same arguments and arithmetic as csrc/cpu/optim.h ----
void sgd_step_(const Array& param, const Array& grad, const std::optional<Array>& momentum_buffer, double lr,
               double momentum, double dampening, double weight_decay, bool nesterov, bool maximize,
               bool first_step);
void adam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq,
                const std::optional<Array>& max_exp_avg_sq, double lr, double beta1, double beta2, double eps,
                double weight_decay, double step, bool amsgrad, bool maximize, bool decoupled);

// ---- layer / RMS norm (norm.cu): same arguments and results as cpu::layer_norm_forward/backward ----
std::tuple<Array, Array, Array> layer_norm_forward(const Array& x, const std::optional<Array>& weight,
                                                   const std::optional<Array>& bias, int64_t D, double eps, bool rms);
std::tuple<Array, Array, Array> layer_norm_backward(const Array& grad, const Array& x,
                                                    const std::optional<Array>& weight, const Array& mean,
                                                    const Array& rstd, int64_t D, bool rms);

// Host-side self test: runs every kernel family on device 0 against the CPU kernels; returns a
// report ("ok ..." lines) or throws naming the first mismatch. Requires a GPU.
std::string self_test();

}  // namespace tocha::cuda
