/* Compiled inner loops of the near-duplicate step; see kernels.py for what each computes.
 *
 * Arrays come in through the buffer protocol (numpy arrays, C-contiguous, of the dtypes named
 * below); word hashes and row numbers as Python lists of ints. Nothing here allocates but the
 * returned list of band keys. Arithmetic is datasketch's affine32 MinHash scheme: uint32
 * values, products and sums modulo 2^32, MurmurHash3's fmix32 as the pre-mix.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* The permutation loop is vectorised for the CPU at hand: an AVX2 clone where the processor has
 * it (picked once at load by glibc's ifunc), the baseline build elsewhere. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

static inline uint32_t fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

static int check(Py_buffer *buf, Py_ssize_t itemsize, const char *name) {
    if (buf->len % itemsize != 0) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes is not a whole number of %zd-byte items",
                     name, buf->len, itemsize);
        return 0;
    }
    return 1;
}

/* out[j] = min(out[j], a[j] * h + b[j]) for every permutation j, modulo 2^32. */
VECTOR_CLONES
static void permute_min(const uint32_t *restrict a, const uint32_t *restrict b, uint32_t h,
                        uint32_t *restrict out, Py_ssize_t perms) {
    for (Py_ssize_t j = 0; j < perms; j++) {
        uint32_t x = a[j] * h + b[j];
        out[j] = x < out[j] ? x : out[j];
    }
}

/* sign(words: list[int], shingle_words, mult, salts: uint64[], a: uint32[], b: uint32[],
 *      out: uint32[] writable) -> None */
static PyObject *sign(PyObject *self, PyObject *args) {
    PyObject *words_list;
    int n;
    unsigned long long mult;
    Py_buffer salts = {0}, a = {0}, b = {0}, out = {0};
    PyObject *result = NULL;
    uint32_t stack[256], *words = stack, *gram = NULL;
    if (!PyArg_ParseTuple(args, "O!iKy*y*y*w*", &PyList_Type, &words_list, &n, &mult, &salts,
                          &a, &b, &out))
        return NULL;
    if (!check(&salts, 8, "salts") || !check(&a, 4, "a") || !check(&b, 4, "b")
        || !check(&out, 4, "out"))
        goto done;
    Py_ssize_t m = PyList_GET_SIZE(words_list), perms = a.len / 4;
    if (b.len != a.len || out.len != a.len) {
        PyErr_SetString(PyExc_ValueError, "a, b and out must have the same length");
        goto done;
    }
    if (n < 1 || n - 1 > salts.len / 8) {
        PyErr_SetString(PyExc_ValueError, "shingle_words needs shingle_words - 1 salts");
        goto done;
    }
    if (2 * m > 256) {
        words = PyMem_Malloc(2 * m * sizeof(uint32_t));
        if (!words) { PyErr_NoMemory(); goto done; }
    }
    gram = words + m;
    for (Py_ssize_t i = 0; i < m; i++) {
        unsigned long v = PyLong_AsUnsignedLong(PyList_GET_ITEM(words_list, i));
        if (v == (unsigned long)-1 && PyErr_Occurred()) goto done;
        words[i] = gram[i] = (uint32_t)v;
    }
    const uint32_t *pa = a.buf, *pb = b.buf;
    const uint64_t *ps = salts.buf;
    uint32_t *po = out.buf;
    for (Py_ssize_t j = 0; j < perms; j++) po[j] = 0xFFFFFFFFu;
    for (int k = 0; k < n; k++) {
        if (k > 0)  /* (k+1)-grams from k-grams and the next word */
            for (Py_ssize_t i = 0; i + k < m; i++)
                gram[i] = fmix32(gram[i] * (uint32_t)mult + words[i + k] + (uint32_t)ps[k - 1]);
        for (Py_ssize_t i = 0; i + k < m; i++) permute_min(pa, pb, fmix32(gram[i]), po, perms);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    if (words != stack) PyMem_Free(words);
    PyBuffer_Release(&salts);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    PyBuffer_Release(&out);
    return result;
}

/* Keys keep 30 bits of the 64-bit mix: a Python int below 2^30 takes 28 bytes, not 36, and
 * a day's index holds ~1.2 million of them; the extra chance collisions (~0.5% more
 * candidates) are rejected by the similarity count. */
#define KEY_BITS(x) ((x) >> 34)

/* band_keys(signature: uint32[], bands, rows, mix: uint64[], salt: uint64[]) -> list[int] */
static PyObject *band_keys(PyObject *self, PyObject *args) {
    Py_buffer sig = {0}, mix = {0}, salt = {0};
    int bands, rows;
    PyObject *keys = NULL;
    if (!PyArg_ParseTuple(args, "y*iiy*y*", &sig, &bands, &rows, &mix, &salt)) return NULL;
    if (!check(&sig, 4, "signature") || !check(&mix, 8, "mix") || !check(&salt, 8, "salt"))
        goto done;
    if (bands < 0 || rows < 0 || (Py_ssize_t)bands * rows > sig.len / 4
        || rows > mix.len / 8 || bands > salt.len / 8) {
        PyErr_SetString(PyExc_ValueError, "bands x rows exceed the signature, mix or salt");
        goto done;
    }
    const uint32_t *ps = sig.buf;
    const uint64_t *pm = mix.buf, *pt = salt.buf;
    keys = PyList_New(bands);
    if (!keys) goto done;
    for (int band = 0; band < bands; band++) {
        uint64_t acc = pt[band];
        for (int r = 0; r < rows; r++) acc += (uint64_t)ps[band * rows + r] * pm[r];
        PyObject *key = PyLong_FromUnsignedLongLong(KEY_BITS(acc));
        if (!key) { Py_CLEAR(keys); goto done; }
        PyList_SET_ITEM(keys, band, key);
    }
done:
    PyBuffer_Release(&sig);
    PyBuffer_Release(&mix);
    PyBuffer_Release(&salt);
    return keys;
}

/* best_row(matrix: uint32[rows x width], rows: list[int], signature: uint32[width], needed)
 *   -> position in rows of the first row with the most equal values, if >= needed, else -1 */
static PyObject *best_row(PyObject *self, PyObject *args) {
    Py_buffer matrix = {0}, sig = {0};
    PyObject *rows;
    double needed;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*O!y*d", &matrix, &PyList_Type, &rows, &sig, &needed))
        return NULL;
    if (!check(&matrix, 4, "matrix") || !check(&sig, 4, "signature")) goto done;
    Py_ssize_t width = sig.len / 4, height = width ? matrix.len / sig.len : 0;
    const uint32_t *pm = matrix.buf, *ps = sig.buf;
    Py_ssize_t best = -1, best_equal = -1;
    for (Py_ssize_t pos = 0; pos < PyList_GET_SIZE(rows); pos++) {
        Py_ssize_t row = PyLong_AsSsize_t(PyList_GET_ITEM(rows, pos));
        if (row == -1 && PyErr_Occurred()) goto done;
        if (row < 0 || row >= height) {
            PyErr_Format(PyExc_IndexError, "row %zd outside the matrix (%zd rows)", row, height);
            goto done;
        }
        const uint32_t *r = pm + row * width;
        Py_ssize_t equal = 0;
        for (Py_ssize_t j = 0; j < width; j++) equal += r[j] == ps[j];
        if (equal > best_equal) { best = pos; best_equal = equal; }
    }
    result = PyLong_FromSsize_t(best_equal >= needed ? best : -1);
done:
    PyBuffer_Release(&matrix);
    PyBuffer_Release(&sig);
    return result;
}

static PyMethodDef methods[] = {
    {"sign", sign, METH_VARARGS, "MinHash signature of keyed word hashes, into out."},
    {"band_keys", band_keys, METH_VARARGS, "LSH band keys of a signature."},
    {"best_row", best_row, METH_VARARGS, "Most similar candidate row, or -1."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Compiled near-duplicate kernels.", -1, methods,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
