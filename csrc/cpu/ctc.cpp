// CTC loss forward (alpha recursion) and backward (beta recursion); contract in ctc.h.
#include "ctc.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../core/parallel.h"

namespace tocha::cpu {
namespace {

struct Plan {
  int64_t T, N, C, maxL;
  std::vector<int64_t> il, tl, off;   // per sample: input length, target length, offset in targets
  Array targets;                      // contiguous int64
};

Plan make_plan(const Array& lp, const Array& targets, const Array& input_lengths,
               const Array& target_lengths, int64_t blank) {
  if (lp.device().type != DeviceType::CPU) throw std::runtime_error("[ctc_loss] expected CPU tensors");
  if (!is_floating(lp.dtype)) throw TypeError("[ctc_loss] log_probs must be floating point");
  if (lp.ndim() != 3)
    throw ValueError("[ctc_loss] log_probs must have shape (T, N, C), got " + shape_str(lp.shape));
  Plan p;
  p.T = lp.shape[0]; p.N = lp.shape[1]; p.C = lp.shape[2];
  if (blank < 0 || blank >= p.C)
    throw IndexError("[ctc_loss] blank " + std::to_string(blank) + " is out of range for " +
                     std::to_string(p.C) + " classes");
  if (targets.dtype != DType::Int64 && targets.dtype != DType::Int32)
    throw TypeError("[ctc_loss] targets must be an integer tensor");
  Array il = input_lengths.astype(DType::Int64).contiguous();
  Array tl = target_lengths.astype(DType::Int64).contiguous();
  if (il.numel() != p.N || tl.numel() != p.N)
    throw ValueError("[ctc_loss] input_lengths and target_lengths must have " + std::to_string(p.N) +
                     " entries (the batch size)");
  p.targets = targets.astype(DType::Int64).contiguous();
  const int64_t* ilp = il.data<int64_t>();
  const int64_t* tlp = tl.data<int64_t>();
  p.il.assign(ilp, ilp + p.N);
  p.tl.assign(tlp, tlp + p.N);
  p.off.resize(p.N);
  p.maxL = 0;
  bool padded = p.targets.ndim() == 2;
  if (!padded && p.targets.ndim() != 1)
    throw ValueError("[ctc_loss] targets must be (N, S) or 1-d concatenated, got " + shape_str(targets.shape));
  if (padded && p.targets.shape[0] != p.N)
    throw ValueError("[ctc_loss] targets batch size " + std::to_string(p.targets.shape[0]) + " != " +
                     std::to_string(p.N));
  int64_t acc = 0;
  for (int64_t n = 0; n < p.N; ++n) {
    if (p.il[n] < 0 || p.il[n] > p.T)
      throw ValueError("[ctc_loss] input_lengths[" + std::to_string(n) + "] = " + std::to_string(p.il[n]) +
                       " must be in [0, T=" + std::to_string(p.T) + "]");
    if (p.tl[n] < 0 || (padded && p.tl[n] > p.targets.shape[1]))
      throw ValueError("[ctc_loss] target_lengths[" + std::to_string(n) + "] = " + std::to_string(p.tl[n]) +
                       " is negative or longer than the padded targets");
    p.off[n] = padded ? n * p.targets.shape[1] : acc;
    acc += p.tl[n];
    p.maxL = std::max(p.maxL, p.tl[n]);
  }
  if (!padded && acc > p.targets.numel())
    throw ValueError("[ctc_loss] sum(target_lengths) = " + std::to_string(acc) + " exceeds the " +
                     std::to_string(p.targets.numel()) + " concatenated targets");
  const int64_t* t = p.targets.data<int64_t>();
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.tl[n]; ++k) {
      int64_t v = t[p.off[n] + k];
      if (v < 0 || v >= p.C)
        throw IndexError("[ctc_loss] target " + std::to_string(v) + " of sample " + std::to_string(n) +
                         " is out of range for " + std::to_string(p.C) + " classes");
    }
  return p;
}

inline int64_t prime(const int64_t* tg, int64_t s, int64_t blank) {
  return (s & 1) ? tg[s / 2] : blank;   // l' = blank, l1, blank, l2, ..., blank
}

template <typename T>
inline T lse3(T a, T b, T c) {
  const T ninf = -std::numeric_limits<T>::infinity();
  T m = std::max(a, std::max(b, c));
  if (m == ninf) return ninf;
  return std::log(std::exp(a - m) + std::exp(b - m) + std::exp(c - m)) + m;
}

template <typename T>
inline T lse2(T a, T b) {
  const T ninf = -std::numeric_limits<T>::infinity();
  T m = std::max(a, b);
  if (m == ninf) return ninf;
  return std::log(std::exp(a - m) + std::exp(b - m)) + m;
}

}  // namespace

std::pair<Array, Array> ctc_loss_forward(const Array& log_probs, const Array& targets,
                                         const Array& input_lengths, const Array& target_lengths,
                                         int64_t blank) {
  Plan p = make_plan(log_probs, targets, input_lengths, target_lengths, blank);
  Array lp = log_probs.contiguous();
  const int64_t S = 2 * p.maxL + 1;
  Array nll = Array::empty({p.N}, lp.dtype);
  Array la = Array::empty({p.N, p.T, S}, lp.dtype);
  TOCHA_DISPATCH_FLOAT(lp.dtype, T, "ctc_loss", {
    const T ninf = -std::numeric_limits<T>::infinity();
    const T* lpp = lp.data<T>(); T* lap = la.data<T>(); T* np_ = nll.data<T>();
    const int64_t* tg0 = p.targets.data<int64_t>();
    const int64_t N = p.N, C = p.C, Tm = p.T;
    parallel_for(N > 1 ? get_num_threads() : 1, N, [&](int64_t n) {
      const int64_t il = p.il[n], L = p.tl[n], Sn = 2 * L + 1;
      const int64_t* tg = tg0 + p.off[n];
      T* a = lap + n * Tm * S;
      for (int64_t i = 0; i < Tm * S; ++i) a[i] = ninf;
      auto LP = [&](int64_t t, int64_t c) { return lpp[(t * N + n) * C + c]; };
      if (il == 0) { np_[n] = L == 0 ? T(0) : std::numeric_limits<T>::infinity(); return; }
      a[0] = LP(0, blank);
      if (L > 0) a[1] = LP(0, tg[0]);
      for (int64_t t = 1; t < il; ++t) {
        const T* ap = a + (t - 1) * S; T* at = a + t * S;
        for (int64_t s = 0; s < Sn; ++s) {
          int64_t c = prime(tg, s, blank);
          T l1 = ap[s], l2 = s > 0 ? ap[s - 1] : ninf;
          T l3 = (s > 1 && prime(tg, s - 2, blank) != c) ? ap[s - 2] : ninf;
          at[s] = lse3(l1, l2, l3) + LP(t, c);
        }
      }
      const T* al = a + (il - 1) * S;
      T ll = L == 0 ? al[0] : lse2(al[Sn - 1], al[Sn - 2]);
      np_[n] = -ll;
    });
  });
  return {nll, la};
}

Array ctc_loss_backward(const Array& grad_nll, const Array& log_probs, const Array& targets,
                        const Array& input_lengths, const Array& target_lengths, const Array& nll_,
                        const Array& log_alpha, int64_t blank, bool zero_infinity) {
  Plan p = make_plan(log_probs, targets, input_lengths, target_lengths, blank);
  Array lp = log_probs.contiguous();
  const int64_t S = 2 * p.maxL + 1;
  if (log_alpha.shape != Shape{p.N, p.T, S} || nll_.numel() != p.N || grad_nll.numel() != p.N)
    throw ValueError("[ctc_loss_backward] saved tensors do not match log_probs " + shape_str(lp.shape));
  Array la = log_alpha.astype(lp.dtype).contiguous();
  Array nll = nll_.astype(lp.dtype).contiguous();
  Array gn = grad_nll.astype(lp.dtype).contiguous();
  Array grad = Array::empty(lp.shape, lp.dtype);
  TOCHA_DISPATCH_FLOAT(lp.dtype, T, "ctc_loss_backward", {
    const T ninf = -std::numeric_limits<T>::infinity();
    const T* lpp = lp.data<T>(); const T* lap = la.data<T>(); const T* nlp = nll.data<T>();
    const T* gnp = gn.data<T>(); T* gp = grad.data<T>();
    const int64_t* tg0 = p.targets.data<int64_t>();
    const int64_t N = p.N, C = p.C, Tm = p.T;
    parallel_for(N > 1 ? get_num_threads() : 1, N, [&](int64_t n) {
      const int64_t il = p.il[n], L = p.tl[n], Sn = 2 * L + 1;
      const int64_t* tg = tg0 + p.off[n];
      const T* a = lap + n * Tm * S;
      auto G = [&](int64_t t, int64_t c) -> T& { return gp[(t * N + n) * C + c]; };
      auto LP = [&](int64_t t, int64_t c) { return lpp[(t * N + n) * C + c]; };
      const T nl = nlp[n];
      if (il == 0 || (zero_infinity && std::isinf(nl))) {
        for (int64_t t = 0; t < Tm; ++t) for (int64_t c = 0; c < C; ++c) G(t, c) = T(0);
        return;
      }
      for (int64_t t = 0; t < il; ++t) for (int64_t c = 0; c < C; ++c) G(t, c) = ninf;
      std::vector<T> bcur(Sn, ninf), bnext(Sn, ninf);
      // t = il-1
      bnext[Sn - 1] = LP(il - 1, blank);
      G(il - 1, blank) = a[(il - 1) * S + Sn - 1] + bnext[Sn - 1];
      if (L > 0) {
        int64_t c = prime(tg, Sn - 2, blank);
        bnext[Sn - 2] = LP(il - 1, c);
        G(il - 1, c) = lse2(G(il - 1, c), a[(il - 1) * S + Sn - 2] + bnext[Sn - 2]);
      }
      for (int64_t t = il - 2; t >= 0; --t) {
        for (int64_t s = Sn - 1; s >= 0; --s) {
          int64_t c = prime(tg, s, blank);
          T l1 = bnext[s], l2 = s < Sn - 1 ? bnext[s + 1] : ninf;
          T l3 = (s < Sn - 2 && prime(tg, s + 2, blank) != c) ? bnext[s + 2] : ninf;
          bcur[s] = lse3(l1, l2, l3) + LP(t, c);
          G(t, c) = lse2(G(t, c), a[t * S + s] + bcur[s]);
        }
        std::swap(bcur, bnext);
      }
      const T gr = gnp[n];
      for (int64_t t = 0; t < Tm; ++t)
        for (int64_t c = 0; c < C; ++c) {
          if (t >= il) { G(t, c) = T(0); continue; }
          T l = LP(t, c);
          G(t, c) = (std::exp(l) - std::exp(G(t, c) + nl - l)) * gr;
        }
    });
  });
  return grad;
}

}  // namespace tocha::cpu
