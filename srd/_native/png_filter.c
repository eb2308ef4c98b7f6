/* PNG row filtering for srd's PNG writer (srd/png_writer.py): `srd._pngfilter.filter_rows`.
 *
 * Each row gets the filter type (None, Sub, Up, Average, Paeth) whose output has the least sum of
 * magnitudes, a filtered byte v costing min(v, 256 - v) (libpng's heuristic; ties go to the lower type,
 * as numpy's argmin in png_writer.filter_rows, which this must match byte for byte). The numpy version
 * makes ~20 passes over memory per row block; this makes two per row (costs, then the chosen filter) and
 * runs with the GIL released, so the daemon's worker can filter one output while the next image is
 * upscaled. Loops are written for the compiler's vectoriser, with an AVX2 clone picked at load.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SRD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SRD_CLONES
#endif

static inline uint8_t magnitude(uint8_t v) {
    uint8_t n = (uint8_t)(0u - v);
    return v < n ? v : n;
}

static inline uint8_t paeth(uint8_t a, uint8_t b, uint8_t c) {
    int16_t pa = (int16_t)(b - c), pb = (int16_t)(a - c), pc = (int16_t)(a + b - 2 * c);
    pa = pa < 0 ? (int16_t)-pa : pa;
    pb = pb < 0 ? (int16_t)-pb : pb;
    pc = pc < 0 ? (int16_t)-pc : pc;
    uint8_t bc = pb <= pc ? b : c;
    return (pa <= pb && pa <= pc) ? a : bc;
}

/* Filter type of the row x (n bytes) over the row above b, least cost first. */
SRD_CLONES static int choose(const uint8_t *x, const uint8_t *b, Py_ssize_t n, Py_ssize_t bpp) {
    uint32_t cost[5] = {0, 0, 0, 0, 0};
    Py_ssize_t head = bpp < n ? bpp : n;
    for (Py_ssize_t i = 0; i < head; i++) { /* no left neighbour: a = c = 0 */
        cost[0] += magnitude(x[i]);
        cost[1] += magnitude(x[i]);
        cost[2] += magnitude((uint8_t)(x[i] - b[i]));
        cost[3] += magnitude((uint8_t)(x[i] - (b[i] >> 1)));
        cost[4] += magnitude((uint8_t)(x[i] - b[i])); /* Paeth of (0, b, 0) is b */
    }
    uint32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0;
    for (Py_ssize_t i = head; i < n; i++) {
        uint8_t v = x[i], a = x[i - bpp], up = b[i], c = b[i - bpp];
        uint8_t avg = (uint8_t)((a & up) + ((a ^ up) >> 1));
        c0 += magnitude(v);
        c1 += magnitude((uint8_t)(v - a));
        c2 += magnitude((uint8_t)(v - up));
        c3 += magnitude((uint8_t)(v - avg));
        c4 += magnitude((uint8_t)(v - paeth(a, up, c)));
    }
    cost[0] += c0, cost[1] += c1, cost[2] += c2, cost[3] += c3, cost[4] += c4;
    int best = 0;
    for (int k = 1; k < 5; k++)
        if (cost[k] < cost[best]) best = k;
    return best;
}

/* Write row x filtered with `type` over the row above b into out (n bytes). */
SRD_CLONES static void apply(int type, const uint8_t *x, const uint8_t *b, Py_ssize_t n, Py_ssize_t bpp,
                             uint8_t *out) {
    Py_ssize_t head = bpp < n ? bpp : n;
    switch (type) {
    case 0:
        memcpy(out, x, (size_t)n);
        break;
    case 1:
        memcpy(out, x, (size_t)head);
        for (Py_ssize_t i = head; i < n; i++) out[i] = (uint8_t)(x[i] - x[i - bpp]);
        break;
    case 2:
        for (Py_ssize_t i = 0; i < n; i++) out[i] = (uint8_t)(x[i] - b[i]);
        break;
    case 3:
        for (Py_ssize_t i = 0; i < head; i++) out[i] = (uint8_t)(x[i] - (b[i] >> 1));
        for (Py_ssize_t i = head; i < n; i++) {
            uint8_t a = x[i - bpp], up = b[i];
            out[i] = (uint8_t)(x[i] - ((a & up) + ((a ^ up) >> 1)));
        }
        break;
    default:
        for (Py_ssize_t i = 0; i < head; i++) out[i] = (uint8_t)(x[i] - b[i]);
        for (Py_ssize_t i = head; i < n; i++) out[i] = (uint8_t)(x[i] - paeth(x[i - bpp], b[i], b[i - bpp]));
        break;
    }
}

static PyObject *filter_rows(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer rows, prev;
    Py_ssize_t bpp;
    if (!PyArg_ParseTuple(args, "y*y*n:filter_rows", &rows, &prev, &bpp)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = prev.len;
    if (n <= 0 || bpp <= 0 || bpp > 8 || rows.len % n != 0) {
        PyErr_Format(PyExc_ValueError,
                     "rows (%zd bytes) must be whole rows of len(prev) = %zd bytes, bpp 1..8 (got %zd)",
                     rows.len, n, bpp);
        goto done;
    }
    Py_ssize_t count = rows.len / n;
    result = PyBytes_FromStringAndSize(NULL, count * (n + 1));
    if (result == NULL) goto done;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    const uint8_t *above = (const uint8_t *)prev.buf;
    const uint8_t *x = (const uint8_t *)rows.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < count; r++, above = x, x += n, out += n + 1) {
        int type = choose(x, above, n, bpp);
        out[0] = (uint8_t)type;
        apply(type, x, above, n, bpp, out + 1);
    }
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&rows);
    PyBuffer_Release(&prev);
    return result;
}

static PyMethodDef methods[] = {
    {"filter_rows", filter_rows, METH_VARARGS,
     "filter_rows(rows, prev, bpp) -> bytes: PNG-filter whole rows (each len(prev) bytes) below `prev`, "
     "each with its least-cost filter type, as filter-type byte + filtered bytes per row."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pngfilter", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pngfilter(void) { return PyModule_Create(&module); }
