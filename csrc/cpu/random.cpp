// Random fills from a counter-based generator (Philox-4x32-10, Salmon et al. 2011).
// Element i of a fill draws the 64-bit block (offset + i/2, word pair i%2) keyed by the seed, so the
// stream depends only on (seed, offset, i): identical for any thread count, and reproducible on a
// CUDA kernel that evaluates the same function. Each fill advances the offset by ceil(n/2).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <numeric>

#include "../core/ops.h"
#include "../core/parallel.h"
#include "gemm.h"  // cpu_has_avx2

namespace tocha::cpu {
namespace {

struct Generator {
  uint64_t seed = 67280421310721ULL;  // PyTorch's default seed value
  uint64_t offset = 0;
  std::mutex mu;
  // reserve `blocks` counter blocks and return the first
  uint64_t reserve(uint64_t blocks) {
    std::lock_guard<std::mutex> g(mu);
    uint64_t o = offset;
    offset += blocks;
    return o;
  }
};
Generator& gen() {
  static Generator g;
  return g;
}

inline void philox_round(uint32_t c[4], const uint32_t k[2]) {
  const uint64_t p0 = (uint64_t)0xD2511F53u * c[0];
  const uint64_t p1 = (uint64_t)0xCD9E8D57u * c[2];
  const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
  const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
  c[0] = hi1 ^ c[1] ^ k[0];
  c[1] = lo1;
  c[2] = hi0 ^ c[3] ^ k[1];
  c[3] = lo0;
}

// 4 random words for counter `ctr` under key `seed`
inline void philox(uint64_t ctr, uint64_t seed, uint32_t out[4]) {
  uint32_t c[4] = {(uint32_t)ctr, (uint32_t)(ctr >> 32), 0, 0};
  uint32_t k[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  for (int r = 0; r < 10; ++r) {
    philox_round(c, k);
    k[0] += 0x9E3779B9u;
    k[1] += 0xBB67AE85u;
  }
  std::copy(c, c + 4, out);
}

// 64 random bits for element i of a fill that starts at block `base`
inline uint64_t bits64(uint64_t base, uint64_t seed, int64_t i) {
  uint32_t w[4];
  philox(base + (uint64_t)i / 2, seed, w);
  int j = (int)(i & 1) * 2;
  return ((uint64_t)w[j] << 32) | w[j + 1];
}
inline double u01_open(uint64_t b) { return ((double)(b >> 11) + 0.5) * (1.0 / 9007199254740992.0); }  // (0,1)
inline double u01(uint64_t b) { return (double)(b >> 11) * (1.0 / 9007199254740992.0); }             // [0,1)

#if defined(__x86_64__) || defined(_M_X64)
}  // namespace
namespace avx2 {
void philox8(uint64_t ctr0, uint64_t seed, uint32_t out[4][8]);  // random_avx2.cpp
}  // namespace avx2
namespace {
#endif

// Philox for kLanesR consecutive counters: out[w][j] = word w of philox(ctr0 + j). Generating each block
// once for its two elements (instead of once per element) took bernoulli_ on 100K floats from 1.13 to
// 0.71 ms and normal_ on 1M from 39 to 31 ms (1 thread, Zen 4). GCC does not vectorise this even written
// lane-parallel (32x32->64-bit multiplies): random_avx2.cpp holds the AVX2 version, used when the CPU has
// it (bernoulli_ 100K 0.71 -> 0.28 ms). Same stream on every path.
constexpr int kLanesR = 8;
void philox_lanes(uint64_t ctr0, uint64_t seed, uint32_t out[4][kLanesR]) {
  for (int j = 0; j < kLanesR; ++j) {
    uint32_t w[4];
    philox(ctr0 + (uint64_t)j, seed, w);
    for (int k = 0; k < 4; ++k) out[k][j] = w[k];
  }
}

// p[i] = f(bits64(base, seed, i)) for i < n. Each Philox block feeds two consecutive elements (words 0-1 and
// 2-3, exactly as bits64), and blocks go kLanesR at a time through philox_lanes; chunks of blocks are split
// over threads, so the output is identical for any thread count.
template <typename T, typename F>
void fill_blocks(T* p, int64_t n, uint64_t base, uint64_t seed, F f) {
  const int64_t nblk = (n + 1) / 2, ngroups = (nblk + kLanesR - 1) / kLanesR;
  const int nt = threads_for_size(n);
  void (*gen8)(uint64_t, uint64_t, uint32_t(*)[kLanesR]) = philox_lanes;
#if defined(__x86_64__) || defined(_M_X64)
  if (cpu_has_avx2()) gen8 = avx2::philox8;
#endif
  parallel_for(nt, ngroups, [&](int64_t g) {
    uint32_t w[4][kLanesR];
    gen8(base + (uint64_t)(g * kLanesR), seed, w);
    const int64_t i0 = g * kLanesR * 2;
    for (int j = 0; j < kLanesR; ++j) {
      const int64_t i = i0 + 2 * j;
      if (i < n) p[i] = (T)f(((uint64_t)w[0][j] << 32) | w[1][j]);
      if (i + 1 < n) p[i + 1] = (T)f(((uint64_t)w[2][j] << 32) | w[3][j]);
    }
  });
}

template <typename F>
void fill_random(const Array& a, const char* op, F f) {
  if (a.device().type != DeviceType::CPU)
    throw NotImplementedError(std::string("[") + op + "] expected a CPU tensor, got " + a.device().str() +
                              " (no CUDA kernel for this op yet)");
  int64_t n = a.numel();
  if (n == 0) return;
  Array work = a.is_contiguous() ? a : Array::empty(a.shape, a.dtype);
  uint64_t seed = gen().seed;
  uint64_t base = gen().reserve(((uint64_t)n + 1) / 2);
  TOCHA_DISPATCH_ALL(a.dtype, T, { fill_blocks<T>(work.data<T>(), n, base, seed, f); });
  if (work.storage != a.storage) copy_(a, work);
  a.bump_version();
}

}  // namespace

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> g(gen().mu);
  gen().seed = seed;
  gen().offset = 0;
}
uint64_t initial_seed() { return gen().seed; }
std::pair<uint64_t, uint64_t> get_rng_state() {
  std::lock_guard<std::mutex> g(gen().mu);
  return {gen().seed, gen().offset};
}
void set_rng_state(uint64_t seed, uint64_t offset) {
  std::lock_guard<std::mutex> g(gen().mu);
  gen().seed = seed;
  gen().offset = offset;
}

void uniform_(const Array& a, double lo, double hi) {
  if (!is_floating(a.dtype)) throw TypeError("[uniform_] expected a floating-point tensor");
  if (!(lo <= hi)) throw ValueError("[uniform_] expects to return a [from, to) range, but found from=" + std::to_string(lo) + " > to=" + std::to_string(hi));
  const double w = hi - lo;
  fill_random(a, "uniform_", [=](uint64_t b) {
    double v = lo + w * u01(b);
    return v < hi || w == 0 ? v : lo;  // keep the half-open range after rounding
  });
}

void normal_(const Array& a, double mean, double std) {
  if (!is_floating(a.dtype)) throw TypeError("[normal_] expected a floating-point tensor");
  if (!(std >= 0)) throw ValueError("[normal_] expects std >= 0.0, but found std " + std::to_string(std));
  fill_random(a, "normal_", [=](uint64_t b) {
    // Box-Muller on the two 32-bit halves (each element uses its own 64 bits)
    double u1 = ((double)(b >> 32) + 0.5) * (1.0 / 4294967296.0);
    double u2 = ((double)(b & 0xffffffffu) + 0.5) * (1.0 / 4294967296.0);
    return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  });
}

void randint_(const Array& a, int64_t lo, int64_t hi) {
  if (hi <= lo) throw ValueError("[randint] random_ expects 'from' to be less than 'to', but got from=" + std::to_string(lo) + " >= to=" + std::to_string(hi));
  const unsigned __int128 range = (unsigned __int128)((uint64_t)(hi - lo));
  fill_random(a, "randint", [=](uint64_t b) {
    return lo + (int64_t)(((unsigned __int128)b * range) >> 64);
  });
}

void bernoulli_(const Array& a, double p) {
  if (!(p >= 0 && p <= 1)) throw ValueError("[bernoulli_] expects p to be in [0, 1], but got p=" + std::to_string(p));
  // u01(b) < p  <=>  (b >> 11) < p 2^53 (both exact) <=> (b >> 11) < ceil(p 2^53): an integer compare
  const uint64_t thr = (uint64_t)std::ceil(p * 9007199254740992.0);
  fill_random(a, "bernoulli_", [=](uint64_t b) { return (b >> 11) < thr ? 1 : 0; });
}

Array randperm(int64_t n) {
  if (n < 0) throw ValueError("[randperm] n must be non-negative, got " + std::to_string(n));
  Array out = Array::empty({n}, DType::Int64);
  int64_t* p = out.data<int64_t>();
  std::iota(p, p + n, 0);
  if (n < 2) return out;
  uint64_t seed = gen().seed;
  uint64_t base = gen().reserve(((uint64_t)n + 1) / 2);
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates
    uint64_t b = bits64(base, seed, i);
    int64_t j = (int64_t)(((unsigned __int128)b * (uint64_t)(i + 1)) >> 64);
    std::swap(p[i], p[j]);
  }
  return out;
}

Array multinomial(const Array& probs0, int64_t k, bool replacement) {
  if (probs0.ndim() != 1) throw ValueError("[multinomial] expected 1-d weights, got shape " + shape_str(probs0.shape));
  Array probs = probs0.astype(DType::Float64).contiguous();
  const int64_t n = probs.numel();
  const double* w = probs.data<double>();
  double total = 0;
  int64_t positive = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!(w[i] >= 0) || std::isinf(w[i])) throw ValueError("[multinomial] probability tensor contains either inf, nan or element < 0");
    total += w[i];
    positive += w[i] > 0;
  }
  if (total <= 0) throw ValueError("[multinomial] invalid multinomial distribution (sum of probabilities <= 0)");
  if (k < 0) throw ValueError("[multinomial] num_samples must be non-negative");
  if (!replacement && k > positive)
    throw ValueError("[multinomial] cannot sample n_sample > prob_dist.size(-1) samples without replacement");
  Array out = Array::empty({k}, DType::Int64);
  int64_t* o = out.data<int64_t>();
  uint64_t seed = gen().seed;
  if (replacement) {
    std::vector<double> cdf(n);
    std::partial_sum(w, w + n, cdf.begin());
    uint64_t base = gen().reserve(((uint64_t)k + 1) / 2);
    for (int64_t s = 0; s < k; ++s) {
      double u = u01(bits64(base, seed, s)) * total;
      int64_t i = std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
      while (i >= n || w[std::min(i, n - 1)] == 0) { i = std::min(i, n - 1); if (w[i] > 0) break; --i; }
      o[s] = i;
    }
  } else {
    // exponential-race keys: the k smallest E_i / w_i are a weighted sample without replacement
    uint64_t base = gen().reserve(((uint64_t)n + 1) / 2);
    std::vector<std::pair<double, int64_t>> key(n);
    for (int64_t i = 0; i < n; ++i)
      key[i] = {w[i] > 0 ? -std::log(u01_open(bits64(base, seed, i))) / w[i] : INFINITY, i};
    std::partial_sort(key.begin(), key.begin() + k, key.end());
    for (int64_t s = 0; s < k; ++s) o[s] = key[s].second;
  }
  return out;
}

}  // namespace tocha::cpu
