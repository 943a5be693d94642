// Reductions: sum/prod/mean/max/min/amax/amin/all/any over any set of dims, argmax/argmin, var,
// cumsum/cumprod, logsumexp, softmax/log-softmax (+ backward), fused cross-entropy (+ backward).
// Layout: the input is viewed as a 2-d (K kept, R reduced) array by permuting kept dims first; when
// that view is impossible without a copy we copy once. Rows with unit stride use pairwise (blocked)
// summation; unit-stride columns (reducing a leading dim, e.g. bias grads) accumulate row by row in
// blocks of 128. Work splits over K (or over fixed-size chunks of R combined in a fixed order), so
// results are bitwise identical for any thread count. float32 rows use the SIMD kernels of vecmath.h:
// blocked pairwise sum (leaves of 512 summed in 4x8 lanes; 10M-element sums stay within ~1e-7 relative of
// float64), NaN-propagating max/min, and a fused exp(x - max) + sum for softmax/log_softmax/logsumexp.
// Speed: `python benchmarks/bench_ops.py` (sum, softmax rows).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "../core/ops.h"
#include "../core/parallel.h"
#include "vecmath.h"

namespace tocha::cpu {
namespace {

// One factor of a product reduction; for bool the product is logical AND (no int promotion warning).
template <typename T>
inline T prod_step(T a, T b) { return (T)(a * b); }
inline bool prod_step(bool a, bool b) { return a && b; }

constexpr int64_t kChunk = 1 << 15;   // fixed split of long rows (thread-count independent)

template <typename T>
using acc_of = std::conditional_t<std::is_same_v<T, float>, float,
               std::conditional_t<std::is_same_v<T, double>, double, int64_t>>;

// Pairwise sum of n contiguous values (error O(log n) ulp instead of O(n)).
template <typename A, typename T>
A pairwise_sum(const T* x, int64_t n) {
  if constexpr (std::is_same_v<A, float> && std::is_same_v<T, float>) {
    return vec::kernels().sum(x, n);  // SIMD blocked pairwise sum (vecmath.h)
  }
  if (n <= 128) {
    A acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) acc[k] += (A)x[i + k];
    A s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; ++i) s += (A)x[i];
    return s;
  }
  int64_t h = (n / 2 + 7) & ~int64_t(7);
  return pairwise_sum<A>(x, h) + pairwise_sum<A>(x + h, n - h);
}

struct Layout2D {
  Array base;        // array the pointers refer to
  int64_t K, R;      // kept, reduced counts
  int64_t sk, sr;    // element strides
};

// View `a` as (kept..., reduced...) -> (K, R) with simple strides, copying only if needed.
Layout2D layout_2d(const Array& a, const std::vector<bool>& red, bool need_unit_row = false) {
  // Fast path (no permuted/viewed copies of the shape): a contiguous array whose reduced dims all come
  // after its kept dims is already (K, R) row-major, exactly the view the general path builds.
  bool kept_first = true;
  for (int64_t d = 1; d < a.ndim(); ++d)
    if (red[d - 1] && !red[d]) { kept_first = false; break; }
  if (kept_first && a.is_contiguous()) {
    int64_t K = 1, R = 1;
    for (int64_t d = 0; d < a.ndim(); ++d) (red[d] ? R : K) *= a.shape[d];
    return {a, K, R, K > 1 ? R : 0, 1};
  }
  Shape perm, kshape, rshape;
  for (int64_t d = 0; d < a.ndim(); ++d)
    if (!red[d]) { perm.push_back(d); kshape.push_back(a.shape[d]); }
  for (int64_t d = 0; d < a.ndim(); ++d)
    if (red[d]) { perm.push_back(d); rshape.push_back(a.shape[d]); }
  Array p = a.permute(perm);
  int64_t K = shape_numel(kshape), R = shape_numel(rshape);
  Array v;
  try {
    v = p.view({K, R});
  } catch (const std::runtime_error&) {
    v = p.contiguous().view({K, R});
  }
  if (need_unit_row && R > 1 && v.strides[1] != 1) v = v.contiguous();
  return {v, K, R, K > 1 ? v.strides[0] : 0, R > 1 ? v.strides[1] : 1};
}

std::vector<bool> reduced_mask(const Array& a, std::vector<int64_t>& dims, const char* op) {
  int64_t nd = a.ndim();
  std::vector<bool> red(nd, dims.empty());
  for (auto& d : dims) {
    int64_t w = wrap_dim(d, nd, op);
    if (nd == 0) continue;
    if (red[w] && !dims.empty() && std::count(dims.begin(), dims.end(), d) > 1)
      throw ValueError(std::string("[") + op + "] dim " + std::to_string(w) + " appears multiple times in the list of dims");
    red[w] = true;
    d = w;
  }
  return red;
}

Shape out_shape(const Array& a, const std::vector<bool>& red, bool keepdim) {
  Shape s;
  for (int64_t d = 0; d < a.ndim(); ++d) {
    if (!red[d]) s.push_back(a.shape[d]);
    else if (keepdim) s.push_back(1);
  }
  return s;
}

// Generic row reduction driver: f(row_ptr, n, stride) -> value, per kept index, in parallel.
template <typename TO, typename F>
void for_rows(const Layout2D& L, TO* out, F f) {
  int nt = threads_for_size(L.K * L.R);
  parallel_for(nt, L.K, [&](int64_t k) { out[k] = f(k); });
}

template <typename T, typename A>
void sum_2d(const Layout2D& L, A* out) {
  const T* x = L.base.data<T>();
  if (L.R == 0) { std::fill(out, out + L.K, A(0)); return; }
  if (L.sr == 1 && L.K == 1 && L.R > kChunk) {
    // one long row: fixed chunks summed in parallel, combined in order
    int64_t nc = (L.R + kChunk - 1) / kChunk;
    std::vector<A> part(nc);
    parallel_for(get_num_threads(), nc, [&](int64_t c) {
      int64_t s = c * kChunk, e = std::min(L.R, s + kChunk);
      part[c] = pairwise_sum<A>(x + s, e - s);
    });
    out[0] = pairwise_sum<A>(part.data(), nc);
    return;
  }
  if (L.sr == 1) {
    for_rows(L, out, [&](int64_t k) { return pairwise_sum<A>(x + k * L.sk, L.R); });
    return;
  }
  if (L.sk == 1 && L.K > 1) {
    // columns: accumulate rows in blocks of 128 (blocked summation), parallel over column ranges
    int nt = threads_for_size(L.K * L.R);
    const int64_t cb = 256;
    int64_t ncb = (L.K + cb - 1) / cb;
    parallel_for(nt, ncb, [&](int64_t b) {
      int64_t k0 = b * cb, k1 = std::min(L.K, k0 + cb);
      A total[256], blk[256];
      for (int64_t k = k0; k < k1; ++k) total[k - k0] = 0;
      for (int64_t r0 = 0; r0 < L.R; r0 += 128) {
        int64_t r1 = std::min(L.R, r0 + 128);
        for (int64_t k = k0; k < k1; ++k) blk[k - k0] = 0;
        for (int64_t r = r0; r < r1; ++r) {
          const T* row = x + r * L.sr;
          for (int64_t k = k0; k < k1; ++k) blk[k - k0] += (A)row[k];
        }
        for (int64_t k = k0; k < k1; ++k) total[k - k0] += blk[k - k0];
      }
      for (int64_t k = k0; k < k1; ++k) out[k] = total[k - k0];
    });
    return;
  }
  for_rows(L, out, [&](int64_t k) {
    A s = 0;
    const T* p = x + k * L.sk;
    for (int64_t r = 0; r < L.R; ++r) s += (A)p[r * L.sr];
    return s;
  });
}

// o[k] = sum (or mean) of row k of L. sum_2d writes each of its K outputs once: when the accumulator
// type is T (float, double, int64) straight into o, else through a buffer that sits on the stack for
// small K (no heap allocation per small reduction).
template <typename T>
void sum_or_mean(const Layout2D& L, T* o, bool mean) {
  using A = acc_of<T>;
  A small[16];
  std::vector<A> heap;
  A* tmp;
  if constexpr (std::is_same_v<A, T>) {
    tmp = o;
  } else {
    tmp = small;
    if (L.K > 16) { heap.resize(L.K); tmp = heap.data(); }
  }
  sum_2d<T, A>(L, tmp);
  if (mean) {
    A n = (A)L.R;
    for (int64_t k = 0; k < L.K; ++k) o[k] = (T)(L.R ? tmp[k] / n : std::numeric_limits<double>::quiet_NaN());
  } else if constexpr (!std::is_same_v<A, T>) {
    for (int64_t k = 0; k < L.K; ++k) o[k] = (T)tmp[k];
  }
}

template <typename T>
bool is_nan_v(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  else return false;
}

// y = exp(x - m) over a contiguous row, returns sum(y) (SIMD for float32, see vecmath.h).
template <typename T>
T exp_shift_sum(const T* x, T m, T* y, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    return vec::kernels().exp_shift_sum(x, m, y, n);
  } else {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) { y[i] = std::exp(x[i] - m); s += y[i]; }
    return s;
  }
}
template <typename T>
void exp_row(const T* x, T* y, int64_t n) {
  if constexpr (std::is_same_v<T, float>) vec::kernels().unary[vec::kExp](x, y, n);
  else for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

template <typename T, bool IsMax>
T extreme_row(const T* p, int64_t n, int64_t st) {
  if constexpr (std::is_same_v<T, float>) {
    if (st == 1) return IsMax ? vec::kernels().max(p, n) : vec::kernels().min(p, n);
  }
  T best = p[0];
  for (int64_t r = 1; r < n; ++r) {
    T v = p[r * st];
    if (is_nan_v(v)) return v;
    if (IsMax ? (v > best) : (v < best)) best = v;
  }
  return best;
}

template <typename T, bool IsMax>
int64_t arg_row(const T* p, int64_t n, int64_t st) {
  T best = p[0];
  int64_t bi = 0;
  if (is_nan_v(best)) return 0;
  for (int64_t r = 1; r < n; ++r) {
    T v = p[r * st];
    if (is_nan_v(v)) return r;
    if (IsMax ? (v > best) : (v < best)) { best = v; bi = r; }
  }
  return bi;
}

}  // namespace

Array reduce(Reduce op, const Array& a, std::vector<int64_t> dims, bool keepdim, std::optional<DType> out_dtype) {
  static const char* names[] = {"sum", "prod", "max", "min", "mean", "amax", "amin", "all", "any"};
  const char* name = names[(int)op];
  if (a.device().type != DeviceType::CPU)
    throw NotImplementedError(std::string("[") + name + "] expected a CPU tensor, got " + a.device().str() +
                              " (no CUDA kernel for this op yet)");
  auto red = reduced_mask(a, dims, name);
  Shape oshape = out_shape(a, red, keepdim);
  Array src = a;
  DType odt = a.dtype;
  switch (op) {
    case Reduce::Sum: case Reduce::Prod:
      odt = out_dtype ? *out_dtype : (is_integral(a.dtype) ? DType::Int64 : a.dtype);
      src = a.astype(odt);
      break;
    case Reduce::Mean:
      odt = out_dtype ? *out_dtype : a.dtype;
      if (!is_floating(odt))
        throw TypeError(std::string("[mean] could not infer output dtype. Input dtype must be either a floating point "
                                    "or complex dtype. Got: ") + dtype_name(a.dtype));
      src = a.astype(odt);
      break;
    case Reduce::All: case Reduce::Any:
      odt = DType::Bool;
      src = a.astype(DType::Bool);
      break;
    default: break;
  }
  Array out = Array::empty(oshape, odt);
  Layout2D L = layout_2d(src, red);
  if (L.K == 0) return out;
  if (L.R == 0 && (op == Reduce::Max || op == Reduce::Min || op == Reduce::Amax || op == Reduce::Amin))
    throw IndexError(std::string("[") + name + "] cannot reduce over a zero-size dimension of a tensor with shape " +
                     shape_str(a.shape) + " (the operation has no identity)");
  TOCHA_DISPATCH_ALL(src.dtype, T, {
    T* o = out.data<T>();
    const T* x = L.base.data<T>();
    switch (op) {
      case Reduce::Sum:
      case Reduce::Mean: {
        if constexpr (std::is_same_v<T, bool>) {
          throw TypeError("[sum] bool");
        } else {
          sum_or_mean<T>(L, o, op == Reduce::Mean);
        }
        break;
      }
      case Reduce::Prod:
        for_rows(L, o, [&](int64_t k) {
          T p = T(1);
          for (int64_t r = 0; r < L.R; ++r) p = prod_step(p, x[k * L.sk + r * L.sr]);
          return p;
        });
        break;
      case Reduce::Max: case Reduce::Amax:
        for_rows(L, o, [&](int64_t k) { return extreme_row<T, true>(x + k * L.sk, L.R, L.sr); });
        break;
      case Reduce::Min: case Reduce::Amin:
        for_rows(L, o, [&](int64_t k) { return extreme_row<T, false>(x + k * L.sk, L.R, L.sr); });
        break;
      case Reduce::All:
        for_rows(L, o, [&](int64_t k) {
          for (int64_t r = 0; r < L.R; ++r) if (!x[k * L.sk + r * L.sr]) return T(0);
          return T(1);
        });
        break;
      case Reduce::Any:
        for_rows(L, o, [&](int64_t k) {
          for (int64_t r = 0; r < L.R; ++r) if (x[k * L.sk + r * L.sr]) return T(1);
          return T(0);
        });
        break;
      default: throw std::runtime_error("bad reduction");
    }
  });
  return out;
}

std::pair<Array, Array> reduce_arg(bool is_max, const Array& a, int64_t dim, bool keepdim) {
  const char* name = is_max ? "max" : "min";
  std::vector<int64_t> dims{dim};
  auto red = reduced_mask(a, dims, name);
  Shape oshape = out_shape(a, red, keepdim);
  Array vals = Array::empty(oshape, a.dtype), idx = Array::empty(oshape, DType::Int64);
  Layout2D L = layout_2d(a, red);
  if (L.K == 0) return {vals, idx};
  if (L.R == 0)
    throw IndexError(std::string("[") + name + "] cannot reduce over a zero-size dimension of a tensor with shape " + shape_str(a.shape));
  TOCHA_DISPATCH_ALL(a.dtype, T, {
    const T* x = L.base.data<T>();
    T* v = vals.data<T>();
    int64_t* ix = idx.data<int64_t>();
    int nt = threads_for_size(L.K * L.R);
    parallel_for(nt, L.K, [&](int64_t k) {
      int64_t i = is_max ? arg_row<T, true>(x + k * L.sk, L.R, L.sr) : arg_row<T, false>(x + k * L.sk, L.R, L.sr);
      ix[k] = i;
      v[k] = x[k * L.sk + i * L.sr];
    });
  });
  return {vals, idx};
}

Array argreduce_all(bool is_max, const Array& a) {
  if (a.numel() == 0)
    throw IndexError(std::string("[") + (is_max ? "argmax" : "argmin") + "] expected reduction dim to be specified for input.numel() == 0");
  Array flat = a.reshape({a.numel()});
  auto r = reduce_arg(is_max, flat, 0, false);
  return r.second;
}

Array var(const Array& a0, std::vector<int64_t> dims, double correction, bool keepdim) {
  if (!is_floating(a0.dtype))
    throw TypeError(std::string("[var] std and var only support floating point dtypes, got ") + dtype_name(a0.dtype));
  auto red = reduced_mask(a0, dims, "var");
  Shape oshape = out_shape(a0, red, keepdim);
  Array out = Array::empty(oshape, a0.dtype);
  Layout2D L = layout_2d(a0, red, true);
  if (L.K == 0) return out;
  TOCHA_DISPATCH_FLOAT(a0.dtype, T, "var", {
    const T* x = L.base.data<T>();
    T* o = out.data<T>();
    const double denom = std::max(0.0, (double)L.R - correction);
    for_rows(L, o, [&](int64_t k) -> T {
      const T* row = x + k * L.sk;
      if (L.R == 0) return std::numeric_limits<T>::quiet_NaN();
      T mean = pairwise_sum<T>(row, L.R) / (T)L.R;
      double m2 = 0;
      for (int64_t r = 0; r < L.R; ++r) { double d = (double)row[r] - (double)mean; m2 += d * d; }
      return (T)(m2 / denom);
    });
  });
  return out;
}

namespace {
// Move `dim` last and make rows contiguous; returns the contiguous permuted copy and the permutation.
Array dim_last(const Array& a, int64_t dim, Shape& perm) {
  perm.clear();
  for (int64_t d = 0; d < a.ndim(); ++d) if (d != dim) perm.push_back(d);
  perm.push_back(dim);
  if (dim == a.ndim() - 1) return a.contiguous();  // identity permutation: skip the permuted copy
  return a.permute(perm).contiguous();
}
Array undo_perm(const Array& r, const Shape& perm) {
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i) identity = identity && perm[i] == (int64_t)i;
  if (identity) return r.contiguous();
  Shape inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = (int64_t)i;
  return r.permute(inv).contiguous();
}
}  // namespace

template <bool Prod>
static Array scan(const Array& a0, int64_t dim, const char* name) {
  if (a0.ndim() == 0) return a0.clone();
  dim = wrap_dim(dim, a0.ndim(), name);
  DType dt = is_integral(a0.dtype) ? DType::Int64 : a0.dtype;
  Shape perm;
  Array c = dim_last(a0.astype(dt), dim, perm);
  Array out = Array::empty(c.shape, dt);
  int64_t n = c.ndim() ? c.shape.back() : 1;
  int64_t rows = n ? c.numel() / n : 0;
  TOCHA_DISPATCH_ALL(dt, T, {
    if constexpr (!std::is_same_v<T, bool>) {
      const T* x = c.data<T>();
      T* o = out.data<T>();
      for (int64_t r = 0; r < rows; ++r) {
        T acc = Prod ? T(1) : T(0);
        for (int64_t i = 0; i < n; ++i) {
          acc = Prod ? (T)(acc * x[r * n + i]) : (T)(acc + x[r * n + i]);
          o[r * n + i] = acc;
        }
      }
    }
  });
  return undo_perm(out, perm);
}

Array cumsum(const Array& a, int64_t dim) { return scan<false>(a, dim, "cumsum"); }
Array cumprod(const Array& a, int64_t dim) { return scan<true>(a, dim, "cumprod"); }

Array logsumexp(const Array& a0, std::vector<int64_t> dims, bool keepdim) {
  Array a = is_floating(a0.dtype) ? a0 : a0.astype(DType::Float32);
  auto red = reduced_mask(a, dims, "logsumexp");
  Shape oshape = out_shape(a, red, keepdim);
  Array out = Array::empty(oshape, a.dtype);
  Layout2D L = layout_2d(a, red, true);
  if (L.K == 0) return out;
  TOCHA_DISPATCH_FLOAT(a.dtype, T, "logsumexp", {
    const T* x = L.base.data<T>();
    for_rows(L, out.data<T>(), [&](int64_t k) -> T {
      const T* row = x + k * L.sk;
      if (L.R == 0) return -std::numeric_limits<T>::infinity();
      T m = extreme_row<T, true>(row, L.R, 1);
      if (std::isinf(m)) return m;
      if (m != m) return m;
      T s = 0;
      T buf[1024];  // exp values are only summed: work through a small buffer in fixed blocks
      for (int64_t r = 0; r < L.R; r += 1024)
        s += exp_shift_sum<T>(row + r, m, buf, std::min<int64_t>(1024, L.R - r));
      return m + std::log(s);
    });
  });
  return out;
}

Array softmax(const Array& a0, int64_t dim, bool log) {
  Array a = is_floating(a0.dtype) ? a0 : a0.astype(DType::Float32);
  if (a.ndim() == 0) {
    Array r = Array::empty({}, a.dtype);
    TOCHA_DISPATCH_FLOAT(a.dtype, T, "softmax", *r.data<T>() = log ? T(0) : T(1));
    return r;
  }
  dim = wrap_dim(dim, a.ndim(), log ? "log_softmax" : "softmax");
  Shape perm;
  Array c = dim_last(a, dim, perm);
  Array out = Array::empty(c.shape, a.dtype);
  int64_t n = c.shape.back();
  int64_t rows = n ? c.numel() / n : 0;
  TOCHA_DISPATCH_FLOAT(a.dtype, T, "softmax", {
    const T* x = c.data<T>();
    T* o = out.data<T>();
    int nt = threads_for_size(c.numel());
    parallel_for(nt, rows, [&](int64_t r) {
      const T* xr = x + r * n;
      T* orow = o + r * n;
      T m = extreme_row<T, true>(xr, n, 1);
      if (std::isinf(m) && m < 0) m = 0;  // all -inf row: keep NaN-free shifts
      T s = exp_shift_sum<T>(xr, m, orow, n);
      if (log) {
        T ls = std::log(s);
        for (int64_t i = 0; i < n; ++i) orow[i] = xr[i] - m - ls;
      } else {
        T inv = T(1) / s;
        for (int64_t i = 0; i < n; ++i) orow[i] *= inv;
      }
    });
  });
  return undo_perm(out, perm);
}

Array softmax_backward(const Array& grad, const Array& y, int64_t dim, bool log) {
  if (grad.shape != y.shape) throw ValueError("[softmax_backward] grad shape " + shape_str(grad.shape) + " != output shape " + shape_str(y.shape));
  if (y.ndim() == 0) return Array::zeros({}, y.dtype);
  dim = wrap_dim(dim, y.ndim(), "softmax_backward");
  Shape perm;
  Array g = dim_last(grad.astype(y.dtype), dim, perm);
  Array yc = dim_last(y, dim, perm);
  Array out = Array::empty(g.shape, y.dtype);
  int64_t n = g.shape.back();
  int64_t rows = n ? g.numel() / n : 0;
  TOCHA_DISPATCH_FLOAT(y.dtype, T, "softmax_backward", {
    const T* gp = g.data<T>();
    const T* yp = yc.data<T>();
    T* o = out.data<T>();
    int nt = threads_for_size(g.numel());
    parallel_for(nt, rows, [&](int64_t r) {
      const T* gr = gp + r * n;
      const T* yr = yp + r * n;
      T* orow = o + r * n;
      T s = 0;
      if (log) {
        for (int64_t i = 0; i < n; ++i) s += gr[i];
        exp_row<T>(yr, orow, n);
        for (int64_t i = 0; i < n; ++i) orow[i] = gr[i] - orow[i] * s;
      } else {
        for (int64_t i = 0; i < n; ++i) s += gr[i] * yr[i];
        for (int64_t i = 0; i < n; ++i) orow[i] = yr[i] * (gr[i] - s);
      }
    });
  });
  return undo_perm(out, perm);
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
}
}  // namespace

std::pair<Array, Array> cross_entropy_forward(const Array& logits, const Array& target0, int64_t ignore_index,
                                              const std::optional<Array>& weight0, double ls) {
  check_ce(logits, target0, weight0);
  Array logsm = softmax(logits, 1, true);  // contiguous (N, C)
  const int64_t N = logits.shape[0], C = logits.shape[1];
  Array target = target0.astype(DType::Int64).contiguous();
  const int64_t* t = target.data<int64_t>();
  for (int64_t i = 0; i < N; ++i)
    if (t[i] != ignore_index && (t[i] < 0 || t[i] >= C))
      throw IndexError("[cross_entropy] target " + std::to_string(t[i]) + " is out of bounds for " +
                       std::to_string(C) + " classes (sample " + std::to_string(i) + ")");
  Array loss = Array::empty({N}, logsm.dtype);
  TOCHA_DISPATCH_FLOAT(logsm.dtype, T, "cross_entropy", {
    Array w;
    const T* wp = nullptr;
    if (weight0) { w = weight0->astype(logsm.dtype).contiguous(); wp = w.data<T>(); }
    const T* lp = logsm.data<T>();
    T* o = loss.data<T>();
    for (int64_t i = 0; i < N; ++i) {
      if (t[i] == ignore_index) { o[i] = 0; continue; }
      const T* row = lp + i * C;
      T wt = wp ? wp[t[i]] : T(1);
      T l = -(T(1) - (T)ls) * wt * row[t[i]];
      if (ls > 0) {
        T sm = 0;
        for (int64_t c = 0; c < C; ++c) sm += (wp ? wp[c] : T(1)) * row[c];
        l -= (T)ls / (T)C * sm;
      }
      o[i] = l;
    }
  });
  return {loss, logsm};
}

Array cross_entropy_backward(const Array& grad_loss, const Array& logsm, const Array& target0, int64_t ignore_index,
                             const std::optional<Array>& weight0, double ls) {
  const int64_t N = logsm.shape[0], C = logsm.shape[1];
  Array target = target0.astype(DType::Int64).contiguous();
  Array g = grad_loss.astype(logsm.dtype).contiguous();
  Array lsm = logsm.contiguous();
  Array out = Array::empty({N, C}, logsm.dtype);
  TOCHA_DISPATCH_FLOAT(logsm.dtype, T, "cross_entropy_backward", {
    Array w;
    const T* wp = nullptr;
    T wsum = (T)C;
    if (weight0) {
      w = weight0->astype(logsm.dtype).contiguous();
      wp = w.data<T>();
      wsum = 0;
      for (int64_t c = 0; c < C; ++c) wsum += wp[c];
    }
    const int64_t* t = target.data<int64_t>();
    const T* gp = g.data<T>();
    const T* lp = lsm.data<T>();
    T* o = out.data<T>();
    const T eps = (T)ls;
    int nt = threads_for_size(N * C);
    parallel_for(nt, N, [&](int64_t i) {
      T* orow = o + i * C;
      if (t[i] == ignore_index) { std::fill(orow, orow + C, T(0)); return; }
      const T* row = lp + i * C;
      T wt = wp ? wp[t[i]] : T(1);
      T a = gp[i] * (T(1) - eps) * wt;
      T b = gp[i] * eps / (T)C;
      exp_row<T>(row, orow, C);
      for (int64_t c = 0; c < C; ++c) {
        T p = orow[c];
        orow[c] = a * p + b * (p * wsum - (wp ? wp[c] : T(1)));
      }
      orow[t[i]] -= a;
    });
  });
  return out;
}

}  // namespace tocha::cpu
