// Indexing kernels: index_select / index_put_ (add or assign) along one dim, gather / scatter /
// scatter_add along one dim, nonzero, one_hot.
// Layout: index_* view tensors as (outer, n, inner) row blocks and move `inner` elements at a time
// (memcpy / vector add). Every index is bounds-checked before any write (IndexError names the
// index, the dim and its size). Scatter-style writes run serially in index order: duplicates are
// deterministic (add: fixed order; assign: last write wins).
#include <algorithm>
#include <cstring>

#include "../core/ops.h"
#include "../core/parallel.h"

namespace tocha::cpu {
namespace {

Array index_as_int64(const Array& index, const char* op) {
  if (index.dtype != DType::Int64 && index.dtype != DType::Int32 && index.dtype != DType::UInt8)
    throw TypeError(std::string("[") + op + "] expected an integer index tensor, got " + dtype_name(index.dtype));
  return index.astype(DType::Int64).contiguous();
}

// Wrap negative indices and check bounds; returns a private normalised copy.
std::vector<int64_t> checked_indices(const Array& idx64, int64_t size, int64_t dim, const char* op) {
  const int64_t* p = idx64.data<int64_t>();
  int64_t n = idx64.numel();
  std::vector<int64_t> out(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = p[i];
    if (v < -size || v >= size)
      throw IndexError(std::string("[") + op + "] index " + std::to_string(v) + " is out of bounds for dimension " +
                       std::to_string(dim) + " with size " + std::to_string(size));
    out[i] = v < 0 ? v + size : v;
  }
  return out;
}

void outer_inner(const Shape& s, int64_t dim, int64_t& outer, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int64_t d = 0; d < (int64_t)s.size(); ++d) {
    if (d < dim) outer *= s[d];
    else if (d > dim) inner *= s[d];
  }
}

}  // namespace

Array index_select(const Array& a0, int64_t dim, const Array& index) {
  if (index.ndim() > 1) throw ValueError("[index_select] index must be 0-d or 1-d, got shape " + shape_str(index.shape));
  Array a = a0.ndim() == 0 ? a0.view({1}) : a0.contiguous();
  dim = wrap_dim(dim, a.ndim(), "index_select");
  Array idx = index_as_int64(index, "index_select");
  auto ix = checked_indices(idx, a.shape[dim], dim, "index_select");
  Shape os = a.shape;
  os[dim] = (int64_t)ix.size();
  Array out = Array::empty(os, a.dtype);
  int64_t outer, inner;
  outer_inner(a.shape, dim, outer, inner);
  const int64_t n = a.shape[dim], m = (int64_t)ix.size();
  const size_t row = inner * a.itemsize();
  const char* src = a.data_ptr();
  char* dst = out.data_ptr();
  // row copies are memory-bound: threads only pay off for large gathers (and hurt on busy machines)
  int nt = (outer > 1 && (int64_t)(out.numel() * out.itemsize()) >= ((int64_t)4 << 20)) ? get_num_threads() : 1;
  parallel_for(nt, outer, [&](int64_t o) {
    for (int64_t i = 0; i < m; ++i)
      std::memcpy(dst + (o * m + i) * row, src + (o * n + ix[i]) * row, row);
  });
  if (a0.ndim() == 0) return out.view({});
  return out;
}

void index_put_(const Array& dst, int64_t dim, const Array& index, const Array& src0, bool accumulate) {
  const char* op = accumulate ? "index_add_" : "index_put_";
  if (index.ndim() > 1) throw ValueError(std::string("[") + op + "] index must be 0-d or 1-d, got shape " + shape_str(index.shape));
  if (dst.ndim() == 0) throw ValueError(std::string("[") + op + "] destination must be at least 1-d");
  dim = wrap_dim(dim, dst.ndim(), op);
  Array idx = index_as_int64(index, op);
  auto ix = checked_indices(idx, dst.shape[dim], dim, op);
  Shape ss = dst.shape;
  ss[dim] = (int64_t)ix.size();
  Array src;
  try {
    src = src0.astype(dst.dtype).expand(ss).contiguous();
  } catch (const ValueError&) {
    throw ValueError(std::string("[") + op + "] source of shape " + shape_str(src0.shape) +
                     " does not match the indexed shape " + shape_str(ss));
  }
  for (int64_t i = 0; i < dst.ndim(); ++i)
    if (dst.strides[i] == 0 && dst.shape[i] > 1)
      throw std::runtime_error(std::string("[") + op + "] cannot write into an expanded tensor");
  Array work = dst.is_contiguous() ? dst : dst.contiguous();
  int64_t outer, inner;
  outer_inner(dst.shape, dim, outer, inner);
  const int64_t n = dst.shape[dim], m = (int64_t)ix.size();
  TOCHA_DISPATCH_ALL(dst.dtype, T, {
    T* d = work.data<T>();
    const T* s = src.data<T>();
    int nt = (src.numel() >= 32768 && outer > 1) ? get_num_threads() : 1;
    parallel_for(nt, outer, [&](int64_t o) {
      for (int64_t i = 0; i < m; ++i) {
        T* drow = d + (o * n + ix[i]) * inner;
        const T* srow = s + (o * m + i) * inner;
        if (accumulate) {
          if constexpr (std::is_same_v<T, bool>) for (int64_t k = 0; k < inner; ++k) drow[k] = drow[k] || srow[k];
          else for (int64_t k = 0; k < inner; ++k) drow[k] = (T)(drow[k] + srow[k]);
        } else {
          std::memcpy(drow, srow, inner * sizeof(T));
        }
      }
    });
  });
  if (work.storage != dst.storage) copy_(dst, work);
  dst.bump_version();
}

void index_add_(const Array& dst, int64_t dim, const Array& index, const Array& src) {
  index_put_(dst, dim, index, src, true);
}

namespace {
// Shared walker for gather/scatter: visits every element of `index` with the element offsets of
// `self` (index value substituted at `dim`) and of `other` (same coordinates as index).
template <typename F>
void walk_dim_index(const Array& self, const Array& other, const Array& idx64, int64_t dim, const char* op, F f) {
  const int64_t nd = idx64.ndim();
  if (nd != self.ndim())
    throw ValueError(std::string("[") + op + "] index tensor must have the same number of dimensions as input (" +
                     std::to_string(self.ndim()) + "), got " + std::to_string(nd));
  for (int64_t d = 0; d < nd; ++d) {
    if (d != dim && idx64.shape[d] > self.shape[d])
      throw ValueError(std::string("[") + op + "] size of index " + shape_str(idx64.shape) +
                       " exceeds the input size " + shape_str(self.shape) + " at dim " + std::to_string(d));
    if (idx64.shape[d] > other.shape[d])
      throw ValueError(std::string("[") + op + "] size of index " + shape_str(idx64.shape) +
                       " exceeds the source/output size " + shape_str(other.shape) + " at dim " + std::to_string(d));
  }
  const int64_t total = idx64.numel();
  const int64_t* ip = idx64.data<int64_t>();
  const int64_t size = self.shape[dim];
  std::vector<int64_t> cnt(nd, 0);
  for (int64_t e = 0; e < total; ++e) {
    int64_t v = ip[e];
    if (v < -size || v >= size)
      throw IndexError(std::string("[") + op + "] index " + std::to_string(v) + " is out of bounds for dimension " +
                       std::to_string(dim) + " with size " + std::to_string(size));
    if (v < 0) v += size;
    int64_t so = 0, oo = 0;
    for (int64_t d = 0; d < nd; ++d) {
      so += (d == dim ? v : cnt[d]) * self.strides[d];
      oo += cnt[d] * other.strides[d];
    }
    f(so, oo);
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++cnt[d] < idx64.shape[d]) break;
      cnt[d] = 0;
    }
  }
}
}  // namespace

Array gather(const Array& a, int64_t dim, const Array& index) {
  Array av = a.ndim() == 0 ? a.view({1}) : a;
  dim = wrap_dim(dim, av.ndim(), "gather");
  Array idx = index_as_int64(index, "gather");
  if (idx.ndim() == 0) idx = idx.view({1});
  Array out = Array::empty(idx.shape, a.dtype);
  TOCHA_DISPATCH_ALL(a.dtype, T, {
    const T* src = av.data<T>();
    T* o = out.data<T>();
    walk_dim_index(av, out, idx, dim, "gather", [&](int64_t so, int64_t oo) { o[oo] = src[so]; });
  });
  if (index.ndim() == 0) return out.view({});
  return out;
}

static void scatter_impl(const Array& dst, int64_t dim, const Array& index, const Array& src0, bool add) {
  const char* op = add ? "scatter_add_" : "scatter_";
  dim = wrap_dim(dim, dst.ndim(), op);
  Array idx = index_as_int64(index, op);
  Array src = src0.astype(dst.dtype);
  if (src.ndim() != idx.ndim())
    throw ValueError(std::string("[") + op + "] src must have the same number of dimensions as index");
  Array work = dst.is_contiguous() ? dst : dst.contiguous();
  TOCHA_DISPATCH_ALL(dst.dtype, T, {
    T* d = work.data<T>();
    const T* s = src.data<T>();
    walk_dim_index(work, src, idx, dim, op, [&](int64_t so, int64_t oo) {
      if (add) {
        if constexpr (std::is_same_v<T, bool>) d[so] = d[so] || s[oo];
        else d[so] = (T)(d[so] + s[oo]);
      } else {
        d[so] = s[oo];
      }
    });
  });
  if (work.storage != dst.storage) copy_(dst, work);
  dst.bump_version();
}

void scatter_add_(const Array& dst, int64_t dim, const Array& index, const Array& src) {
  scatter_impl(dst, dim, index, src, true);
}
void scatter_(const Array& dst, int64_t dim, const Array& index, const Array& src) {
  scatter_impl(dst, dim, index, src, false);
}

Array nonzero(const Array& a0) {
  Array a = a0.contiguous();
  const int64_t nd = a.ndim(), n = a.numel();
  std::vector<int64_t> hits;
  TOCHA_DISPATCH_ALL(a.dtype, T, {
    const T* p = a.data<T>();
    for (int64_t i = 0; i < n; ++i)
      if (p[i] != T(0)) hits.push_back(i);
  });
  Array out = Array::empty({(int64_t)hits.size(), nd}, DType::Int64);
  int64_t* o = out.data<int64_t>();
  for (size_t h = 0; h < hits.size(); ++h) {
    int64_t r = hits[h];
    for (int64_t d = nd - 1; d >= 0; --d) {
      o[h * nd + d] = r % a.shape[d];
      r /= a.shape[d];
    }
  }
  return out;
}

Array one_hot(const Array& index, int64_t num_classes) {
  if (index.dtype != DType::Int64 && index.dtype != DType::Int32 && index.dtype != DType::UInt8)
    throw TypeError(std::string("[one_hot] one_hot is only applicable to index tensor, got ") + dtype_name(index.dtype));
  Array idx = index.astype(DType::Int64).contiguous();
  if (num_classes < 0) throw ValueError("[one_hot] num_classes should be positive");
  Shape os = idx.shape;
  os.push_back(num_classes);
  Array out = Array::zeros(os, DType::Int64);
  const int64_t* p = idx.data<int64_t>();
  int64_t* o = out.data<int64_t>();
  for (int64_t i = 0; i < idx.numel(); ++i) {
    if (p[i] < 0 || p[i] >= num_classes)
      throw IndexError("[one_hot] class values must be in [0, " + std::to_string(num_classes) + "), got " + std::to_string(p[i]));
    o[i * num_classes + p[i]] = 1;
  }
  return out;
}

}  // namespace tocha::cpu
