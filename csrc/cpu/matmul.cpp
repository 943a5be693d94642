// matmul (torch.matmul semantics: 1-d promotion, broadcast batch dims) and linear (x @ w^T + b with
// a fused activation). Both hand strided operands straight to gemm(): transposed views cost no copy.
// Shapes: matmul a (..., M, K) @ b (..., K, N) -> (..., M, N); linear x (..., K), w (N, K), b (N).
// Batches run in parallel when each matrix is too small for gemm to use threads itself.
#include <algorithm>
#include <cstdlib>
#include <memory>

#include "../core/ops.h"
#include "../core/parallel.h"
#include "gemm.h"

namespace tocha::cpu {
namespace {

// Integer matmul (no SIMD path; correctness only).
template <typename T>
void gemm_int(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
              int64_t csb, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T s = 0;
      for (int64_t k = 0; k < K; ++k) s = (T)(s + A[i * rsa + k * csa] * B[k * rsb + j * csb]);
      C[i * ldc + j] = s;
    }
}

template <typename T>
void gemm_any(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
              int64_t csb, T* C, int64_t ldc) {
  if constexpr (std::is_floating_point_v<T>) gemm<T>(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, false);
  else gemm_int<T>(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc);
}

std::string mm_shapes(const Array& a, const Array& b) {
  auto s = [](const Shape& x) {
    std::string r;
    for (size_t i = 0; i < x.size(); ++i) r += (i ? "x" : "") + std::to_string(x[i]);
    return r;
  };
  return "(" + s(a.shape) + " and " + s(b.shape) + ")";
}

}  // namespace

Array matmul(const Array& a0, const Array& b0) {
  if (a0.ndim() == 0 || b0.ndim() == 0)
    throw ValueError("[matmul] both arguments to matmul need to be at least 1D, but they are " +
                     std::to_string(a0.ndim()) + "D and " + std::to_string(b0.ndim()) + "D");
  if (a0.dtype != b0.dtype)
    throw TypeError(std::string("[matmul] expected both operands to have the same dtype, but got ") +
                    dtype_name(a0.dtype) + " and " + dtype_name(b0.dtype));
  if (a0.dtype == DType::Bool) throw TypeError("[matmul] not implemented for bool tensors");
  if (a0.device() != b0.device())
    throw std::runtime_error("[matmul] expected all tensors on the same device, got " + a0.device().str() + " and " + b0.device().str());
  // 1-d operands as (1, K) / (K, 1) views; 2-d and batched ones by reference (no shape copies: a small
  // product's call cost is mostly allocations)
  Array a1, b1;
  const Array& a = a0.ndim() == 1 ? (a1 = a0.unsqueeze(0)) : a0;
  const Array& b = b0.ndim() == 1 ? (b1 = b0.unsqueeze(1)) : b0;
  const int64_t M = a.shape[a.ndim() - 2], K = a.shape[a.ndim() - 1];
  const int64_t K2 = b.shape[b.ndim() - 2], N = b.shape[b.ndim() - 1];
  if (K != K2)
    throw ValueError("[matmul] mat1 and mat2 shapes cannot be multiplied " + mm_shapes(a0, b0) +
                     ": inner dimensions " + std::to_string(K) + " and " + std::to_string(K2) + " differ");
  Shape ba(a.shape.begin(), a.shape.end() - 2), bb(b.shape.begin(), b.shape.end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  Shape oshape(batch.size() + 2);
  std::copy(batch.begin(), batch.end(), oshape.begin());
  oshape[batch.size()] = M;
  oshape[batch.size() + 1] = N;
  Array out = Array::empty(std::move(oshape), a.dtype);
  const int64_t nb = shape_numel(batch);
  if (out.numel() > 0) {
    // batch strides of a and b broadcast to `batch`
    const int64_t nd = (int64_t)batch.size();
    Shape sta(nd, 0), stb(nd, 0);
    for (int64_t i = 0; i < (int64_t)ba.size(); ++i)
      if (ba[i] != 1) sta[nd - ba.size() + i] = a.strides[i];
    for (int64_t i = 0; i < (int64_t)bb.size(); ++i)
      if (bb[i] != 1) stb[nd - bb.size() + i] = b.strides[i];
    const int64_t rsa = a.strides[a.ndim() - 2], csa = a.strides[a.ndim() - 1];
    const int64_t rsb = b.strides[b.ndim() - 2], csb = b.strides[b.ndim() - 1];
    TOCHA_DISPATCH_ALL(a.dtype, T, {
      if constexpr (!std::is_same_v<T, bool>) {
        const T* pa = a.data<T>();
        const T* pb = b.data<T>();
        T* po = out.data<T>();
        auto run = [&](int64_t bi) {
          int64_t oa = 0, ob = 0, r = bi;
          for (int64_t d = nd - 1; d >= 0; --d) {
            int64_t i = r % batch[d];
            r /= batch[d];
            oa += i * sta[d];
            ob += i * stb[d];
          }
          gemm_any<T>(M, N, K, pa + oa, rsa, csa, pb + ob, rsb, csb, po + bi * M * N, N);
        };
        int nt = get_num_threads();
        // in parallel over the batch when one product would not use every thread itself (the old bound,
        // M*N*K < 64^3, left 64^3..128^3-sized items serial: (64, 24, 28) @ (64, 28, 1024) ran at 1 thread)
        if (nb > 1 && nt > 1 && gemm_threads(M, N, K) < nt) {
          TOCHA_OMP_PARALLEL_FOR(nt)
          for (int64_t bi = 0; bi < nb; ++bi) run(bi);
        } else {
          for (int64_t bi = 0; bi < nb; ++bi) run(bi);
        }
      }
    });
  }
  if (a0.ndim() == 1 && b0.ndim() == 1) return out.view({});
  if (a0.ndim() == 1) return out.squeeze({-2});
  if (b0.ndim() == 1) return out.squeeze({-1});
  return out;
}

Array linear(const Array& x, const Array& w, const std::optional<Array>& bias, int act) {
  if (w.ndim() != 2) throw ValueError("[linear] weight must be 2-d (out_features, in_features), got " + shape_str(w.shape));
  if (x.ndim() < 1) throw ValueError("[linear] input must be at least 1-d, got a 0-d tensor");
  const int64_t K = w.shape[1], N = w.shape[0];
  if (x.shape.back() != K)
    throw ValueError("[linear] mat1 and mat2 shapes cannot be multiplied: input " + shape_str(x.shape) +
                     " has " + std::to_string(x.shape.back()) + " features but weight " + shape_str(w.shape) +
                     " expects " + std::to_string(K));
  if (x.dtype != w.dtype)
    throw TypeError(std::string("[linear] input dtype ") + dtype_name(x.dtype) + " does not match weight dtype " + dtype_name(w.dtype));
  if (bias && (bias->ndim() != 1 || bias->shape[0] != N))
    throw ValueError("[linear] bias must have shape (" + std::to_string(N) + ",), got " + shape_str(bias->shape));
  if (bias && bias->dtype != x.dtype)
    throw TypeError(std::string("[linear] bias dtype ") + dtype_name(bias->dtype) + " does not match input dtype " + dtype_name(x.dtype));
  const int64_t M = x.numel() / std::max<int64_t>(K, 1);
  Array x2 = K == 0 ? Array::zeros({M, 0}, x.dtype) : x.reshape({M, K});
  Shape oshape(x.shape.begin(), x.shape.end() - 1);
  oshape.push_back(N);
  Array out = Array::empty(oshape, x.dtype);
  Array bc;
  if (bias) bc = bias->contiguous();
  TOCHA_DISPATCH_FLOAT(x.dtype, T, "linear", {
    if (M > 0 && N > 0)
      gemm<T>(M, N, K, x2.data<T>(), x2.strides[0], x2.strides[1], w.data<T>(), w.strides[1], w.strides[0],
              out.data<T>(), N, false, bias ? bc.data<T>() : nullptr, (Act)act);
  });
  return out;
}

// Test hook for the pre-packed GEMM entry (tests/test_gemm.py): c (M, N) = [c +] a @ b [+ bias], act, with
// a (M, K) and b (K, N) read through their strides; pack_a / pack_b pre-pack that operand with
// gemm_pack_a / gemm_pack_b into a 64-byte aligned buffer and call gemm_prepacked, otherwise gemm reads it.
Array gemm_prepacked_check(const Array& a, const Array& b, bool pack_a, bool pack_b, const std::optional<Array>& c0,
                           const std::optional<Array>& bias, int act) {
  if (a.ndim() != 2 || b.ndim() != 2 || a.shape[1] != b.shape[0] || a.dtype != b.dtype || !is_floating(a.dtype))
    throw ValueError("[gemm_prepacked_check] expected float a (M, K) and b (K, N) of one dtype");
  const int64_t M = a.shape[0], K = a.shape[1], N = b.shape[1];
  Array c = c0 ? c0->clone() : Array::empty({M, N}, a.dtype);
  if (c.shape != Shape{M, N} || c.dtype != a.dtype) throw ValueError("[gemm_prepacked_check] bad c");
  Array bc;
  if (bias) bc = bias->contiguous();
  TOCHA_DISPATCH_FLOAT(a.dtype, T, "gemm_prepacked_check", {
    auto aligned = [](int64_t n) {
      return std::unique_ptr<T, decltype(&std::free)>(
          static_cast<T*>(std::aligned_alloc(64, (sizeof(T) * size_t(std::max<int64_t>(n, 1)) + 63) / 64 * 64)),
          &std::free);
    };
    auto ap = aligned(pack_a ? gemm_packed_a_size<T>(M, K) : 0);
    auto bp = aligned(pack_b ? gemm_packed_b_size<T>(K, N) : 0);
    const T *A = a.data<T>(), *B = b.data<T>();
    if (pack_a) gemm_pack_a<T>(M, K, A, a.strides[0], a.strides[1], ap.get());
    if (pack_b) gemm_pack_b<T>(K, N, B, b.strides[0], b.strides[1], bp.get());
    gemm_prepacked<T>(M, N, K, pack_a ? ap.get() : nullptr, A, a.strides[0], a.strides[1],
                      pack_b ? bp.get() : nullptr, B, b.strides[0], b.strides[1], c.data<T>(), N, c0.has_value(),
                      bias ? bc.data<T>() : nullptr, (Act)act);
  });
  return c;
}

}  // namespace tocha::cpu
