// Array core: storage allocation, dtype table, shape helpers and zero-copy views.
#include "array.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <unordered_map>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "ops.h"
#ifdef TOCHA_WITH_CUDA
#include "../cuda/ops_cuda.h"  // caching device allocator
#endif

namespace tocha {

size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::Bool: return 1;
    case DType::UInt8: return 1;
    case DType::Int32: return 4;
    case DType::Int64: return 8;
    case DType::Float32: return 4;
    case DType::Float64: return 8;
  }
  throw std::runtime_error("unknown dtype");
}

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::Bool: return "bool";
    case DType::UInt8: return "uint8";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
  }
  return "unknown";
}

DType promote_types(DType a, DType b) { return (uint8_t)a > (uint8_t)b ? a : b; }

std::string Device::str() const {
  if (type == DeviceType::CPU) return "cpu";
  return "cuda:" + std::to_string(index);
}

namespace {
// CPU caching allocator for large blocks. Fresh multi-page buffers come from mmap and page-fault on
// first touch (~13 µs per 4 KiB page measured here), which dominated ops on mid-size tensors; training
// loops request the same sizes every step, so freed blocks are kept per rounded size and reused.
// Small blocks (< 64 KiB) are kept per thread in free lists by 64-byte size class (SmallBlocks below):
// glibc's aligned_alloc/free of a 16 KiB block cost ~0.1 us (memalign splitting, bin consolidation),
// a noticeable share of a small op's call cost (a 64^3 matmul is ~5.7 us in all).
class SmallBlocks;
class BlockCache {
 public:
  static constexpr size_t kMinCached = 64 * 1024;
  static constexpr size_t kHuge = 4 << 20;          // buffers from 4 MiB get the huge-page hint
  static constexpr size_t kHugeAlign = 2 << 20;
  static BlockCache& get() {
    static BlockCache* c = new BlockCache();  // leaked on purpose: storages may die after static dtors
    return *c;
  }
  // the block size for a storage of n bytes (every block holds at least 64 bytes, also for n = 0)
  static size_t round(size_t n) {
    if (n == 0) n = 1;
    if (n < kMinCached) return ((n + 63) / 64) * 64;
    if (n >= kHuge) return ((n + kHugeAlign - 1) / kHugeAlign) * kHugeAlign;  // aligned_alloc needs a multiple
    return ((n + 4095) / 4096) * 4096;
  }
  void* take(size_t rounded);
  void give(void* p, size_t rounded);
  void* take_global(size_t rounded) {
    if (rounded >= kMinCached) {
      std::lock_guard<std::mutex> g(mu_);
      auto it = free_.find(rounded);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= rounded;
        return p;
      }
    }
    void* p = std::aligned_alloc(rounded >= kHuge ? kHugeAlign : 64, rounded);
    if (!p && rounded >= kMinCached) {  // out of memory: drop the cache and retry once
      release_all();
      p = std::aligned_alloc(64, rounded);
    }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // like NumPy: ask for transparent huge pages on big buffers (fewer page faults and TLB misses)
    if (p && rounded >= kHuge && ((uintptr_t)p % kHugeAlign) == 0) madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
  }
  void give_global(void* p, size_t rounded) {
    if (rounded >= kMinCached) {
      std::lock_guard<std::mutex> g(mu_);
      if (cached_ + rounded <= limit_) {
        free_[rounded].push_back(p);
        cached_ += rounded;
        return;
      }
    }
    std::free(p);
  }
  void release_all() {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& kv : free_)
      for (void* p : kv.second) std::free(p);
    free_.clear();
    cached_ = 0;
  }
  size_t cached_bytes() {
    std::lock_guard<std::mutex> g(mu_);
    return cached_;
  }

 private:
  BlockCache() {
    const char* env = std::getenv("TOCHA_CPU_CACHE_MB");
    if (env) limit_ = (size_t)std::max(0L, std::atol(env)) << 20;
  }
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  size_t limit_ = (size_t)1 << 30;  // keep at most 1 GiB of freed blocks
};
// Per-thread free lists of small blocks: class c holds blocks of (c + 1) * 64 bytes, at most kKeep of each
// and kMaxBytes in all; a block freed on another thread joins that thread's lists. No locks. After the
// thread's cache is destroyed (thread exit), blocks go straight back to free().
class SmallBlocks {
 public:
  static constexpr int kClasses = int(BlockCache::kMinCached / 64);
  static constexpr int kKeep = 8;
  static constexpr size_t kMaxBytes = 4 << 20;
  static SmallBlocks* mine() {
    if (dead_) return nullptr;
    thread_local SmallBlocks cache;
    return &cache;
  }
  void* take(size_t rounded) {
    List& l = lists_[rounded / 64 - 1];
    if (l.n == 0) return nullptr;
    bytes_ -= rounded;
    return l.p[--l.n];
  }
  bool give(void* p, size_t rounded) {
    List& l = lists_[rounded / 64 - 1];
    if (l.n == kKeep || bytes_ + rounded > kMaxBytes) return false;
    l.p[l.n++] = p;
    bytes_ += rounded;
    return true;
  }
  void release() {
    for (List& l : lists_)
      while (l.n) std::free(l.p[--l.n]);
    bytes_ = 0;
  }
  ~SmallBlocks() {
    release();
    dead_ = true;
  }

 private:
  struct List {
    int n = 0;
    void* p[kKeep];
  };
  List lists_[kClasses];
  size_t bytes_ = 0;
  static thread_local bool dead_;
};
thread_local bool SmallBlocks::dead_ = false;

void* BlockCache::take(size_t rounded) {
  if (rounded < kMinCached)
    if (SmallBlocks* s = SmallBlocks::mine())
      if (void* p = s->take(rounded)) return p;
  return take_global(rounded);
}

void BlockCache::give(void* p, size_t rounded) {
  if (rounded < kMinCached)
    if (SmallBlocks* s = SmallBlocks::mine())
      if (s->give(p, rounded)) return;
  give_global(p, rounded);
}

}  // namespace

size_t cpu_cache_bytes() { return BlockCache::get().cached_bytes(); }
void cpu_empty_cache() {
  BlockCache::get().release_all();
  if (SmallBlocks* s = SmallBlocks::mine()) s->release();  // the calling thread's small blocks
}

Storage::~Storage() {
#ifdef TOCHA_WITH_CUDA
  if (owns_data && data && device.type == DeviceType::CUDA) {
    cuda::device_free(data, nbytes, device.index);  // back to the caching device allocator
    return;
  }
#endif
  if (owns_data && data) BlockCache::get().give(data, BlockCache::round(nbytes));
}

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
#ifdef TOCHA_WITH_CUDA
  if (device.type == DeviceType::CUDA) {
    auto s = std::make_shared<Storage>();
    s->data = cuda::device_alloc(nbytes, device.index);
    s->owns_data = true;
    s->nbytes = nbytes;
    s->device = device;
    return s;
  }
#endif
  if (device.type != DeviceType::CPU)
    throw std::runtime_error("tocha was built without CUDA support; cannot allocate on " + device.str());
  auto s = std::make_shared<Storage>();
  s->data = BlockCache::get().take(BlockCache::round(nbytes));
  if (!s->data) throw std::runtime_error("out of memory allocating " + std::to_string(nbytes) + " bytes");
  s->owns_data = true;
  s->nbytes = nbytes;
  s->device = device;
  return s;
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t i = (int64_t)s.size() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(s[i], 1);
  }
  return st;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ValueError(std::string("[") + op + "] shapes " + shape_str(a) + " and " + shape_str(b) +
                       " cannot be broadcast together (dim " + std::to_string(i) + ": " +
                       std::to_string(da) + " vs " + std::to_string(db) + ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t n = ndim == 0 ? 1 : ndim;  // 0-d tensors accept dim 0 / -1 like PyTorch
  if (dim < -n || dim >= n)
    throw IndexError(std::string("[") + op + "] dimension out of range (expected to be in range of [" +
                     std::to_string(-n) + ", " + std::to_string(n - 1) + "], but got " +
                     std::to_string(dim) + ")");
  return dim < 0 ? dim + n : dim;
}

Shape infer_shape(Shape shape, int64_t numel, const char* op) {
  int64_t infer = -1, prod = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw ValueError(std::string("[") + op + "] only one dimension can be inferred");
      infer = (int64_t)i;
    } else if (shape[i] < 0) {
      throw ValueError(std::string("[") + op + "] invalid shape dimension " + std::to_string(shape[i]));
    } else {
      prod *= shape[i];
    }
  }
  if (infer >= 0) {
    if (prod == 0 || numel % prod != 0)
      throw ValueError(std::string("[") + op + "] shape " + shape_str(shape) +
                       " is invalid for input of size " + std::to_string(numel));
    shape[infer] = numel / prod;
  } else if (prod != numel) {
    throw ValueError(std::string("[") + op + "] shape " + shape_str(shape) +
                     " is invalid for input of size " + std::to_string(numel));
  }
  return shape;
}

Array Array::empty(Shape shape, DType dtype, Device device) {
  for (auto d : shape)
    if (d < 0) throw ValueError("[empty] negative dimension in shape " + shape_str(shape));
  Array a;
  a.storage = Storage::allocate(shape_numel(shape) * dtype_size(dtype), device);
  a.dtype = dtype;
  a.strides = contiguous_strides(shape);
  a.shape = std::move(shape);
  return a;
}

Array Array::zeros(const Shape& shape, DType dtype, Device device) {
  Array a = empty(shape, dtype, device);
  std::memset(a.storage->data, 0, a.storage->nbytes);
  return a;
}

bool Array::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = ndim() - 1; i >= 0; --i) {
    if (shape[i] == 1) continue;
    if (strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

Array Array::as_strided(const Shape& shp, const Shape& st, int64_t off) const {
  if (shp.size() != st.size())
    throw ValueError("[as_strided] shape " + shape_str(shp) + " and strides " + shape_str(st) +
                     " differ in length");
  // bounds check: every reachable element must lie inside the storage
  int64_t lo = off, hi = off, n = 1;
  for (size_t i = 0; i < shp.size(); ++i) {
    if (shp[i] < 0) throw ValueError("[as_strided] negative size in " + shape_str(shp));
    n *= shp[i];
    if (shp[i] == 0) continue;
    int64_t span = (shp[i] - 1) * st[i];
    if (span < 0) lo += span; else hi += span;
  }
  int64_t cap = (int64_t)(storage->nbytes / itemsize());
  if (n > 0 && (lo < 0 || hi >= cap))
    throw IndexError("[as_strided] view of size " + shape_str(shp) + " with strides " + shape_str(st) +
                     " and offset " + std::to_string(off) + " is out of bounds for storage of " +
                     std::to_string(cap) + " elements");
  Array r = *this;
  r.shape = shp;
  r.strides = st;
  r.offset = off;
  return r;
}

Array Array::view(Shape new_shape) const {
  new_shape = infer_shape(new_shape, numel(), "view");
  if (is_contiguous()) {
    Array r = *this;
    r.shape = new_shape;
    r.strides = contiguous_strides(new_shape);
    return r;
  }
  if (numel() == 0) {
    Array r = *this;
    r.shape = new_shape;
    r.strides = contiguous_strides(new_shape);
    return r;
  }
  // NumPy's attempt_nocopy_reshape: match chunks of old dims (size-1 dims dropped) to new dims;
  // each old chunk must be contiguous in itself.
  Shape od, os;
  for (int64_t i = 0; i < ndim(); ++i)
    if (shape[i] != 1) { od.push_back(shape[i]); os.push_back(strides[i]); }
  const int64_t on = (int64_t)od.size(), nn = (int64_t)new_shape.size();
  Shape ns(nn, 1);
  int64_t oi = 0, oj = 1, ni = 0, nj = 1;
  while (ni < nn && oi < on) {
    int64_t np_ = new_shape[ni], op_ = od[oi];
    while (np_ != op_) {
      if (np_ < op_) np_ *= new_shape[nj++];
      else op_ *= od[oj++];
    }
    for (int64_t ok = oi; ok < oj - 1; ++ok)
      if (os[ok] != od[ok + 1] * os[ok + 1])
        throw std::runtime_error(
            "[view] view size is not compatible with input tensor's size and stride (at least one "
            "dimension spans across two contiguous subspaces). Use .reshape(...) instead.");
    ns[nj - 1] = os[oj - 1];
    for (int64_t nk = nj - 1; nk > ni; --nk) ns[nk - 1] = ns[nk] * new_shape[nk];
    ni = nj++;
    oi = oj++;
  }
  int64_t last = ni > 0 ? ns[ni - 1] : 1;
  for (int64_t k = ni; k < nn; ++k) ns[k] = last;  // trailing size-1 dims
  Array r = *this;
  r.shape = new_shape;
  r.strides = ns;
  return r;
}

Array Array::reshape(Shape new_shape) const {
  new_shape = infer_shape(new_shape, numel(), "reshape");
  try {
    return view(new_shape);
  } catch (const std::runtime_error&) {
    return contiguous().view(new_shape);
  }
}

Array Array::transpose(int64_t d0, int64_t d1) const {
  if (ndim() == 0) return *this;
  d0 = wrap_dim(d0, ndim(), "transpose");
  d1 = wrap_dim(d1, ndim(), "transpose");
  Array r = *this;
  std::swap(r.shape[d0], r.shape[d1]);
  std::swap(r.strides[d0], r.strides[d1]);
  return r;
}

Array Array::permute(const Shape& dims) const {
  if ((int64_t)dims.size() != ndim())
    throw ValueError("[permute] number of dims " + std::to_string(dims.size()) +
                     " does not match tensor of " + std::to_string(ndim()) + " dims");
  std::vector<bool> seen(ndim(), false);
  Array r = *this;
  for (int64_t i = 0; i < ndim(); ++i) {
    int64_t d = wrap_dim(dims[i], ndim(), "permute");
    if (seen[d]) throw ValueError("[permute] repeated dim " + std::to_string(d) + " in " + shape_str(dims));
    seen[d] = true;
    r.shape[i] = shape[d];
    r.strides[i] = strides[d];
  }
  return r;
}

Array Array::slice(int64_t dim, int64_t start, int64_t stop, int64_t step) const {
  dim = wrap_dim(dim, ndim(), "slice");
  if (step <= 0) throw ValueError("[slice] step must be positive, got " + std::to_string(step));
  int64_t n = shape[dim];
  if (start < 0) start += n;
  if (stop < 0) stop += n;
  start = std::clamp<int64_t>(start, 0, n);
  stop = std::clamp<int64_t>(stop, start, n);
  Array r = *this;
  r.shape[dim] = (stop - start + step - 1) / step;
  r.offset = offset + start * strides[dim];
  r.strides[dim] = strides[dim] * step;
  return r;
}

Array Array::select(int64_t dim, int64_t index) const {
  if (ndim() == 0) throw IndexError("[select] invalid index of a 0-dim tensor");
  dim = wrap_dim(dim, ndim(), "select");
  int64_t n = shape[dim];
  if (index < -n || index >= n)
    throw IndexError("index " + std::to_string(index) + " is out of bounds for dimension " +
                     std::to_string(dim) + " with size " + std::to_string(n));
  if (index < 0) index += n;
  Array r = *this;
  r.offset = offset + index * strides[dim];
  r.shape.erase(r.shape.begin() + dim);
  r.strides.erase(r.strides.begin() + dim);
  return r;
}

Array Array::expand(const Shape& new_shape) const {
  if ((int64_t)new_shape.size() < ndim())
    throw ValueError("[expand] the number of sizes provided (" + std::to_string(new_shape.size()) +
                     ") must be greater or equal to the number of dimensions in the tensor (" +
                     std::to_string(ndim()) + ")");
  size_t lead = new_shape.size() - ndim();
  Array r = *this;
  r.shape.assign(new_shape.size(), 0);
  r.strides.assign(new_shape.size(), 0);
  for (size_t i = 0; i < new_shape.size(); ++i) {
    if (i < lead) {
      if (new_shape[i] < 0) throw ValueError("[expand] -1 not allowed in leading, non-existing dimension");
      r.shape[i] = new_shape[i];
      r.strides[i] = 0;
      continue;
    }
    int64_t old = shape[i - lead];
    int64_t want = new_shape[i] == -1 ? old : new_shape[i];
    if (old == want) {
      r.shape[i] = old;
      r.strides[i] = strides[i - lead];
    } else if (old == 1) {
      r.shape[i] = want;
      r.strides[i] = 0;
    } else {
      throw ValueError("[expand] the expanded size of the tensor (" + std::to_string(want) +
                       ") must match the existing size (" + std::to_string(old) +
                       ") at non-singleton dimension " + std::to_string(i) + ".  Target sizes: " +
                       shape_str(new_shape) + ".  Tensor sizes: " + shape_str(shape));
    }
  }
  return r;
}

Array Array::squeeze(const std::vector<int64_t>& dims) const {
  std::vector<bool> drop(ndim(), false);
  if (dims.empty()) {
    for (int64_t i = 0; i < ndim(); ++i) drop[i] = shape[i] == 1;
  } else {
    for (auto d : dims) {
      if (ndim() == 0) { wrap_dim(d, 0, "squeeze"); continue; }
      int64_t w = wrap_dim(d, ndim(), "squeeze");
      drop[w] = shape[w] == 1;
    }
  }
  Array r = *this;
  r.shape.clear();
  r.strides.clear();
  for (int64_t i = 0; i < ndim(); ++i)
    if (!drop[i]) { r.shape.push_back(shape[i]); r.strides.push_back(strides[i]); }
  return r;
}

Array Array::unsqueeze(int64_t dim) const {
  dim = wrap_dim(dim, ndim() + 1, "unsqueeze");
  Array r = *this;
  int64_t st = dim < ndim() ? shape[dim] * strides[dim] : 1;
  r.shape.insert(r.shape.begin() + dim, 1);
  r.strides.insert(r.strides.begin() + dim, st);
  return r;
}

Array Array::diagonal() const {
  if (ndim() != 2) throw ValueError("[diagonal] expected a 2-d tensor, got shape " + shape_str(shape));
  Array r = *this;
  r.shape = {std::min(shape[0], shape[1])};
  r.strides = {strides[0] + strides[1]};
  return r;
}

Array Array::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

// clone/astype (and so contiguous/reshape) keep the array on its device: CUDA arrays copy on the GPU.
static void copy_on_device(const Array& dst, const Array& src) {
#ifdef TOCHA_WITH_CUDA
  if (dst.device().type == DeviceType::CUDA) return cuda::copy_(dst, src);
#endif
  cpu::copy_(dst, src);
}

Array Array::clone() const {
  Array r = Array::empty(shape, dtype, device());
  copy_on_device(r, *this);
  return r;
}

Array Array::astype(DType dt) const {
  if (dt == dtype) return *this;
  Array r = Array::empty(shape, dt, device());
  copy_on_device(r, *this);
  return r;
}

}  // namespace tocha
