// random_avx2.cpp -- AVX2 build of Philox-4x32-10 for 8 consecutive counters (random.cpp's philox_lanes,
// same function, same words): the four 32-bit counter words of the 8 blocks sit in 4 registers, and each
// 32x32->64-bit round multiply is two vpmuludq (even / odd lanes) plus blends. GCC does not vectorise the
// portable lane loop. Compiled with -mavx2 -mfma; random.cpp calls it only when cpu_has_avx2().
#include <immintrin.h>

#include <cstdint>

namespace tocha::cpu::avx2 {

void philox8(uint64_t ctr0, uint64_t seed, uint32_t out[4][8]) {
  // counters ctr0 + j: low and high 32-bit words
  alignas(32) uint32_t lo[8], hi[8];
  for (int j = 0; j < 8; ++j) {
    const uint64_t c = ctr0 + (uint64_t)j;
    lo[j] = (uint32_t)c;
    hi[j] = (uint32_t)(c >> 32);
  }
  __m256i c0 = _mm256_load_si256((const __m256i*)lo), c1 = _mm256_load_si256((const __m256i*)hi);
  __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
  const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  // (hi, lo) 32-bit halves of a * m per lane
  auto mulhilo = [](__m256i a, __m256i m, __m256i& h, __m256i& l) {
    const __m256i pe = _mm256_mul_epu32(a, m);                          // lanes 0, 2, 4, 6 as 64-bit
    const __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);   // lanes 1, 3, 5, 7
    l = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    h = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
  };
  for (int r = 0; r < 10; ++r) {
    __m256i h0, l0, h1, l1;
    mulhilo(c0, m0, h0, l0);
    mulhilo(c2, m1, h1, l1);
    const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(h1, c1), _mm256_set1_epi32((int)k0));
    const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(h0, c3), _mm256_set1_epi32((int)k1));
    c1 = l1;
    c3 = l0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  _mm256_storeu_si256((__m256i*)out[0], c0);
  _mm256_storeu_si256((__m256i*)out[1], c1);
  _mm256_storeu_si256((__m256i*)out[2], c2);
  _mm256_storeu_si256((__m256i*)out[3], c3);
}

}  // namespace tocha::cpu::avx2
