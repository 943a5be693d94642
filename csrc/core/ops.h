// Declarations of the CPU kernels the bindings expose. Each family lives in csrc/cpu/<family>.cpp.
// Shapes are stated per function; every function validates its inputs and throws (never aborts).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "array.h"

namespace tocha::cpu {

// ---- copy / fill / cast (elementwise.cpp) ----
void copy_(const Array& dst, const Array& src);   // src broadcast to dst.shape, cast to dst.dtype
void fill_(const Array& dst, double value);
Array arange(double start, double end, double step, DType dt);
Array linspace(double start, double end, int64_t steps, DType dt);

// ---- elementwise (elementwise.cpp) ----
enum class Unary : int {
  Neg, Abs, Exp, Log, Sqrt, Rsqrt, Sin, Cos, Tan, Tanh, Sigmoid, Relu, Sign, Floor, Ceil, Round,
  Log1p, Expm1, Reciprocal, Square, Erf, LogicalNot, Atan, Asin, Acos, Trunc, Frac, Log2, Log10,
  Exp2, Softplus, Gelu, GeluTanh, Silu, Mish, Sinh, Cosh, Asinh, Acosh, Atanh, Isnan, Isinf,
  Isfinite, BitwiseNot, Count
};
enum class Binary : int {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge, FloorDiv, Remainder,
  Atan2, LogicalAnd, LogicalOr, LogicalXor, BitAnd, BitOr, BitXor, Fmod, Hypot,
  // backward helpers (grad, x) -> grad * f'(x), fused so backward of activations is one kernel
  ReluGrad, SigmoidGradFromOut, TanhGradFromOut, GeluGrad, GeluTanhGrad, SiluGrad, SoftplusGrad,
  MishGrad, Count
};
Array unary(Unary op, const Array& a);
void unary_(Unary op, const Array& a);   // in place
// out = a op b with broadcasting and type promotion
Array binary(Binary op, const Array& a, const Array& b);
void binary_(Binary op, const Array& a, const Array& b);   // a = a op b (b broadcast to a)
// scalar variants: `reverse` means scalar op a. `scalar_is_float` follows Python's type of the scalar.
Array binary_scalar(Binary op, const Array& a, double s, bool scalar_is_float, bool reverse);
void binary_scalar_(Binary op, const Array& a, double s);
Array where(const Array& cond, const Array& a, const Array& b);
Array clamp(const Array& a, std::optional<double> lo, std::optional<double> hi);
// a + alpha * b in one pass (used by optimisers and add(alpha=))
void axpy_(const Array& a, const Array& b, double alpha);
Array lerp(const Array& a, const Array& b, double w);

// ---- reductions (reduce.cpp) ----
enum class Reduce : int { Sum, Prod, Max, Min, Mean, Amax, Amin, All, Any, Count };
Array reduce(Reduce op, const Array& a, std::vector<int64_t> dims, bool keepdim,
             std::optional<DType> out_dtype);
// (values, indices) of max/min along one dim
std::pair<Array, Array> reduce_arg(bool is_max, const Array& a, int64_t dim, bool keepdim);
Array argreduce_all(bool is_max, const Array& a);   // flattened argmax/argmin, 0-d int64
Array var(const Array& a, std::vector<int64_t> dims, double correction, bool keepdim);
Array cumsum(const Array& a, int64_t dim);
Array cumprod(const Array& a, int64_t dim);
Array logsumexp(const Array& a, std::vector<int64_t> dims, bool keepdim);
Array softmax(const Array& a, int64_t dim, bool log);
// grad of softmax / log_softmax given the output y: dim-wise
Array softmax_backward(const Array& grad, const Array& y, int64_t dim, bool log);
// Cross entropy from logits (N, C) and class targets (N): returns per-sample loss (N) and the
// log-softmax (N, C) for backward. Out-of-range targets raise IndexError; ignore_index rows are 0.
std::pair<Array, Array> cross_entropy_forward(const Array& logits, const Array& target,
                                              int64_t ignore_index, const std::optional<Array>& weight,
                                              double label_smoothing);
Array cross_entropy_backward(const Array& grad_loss, const Array& logsm, const Array& target,
                             int64_t ignore_index, const std::optional<Array>& weight,
                             double label_smoothing);

// ---- linear algebra (matmul.cpp) ----
Array matmul(const Array& a, const Array& b);       // torch.matmul semantics incl. batch broadcasting
// y = act(x @ w^T + b); x (..., K), w (N, K), b (N) optional. act: 0 none, 1 relu, 2 gelu
Array linear(const Array& x, const Array& w, const std::optional<Array>& b, int act);
// test hook: gemm_prepacked (cpu/gemm.h) with a and/or b pre-packed, c0 accumulated when given (matmul.cpp)
Array gemm_prepacked_check(const Array& a, const Array& b, bool pack_a, bool pack_b, const std::optional<Array>& c0,
                           const std::optional<Array>& bias, int act);

// ---- indexing (index.cpp) ----
Array index_select(const Array& a, int64_t dim, const Array& index);
// out = zeros_like(shape); out.index_add_(dim, index, src)
void index_add_(const Array& dst, int64_t dim, const Array& index, const Array& src);
// dst[index along dim 0 (flattened leading dims)] = src  (accumulate=false) or += (true)
void index_put_(const Array& dst, int64_t dim, const Array& index, const Array& src, bool accumulate);
Array gather(const Array& a, int64_t dim, const Array& index);
void scatter_add_(const Array& dst, int64_t dim, const Array& index, const Array& src);
void scatter_(const Array& dst, int64_t dim, const Array& index, const Array& src);
Array nonzero(const Array& a);   // (nnz, ndim) int64
Array one_hot(const Array& index, int64_t num_classes);

// ---- random (random.cpp) ----
void manual_seed(uint64_t seed);
uint64_t initial_seed();
std::pair<uint64_t, uint64_t> get_rng_state();
void set_rng_state(uint64_t seed, uint64_t offset);
void uniform_(const Array& a, double lo, double hi);
void normal_(const Array& a, double mean, double std);
void randint_(const Array& a, int64_t lo, int64_t hi);
void bernoulli_(const Array& a, double p);   // a = (u < p) in a's dtype
Array randperm(int64_t n);
Array multinomial(const Array& probs, int64_t num_samples, bool replacement);

}  // namespace tocha::cpu
