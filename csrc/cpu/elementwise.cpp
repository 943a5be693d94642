// Elementwise kernels: copy/cast, fill, unary and binary ops with NumPy broadcasting, scalar
// variants, where, clamp, axpy.
// Layout: any strides (inputs broadcast with stride 0); StridedIter merges contiguous dims and the
// inner loop has a contiguous fast path (`o[i] = f(a[i], b[i])`, auto-vectorised) plus a
// scalar-broadcast path and a generic strided path. Threaded above kParallelGrain elements.
// float32 fast paths: exp/log/tanh/sigmoid/relu/silu/gelu/gelu-tanh/softplus/mish/erf, add/sub/mul/div/
// maximum/minimum and the gelu/gelu-tanh backward kernels call the SIMD kernels of vecmath.h on every unit-stride inner row (strided rows are
// gathered into a small buffer, so any layout gives the bits of the contiguous path); 2-d operations
// with a transposed operand go through 32x32 tiles. Threads above kGrainCheap / kGrainMath elements.
// Integer division and remainder check for zero divisors first (x86 traps on them) and handle
// INT_MIN / -1 without overflow.
// Speed: bench with `python benchmarks/bench_ops.py` (README table).
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "../core/ops.h"
#include "../core/strided.h"
#include "vecmath.h"

namespace tocha::cpu {
namespace {

template <typename T>
using acc_t = std::conditional_t<std::is_floating_point_v<T>, T, double>;

void check_cpu(const Array& a, const char* op) {
  if (a.device().type != DeviceType::CPU)
    throw NotImplementedError(std::string("[") + op + "] expected a CPU tensor, got " + a.device().str() +
                              " (no CUDA kernel for this op yet)");
}

void check_writable_no_overlap(const Array& a, const char* op) {
  for (int64_t i = 0; i < a.ndim(); ++i)
    if (a.strides[i] == 0 && a.shape[i] > 1)
      throw std::runtime_error(std::string("[") + op +
                               "] unsupported operation: more than one element of the written-to "
                               "tensor refers to a single memory location (an expanded tensor). "
                               "Please clone() the tensor before performing the in-place operation.");
}

// Broadcast `a` to `shape` (as strides), validating compatibility.
Shape broadcast_strides(const Array& a, const Shape& shape, const char* op) {
  Shape st(shape.size(), 0);
  size_t lead = shape.size() - a.shape.size();
  if (a.shape.size() > shape.size())
    throw ValueError(std::string("[") + op + "] cannot broadcast shape " + shape_str(a.shape) + " to " +
                     shape_str(shape));
  for (size_t i = 0; i < a.shape.size(); ++i) {
    if (a.shape[i] == shape[lead + i]) st[lead + i] = a.strides[i];
    else if (a.shape[i] == 1) st[lead + i] = 0;
    else
      throw ValueError(std::string("[") + op + "] shape " + shape_str(a.shape) +
                       " cannot be broadcast to " + shape_str(shape));
  }
  return st;
}

// out(T_out) = f(a(T), b(T)) over a 3-operand iterator
template <typename TO, typename T, typename F>
void run_binary(const Shape& shape, const Array& out, const Shape& so, const Array& a, const Shape& sa,
                const Array& b, const Shape& sb, F f) {
  StridedIter<3> it(shape, {so.data(), sa.data(), sb.data()},
                    {(int64_t)sizeof(TO), (int64_t)sizeof(T), (int64_t)sizeof(T)});
  it.run({out.data_ptr(), a.data_ptr(), b.data_ptr()},
         [&](int64_t n, std::array<char*, 3> p, const std::array<int64_t, 3>& s) {
           TO* o = (TO*)p[0];
           const T* x = (const T*)p[1];
           const T* y = (const T*)p[2];
           if (s[0] == sizeof(TO) && s[1] == sizeof(T) && s[2] == sizeof(T)) {
             for (int64_t i = 0; i < n; ++i) o[i] = (TO)f(x[i], y[i]);
           } else if (s[0] == sizeof(TO) && s[1] == sizeof(T) && s[2] == 0) {
             const T yv = *y;
             for (int64_t i = 0; i < n; ++i) o[i] = (TO)f(x[i], yv);
           } else if (s[0] == sizeof(TO) && s[1] == 0 && s[2] == sizeof(T)) {
             const T xv = *x;
             for (int64_t i = 0; i < n; ++i) o[i] = (TO)f(xv, y[i]);
           } else {
             for (int64_t i = 0; i < n; ++i)
               *(TO*)(p[0] + i * s[0]) = (TO)f(*(const T*)(p[1] + i * s[1]), *(const T*)(p[2] + i * s[2]));
           }
         });
}

template <typename TO, typename T, typename F>
void run_unary(const Array& out, const Array& a, F f) {
  StridedIter<2> it(a.shape, {out.strides.data(), a.strides.data()}, {(int64_t)sizeof(TO), (int64_t)sizeof(T)});
  it.run({out.data_ptr(), a.data_ptr()}, [&](int64_t n, std::array<char*, 2> p, const std::array<int64_t, 2>& s) {
    TO* o = (TO*)p[0];
    const T* x = (const T*)p[1];
    if (s[0] == sizeof(TO) && s[1] == sizeof(T)) {
      for (int64_t i = 0; i < n; ++i) o[i] = (TO)f(x[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) *(TO*)(p[0] + i * s[0]) = (TO)f(*(const T*)(p[1] + i * s[1]));
    }
  });
}

// ---- float32 SIMD fast paths (vecmath.h) ----
// Elements per call above which all threads are used (StridedIter grain). Measured on 2 Zen3 cores (1-thread
// cost per float32 element: add/relu ~0.3 ns, exp ~0.5 ns, tanh ~1.3 ns; an OpenMP fork/join ~5 us when
// the cores are idle): a second thread breaks even near 2*5us/cost = ~32K elements for add and ~16K for
// exp. The cheap-op grain keeps a 2x margin because on a loaded machine the wake-up costs far more.
constexpr int64_t kGrainCheap = 65536;
constexpr int64_t kGrainMath = 16384;
constexpr int64_t kGatherBlock = 256;   // strided operands are gathered into blocks of this size

int vec_unary_index(Unary op) {
  switch (op) {
    case Unary::Exp: return vec::kExp;
    case Unary::Log: return vec::kLog;
    case Unary::Tanh: return vec::kTanh;
    case Unary::Sigmoid: return vec::kSigmoid;
    case Unary::Relu: return vec::kRelu;
    case Unary::Silu: return vec::kSilu;
    case Unary::GeluTanh: return vec::kGeluTanh;
    case Unary::Softplus: return vec::kSoftplus;
    case Unary::Mish: return vec::kMish;
    case Unary::Erf: return vec::kErf;
    case Unary::Gelu: return vec::kGelu;
    default: return -1;
  }
}
int vec_grad_index(Binary op) {
  switch (op) {
    case Binary::GeluGrad: return vec::kGeluGrad;
    case Binary::GeluTanhGrad: return vec::kGeluTanhGrad;
    default: return -1;
  }
}
int vec_binary_index(Binary op) {
  switch (op) {
    case Binary::Add: return vec::kAdd;
    case Binary::Sub: return vec::kSub;
    case Binary::Mul: return vec::kMul;
    case Binary::Div: return vec::kDiv;
    case Binary::Maximum: return vec::kMax;
    case Binary::Minimum: return vec::kMin;
    default: return -1;
  }
}

// out = fn(a) for float32 through the vector kernel; strided rows are gathered into a small buffer so
// every layout (and every thread split) produces the same bits as the contiguous path.
void run_unary_vec(const Array& out, const Array& a, vec::UnaryFn fn, int64_t grain) {
  StridedIter<2> it(a.shape, {out.strides.data(), a.strides.data()}, {4, 4});
  it.run({out.data_ptr(), a.data_ptr()}, [&](int64_t n, std::array<char*, 2> p, const std::array<int64_t, 2>& s) {
    if (s[0] == 4 && s[1] == 4) { fn((const float*)p[1], (float*)p[0], n); return; }
    float buf[kGatherBlock];
    for (int64_t i0 = 0; i0 < n; i0 += kGatherBlock) {
      const int64_t m = std::min(kGatherBlock, n - i0);
      for (int64_t i = 0; i < m; ++i) buf[i] = *(const float*)(p[1] + (i0 + i) * s[1]);
      fn(buf, buf, m);
      for (int64_t i = 0; i < m; ++i) *(float*)(p[0] + (i0 + i) * s[0]) = buf[i];
    }
  }, grain);
}

// Copy the ni x nj block at (i0, j0) of a 2-d strided operand into a row-major tile (row stride kTile),
// walking along whichever of its dims is unit-stride so that cache lines are read whole.
constexpr int64_t kTile = 32;
void load_tile(const float* p, const Shape& s, int64_t i0, int64_t j0, int64_t ni, int64_t nj, float* t) {
  p += i0 * s[0] + j0 * s[1];
  if (s[0] == 1 && s[1] != 1) {
    for (int64_t j = 0; j < nj; ++j)
      for (int64_t i = 0; i < ni; ++i) t[i * kTile + j] = p[i + j * s[1]];
  } else {
    for (int64_t i = 0; i < ni; ++i)
      for (int64_t j = 0; j < nj; ++j) t[i * kTile + j] = p[i * s[0] + j * s[1]];
  }
}

// 2-d float32 binary op with a row-major output and a transposed (column-major) input, e.g. x + y.t():
// processed in 32 x 32 tiles so both layouts stream along cache lines (a row-by-row walk would touch
// one cache line of the transposed input per element). Returns false when the case does not apply.
bool run_binary_tiled(const Shape& shape, const Array& out, const Shape& so, const Array& a, const Shape& sa,
                      const Array& b, const Shape& sb, vec::BinaryFn fn) {
  if (shape.size() != 2) return false;
  const int64_t R = shape[0], C = shape[1];
  auto transposed = [](const Shape& s) { return s[0] == 1 && s[1] > 1; };
  if (R < kTile || C < kTile || so[0] != C || so[1] != 1 || !(transposed(sa) || transposed(sb))) return false;
  const float* A = a.data<float>();
  const float* B = b.data<float>();
  float* O = out.data<float>();
  const int64_t nrt = (R + kTile - 1) / kTile;
  const int nt = R * C >= kGrainCheap ? get_num_threads() : 1;
  parallel_for(nt, nrt, [&](int64_t rt) {
    float ta[kTile * kTile], tb[kTile * kTile];
    const int64_t i0 = rt * kTile, ni = std::min(kTile, R - i0);
    for (int64_t j0 = 0; j0 < C; j0 += kTile) {
      const int64_t nj = std::min(kTile, C - j0);
      load_tile(A, sa, i0, j0, ni, nj, ta);
      load_tile(B, sb, i0, j0, ni, nj, tb);
      for (int64_t i = 0; i < ni; ++i) fn(ta + i * kTile, tb + i * kTile, O + (i0 + i) * C + j0, nj);
    }
  });
  return true;
}

// out = fn(a, b) for float32 (broadcast operands have stride 0); sfn / rsfn (optional) take a scalar b / a.
void run_binary_vec(const Shape& shape, const Array& out, const Shape& so, const Array& a, const Shape& sa,
                    const Array& b, const Shape& sb, vec::BinaryFn fn, vec::ScalarFn sfn, vec::ScalarFn rsfn,
                    int64_t grain) {
  if (run_binary_tiled(shape, out, so, a, sa, b, sb, fn)) return;
  StridedIter<3> it(shape, {so.data(), sa.data(), sb.data()}, {4, 4, 4});
  it.run({out.data_ptr(), a.data_ptr(), b.data_ptr()},
         [&](int64_t n, std::array<char*, 3> p, const std::array<int64_t, 3>& s) {
           float* o = (float*)p[0];
           const float* x = (const float*)p[1];
           const float* y = (const float*)p[2];
           if (s[0] == 4) {
             if (s[1] == 4 && s[2] == 4) { fn(x, y, o, n); return; }
             if (sfn && s[1] == 4 && s[2] == 0) { sfn(x, *y, o, n); return; }
             if (rsfn && s[1] == 0 && s[2] == 4) { rsfn(y, *x, o, n); return; }
           }
           float bx[kGatherBlock], by[kGatherBlock];
           for (int64_t i0 = 0; i0 < n; i0 += kGatherBlock) {
             const int64_t m = std::min(kGatherBlock, n - i0);
             for (int64_t i = 0; i < m; ++i) bx[i] = *(const float*)(p[1] + (i0 + i) * s[1]);
             for (int64_t i = 0; i < m; ++i) by[i] = *(const float*)(p[2] + (i0 + i) * s[2]);
             fn(bx, by, bx, m);
             for (int64_t i = 0; i < m; ++i) *(float*)(p[0] + (i0 + i) * s[0]) = bx[i];
           }
         }, grain);
}

// ---- safe integer helpers ----
template <typename T>
T int_floordiv(T a, T b) {
  if constexpr (std::is_signed_v<T>) {
    if (b == -1) return (T)(0 - (std::make_unsigned_t<T>)a);  // avoids INT_MIN / -1 trap
    T q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
  } else {
    return a / b;
  }
}
template <typename T>
T int_mod(T a, T b) {  // Python semantics: result has the sign of b
  if constexpr (std::is_signed_v<T>) {
    if (b == -1) return 0;
    T r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  } else {
    return a % b;
  }
}
template <typename T>
T int_fmod(T a, T b) {
  if constexpr (std::is_signed_v<T>) {
    if (b == -1) return 0;
  }
  return a % b;
}
template <typename T>
T int_pow(T base, T exp) {
  if constexpr (std::is_signed_v<T>) {
    if (exp < 0) return base == 1 ? 1 : (base == -1 ? ((exp & 1) ? -1 : 1) : 0);
  }
  T r = 1;
  auto b = base;
  auto e = exp;
  while (e > 0) {
    if (e & 1) r = (T)(r * b);
    b = (T)(b * b);
    e >>= 1;
  }
  return r;
}

template <typename T>
bool has_zero(const Array& b) {
  bool found = false;
  Array c = b.contiguous();
  const T* p = c.data<T>();
  int64_t n = c.numel();
  for (int64_t i = 0; i < n; ++i)
    if (p[i] == 0) { found = true; break; }
  return found;
}

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

template <typename T> inline T sigmoid_f(T x) {
  // stable for large |x|
  if (x >= 0) { T z = std::exp(-x); return T(1) / (T(1) + z); }
  T z = std::exp(x);
  return z / (T(1) + z);
}
template <typename T> inline T softplus_f(T x) {  // beta=1, threshold=20 (PyTorch default)
  return x > T(20) ? x : std::log1p(std::exp(x));
}

bool unary_is_float_only(Unary op) {
  switch (op) {
    case Unary::Neg: case Unary::Abs: case Unary::Sign: case Unary::Relu: case Unary::Square:
    case Unary::LogicalNot: case Unary::Floor: case Unary::Ceil: case Unary::Round: case Unary::Trunc:
    case Unary::Isnan: case Unary::Isinf: case Unary::Isfinite: case Unary::BitwiseNot:
      return false;
    default:
      return true;
  }
}
bool unary_is_predicate(Unary op) {
  return op == Unary::Isnan || op == Unary::Isinf || op == Unary::Isfinite || op == Unary::LogicalNot;
}

template <typename T>
void unary_float_kernel(Unary op, const Array& out, const Array& a) {
  using std::abs;
  if constexpr (std::is_same_v<T, float>) {
    const int idx = vec_unary_index(op);
    if (idx >= 0) {
      run_unary_vec(out, a, vec::kernels().unary[idx], idx == vec::kRelu ? kGrainCheap : kGrainMath);
      return;
    }
  }
  switch (op) {
#define U(OP, EXPR) case Unary::OP: run_unary<T, T>(out, a, [](T x) -> T { return EXPR; }); break;
    U(Neg, -x)
    U(Abs, std::abs(x))
    U(Exp, std::exp(x))
    U(Log, std::log(x))
    U(Sqrt, std::sqrt(x))
    U(Rsqrt, T(1) / std::sqrt(x))
    U(Sin, std::sin(x))
    U(Cos, std::cos(x))
    U(Tan, std::tan(x))
    U(Tanh, std::tanh(x))
    U(Sigmoid, sigmoid_f(x))
    U(Relu, x > T(0) ? x : (std::isnan(x) ? x : T(0)))
    U(Sign, (T)((x > T(0)) - (x < T(0))))
    U(Floor, std::floor(x))
    U(Ceil, std::ceil(x))
    U(Round, std::nearbyint(x))
    U(Log1p, std::log1p(x))
    U(Expm1, std::expm1(x))
    U(Reciprocal, T(1) / x)
    U(Square, x * x)
    U(Erf, std::erf(x))
    U(Atan, std::atan(x))
    U(Asin, std::asin(x))
    U(Acos, std::acos(x))
    U(Trunc, std::trunc(x))
    U(Frac, x - std::trunc(x))
    U(Log2, std::log2(x))
    U(Log10, std::log10(x))
    U(Exp2, std::exp2(x))
    U(Softplus, softplus_f(x))
    U(Gelu, T(0.5) * x * (T(1) + std::erf(x * T(kSqrt1_2))))
    U(GeluTanh, T(0.5) * x * (T(1) + std::tanh(T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x))))
    U(Silu, x * sigmoid_f(x))
    U(Mish, x * std::tanh(softplus_f(x)))
    U(Sinh, std::sinh(x))
    U(Cosh, std::cosh(x))
    U(Asinh, std::asinh(x))
    U(Acosh, std::acosh(x))
    U(Atanh, std::atanh(x))
#undef U
    default:
      throw std::runtime_error("[unary] op not supported for floating tensors");
  }
}

template <typename T>
void unary_int_kernel(Unary op, const Array& out, const Array& a) {
  switch (op) {
#define U(OP, EXPR) case Unary::OP: run_unary<T, T>(out, a, [](T x) -> T { return EXPR; }); break;
    U(Floor, x)
    U(Ceil, x)
    U(Round, x)
    U(Trunc, x)
#undef U
    case Unary::Neg:
      if constexpr (std::is_same_v<T, bool>)
        throw TypeError("[neg] negation, the `-` operator, on a bool tensor is not supported. "
                        "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.");
      else
        run_unary<T, T>(out, a, [](T x) -> T { return (T)(0 - (std::make_unsigned_t<T>)x); });
      break;
    case Unary::Abs:
      run_unary<T, T>(out, a, [](T x) -> T {
        if constexpr (std::is_signed_v<T>) return x < 0 ? (T)(0 - (std::make_unsigned_t<T>)x) : x;
        else return x;
      });
      break;
    case Unary::Sign:
      run_unary<T, T>(out, a, [](T x) -> T { return (T)((x > T(0)) - (x < T(0))); });
      break;
    case Unary::Relu:
      run_unary<T, T>(out, a, [](T x) -> T { return x > T(0) ? x : T(0); });
      break;
    case Unary::Square:
      if constexpr (std::is_same_v<T, bool>) run_unary<T, T>(out, a, [](T x) -> T { return x; });
      else run_unary<T, T>(out, a, [](T x) -> T { return (T)(x * x); });
      break;
    case Unary::BitwiseNot:
      if constexpr (std::is_same_v<T, bool>) run_unary<T, T>(out, a, [](T x) -> T { return !x; });
      else run_unary<T, T>(out, a, [](T x) -> T { return (T)~x; });
      break;
    default:
      throw std::runtime_error("[unary] op not supported for integer tensors");
  }
}

template <typename T>
void predicate_kernel(Unary op, const Array& out, const Array& a) {
  switch (op) {
    case Unary::LogicalNot: run_unary<bool, T>(out, a, [](T x) { return !(x != T(0)); }); break;
    case Unary::Isnan:
      run_unary<bool, T>(out, a, [](T x) { if constexpr (std::is_floating_point_v<T>) return std::isnan(x); else return false; });
      break;
    case Unary::Isinf:
      run_unary<bool, T>(out, a, [](T x) { if constexpr (std::is_floating_point_v<T>) return std::isinf(x); else return false; });
      break;
    case Unary::Isfinite:
      run_unary<bool, T>(out, a, [](T x) { if constexpr (std::is_floating_point_v<T>) return std::isfinite(x); else return true; });
      break;
    default: throw std::runtime_error("[unary] not a predicate");
  }
}

void unary_into(Unary op, const Array& out, const Array& a) {
  if (unary_is_predicate(op)) {
    TOCHA_DISPATCH_ALL(a.dtype, T, predicate_kernel<T>(op, out, a));
  } else if (is_floating(a.dtype)) {
    TOCHA_DISPATCH_FLOAT(a.dtype, T, "unary", unary_float_kernel<T>(op, out, a));
  } else {
    TOCHA_DISPATCH_ALL(a.dtype, T, if constexpr (!std::is_floating_point_v<T>) unary_int_kernel<T>(op, out, a));
  }
}

bool is_comparison(Binary op) {
  return op == Binary::Eq || op == Binary::Ne || op == Binary::Lt || op == Binary::Le || op == Binary::Gt ||
         op == Binary::Ge || op == Binary::LogicalAnd || op == Binary::LogicalOr || op == Binary::LogicalXor;
}
bool binary_is_float_only(Binary op) {
  return op == Binary::Div || op == Binary::Atan2 || op == Binary::Hypot || op >= Binary::ReluGrad;
}
const char* binary_name(Binary op) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt",
                                "le", "gt", "ge", "floor_divide", "remainder", "atan2", "logical_and",
                                "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor",
                                "fmod", "hypot", "relu_backward", "sigmoid_backward", "tanh_backward",
                                "gelu_backward", "gelu_tanh_backward", "silu_backward", "softplus_backward",
                                "mish_backward"};
  return names[(int)op];
}

// Result dtype of `a op b` for two tensors (already promoted inputs compute in `compute`).
void binary_types(Binary op, DType a, DType b, DType& compute, DType& out) {
  compute = promote_types(a, b);
  if (binary_is_float_only(op) && !is_floating(compute)) compute = DType::Float32;
  out = is_comparison(op) ? DType::Bool : compute;
}

template <typename T>
void binary_compare(Binary op, const Shape& shape, const Array& out, const Shape& so, const Array& a,
                    const Shape& sa, const Array& b, const Shape& sb) {
  switch (op) {
#define C(OP, EXPR) case Binary::OP: run_binary<bool, T>(shape, out, so, a, sa, b, sb, [](T x, T y) { return EXPR; }); break;
    C(Eq, x == y)
    C(Ne, x != y)
    C(Lt, x < y)
    C(Le, x <= y)
    C(Gt, x > y)
    C(Ge, x >= y)
    C(LogicalAnd, (x != T(0)) && (y != T(0)))
    C(LogicalOr, (x != T(0)) || (y != T(0)))
    C(LogicalXor, (x != T(0)) != (y != T(0)))
#undef C
    default: throw std::runtime_error("[binary] not a comparison");
  }
}

template <typename T>
void binary_arith(Binary op, const Shape& shape, const Array& out, const Shape& so, const Array& a,
                  const Shape& sa, const Array& b, const Shape& sb) {
#define B(OP, EXPR) case Binary::OP: run_binary<T, T>(shape, out, so, a, sa, b, sb, [](T x, T y) -> T { return EXPR; }); break;
  if constexpr (std::is_same_v<T, float>) {
    const vec::Kernels& K = vec::kernels();
    const int idx = vec_binary_index(op);
    if (idx >= 0) {
      run_binary_vec(shape, out, so, a, sa, b, sb, K.binary[idx], K.scalar[idx], K.rscalar[idx], kGrainCheap);
      return;
    }
    const int gidx = vec_grad_index(op);
    if (gidx >= 0) { run_binary_vec(shape, out, so, a, sa, b, sb, K.grad[gidx], nullptr, nullptr, kGrainMath); return; }
  }
  if constexpr (std::is_same_v<T, bool>) {
    switch (op) {
      B(Add, x || y)
      B(Mul, x && y)
      B(Maximum, x || y)
      B(Minimum, x && y)
      B(BitAnd, x && y)
      B(BitOr, x || y)
      B(BitXor, x != y)
      default:
        throw TypeError(std::string("[") + binary_name(op) + "] not supported for bool tensors");
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    switch (op) {
      B(Add, x + y)
      B(Sub, x - y)
      B(Mul, x * y)
      B(Div, x / y)
      B(Pow, std::pow(x, y))
      B(Maximum, (x != x || y != y) ? x + y : (x > y ? x : y))
      B(Minimum, (x != x || y != y) ? x + y : (x < y ? x : y))
      B(FloorDiv, std::floor(x / y))
      B(Remainder, (T)(x - std::floor(x / y) * y))
      B(Atan2, std::atan2(x, y))
      B(Fmod, std::fmod(x, y))
      B(Hypot, std::hypot(x, y))
      // backward helpers: x = incoming grad, y = saved input (or output)
      B(ReluGrad, y > T(0) ? x : T(0))
      B(SigmoidGradFromOut, x * y * (T(1) - y))
      B(TanhGradFromOut, x * (T(1) - y * y))
      B(GeluGrad, x * (T(0.5) * (T(1) + std::erf(y * T(kSqrt1_2))) + y * T(kInvSqrt2Pi) * std::exp(T(-0.5) * y * y)))
      B(SiluGrad, x * (sigmoid_f(y) * (T(1) + y * (T(1) - sigmoid_f(y)))))
      B(SoftplusGrad, y > T(20) ? x : x * sigmoid_f(y))
      case Binary::GeluTanhGrad:
        run_binary<T, T>(shape, out, so, a, sa, b, sb, [](T g, T v) -> T {
          const T k = T(kSqrt2OverPi), c = T(0.044715);
          T t = std::tanh(k * (v + c * v * v * v));
          return g * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * k * (T(1) + T(3) * c * v * v));
        });
        break;
      case Binary::MishGrad:
        run_binary<T, T>(shape, out, so, a, sa, b, sb, [](T g, T v) -> T {
          T t = std::tanh(softplus_f(v));
          return g * (t + v * (T(1) - t * t) * sigmoid_f(v));
        });
        break;
      default:
        throw TypeError(std::string("[") + binary_name(op) + "] not supported for floating tensors");
    }
  } else {
    switch (op) {
      B(Add, (T)(x + y))
      B(Sub, (T)(x - y))
      B(Mul, (T)(x * y))
      B(Pow, int_pow(x, y))
      B(Maximum, x > y ? x : y)
      B(Minimum, x < y ? x : y)
      B(FloorDiv, int_floordiv(x, y))
      B(Remainder, int_mod(x, y))
      B(Fmod, int_fmod(x, y))
      B(BitAnd, (T)(x & y))
      B(BitOr, (T)(x | y))
      B(BitXor, (T)(x ^ y))
      default:
        throw TypeError(std::string("[") + binary_name(op) + "] not supported for integer tensors");
    }
  }
#undef B
}

void binary_into(Binary op, DType compute, const Shape& shape, const Array& out, const Shape& so,
                 const Array& a, const Shape& sa, const Array& b, const Shape& sb) {
  if (is_integral(compute) && compute != DType::Bool &&
      (op == Binary::FloorDiv || op == Binary::Remainder || op == Binary::Fmod)) {
    bool zero = false;
    TOCHA_DISPATCH_ALL(compute, T, zero = has_zero<T>(b));
    if (zero) throw std::runtime_error(std::string("[") + binary_name(op) + "] ZeroDivisionError: integer division by zero");
  }
  if (is_comparison(op)) {
    TOCHA_DISPATCH_ALL(compute, T, binary_compare<T>(op, shape, out, so, a, sa, b, sb));
  } else {
    TOCHA_DISPATCH_ALL(compute, T, binary_arith<T>(op, shape, out, so, a, sa, b, sb));
  }
}

// A 0-d array holding `s` in dtype `dt` (stack-free: a tiny allocation).
Array scalar_array(double s, DType dt) {
  Array r = Array::empty({}, dt);
  TOCHA_DISPATCH_ALL(dt, T, *r.data<T>() = (T)s);
  return r;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
void copy_(const Array& dst, const Array& src) {
  check_cpu(dst, "copy_");
  check_cpu(src, "copy_");
  if (dst.numel() == 0) return;
  check_writable_no_overlap(dst, "copy_");
  Array s = src;
  // overlapping views of one storage (other than identical layout) would read already-written data
  if (src.storage == dst.storage && !(src.offset == dst.offset && src.strides == dst.strides) )
    s = src.clone();
  Shape ss = broadcast_strides(s, dst.shape, "copy_");
  TOCHA_DISPATCH_ALL(dst.dtype, TD, {
    TOCHA_DISPATCH_ALL(s.dtype, TS, {
      StridedIter<2> it(dst.shape, {dst.strides.data(), ss.data()}, {(int64_t)sizeof(TD), (int64_t)sizeof(TS)});
      it.run({dst.data_ptr(), s.data_ptr()}, [&](int64_t n, std::array<char*, 2> p, const std::array<int64_t, 2>& st) {
        if (st[0] == sizeof(TD) && st[1] == sizeof(TS)) {
          if constexpr (std::is_same_v<TD, TS>) {
            std::memcpy(p[0], p[1], n * sizeof(TD));
          } else {
            TD* o = (TD*)p[0];
            const TS* x = (const TS*)p[1];
            for (int64_t i = 0; i < n; ++i) o[i] = (TD)x[i];
          }
        } else if (st[0] == sizeof(TD) && st[1] == 0) {  // broadcast value (e.g. the gradient of sum())
          std::fill((TD*)p[0], (TD*)p[0] + n, (TD) * (const TS*)p[1]);
        } else {
          for (int64_t i = 0; i < n; ++i) *(TD*)(p[0] + i * st[0]) = (TD) * (const TS*)(p[1] + i * st[1]);
        }
      });
    });
  });
}

void fill_(const Array& dst, double value) {
  check_cpu(dst, "fill_");
  if (dst.numel() == 0) return;
  TOCHA_DISPATCH_ALL(dst.dtype, T, {
    const T v = (T)value;
    Shape z(dst.ndim(), 0);
    StridedIter<1> it(dst.shape, {dst.strides.data()}, {(int64_t)sizeof(T)});
    it.run({dst.data_ptr()}, [&](int64_t n, std::array<char*, 1> p, const std::array<int64_t, 1>& st) {
      if (st[0] == sizeof(T)) {
        T* o = (T*)p[0];
        for (int64_t i = 0; i < n; ++i) o[i] = v;
      } else {
        for (int64_t i = 0; i < n; ++i) *(T*)(p[0] + i * st[0]) = v;
      }
    });
  });
}

Array arange(double start, double end, double step, DType dt) {
  if (step == 0) throw ValueError("[arange] step must be nonzero");
  if (!std::isfinite(start) || !std::isfinite(end)) throw ValueError("[arange] unsupported range: start and end must be finite");
  if ((end - start) / step < 0)
    throw ValueError("[arange] upper bound and larger bound inconsistent with step sign");
  int64_t n = (int64_t)std::ceil((end - start) / step);
  Array r = Array::empty({n}, dt);
  TOCHA_DISPATCH_ALL(dt, T, {
    T* o = r.data<T>();
    for (int64_t i = 0; i < n; ++i) o[i] = (T)(start + (double)i * step);
  });
  return r;
}

Array linspace(double start, double end, int64_t steps, DType dt) {
  if (steps < 0) throw ValueError("[linspace] number of steps must be non-negative");
  Array r = Array::empty({steps}, dt);
  double step = steps > 1 ? (end - start) / (double)(steps - 1) : 0.0;
  TOCHA_DISPATCH_ALL(dt, T, {
    T* o = r.data<T>();
    const int64_t half = steps / 2;
    // symmetric evaluation like PyTorch: from the start for the first half, from the end for the rest
    for (int64_t i = 0; i < steps; ++i)
      o[i] = (T)(i < half ? start + step * (double)i : end - step * (double)(steps - 1 - i));
  });
  return r;
}

Array unary(Unary op, const Array& a0) {
  check_cpu(a0, "unary");
  Array a = a0;
  if (unary_is_float_only(op) && !is_floating(a.dtype)) a = a.astype(DType::Float32);
  DType out_dt = unary_is_predicate(op) ? DType::Bool : a.dtype;
  Array out = Array::empty(a.shape, out_dt);
  if (a.numel()) unary_into(op, out, a);
  return out;
}

void unary_(Unary op, const Array& a) {
  check_cpu(a, "unary_");
  check_writable_no_overlap(a, "unary_");
  if (unary_is_predicate(op) || (unary_is_float_only(op) && !is_floating(a.dtype)))
    throw TypeError(std::string("[unary_] in-place op would change dtype ") + dtype_name(a.dtype));
  if (a.numel()) unary_into(op, a, a);
  a.bump_version();
}

Array binary(Binary op, const Array& a0, const Array& b0) {
  const char* name = binary_name(op);
  check_cpu(a0, name);
  check_cpu(b0, name);
  if (a0.device() != b0.device())
    throw std::runtime_error(std::string("[") + name + "] expected all tensors on the same device, got " +
                             a0.device().str() + " and " + b0.device().str());
  DType compute, out_dt;
  binary_types(op, a0.dtype, b0.dtype, compute, out_dt);
  Shape shape = broadcast_shapes(a0.shape, b0.shape, name);
  Array a = a0.astype(compute), b = b0.astype(compute);
  Array out = Array::empty(shape, out_dt);
  if (out.numel() == 0) return out;
  Shape sa = broadcast_strides(a, shape, name), sb = broadcast_strides(b, shape, name);
  binary_into(op, compute, shape, out, out.strides, a, sa, b, sb);
  return out;
}

void binary_(Binary op, const Array& a, const Array& b0) {
  const char* name = binary_name(op);
  check_cpu(a, name);
  check_cpu(b0, name);
  DType compute, out_dt;
  binary_types(op, a.dtype, b0.dtype, compute, out_dt);
  if (out_dt != a.dtype && !(is_floating(a.dtype) || out_dt == DType::Bool || !is_floating(out_dt)))
    throw TypeError(std::string("[") + name + "_] result type " + dtype_name(out_dt) +
                    " can't be cast to the desired output type " + dtype_name(a.dtype));
  if (is_comparison(op) && a.dtype != DType::Bool)
    throw TypeError(std::string("[") + name + "_] in-place comparison needs a bool tensor");
  check_writable_no_overlap(a, name);
  Shape bs = broadcast_shapes(a.shape, b0.shape, name);
  if (bs != a.shape)
    throw ValueError(std::string("[") + name + "_] output with shape " + shape_str(a.shape) +
                     " doesn't match the broadcast shape " + shape_str(bs));
  // compute in a's dtype (floats) — matches PyTorch for the float/int mixes it allows
  DType cdt = is_comparison(op) ? promote_types(a.dtype, b0.dtype) : a.dtype;
  if (binary_is_float_only(op) && !is_floating(cdt))
    throw TypeError(std::string("[") + name + "_] result type Float can't be cast to the desired output type " + dtype_name(a.dtype));
  Array b = b0.astype(cdt);
  if (b.storage == a.storage && !(b.offset == a.offset && b.strides == a.strides)) b = b.clone();
  Array ac = a.astype(cdt);
  if (a.numel()) {
    Shape sb = broadcast_strides(b, a.shape, name);
    binary_into(op, cdt, a.shape, a, a.strides, ac, ac.strides, b, sb);
  }
  a.bump_version();
}

Array binary_scalar(Binary op, const Array& a0, double s, bool scalar_is_float, bool reverse) {
  const char* name = binary_name(op);
  check_cpu(a0, name);
  DType sdt;
  if (is_floating(a0.dtype)) sdt = a0.dtype;
  else if (scalar_is_float) sdt = DType::Float32;
  else if (a0.dtype == DType::Bool && s != 0 && s != 1) sdt = DType::Int64;
  else if (a0.dtype == DType::Bool) sdt = (op == Binary::Add || op == Binary::Sub || op == Binary::Mul || op == Binary::Pow || op == Binary::FloorDiv || op == Binary::Remainder) ? DType::Int64 : DType::Bool;
  else sdt = a0.dtype;
  DType compute, out_dt;
  binary_types(op, a0.dtype == DType::Bool ? sdt : promote_types(a0.dtype, sdt), sdt, compute, out_dt);
  Array a = a0.astype(compute);
  Array sv = scalar_array(s, compute);
  Array out = Array::empty(a.shape, out_dt);
  if (out.numel() == 0) return out;
  Shape zero(a.ndim(), 0);
  if (reverse) binary_into(op, compute, a.shape, out, out.strides, sv, zero, a, a.strides);
  else binary_into(op, compute, a.shape, out, out.strides, a, a.strides, sv, zero);
  return out;
}

void binary_scalar_(Binary op, const Array& a, double s) {
  const char* name = binary_name(op);
  check_cpu(a, name);
  check_writable_no_overlap(a, name);
  if (is_comparison(op)) throw TypeError(std::string("[") + name + "_] in-place comparison is not supported");
  if (binary_is_float_only(op) && !is_floating(a.dtype))
    throw TypeError(std::string("[") + name + "_] result type Float can't be cast to the desired output type " + dtype_name(a.dtype));
  Array sv = scalar_array(s, a.dtype);
  Shape zero(a.ndim(), 0);
  if (a.numel()) binary_into(op, a.dtype, a.shape, a, a.strides, a, a.strides, sv, zero);
  a.bump_version();
}

Array where(const Array& cond0, const Array& a0, const Array& b0) {
  check_cpu(cond0, "where");
  check_cpu(a0, "where");
  check_cpu(b0, "where");
  Shape shape = broadcast_shapes(broadcast_shapes(cond0.shape, a0.shape, "where"), b0.shape, "where");
  DType dt = promote_types(a0.dtype, b0.dtype);
  Array cond = cond0.astype(DType::Bool), a = a0.astype(dt), b = b0.astype(dt);
  Array out = Array::empty(shape, dt);
  if (out.numel() == 0) return out;
  Shape sc = broadcast_strides(cond, shape, "where"), sa = broadcast_strides(a, shape, "where"),
        sb = broadcast_strides(b, shape, "where");
  TOCHA_DISPATCH_ALL(dt, T, {
    StridedIter<4> it(shape, {out.strides.data(), sc.data(), sa.data(), sb.data()},
                      {(int64_t)sizeof(T), 1, (int64_t)sizeof(T), (int64_t)sizeof(T)});
    it.run({out.data_ptr(), cond.data_ptr(), a.data_ptr(), b.data_ptr()},
           [&](int64_t n, std::array<char*, 4> p, const std::array<int64_t, 4>& st) {
             for (int64_t i = 0; i < n; ++i)
               *(T*)(p[0] + i * st[0]) = *(const bool*)(p[1] + i * st[1]) ? *(const T*)(p[2] + i * st[2])
                                                                          : *(const T*)(p[3] + i * st[3]);
           });
  });
  return out;
}

Array clamp(const Array& a0, std::optional<double> lo, std::optional<double> hi) {
  check_cpu(a0, "clamp");
  Array a = a0;
  bool flt = (lo && *lo != std::floor(*lo)) || (hi && *hi != std::floor(*hi));
  if (flt && !is_floating(a.dtype)) a = a.astype(DType::Float32);
  Array out = Array::empty(a.shape, a.dtype);
  if (!out.numel()) return out;
  TOCHA_DISPATCH_ALL(a.dtype, T, {
    if constexpr (std::is_same_v<T, bool>) {
      throw TypeError("[clamp] not supported for bool tensors");
    } else {
      const bool hl = lo.has_value(), hh = hi.has_value();
      const T l = hl ? (T)*lo : T(0), h = hh ? (T)*hi : T(0);
      run_unary<T, T>(out, a, [=](T x) -> T {
        if constexpr (std::is_floating_point_v<T>) { if (x != x) return x; }
        if (hl && x < l) x = l;
        if (hh && x > h) x = h;
        return x;
      });
    }
  });
  return out;
}

void axpy_(const Array& a, const Array& b0, double alpha) {
  check_cpu(a, "add_");
  check_writable_no_overlap(a, "add_");
  if (!is_floating(a.dtype) && alpha != std::floor(alpha))
    throw TypeError("[add_] a float alpha needs a floating-point tensor");
  Shape bs = broadcast_shapes(a.shape, b0.shape, "add_");
  if (bs != a.shape)
    throw ValueError("[add_] output with shape " + shape_str(a.shape) + " doesn't match the broadcast shape " + shape_str(bs));
  Array b = b0.astype(a.dtype);
  if (b.storage == a.storage && !(b.offset == a.offset && b.strides == a.strides)) b = b.clone();
  if (a.numel()) {
    Shape sb = broadcast_strides(b, a.shape, "add_");
    TOCHA_DISPATCH_ALL(a.dtype, T, {
      if constexpr (std::is_same_v<T, bool>) {
        throw TypeError("[add_] not supported for bool tensors");
      } else {
        const T al = (T)alpha;
        run_binary<T, T>(a.shape, a, a.strides, a, a.strides, b, sb, [=](T x, T y) -> T { return (T)(x + al * y); });
      }
    });
  }
  a.bump_version();
}

Array lerp(const Array& a, const Array& b, double w) {
  Array d = binary(Binary::Sub, b, a);
  Array r = a.clone();
  axpy_(r, d, w);
  return r;
}

}  // namespace tocha::cpu
