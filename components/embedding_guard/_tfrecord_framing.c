/* Finds the records in decompressed TFRecord data without the GIL.
 *
 * The same walk as reader._find_records_in_python, which stays as the fallback
 * for an install without a C compiler and as the reference the tests compare
 * this with. In Python the walk held the GIL for about a quarter of a run's CPU
 * time, and the second core waited for it.
 *
 * A TFRecord is: uint64 length (little-endian), uint32 masked crc32c of the
 * length, `length` bytes of data, uint32 masked crc32c of the data.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define HEADER_BYTES 12
#define FOOTER_BYTES 4
#define LENGTH_BYTES 8
#define MAX_RECORD_LIMIT ((uint64_t)1 << 62)

static uint64_t read_length(const unsigned char *at) {
    /* Byte by byte, so that the format's byte order holds on any machine. */
    uint64_t length = 0;
    for (int i = LENGTH_BYTES - 1; i >= 0; i--) length = (length << 8) | at[i];
    return length;
}

PyDoc_STRVAR(find_records_doc,
"find_records(data, record_limit) -> (headers, end, need, claim)\n\n"
"Walks the whole records at the start of data (record_limit at most 2**62). headers: bytes of native int64,\n"
"where each whole record's header starts; end: the bytes those records take;\n"
"need: the bytes the next record needs before it can be framed (12 while its\n"
"header is incomplete); claim: None, or the length that the header at `end`\n"
"claims when it does not fit in data and exceeds record_limit.");

static PyObject *find_records(PyObject *self, PyObject *args) {
    Py_buffer view;
    unsigned long long record_limit;
    if (!PyArg_ParseTuple(args, "y*K:find_records", &view, &record_limit)) return NULL;
    /* So that the bytes a record needs (its length plus 16) cannot overflow. */
    if (record_limit > MAX_RECORD_LIMIT) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError, "record_limit must be at most 2**62, got %llu",
                            record_limit);
    }
    const unsigned char *data = view.buf;
    const int64_t size = view.len;
    /* Every record takes at least its header and footer. */
    PyObject *headers = PyBytes_FromStringAndSize(
        NULL, (size / (HEADER_BYTES + FOOTER_BYTES) + 1) * (Py_ssize_t)sizeof(int64_t));
    if (headers == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int64_t *starts = (int64_t *)PyBytes_AS_STRING(headers);
    /* A record at pos fits when pos + length + 16 <= size. */
    const int64_t last_end = size - HEADER_BYTES - FOOTER_BYTES;
    int64_t pos = 0, count = 0;
    uint64_t need = HEADER_BYTES, claim = 0;
    int claimed = 0;
    Py_BEGIN_ALLOW_THREADS
    while (pos + LENGTH_BYTES <= size) {
        const uint64_t length = read_length(data + pos);
        if (last_end < pos || length > (uint64_t)(last_end - pos)) {
            /* Only a record that is not all here yet can claim more than the file holds. */
            if (length > record_limit) {
                claim = length;
                claimed = 1;
            } else {
                need = length + HEADER_BYTES + FOOTER_BYTES;
            }
            break;
        }
        starts[count++] = pos;
        pos += (int64_t)length + HEADER_BYTES + FOOTER_BYTES;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (_PyBytes_Resize(&headers, count * (Py_ssize_t)sizeof(int64_t)) < 0) return NULL;
    if (claimed) return Py_BuildValue("NLKK", headers, (long long)pos, (unsigned long long)need,
                                      (unsigned long long)claim);
    return Py_BuildValue("NLKO", headers, (long long)pos, (unsigned long long)need, Py_None);
}

static PyMethodDef methods[] = {
    {"find_records", find_records, METH_VARARGS, find_records_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tfrecord_framing",
    "Finds the records in decompressed TFRecord data without the GIL.", -1, methods,
};

PyMODINIT_FUNC PyInit__tfrecord_framing(void) { return PyModule_Create(&module); }
