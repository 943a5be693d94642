// CUDA kernels mirroring csrc/cpu: copy/fill/cast, elementwise unary/binary (contiguous fast path +
// strided/broadcast path through StridedIndex), reductions, softmax/log_softmax(+backward),
// cross-entropy fwd/bwd, tiled SGEMM/DGEMM, Philox uniform_/normal_.
// Determinism: every reduction is a fixed-shape tree in shared memory (and a fixed two-pass split for
// long rows); no float atomics, so results do not depend on scheduling.
// The op code of elementwise kernels is a runtime argument (uniform across the grid, so no divergence):
// one instantiation per dtype instead of per (op, dtype) keeps nvcc time and binary size down.
// NOT measured yet: this file has only been compiled (no GPU was available when it was written).
#include <cmath>
#include <vector>

#include "common.cuh"

namespace tocha::cuda {

// ======================= copy / fill / cast =======================
template <typename S, typename D>
__global__ void copy_kernel(D* dst, StridedIndex di, const S* src, StridedIndex si, int64_t n, bool dst_contig) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dst[dst_contig ? i : di(i)] = (D)src[si(i)];
}
template <typename S>
__global__ void copy_to_bool_kernel(bool* dst, StridedIndex di, const S* src, StridedIndex si, int64_t n, bool dst_contig) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dst[dst_contig ? i : di(i)] = src[si(i)] != S(0);
}

void copy_(const Array& dst, const Array& src) {
  require_cuda(dst, "copy_");
  require_cuda(src, "copy_");
  if (dst.device() != src.device())
    throw std::runtime_error("[copy_] expected both tensors on the same device, got " + dst.device().str() + " and " +
                             src.device().str() + " (use to_device)");
  broadcast_shapes(dst.shape, src.shape, "copy_");
  if (src.ndim() > dst.ndim() || broadcast_shapes(dst.shape, src.shape, "copy_") != dst.shape)
    throw ValueError("[copy_] source of shape " + shape_str(src.shape) + " cannot be broadcast to " + shape_str(dst.shape));
  const int64_t n = dst.numel();
  if (n == 0) return;
  set_device_of(dst, "copy_");
  StridedIndex di = make_index(dst, dst.shape, "copy_"), si = make_index(src, dst.shape, "copy_");
  const bool contig = dst.is_contiguous();
  TOCHA_DISPATCH_ALL(src.dtype, S, {
    if (dst.dtype == DType::Bool) {
      copy_to_bool_kernel<S><<<grid_for(n), kThreads>>>(dst.raw<bool>(), di, src.raw<S>(), si, n, contig);
    } else {
      TOCHA_DISPATCH_ALL(dst.dtype, D, {
        copy_kernel<S, D><<<grid_for(n), kThreads>>>(dst.raw<D>(), di, src.raw<S>(), si, n, contig);
      });
    }
  });
  TOCHA_CUDA_CHECK_LAUNCH("copy_");
  dst.bump_version();
}

template <typename T>
__global__ void fill_kernel(T* dst, StridedIndex di, T v, int64_t n, bool contig) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dst[contig ? i : di(i)] = v;
}

void fill_(const Array& dst, double value) {
  require_cuda(dst, "fill_");
  const int64_t n = dst.numel();
  if (n == 0) return;
  set_device_of(dst, "fill_");
  StridedIndex di = make_index(dst, dst.shape, "fill_");
  TOCHA_DISPATCH_ALL(dst.dtype, T, {
    T v = dst.dtype == DType::Bool ? (T)(value != 0) : (T)value;
    fill_kernel<T><<<grid_for(n), kThreads>>>(dst.raw<T>(), di, v, n, dst.is_contiguous());
  });
  TOCHA_CUDA_CHECK_LAUNCH("fill_");
  dst.bump_version();
}

Array contiguous(const Array& a) {
  require_cuda(a, "contiguous");
  if (a.is_contiguous()) return a;
  Array out = Array::empty(a.shape, a.dtype, a.device());
  copy_(out, a);
  return out;
}

Array astype(const Array& a, DType dt) {
  require_cuda(a, "astype");
  if (a.dtype == dt) return a;
  Array out = Array::empty(a.shape, dt, a.device());
  copy_(out, a);
  return out;
}

// ======================= elementwise =======================
template <typename T>
__device__ __forceinline__ T unary_op(int op, T x) {
  switch ((Unary)op) {
    case Unary::Neg: return -x;
    case Unary::Abs: return x < T(0) ? -x : x;
    case Unary::Exp: return exp(x);
    case Unary::Log: return log(x);
    case Unary::Sqrt: return sqrt(x);
    case Unary::Rsqrt: return T(1) / sqrt(x);
    case Unary::Sin: return sin(x);
    case Unary::Cos: return cos(x);
    case Unary::Tanh: return tanh(x);
    case Unary::Sigmoid: return T(1) / (T(1) + exp(-x));
    case Unary::Relu: return x > T(0) ? x : T(0);  // NaN -> 0 like the CPU's max(x, 0)? see parity test
    case Unary::Square: return x * x;
    case Unary::Reciprocal: return T(1) / x;
    case Unary::Log1p: return log1p(x);
    case Unary::Expm1: return expm1(x);
    case Unary::Sign: return (T)((x > T(0)) - (x < T(0)));  // as the CPU kernel (abs backward needs it)
    case Unary::Floor: return floor(x);
    case Unary::Ceil: return ceil(x);
    case Unary::Trunc: return trunc(x);
    case Unary::Round: return rint(x);  // half to even, as torch.round
    default: return x;
  }
}
bool unary_supported(Unary op) {
  switch (op) {
    case Unary::Neg: case Unary::Abs: case Unary::Exp: case Unary::Log: case Unary::Sqrt: case Unary::Rsqrt:
    case Unary::Sin: case Unary::Cos: case Unary::Tanh: case Unary::Sigmoid: case Unary::Relu:
    case Unary::Square: case Unary::Reciprocal: case Unary::Log1p: case Unary::Expm1: case Unary::Sign:
    case Unary::Floor: case Unary::Ceil: case Unary::Trunc: case Unary::Round: return true;
    default: return false;
  }
}

template <typename T>
__global__ void unary_kernel(int op, T* out, const T* in, StridedIndex ii, int64_t n, bool contig) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = unary_op<T>(op, in[contig ? i : ii(i)]);
}

Array unary(Unary op, const Array& a) {
  require_cuda(a, "unary");
  if (!unary_supported(op))
    throw std::runtime_error("[unary] op code " + std::to_string((int)op) + " is not implemented on CUDA yet");
  if (!is_floating(a.dtype))
    throw TypeError(std::string("[unary] CUDA kernels support float32/float64 here, got ") + dtype_name(a.dtype));
  Array out = Array::empty(a.shape, a.dtype, a.device());
  const int64_t n = a.numel();
  if (n == 0) return out;
  set_device_of(a, "unary");
  StridedIndex ii = make_index(a, a.shape, "unary");
  TOCHA_DISPATCH_FLOAT(a.dtype, T, "unary", {
    unary_kernel<T><<<grid_for(n), kThreads>>>((int)op, out.raw<T>(), a.raw<T>(), ii, n, a.is_contiguous());
  });
  TOCHA_CUDA_CHECK_LAUNCH("unary");
  return out;
}

template <typename T>
__device__ __forceinline__ T binary_op(int op, T a, T b) {
  switch ((Binary)op) {
    case Binary::Add: return a + b;
    case Binary::Sub: return a - b;
    case Binary::Mul: return a * b;
    case Binary::Div: return a / b;
    case Binary::Maximum: return (a != a || a > b) ? a : b;  // NaN propagates
    case Binary::Minimum: return (a != a || a < b) ? a : b;
    case Binary::Pow: return (T)pow((double)a, (double)b);
    case Binary::ReluGrad: return b > T(0) ? a : T(0);                 // (grad, x)
    case Binary::SigmoidGradFromOut: return a * b * (T(1) - b);        // (grad, y)
    case Binary::TanhGradFromOut: return a * (T(1) - b * b);           // (grad, y)
    default: return a;
  }
}
template <typename T>
__device__ __forceinline__ bool compare_op(int op, T a, T b) {
  switch ((Binary)op) {
    case Binary::Eq: return a == b;
    case Binary::Ne: return a != b;
    case Binary::Lt: return a < b;
    case Binary::Le: return a <= b;
    case Binary::Gt: return a > b;
    case Binary::Ge: return a >= b;
    default: return false;
  }
}
bool is_compare(Binary op) {
  return op == Binary::Eq || op == Binary::Ne || op == Binary::Lt || op == Binary::Le || op == Binary::Gt ||
         op == Binary::Ge;
}
bool binary_supported(Binary op) {
  switch (op) {
    case Binary::Add: case Binary::Sub: case Binary::Mul: case Binary::Div: case Binary::Maximum:
    case Binary::Minimum: case Binary::Pow: case Binary::ReluGrad: case Binary::SigmoidGradFromOut:
    case Binary::TanhGradFromOut: return true;
    default: return is_compare(op);
  }
}

template <typename T, typename R>
__global__ void binary_kernel(int op, R* out, const T* a, StridedIndex ai, const T* b, StridedIndex bi, int64_t n,
                              bool contig) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const T x = a[contig ? i : ai(i)], y = b[contig ? i : bi(i)];
    if constexpr (std::is_same<R, bool>::value) out[i] = compare_op<T>(op, x, y);
    else out[i] = binary_op<T>(op, x, y);
  }
}

Array binary(Binary op, const Array& a0, const Array& b0) {
  require_cuda(a0, "binary");
  require_cuda(b0, "binary");
  if (a0.device() != b0.device())
    throw std::runtime_error("[binary] expected all tensors to be on the same device, but found at least two devices, " +
                             a0.device().str() + " and " + b0.device().str());
  if (!binary_supported(op))
    throw std::runtime_error("[binary] op code " + std::to_string((int)op) + " is not implemented on CUDA yet");
  const Shape shape = broadcast_shapes(a0.shape, b0.shape, "binary");
  DType ct = promote_types(a0.dtype, b0.dtype);
  if (!is_compare(op) && !is_floating(ct) && op != Binary::Add && op != Binary::Sub && op != Binary::Mul &&
      op != Binary::Maximum && op != Binary::Minimum)
    ct = DType::Float32;  // true division / pow on integers compute in float32 like torch's default dtype
  if (ct == DType::Bool && !is_compare(op)) ct = DType::UInt8;
  const Array a = astype(a0, ct), b = astype(b0, ct);
  const DType rt = is_compare(op) ? DType::Bool : ct;
  Array out = Array::empty(shape, rt, a.device());
  const int64_t n = out.numel();
  if (n == 0) return out;
  set_device_of(a, "binary");
  const bool contig = a.is_contiguous() && b.is_contiguous() && a.shape == shape && b.shape == shape;
  StridedIndex ai = make_index(a, shape, "binary"), bi = make_index(b, shape, "binary");
  TOCHA_DISPATCH_ALL(ct, T, {
    if constexpr (!std::is_same<T, bool>::value) {
      if (rt == DType::Bool)
        binary_kernel<T, bool><<<grid_for(n), kThreads>>>((int)op, out.raw<bool>(), a.raw<T>(), ai, b.raw<T>(), bi, n, contig);
      else
        binary_kernel<T, T><<<grid_for(n), kThreads>>>((int)op, out.raw<T>(), a.raw<T>(), ai, b.raw<T>(), bi, n, contig);
    } else {
      binary_kernel<uint8_t, bool><<<grid_for(n), kThreads>>>((int)op, out.raw<bool>(), (const uint8_t*)a.raw_ptr(), ai,
                                                              (const uint8_t*)b.raw_ptr(), bi, n, contig);
    }
  });
  TOCHA_CUDA_CHECK_LAUNCH("binary");
  return out;
}

// ======================= reductions =======================
enum RedOp : int { kSum = 0, kMax = 1, kMin = 2 };

template <typename A>
__device__ __forceinline__ A red_combine(int op, A x, A y) {
  if (op == kSum) return x + y;
  if (op == kMax) return (x != x || x > y) ? x : y;
  return (x != x || x < y) ? x : y;
}

// Block-wide tree reduction in a fixed order (deterministic). All threads get the result.
template <typename A, int kBlock>
__device__ A block_reduce(int op, A v, A* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = kBlock / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) sh[threadIdx.x] = red_combine<A>(op, sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  A r = sh[0];
  __syncthreads();
  return r;
}

// rows x cols (contiguous): out[r * parts + p] = reduce of columns [p*chunk, min((p+1)*chunk, L)).
// grid: (parts, rows); one block per (row, part).
template <typename T, typename A, int kBlock>
__global__ void row_reduce_kernel(int op, const T* in, A* out, int64_t L, int64_t chunk, int parts, A init) {
  __shared__ A sh[kBlock];
  const int64_t r = blockIdx.y;
  const int p = blockIdx.x;
  const int64_t c0 = (int64_t)p * chunk, c1 = min(L, c0 + chunk);
  const T* row = in + r * L;
  A acc = init;
  for (int64_t c = c0 + threadIdx.x; c < c1; c += kBlock) acc = red_combine<A>(op, acc, (A)row[c]);
  acc = block_reduce<A, kBlock>(op, acc, sh);
  if (threadIdx.x == 0) out[r * parts + p] = acc;
}

template <typename A, typename O>
__global__ void finish_kernel(const A* in, O* out, int64_t n, double scale) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = (O)(scale == 1.0 ? in[i] : (A)(in[i] * (A)scale));
}

// Reduce a contiguous (R, L) array along L into a contiguous A[R]; two passes when rows are long.
template <typename T, typename A>
Array reduce_rows(int op, const Array& x, int64_t R, int64_t L, DType adt, A init) {
  constexpr int kBlock = 256;
  const int64_t kChunk = 64 * 1024;  // fixed split (depends on L only) keeps the result deterministic
  int parts = (int)std::min<int64_t>((L + kChunk - 1) / kChunk, 1024);
  if (parts < 1) parts = 1;
  if (R > 65535) throw std::runtime_error("[reduce] CUDA reduction over more than 65535 output rows is not implemented yet");
  const int64_t chunk = (L + parts - 1) / parts;
  Array partial = Array::empty({R, (int64_t)parts}, adt, x.device());
  row_reduce_kernel<T, A, kBlock><<<dim3(parts, (unsigned)R), kBlock>>>(op, x.raw<T>(), partial.raw<A>(), L,
                                                                         std::max<int64_t>(chunk, 1), parts, init);
  TOCHA_CUDA_CHECK_LAUNCH("reduce");
  if (parts == 1) return partial.reshape({R});
  Array out = Array::empty({R}, adt, x.device());
  row_reduce_kernel<A, A, kBlock><<<dim3(1, (unsigned)R), kBlock>>>(op, partial.raw<A>(), out.raw<A>(), parts, parts, 1, init);
  TOCHA_CUDA_CHECK_LAUNCH("reduce");
  return out;
}

Array reduce(Reduce op, const Array& a0, std::vector<int64_t> dims, bool keepdim, std::optional<DType> out_dtype) {
  require_cuda(a0, "reduce");
  if (op != Reduce::Sum && op != Reduce::Mean && op != Reduce::Max && op != Reduce::Min && op != Reduce::Amax &&
      op != Reduce::Amin)
    throw std::runtime_error("[reduce] op code " + std::to_string((int)op) + " is not implemented on CUDA yet");
  const int64_t nd = a0.ndim();
  std::vector<bool> red(nd, dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, std::max<int64_t>(nd, 1), "reduce");
    if (nd > 0) {
      if (red[w] && !dims.empty()) throw std::runtime_error("[reduce] dim " + std::to_string(d) + " appears multiple times in the list of dims");
      red[w] = true;
    }
  }
  Array a = a0;
  if (out_dtype) a = astype(a, *out_dtype);
  else if (op == Reduce::Sum && !is_floating(a.dtype)) a = astype(a, DType::Int64);
  if (op == Reduce::Mean && !is_floating(a.dtype))
    throw std::runtime_error(std::string("[mean] could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: ") + dtype_name(a.dtype));
  // permute reduced dims last, make contiguous: (R, L)
  Shape perm, out_shape, keep_shape;
  int64_t R = 1, L = 1;
  for (int64_t d = 0; d < nd; ++d) if (!red[d]) { perm.push_back(d); R *= a.shape[d]; out_shape.push_back(a.shape[d]); }
  for (int64_t d = 0; d < nd; ++d) if (red[d]) { perm.push_back(d); L *= a.shape[d]; }
  for (int64_t d = 0; d < nd; ++d) keep_shape.push_back(red[d] ? 1 : a.shape[d]);
  const bool is_minmax = op != Reduce::Sum && op != Reduce::Mean;
  if (is_minmax && L == 0)
    throw std::runtime_error("[reduce] max(): Expected reduction dim to be specified for input.numel() == 0 or a non-empty reduced dim");
  Array x = contiguous(nd > 0 ? a.permute(perm) : a);
  Shape final_shape = keepdim ? keep_shape : out_shape;
  Array out = Array::empty(final_shape, a.dtype, a.device());
  if (R == 0) return out;
  set_device_of(a, "reduce");
  if (L == 0) { fill_(out, 0.0); return out; }
  const int rop = op == Reduce::Sum || op == Reduce::Mean ? kSum : (op == Reduce::Max || op == Reduce::Amax) ? kMax : kMin;
  const double scale = op == Reduce::Mean ? 1.0 / (double)L : 1.0;
  TOCHA_DISPATCH_ALL(a.dtype, T, {
    if constexpr (std::is_same<T, bool>::value) {
      throw TypeError("[reduce] bool reductions are not implemented on CUDA yet");
    } else {
      T init = rop == kSum ? T(0) : (rop == kMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max());
      if (std::numeric_limits<T>::has_infinity && rop != kSum) init = rop == kMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
      Array r = reduce_rows<T, T>(rop, x.reshape({R, L}), R, L, a.dtype, init);
      if (scale != 1.0) {
        finish_kernel<T, T><<<grid_for(R), kThreads>>>(r.raw<T>(), out.raw<T>(), R, scale);
        TOCHA_CUDA_CHECK_LAUNCH("reduce");
      } else {
        check(cudaMemcpyAsync(out.raw_ptr(), r.raw_ptr(), R * sizeof(T), cudaMemcpyDeviceToDevice), "reduce");
      }
    }
  });
  return out;
}

// ======================= softmax / cross-entropy =======================
// One block per row of a contiguous (R, L) array; three fixed-order passes (max, sum, write).
template <typename T, int kBlock>
__global__ void softmax_rows_kernel(const T* in, T* out, int64_t R, int64_t L, bool log) {
  __shared__ T sh[kBlock];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T* x = in + r * L;
    T* y = out + r * L;
    T m = -INFINITY;
    for (int64_t c = threadIdx.x; c < L; c += kBlock) m = red_combine<T>(kMax, m, x[c]);
    m = block_reduce<T, kBlock>(kMax, m, sh);
    if (m == -INFINITY) m = 0;  // all -inf row: avoid inf - inf
    T s = 0;
    for (int64_t c = threadIdx.x; c < L; c += kBlock) s += exp(x[c] - m);
    s = block_reduce<T, kBlock>(kSum, s, sh);
    const T ls = log ? (T)::log(s) : T(0), inv = T(1) / s;
    for (int64_t c = threadIdx.x; c < L; c += kBlock) y[c] = log ? x[c] - m - ls : exp(x[c] - m) * inv;
  }
}
// grad of softmax: y*(g - sum(g*y)); of log_softmax: g - exp(y)*sum(g)
template <typename T, int kBlock>
__global__ void softmax_bwd_rows_kernel(const T* g, const T* y, T* out, int64_t R, int64_t L, bool log) {
  __shared__ T sh[kBlock];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T* gr = g + r * L;
    const T* yr = y + r * L;
    T s = 0;
    for (int64_t c = threadIdx.x; c < L; c += kBlock) s += log ? gr[c] : gr[c] * yr[c];
    s = block_reduce<T, kBlock>(kSum, s, sh);
    for (int64_t c = threadIdx.x; c < L; c += kBlock) out[r * L + c] = log ? gr[c] - exp(yr[c]) * s : yr[c] * (gr[c] - s);
  }
}

namespace {
// move `dim` last and make contiguous; returns (R, L)
std::pair<int64_t, int64_t> rows_of(const Array& a, int64_t dim) {
  const int64_t L = a.ndim() ? a.shape[dim] : 1;
  return {L ? a.numel() / L : 0, L};
}
Array last_dim_contig(const Array& a, int64_t dim) {
  return contiguous(a.ndim() ? a.transpose(dim, a.ndim() - 1) : a);
}
Array restore_dim(const Array& y, int64_t dim) {
  return contiguous(y.ndim() ? y.transpose(dim, y.ndim() - 1) : y);
}
unsigned rows_grid(int64_t R) { return (unsigned)std::max<int64_t>(1, std::min<int64_t>(R, 65535 * 4)); }
}  // namespace

Array softmax(const Array& a, int64_t dim0, bool log) {
  require_cuda(a, "softmax");
  require_float(a.dtype, "softmax");
  const int64_t dim = a.ndim() ? wrap_dim(dim0, a.ndim(), "softmax") : 0;
  Array x = last_dim_contig(a, dim);
  Array y = Array::empty(x.shape, x.dtype, x.device());
  auto [R, L] = rows_of(x, x.ndim() ? x.ndim() - 1 : 0);
  if (R == 0 || L == 0) return restore_dim(y, dim);
  set_device_of(a, "softmax");
  TOCHA_DISPATCH_FLOAT(a.dtype, T, "softmax", {
    softmax_rows_kernel<T, 256><<<rows_grid(R), 256>>>(x.raw<T>(), y.raw<T>(), R, L, log);
  });
  TOCHA_CUDA_CHECK_LAUNCH(log ? "log_softmax" : "softmax");
  return restore_dim(y, dim);
}

Array softmax_backward(const Array& grad, const Array& y0, int64_t dim0, bool log) {
  require_cuda(grad, "softmax_backward");
  require_cuda(y0, "softmax_backward");
  if (grad.shape != y0.shape)
    throw ValueError("[softmax_backward] grad " + shape_str(grad.shape) + " and output " + shape_str(y0.shape) + " differ");
  require_float(y0.dtype, "softmax_backward");
  const int64_t dim = y0.ndim() ? wrap_dim(dim0, y0.ndim(), "softmax_backward") : 0;
  Array g = last_dim_contig(astype(grad, y0.dtype), dim), y = last_dim_contig(y0, dim);
  Array out = Array::empty(y.shape, y.dtype, y.device());
  auto [R, L] = rows_of(y, y.ndim() ? y.ndim() - 1 : 0);
  if (R == 0 || L == 0) return restore_dim(out, dim);
  set_device_of(y0, "softmax_backward");
  TOCHA_DISPATCH_FLOAT(y.dtype, T, "softmax_backward", {
    softmax_bwd_rows_kernel<T, 256><<<rows_grid(R), 256>>>(g.raw<T>(), y.raw<T>(), out.raw<T>(), R, L, log);
  });
  TOCHA_CUDA_CHECK_LAUNCH("softmax_backward");
  return restore_dim(out, dim);
}

// one thread per sample; the C-loop order matches the CPU kernel
template <typename T>
__global__ void ce_forward_kernel(const T* lsm, const int64_t* t, const T* w, T* loss, int64_t N, int64_t C,
                                  int64_t ignore_index, T ls) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N; i += (int64_t)gridDim.x * blockDim.x) {
    if (t[i] == ignore_index) { loss[i] = 0; continue; }
    const T* row = lsm + i * C;
    const T wt = w ? w[t[i]] : T(1);
    T l = -(T(1) - ls) * wt * row[t[i]];
    if (ls > T(0)) {
      T sm = 0;
      for (int64_t c = 0; c < C; ++c) sm += (w ? w[c] : T(1)) * row[c];
      l -= ls / (T)C * sm;
    }
    loss[i] = l;
  }
}
template <typename T>
__global__ void ce_backward_kernel(const T* g, const T* lsm, const int64_t* t, const T* w, T wsum, T* out, int64_t N,
                                   int64_t C, int64_t ignore_index, T eps) {
  const int64_t n = N * C;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = e / C, c = e % C;
    if (t[i] == ignore_index) { out[e] = 0; continue; }
    const T wt = w ? w[t[i]] : T(1);
    const T a = g[i] * (T(1) - eps) * wt, b = g[i] * eps / (T)C;
    const T p = exp(lsm[e]);
    T v = a * p + b * (p * wsum - (w ? w[c] : T(1)));
    if (c == t[i]) v -= a;
    out[e] = v;
  }
}

namespace {
void check_ce(const Array& logits, const Array& target, const std::optional<Array>& weight) {
  if (logits.ndim() != 2)
    throw ValueError("[cross_entropy] expected logits of shape (N, C), got " + shape_str(logits.shape));
  if (target.dtype != DType::Int64 && target.dtype != DType::Int32 && target.dtype != DType::UInt8)
    throw TypeError(std::string("[cross_entropy] expected class-index target of an integer dtype, got ") + dtype_name(target.dtype));
  if (target.ndim() != 1 || target.shape[0] != logits.shape[0])
    throw ValueError("[cross_entropy] expected target of shape (" + std::to_string(logits.shape[0]) + ",), got " + shape_str(target.shape));
  if (weight && (weight->ndim() != 1 || weight->shape[0] != logits.shape[1]))
    throw ValueError("[cross_entropy] weight should be a 1-d tensor of size C=" + std::to_string(logits.shape[1]) + ", got " + shape_str(weight->shape));
  require_cuda(target, "cross_entropy");
  if (weight) require_cuda(*weight, "cross_entropy");
}
}  // namespace

std::pair<Array, Array> cross_entropy_forward(const Array& logits, const Array& target0, int64_t ignore_index,
                                              const std::optional<Array>& weight0, double ls) {
  require_cuda(logits, "cross_entropy");
  check_ce(logits, target0, weight0);
  Array logsm = softmax(logits, 1, true);
  const int64_t N = logits.shape[0], C = logits.shape[1];
  Array target = contiguous(astype(target0, DType::Int64));
  // validate targets on the host (a device kernel cannot raise IndexError): one small copy
  Array th = to_device(target, Device{});
  const int64_t* t = th.raw<int64_t>();
  for (int64_t i = 0; i < N; ++i)
    if (t[i] != ignore_index && (t[i] < 0 || t[i] >= C))
      throw IndexError("[cross_entropy] target " + std::to_string(t[i]) + " is out of bounds for " +
                       std::to_string(C) + " classes (sample " + std::to_string(i) + ")");
  Array loss = Array::empty({N}, logsm.dtype, logits.device());
  if (N == 0) return {loss, logsm};
  TOCHA_DISPATCH_FLOAT(logsm.dtype, T, "cross_entropy", {
    Array w;
    const T* wp = nullptr;
    if (weight0) { w = contiguous(astype(*weight0, logsm.dtype)); wp = w.raw<T>(); }
    ce_forward_kernel<T><<<grid_for(N), kThreads>>>(logsm.raw<T>(), target.raw<int64_t>(), wp, loss.raw<T>(), N, C,
                                                    ignore_index, (T)ls);
  });
  TOCHA_CUDA_CHECK_LAUNCH("cross_entropy");
  return {loss, logsm};
}

Array cross_entropy_backward(const Array& grad_loss, const Array& logsm0, const Array& target0, int64_t ignore_index,
                             const std::optional<Array>& weight0, double ls) {
  require_cuda(logsm0, "cross_entropy_backward");
  check_ce(logsm0, target0, weight0);
  require_cuda(grad_loss, "cross_entropy_backward");
  const int64_t N = logsm0.shape[0], C = logsm0.shape[1];
  if (grad_loss.numel() != N)
    throw ValueError("[cross_entropy_backward] expected grad of " + std::to_string(N) + " elements, got " + shape_str(grad_loss.shape));
  Array target = contiguous(astype(target0, DType::Int64));
  Array g = contiguous(astype(grad_loss, logsm0.dtype));
  Array lsm = contiguous(logsm0);
  Array out = Array::empty({N, C}, logsm0.dtype, logsm0.device());
  if (N * C == 0) return out;
  TOCHA_DISPATCH_FLOAT(lsm.dtype, T, "cross_entropy_backward", {
    Array w;
    const T* wp = nullptr;
    T wsum = (T)C;
    if (weight0) {
      w = contiguous(astype(*weight0, lsm.dtype));
      wp = w.raw<T>();
      Array wh = to_device(w, Device{});  // C values: sum on the host in the CPU kernel's order
      wsum = 0;
      for (int64_t c = 0; c < C; ++c) wsum += wh.raw<T>()[c];
    }
    ce_backward_kernel<T><<<grid_for(N * C), kThreads>>>(g.raw<T>(), lsm.raw<T>(), target.raw<int64_t>(), wp, wsum,
                                                         out.raw<T>(), N, C, ignore_index, (T)ls);
  });
  TOCHA_CUDA_CHECK_LAUNCH("cross_entropy_backward");
  return out;
}

// ======================= GEMM =======================
// Block tile BM x BN, K-step BK, each thread computes TM x TN outputs held in registers. A and B tiles
// are staged in shared memory (A transposed so the inner loop reads both operands along k with
// broadcast/consecutive addresses). Edge tiles: loads outside the matrix read 0, stores are masked.
// Any strides: row-/column-major and transposed operands share this kernel.
template <typename T, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
gemm_kernel(int64_t M, int64_t N, int64_t K, const T* __restrict__ A, int64_t rsa, int64_t csa, const T* __restrict__ B,
            int64_t rsb, int64_t csb, T* __restrict__ C, int64_t ldc, bool accumulate) {
  constexpr int RY = BM / TM, RX = BN / TN, NT = RY * RX;
  static_assert((BM * BK) % NT == 0 && (BK * BN) % NT == 0, "tile loads must divide evenly");
  __shared__ T As[BK][BM + 1];
  __shared__ T Bs[BK][BN];
  const int tid = threadIdx.x, ty = tid / RX, tx = tid % RX;
  const int64_t m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN;
  T acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);
  for (int64_t k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
    for (int r = 0; r < (BM * BK) / NT; ++r) {
      const int e = tid + r * NT, row = e / BK, kk = e % BK;
      const int64_t gi = m0 + row, gk = k0 + kk;
      As[kk][row] = (gi < M && gk < K) ? A[gi * rsa + gk * csa] : T(0);
    }
#pragma unroll
    for (int r = 0; r < (BK * BN) / NT; ++r) {
      const int e = tid + r * NT, kk = e / BN, col = e % BN;
      const int64_t gk = k0 + kk, gj = n0 + col;
      Bs[kk][col] = (gk < K && gj < N) ? B[gk * rsb + gj * csb] : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[kk][ty + i * RY];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = Bs[kk][tx + j * RX];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t gi = m0 + ty + i * RY;
    if (gi >= M) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t gj = n0 + tx + j * RX;
      if (gj < N) C[gi * ldc + gj] = accumulate ? C[gi * ldc + gj] + acc[i][j] : acc[i][j];
    }
  }
}

template <typename T, int BM, int BN, int BK, int TM, int TN>
void launch_gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
                 int64_t csb, T* C, int64_t ldc, bool accumulate) {
  const int64_t gx = (N + BN - 1) / BN, gy = (M + BM - 1) / BM;
  if (gy > 65535) throw std::runtime_error("[gemm] M=" + std::to_string(M) + " is too large for the CUDA grid");
  gemm_kernel<T, BM, BN, BK, TM, TN><<<dim3((unsigned)gx, (unsigned)gy), (BM / TM) * (BN / TN)>>>(
      M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate);
  TOCHA_CUDA_CHECK_LAUNCH("gemm");
}

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb, int64_t csb,
          T* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K == 0) {
    if (accumulate) return;
    check(cudaMemset2DAsync(C, ldc * sizeof(T), 0, N * sizeof(T), M), "gemm");
    return;
  }
  if constexpr (std::is_same<T, float>::value) launch_gemm<T, 128, 128, 8, 8, 8>(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate);
  else launch_gemm<T, 64, 64, 8, 4, 4>(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate);
}
template void gemm<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t, int64_t,
                          float*, int64_t, bool);
template void gemm<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t, const double*, int64_t,
                           int64_t, double*, int64_t, bool);

Array matmul(const Array& a0, const Array& b0) {
  require_cuda(a0, "matmul");
  require_cuda(b0, "matmul");
  if (a0.device() != b0.device())
    throw std::runtime_error("[matmul] expected both tensors on the same device, got " + a0.device().str() + " and " + b0.device().str());
  if (a0.ndim() != 2 || b0.ndim() != 2)
    throw std::runtime_error("[matmul] the CUDA matmul handles 2-d operands only for now, got " + shape_str(a0.shape) +
                             " @ " + shape_str(b0.shape));
  if (a0.shape[1] != b0.shape[0])
    throw ValueError("[matmul] mat1 and mat2 shapes cannot be multiplied (" + std::to_string(a0.shape[0]) + "x" +
                     std::to_string(a0.shape[1]) + " and " + std::to_string(b0.shape[0]) + "x" + std::to_string(b0.shape[1]) + ")");
  DType dt = promote_types(a0.dtype, b0.dtype);
  require_float(dt, "matmul");
  Array a = astype(a0, dt), b = astype(b0, dt);
  const int64_t M = a.shape[0], K = a.shape[1], N = b.shape[1];
  Array out = Array::empty({M, N}, dt, a.device());
  set_device_of(a, "matmul");
  TOCHA_DISPATCH_FLOAT(dt, T, "matmul", {
    gemm<T>(M, N, K, a.raw<T>(), a.strides[0], a.strides[1], b.raw<T>(), b.strides[0], b.strides[1], out.raw<T>(), N, false);
  });
  return out;
}

// ======================= random (Philox, same stream as the CPU) =======================
namespace {
uint64_t reserve_blocks(uint64_t blocks, uint64_t* seed) {
  // shares the CPU generator: a seed gives one stream whichever device draws from it
  auto st = cpu::get_rng_state();
  cpu::set_rng_state(st.first, st.second + blocks);
  *seed = st.first;
  return st.second;
}
}  // namespace

template <typename T>
__global__ void uniform_kernel(T* p, int64_t n, uint64_t base, uint64_t seed, double lo, double hi) {
  const double w = hi - lo;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const uint64_t b = bits64(base, seed, i);
    const double v = lo + w * ((double)(b >> 11) * (1.0 / 9007199254740992.0));
    p[i] = (T)(v < hi || w == 0 ? v : lo);
  }
}
template <typename T>
__global__ void normal_kernel(T* p, int64_t n, uint64_t base, uint64_t seed, double mean, double std) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const uint64_t b = bits64(base, seed, i);
    const double u1 = ((double)(b >> 32) + 0.5) * (1.0 / 4294967296.0);
    const double u2 = ((double)(b & 0xffffffffu) + 0.5) * (1.0 / 4294967296.0);
    p[i] = (T)(mean + std * ::sqrt(-2.0 * ::log(u1)) * ::cos(6.283185307179586 * u2));
  }
}

template <typename Launch>
void fill_random(const Array& a, const char* op, Launch launch) {
  require_cuda(a, op);
  const int64_t n = a.numel();
  if (n == 0) return;
  set_device_of(a, op);
  Array work = a.is_contiguous() ? a : Array::empty(a.shape, a.dtype, a.device());
  uint64_t seed;
  const uint64_t base = reserve_blocks(((uint64_t)n + 1) / 2, &seed);
  launch(work, n, base, seed);
  TOCHA_CUDA_CHECK_LAUNCH(op);
  if (work.storage != a.storage) copy_(a, work);
  a.bump_version();
}

void uniform_(const Array& a, double lo, double hi) {
  if (!is_floating(a.dtype)) throw TypeError("[uniform_] expected a floating-point tensor");
  if (!(lo <= hi)) throw ValueError("[uniform_] expects to return a [from, to) range, but found from=" + std::to_string(lo) + " > to=" + std::to_string(hi));
  fill_random(a, "uniform_", [&](const Array& w, int64_t n, uint64_t base, uint64_t seed) {
    TOCHA_DISPATCH_FLOAT(w.dtype, T, "uniform_", { uniform_kernel<T><<<grid_for(n), kThreads>>>(w.raw<T>(), n, base, seed, lo, hi); });
  });
}

template <typename T>
__global__ void bernoulli_kernel(T* p, int64_t n, uint64_t base, uint64_t seed, double prob) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const uint64_t b = bits64(base, seed, i);
    p[i] = (T)((double)(b >> 11) * (1.0 / 9007199254740992.0) < prob ? 1 : 0);  // u01(b) < p, as the CPU
  }
}

// Same draws as cpu::bernoulli_ (one 64-bit Philox word per element), so a seed gives the same mask
// on both devices (dropout).
void bernoulli_(const Array& a, double p) {
  if (!(p >= 0 && p <= 1)) throw ValueError("[bernoulli_] expects p to be in [0, 1], but got p=" + std::to_string(p));
  fill_random(a, "bernoulli_", [&](const Array& w, int64_t n, uint64_t base, uint64_t seed) {
    TOCHA_DISPATCH_ALL(w.dtype, T, { bernoulli_kernel<T><<<grid_for(n), kThreads>>>(w.raw<T>(), n, base, seed, p); });
  });
}

void normal_(const Array& a, double mean, double std) {
  if (!is_floating(a.dtype)) throw TypeError("[normal_] expected a floating-point tensor");
  if (!(std >= 0)) throw ValueError("[normal_] expects std >= 0.0, but found std " + std::to_string(std));
  fill_random(a, "normal_", [&](const Array& w, int64_t n, uint64_t base, uint64_t seed) {
    TOCHA_DISPATCH_FLOAT(w.dtype, T, "normal_", { normal_kernel<T><<<grid_for(n), kThreads>>>(w.raw<T>(), n, base, seed, mean, std); });
  });
}

}  // namespace tocha::cuda
