// tocha._C._TensorBase: the C base class of tocha.Tensor (python/tocha/_tensor.py), written against the
// CPython API because it sits on the per-op hot path, where pybind11's generic dispatch costs more than
// the kernels of small tensors.
//
// It holds one field, `_a` (the tocha._C.Array with the data; PyMemberDef, so `t._a` is a slot read), and
// gives the Python layer two fast entry points:
//   * _C._wrap(array) -> Tensor: a new instance of the registered Tensor class holding `array`, autograd
//     state left at the class defaults (the C version of _tensor._wrap; ~0.07 us instead of ~0.2 us).
//   * `a @ b` (nb_matrix_multiply): when both operands are tensors on the CPU and nothing is recorded
//     (grad mode off, or neither operand requires grad) it calls cpu::matmul -- the same kernel call as
//     _ops.MatMul.forward -- and wraps the result; autograd, CUDA and errors go to the Python implementation
//     registered by _ops (`_matmul_dunder`), which records the op or raises the proper exception; a
//     non-tensor operand gives NotImplemented (TypeError, or NumPy's own `@`, as with torch).
//     1x1: 1.28 -> 0.76 us (0.52 us with the small-block cache and grad mode in C; NumPy 0.82); 64^3:
//     6.5 -> 5.5-5.6 us (NumPy 5.7).
// Registration: _C._tensor_class(Tensor) (from _tensor) and _C._tensor_matmul_setup(matmul) (from _ops),
// once at import. Grad mode lives here too (`_C.grad_state.enabled`, a C++ thread_local), so the fast
// path reads it without a Python attribute lookup.
#include <pybind11/pybind11.h>
#include <structmember.h>

#include "../core/ops.h"

namespace py = pybind11;
using namespace tocha;

namespace {

struct TensorBaseObject {
  PyObject_HEAD
  PyObject* a;  // tocha._C.Array, or NULL before __init__ sets it
};

PyTypeObject* g_tensor_type = nullptr;  // tocha.Tensor (registered by _tensor_class)
PyObject* g_matmul = nullptr;           // the Python path of `a @ b`: f(a, b)
PyObject* g_str_requires_grad = nullptr;
PyTypeObject* g_array_type = nullptr;

int tb_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(reinterpret_cast<TensorBaseObject*>(self)->a);
  return 0;
}

int tb_clear(PyObject* self) {
  Py_CLEAR(reinterpret_cast<TensorBaseObject*>(self)->a);
  return 0;
}

void tb_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  tb_clear(self);
  Py_TYPE(self)->tp_free(self);
}

PyTypeObject TensorBaseType = {PyVarObject_HEAD_INIT(nullptr, 0)};

inline bool is_tensor(PyObject* o) { return PyObject_TypeCheck(o, &TensorBaseType); }

// The Array held by tensor `o` (borrowed), or nullptr when `_a` is unset or not an Array.
inline const Array* array_of(PyObject* o) {
  PyObject* a = reinterpret_cast<TensorBaseObject*>(o)->a;
  if (!a || Py_TYPE(a) != g_array_type) return nullptr;
  return &py::handle(a).cast<const Array&>();
}

// 1: `o.requires_grad` is truthy, 0: not, -1: error set.
inline int requires_grad(PyObject* o) {
  PyObject* v = PyObject_GetAttr(o, g_str_requires_grad);
  if (!v) return -1;
  int r = PyObject_IsTrue(v);
  Py_DECREF(v);
  return r;
}

// Grad mode (torch.is_grad_enabled), per thread, on in every new thread. Python reads and sets it as
// `_C.grad_state.enabled` (autograd/grad_mode.py: `_state`), C reads it here.
thread_local bool t_grad_enabled = true;

PyObject* gs_get_enabled(PyObject*, void*) { return PyBool_FromLong(t_grad_enabled); }
int gs_set_enabled(PyObject*, PyObject* v, void*) {
  if (!v) {
    PyErr_SetString(PyExc_AttributeError, "grad mode cannot be deleted");
    return -1;
  }
  int on = PyObject_IsTrue(v);
  if (on < 0) return -1;
  t_grad_enabled = on;
  return 0;
}
PyGetSetDef gs_getset[] = {{"enabled", gs_get_enabled, gs_set_enabled, "grad mode of the calling thread", nullptr},
                           {nullptr, nullptr, nullptr, nullptr, nullptr}};
PyTypeObject GradStateType = {PyVarObject_HEAD_INIT(nullptr, 0)};

// 1: an op on (x, y) would be recorded by autograd, 0: not, -1: error set.
int records(PyObject* x, PyObject* y) {
  if (!t_grad_enabled) return 0;
  int r = requires_grad(x);
  if (r != 0) return r;
  return requires_grad(y);
}

// A new Tensor holding `arr` (a new reference, stolen).
PyObject* wrap_owned(PyObject* arr) {
  PyObject* t = g_tensor_type->tp_alloc(g_tensor_type, 0);
  if (!t) {
    Py_DECREF(arr);
    return nullptr;
  }
  reinterpret_cast<TensorBaseObject*>(t)->a = arr;
  return t;
}

PyObject* tb_matmul(PyObject* x, PyObject* y) {
  // a non-tensor operand: TypeError "unsupported operand type(s) for @" from Python (or the other operand's
  // __matmul__/__rmatmul__, e.g. NumPy's), as torch does
  if (!g_matmul || !is_tensor(x) || !is_tensor(y)) Py_RETURN_NOTIMPLEMENTED;
  const Array* a = array_of(x);
  const Array* b = array_of(y);
  if (a && b && a->storage && b->storage && a->device().type == DeviceType::CPU &&
      b->device().type == DeviceType::CPU) {
    const int rec = records(x, y);
    if (rec < 0) return nullptr;
    if (rec == 0) {
      // The kernel as MatMul.forward calls it. Any C++ error (shapes, dtypes) falls through to the Python
      // path, which raises it with pybind11's exception mapping.
      try {
        const int64_t work = a->numel() * (b->ndim() >= 2 ? b->shape.back() : 1);
        Array r;
        if (work >= (int64_t(1) << 20)) {  // long enough to let other Python threads run meanwhile
          py::gil_scoped_release nogil;
          r = cpu::matmul(*a, *b);
        } else {
          r = cpu::matmul(*a, *b);
        }
        return wrap_owned(py::cast(std::move(r)).release().ptr());
      } catch (const py::error_already_set&) {
        return nullptr;
      } catch (const std::exception&) {
      }
    }
  }
  return PyObject_CallFunctionObjArgs(g_matmul, x, y, nullptr);
}

PyNumberMethods tb_as_number = {};

PyMemberDef tb_members[] = {
    {"_a", T_OBJECT_EX, offsetof(TensorBaseObject, a), 0, "the tocha._C.Array holding the data"},
    {nullptr, 0, 0, 0, nullptr}};

PyObject* py_wrap(PyObject*, PyObject* arr) {
  if (!g_tensor_type) {
    PyErr_SetString(PyExc_RuntimeError, "_C._wrap called before _C._tensor_class");
    return nullptr;
  }
  if (Py_TYPE(arr) != g_array_type) {
    PyErr_Format(PyExc_TypeError, "_wrap expected a tocha._C.Array, got %.200s", Py_TYPE(arr)->tp_name);
    return nullptr;
  }
  Py_INCREF(arr);
  return wrap_owned(arr);
}

PyObject* py_tensor_class(PyObject*, PyObject* cls) {
  if (!PyType_Check(cls) || !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(cls), &TensorBaseType)) {
    PyErr_SetString(PyExc_TypeError, "_tensor_class: expected a subclass of _C._TensorBase");
    return nullptr;
  }
  Py_INCREF(cls);
  Py_XSETREF(g_tensor_type, reinterpret_cast<PyTypeObject*>(cls));
  Py_RETURN_NONE;
}

PyObject* py_matmul_setup(PyObject*, PyObject* mm) {
  if (!PyCallable_Check(mm)) {
    PyErr_SetString(PyExc_TypeError, "_tensor_matmul_setup: the Python path must be callable");
    return nullptr;
  }
  Py_INCREF(mm);
  Py_XSETREF(g_matmul, mm);
  Py_RETURN_NONE;
}

PyMethodDef module_methods[] = {
    {"_wrap", py_wrap, METH_O, "_wrap(array) -> Tensor holding array (autograd state at the class defaults)"},
    {"_tensor_class", py_tensor_class, METH_O, "_tensor_class(Tensor): register the class _wrap creates"},
    {"_tensor_matmul_setup", py_matmul_setup, METH_O, "_tensor_matmul_setup(matmul): the Python path of `@`"},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void bind_tensor_base(py::module_& m) {
  tb_as_number.nb_matrix_multiply = tb_matmul;
  TensorBaseType.tp_name = "tocha._C._TensorBase";
  TensorBaseType.tp_basicsize = sizeof(TensorBaseObject);
  TensorBaseType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC;
  TensorBaseType.tp_doc = "C base of tocha.Tensor: the `_a` array slot and the `@` fast path";
  TensorBaseType.tp_traverse = tb_traverse;
  TensorBaseType.tp_clear = tb_clear;
  TensorBaseType.tp_dealloc = tb_dealloc;
  TensorBaseType.tp_members = tb_members;
  TensorBaseType.tp_as_number = &tb_as_number;
  TensorBaseType.tp_new = PyType_GenericNew;
  if (PyType_Ready(&TensorBaseType) < 0) throw py::error_already_set();
  GradStateType.tp_name = "tocha._C._GradState";
  GradStateType.tp_basicsize = sizeof(PyObject);
  GradStateType.tp_flags = Py_TPFLAGS_DEFAULT;
  GradStateType.tp_doc = "per-thread grad mode: `.enabled`";
  GradStateType.tp_getset = gs_getset;
  if (PyType_Ready(&GradStateType) < 0) throw py::error_already_set();
  m.add_object("grad_state", py::reinterpret_steal<py::object>(PyType_GenericAlloc(&GradStateType, 0)));
  g_str_requires_grad = PyUnicode_InternFromString("requires_grad");
  g_array_type = reinterpret_cast<PyTypeObject*>(py::type::of<Array>().ptr());
  Py_INCREF(&TensorBaseType);
  m.add_object("_TensorBase", reinterpret_cast<PyObject*>(&TensorBaseType));
  for (PyMethodDef* d = module_methods; d->ml_name; ++d)
    m.add_object(d->ml_name, py::reinterpret_steal<py::object>(PyCFunction_NewEx(d, nullptr, m.ptr())));
}
