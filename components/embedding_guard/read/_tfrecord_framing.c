/* Finds the records in decompressed TFRecord data without the GIL.
 *
 * The same walk as framing._find_records_in_python, which stays as the fallback
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
"Walks the whole records at the start of data (record_limit at most 2**62).\n"
"headers: bytes of native int64, where each whole record's header starts;\n"
"end: the bytes those records take;\n"
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
    /* Grown as records are found: sized for the worst case (every record empty),
     * a window that holds one 2 GiB record would set aside 1 GiB. */
    int64_t capacity = 4096, count = 0;
    int64_t *starts = PyMem_RawMalloc(capacity * sizeof(int64_t));
    if (starts == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    /* A record at pos fits when pos + length + 16 <= size. */
    const int64_t last_end = size - HEADER_BYTES - FOOTER_BYTES;
    int64_t pos = 0;
    uint64_t need = HEADER_BYTES, claim = 0;
    int claimed = 0, out_of_memory = 0;
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
        if (count == capacity) {
            int64_t *grown = PyMem_RawRealloc(starts, 2 * capacity * sizeof(int64_t));
            if (grown == NULL) {
                out_of_memory = 1;
                break;
            }
            starts = grown;
            capacity *= 2;
        }
        starts[count++] = pos;
        pos += (int64_t)length + HEADER_BYTES + FOOTER_BYTES;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyObject *headers =
        out_of_memory ? PyErr_NoMemory()
                      : PyBytes_FromStringAndSize((const char *)starts, count * sizeof(int64_t));
    PyMem_RawFree(starts);
    if (headers == NULL) return NULL;
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
