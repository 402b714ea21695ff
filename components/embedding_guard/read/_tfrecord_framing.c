/* Finds the records in decompressed TFRecord data, and parses the checked int64
 * features of the tf.Examples in them, without the GIL.
 *
 * Framing:
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
#include <string.h>

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


/* ---- Parsing the checked int64 features of tf.Examples ----
 *
 * The reference is TensorFlow's ParseExampleV2 (tf.io.parse_example with a
 * RaggedFeature of int64), which reader.parse_batch runs. This walk takes only
 * the records whose every part it reads exactly as TensorFlow does, and hands
 * any other batch back (`problem`), which the reader then parses with
 * TensorFlow: so wherever this walk gives values, they are TensorFlow's. What
 * TensorFlow does, checked on 2.16 by tests/unit/test_example_parsing.py:
 *   - an Example is any number of field-1 Features messages, with other fields
 *     skipped; a Features is only map entries (field 1), each one key (field 1)
 *     and one Feature (field 2), in either order;
 *   - a feature named twice takes its last entry, even an empty one, and even
 *     across Features messages; of an earlier entry only the kind is read,
 *     and an unknown kind fails the parse;
 *   - an empty Feature is a missing feature; a Feature's kind is its first tag;
 *   - an Int64List is packed (one field 1, length-delimited) or unpacked
 *     (field-1 varints); values are varints read as two's complement.
 * Handed back, whether TensorFlow takes them or not (it refuses some, and reads
 * others otherwise than the protobuf format says): a Feature with bytes after
 * its list, an Int64List mixing packed and unpacked values or holding other
 * fields, a map entry without exactly one key and one value, a varint longer
 * than 64 bits, a tag spelt in more bytes than it needs. */

#define TAG_FIELD1_DELIMITED 0x0A
#define TAG_FIELD2_DELIMITED 0x12
#define TAG_FIELD3_DELIMITED 0x1A
#define TAG_FIELD1_VARINT 0x08

/* Reasons a batch is handed back. */
#define PROBLEM_NONE 0
#define PROBLEM_NOT_INT64 1 /* a checked feature holds a bytes_list or float_list */
#define PROBLEM_UNREAD 2    /* a record this walk does not read as TensorFlow does */

/* The varint at *at, below end; 0 when it is cut, longer than 10 bytes, or
 * carries bits past the 64th (TensorFlow drops them; such data is handed back). */
static int read_varint(const unsigned char **at, const unsigned char *end, uint64_t *value) {
    const unsigned char *p = *at;
    uint64_t result = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) return 0;
        const unsigned char byte = *p++;
        if (i == 9 && byte > 1) return 0;
        result |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (byte < 0x80) {
            *at = p;
            *value = result;
            return 1;
        }
    }
    return 0;
}

/* A length-delimited field's length, which must fit before end. */
static int read_field_length(const unsigned char **at, const unsigned char *end, uint64_t *length) {
    if (!read_varint(at, end, length)) return 0;
    return *length <= (uint64_t)(end - *at);
}

typedef struct {
    int64_t *values;
    int64_t count, capacity;
    int64_t *row_lengths;
    const unsigned char *last; /* the last Feature of this record, if stamp says so */
    int64_t last_length;
    int64_t stamp; /* record number + 1 when `last` belongs to the current record */
    const char *name;
    Py_ssize_t name_length;
} Column;

typedef struct {
    int32_t *slots; /* column index + 1, or 0 for an empty slot */
    uint64_t mask;
} NameTable;

static uint64_t hash_name(const unsigned char *name, uint64_t length) {
    uint64_t hash = 14695981039346656037ULL; /* FNV-1a */
    for (uint64_t i = 0; i < length; i++) hash = (hash ^ name[i]) * 1099511628211ULL;
    return hash;
}

static int find_column(const NameTable *table, const Column *columns, const unsigned char *key,
                       uint64_t length) {
    for (uint64_t slot = hash_name(key, length) & table->mask;; slot = (slot + 1) & table->mask) {
        const int32_t entry = table->slots[slot];
        if (entry == 0) return -1;
        const Column *column = &columns[entry - 1];
        if ((uint64_t)column->name_length == length && memcmp(column->name, key, length) == 0)
            return entry - 1;
    }
}

static int push_value(Column *column, int64_t value) {
    if (column->count == column->capacity) {
        const int64_t capacity = column->capacity ? 2 * column->capacity : 1024;
        int64_t *grown = PyMem_RawRealloc(column->values, capacity * sizeof(int64_t));
        if (grown == NULL) return 0;
        column->values = grown;
        column->capacity = capacity;
    }
    column->values[column->count++] = value;
    return 1;
}

/* Reads one record's map entries into the columns' `last`; PROBLEM_UNREAD if it cannot. */
static int walk_example(const unsigned char *p, const unsigned char *end, Column *columns,
                        const NameTable *table, int64_t stamp) {
    uint64_t length, ignored;
    while (p < end) {
        if (*p != TAG_FIELD1_DELIMITED) {
            /* Another field of the Example: skipped, as TensorFlow skips it. */
            uint64_t tag;
            const unsigned char *tag_start = p;
            if (!read_varint(&p, end, &tag)) return PROBLEM_UNREAD;
            if (p - tag_start > 1 && tag < 0x80) return PROBLEM_UNREAD; /* spelt long */
            if ((tag >> 3) == 0) return PROBLEM_UNREAD;
            switch (tag & 7) {
                case 0:
                    if (!read_varint(&p, end, &ignored)) return PROBLEM_UNREAD;
                    break;
                case 1:
                    if (end - p < 8) return PROBLEM_UNREAD;
                    p += 8;
                    break;
                case 2:
                    if (!read_field_length(&p, end, &length)) return PROBLEM_UNREAD;
                    p += length;
                    break;
                case 5:
                    if (end - p < 4) return PROBLEM_UNREAD;
                    p += 4;
                    break;
                default:
                    return PROBLEM_UNREAD;
            }
            continue;
        }
        p++;
        if (!read_field_length(&p, end, &length)) return PROBLEM_UNREAD;
        const unsigned char *features_end = p + length;
        while (p < features_end) {
            if (*p++ != TAG_FIELD1_DELIMITED) return PROBLEM_UNREAD;
            if (!read_field_length(&p, features_end, &length)) return PROBLEM_UNREAD;
            const unsigned char *entry_end = p + length;
            const unsigned char *key = NULL, *feature = NULL;
            uint64_t key_length = 0, feature_length = 0;
            int keys = 0, features = 0;
            while (p < entry_end) {
                const unsigned char tag = *p++;
                if (!read_field_length(&p, entry_end, &length)) return PROBLEM_UNREAD;
                if (tag == TAG_FIELD1_DELIMITED) {
                    key = p;
                    key_length = length;
                    keys++;
                } else if (tag == TAG_FIELD2_DELIMITED) {
                    feature = p;
                    feature_length = length;
                    features++;
                } else {
                    return PROBLEM_UNREAD;
                }
                p += length;
            }
            if (keys != 1 || features != 1) return PROBLEM_UNREAD;
            const int index = find_column(table, columns, key, key_length);
            if (index >= 0) {
                /* TensorFlow reads the kind of every Feature under a checked name, the
                 * ones a later entry replaces too, and fails on an unknown one. */
                if (feature_length > 0 && feature[0] != TAG_FIELD1_DELIMITED &&
                    feature[0] != TAG_FIELD2_DELIMITED && feature[0] != TAG_FIELD3_DELIMITED)
                    return PROBLEM_UNREAD;
                columns[index].last = feature;
                columns[index].last_length = (int64_t)feature_length;
                columns[index].stamp = stamp;
            }
        }
    }
    return PROBLEM_NONE;
}

/* Appends the values of one checked Feature; returns a PROBLEM_ or -1 when out of memory. */
static int read_feature(Column *column, int64_t *values_read) {
    const unsigned char *p = column->last, *end = p + column->last_length;
    uint64_t length, value;
    *values_read = 0;
    if (p == end) return PROBLEM_NONE; /* an empty Feature: no values, as if missing */
    const unsigned char kind = *p++;
    if (kind == TAG_FIELD1_DELIMITED || kind == TAG_FIELD2_DELIMITED) return PROBLEM_NOT_INT64;
    if (kind != TAG_FIELD3_DELIMITED) return PROBLEM_UNREAD;
    if (!read_field_length(&p, end, &length) || p + length != end) return PROBLEM_UNREAD;
    if (p == end) return PROBLEM_NONE;
    const int64_t before = column->count;
    if (*p == TAG_FIELD1_DELIMITED) {
        p++;
        if (!read_field_length(&p, end, &length) || p + length != end) return PROBLEM_UNREAD;
        while (p < end) {
            if (!read_varint(&p, end, &value)) return PROBLEM_UNREAD;
            if (!push_value(column, (int64_t)value)) return -1;
        }
    } else {
        while (p < end) {
            if (*p++ != TAG_FIELD1_VARINT) return PROBLEM_UNREAD;
            if (!read_varint(&p, end, &value)) return PROBLEM_UNREAD;
            if (!push_value(column, (int64_t)value)) return -1;
        }
    }
    *values_read = column->count - before;
    return PROBLEM_NONE;
}

PyDoc_STRVAR(parse_int64_features_doc,
"parse_int64_features(buffer, starts, lengths, names) -> (columns, problem)\n\n"
"Reads the int64 features `names` (a tuple of bytes) of the serialized\n"
"tf.Examples at buffer[starts[i] : starts[i] + lengths[i]] (starts and lengths:\n"
"native int64) as TensorFlow's ParseExampleV2 does, without the GIL.\n"
"columns: one (values, row_lengths) per name, each a bytearray of native int64: every\n"
"value of the feature, records in order, and how many each record holds (0 when\n"
"the feature is missing, empty or has an empty list); None when there is a problem.\n"
"problem: None, or (reason, record, feature), the first record that stops the\n"
"walk: reason 1, the feature at that index holds bytes or floats; reason 2, the\n"
"record is not read here as TensorFlow reads it (feature -1). Either way the\n"
"caller parses the batch with TensorFlow.");

static PyObject *parse_int64_features(PyObject *self, PyObject *args) {
    Py_buffer buffer, starts_view, lengths_view;
    PyObject *names;
    if (!PyArg_ParseTuple(args, "y*y*y*O!:parse_int64_features", &buffer, &starts_view,
                          &lengths_view, &PyTuple_Type, &names))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t num_columns = PyTuple_GET_SIZE(names);
    const int64_t num_records = starts_view.len / (Py_ssize_t)sizeof(int64_t);
    Column *columns = NULL;
    NameTable table = {NULL, 0};
    if (starts_view.len % sizeof(int64_t) || lengths_view.len != starts_view.len) {
        PyErr_SetString(PyExc_ValueError,
                        "starts and lengths must be native int64 arrays of one length");
        goto done;
    }
    const int64_t *starts = starts_view.buf, *lengths = lengths_view.buf;
    for (int64_t r = 0; r < num_records; r++) {
        if (starts[r] < 0 || lengths[r] < 0 || starts[r] > buffer.len - lengths[r]) {
            PyErr_Format(PyExc_ValueError, "record %lld lies outside the buffer", (long long)r);
            goto done;
        }
    }
    columns = PyMem_Calloc(num_columns ? num_columns : 1, sizeof(Column));
    uint64_t slots = 16;
    while (slots < 2 * (uint64_t)num_columns) slots *= 2;
    table.slots = PyMem_Calloc(slots, sizeof(int32_t));
    table.mask = slots - 1;
    if (columns == NULL || table.slots == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t c = 0; c < num_columns; c++) {
        PyObject *name = PyTuple_GET_ITEM(names, c);
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "names must be a tuple of bytes");
            goto done;
        }
        columns[c].name = PyBytes_AS_STRING(name);
        columns[c].name_length = PyBytes_GET_SIZE(name);
        const unsigned char *key = (const unsigned char *)columns[c].name;
        uint64_t slot = hash_name(key, columns[c].name_length) & table.mask;
        while (table.slots[slot] != 0) {
            const Column *other = &columns[table.slots[slot] - 1];
            if (other->name_length == columns[c].name_length &&
                memcmp(other->name, columns[c].name, other->name_length) == 0) {
                PyErr_Format(PyExc_ValueError, "names holds %R twice", name);
                goto done;
            }
            slot = (slot + 1) & table.mask;
        }
        table.slots[slot] = (int32_t)(c + 1);
        columns[c].row_lengths = PyMem_RawMalloc((num_records ? num_records : 1) * sizeof(int64_t));
        if (columns[c].row_lengths == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    int problem = PROBLEM_NONE;
    int64_t problem_record = -1, problem_column = -1;
    const unsigned char *data = buffer.buf;
    /* `names` holds the bytes that columns point into, and the caller holds `names`. */
    Py_BEGIN_ALLOW_THREADS
    for (int64_t r = 0; r < num_records && problem == PROBLEM_NONE; r++) {
        const unsigned char *record = data + starts[r];
        problem = walk_example(record, record + lengths[r], columns, &table, r + 1);
        if (problem != PROBLEM_NONE) {
            problem_record = r;
            break;
        }
        for (Py_ssize_t c = 0; c < num_columns; c++) {
            int64_t read = 0;
            if (columns[c].stamp == r + 1) {
                problem = read_feature(&columns[c], &read);
                if (problem != PROBLEM_NONE) {
                    problem_record = r;
                    problem_column = problem == PROBLEM_NOT_INT64 ? c : -1;
                    break;
                }
            }
            columns[c].row_lengths[r] = read;
        }
    }
    Py_END_ALLOW_THREADS
    if (problem == -1) {
        PyErr_NoMemory();
        goto done;
    }
    if (problem != PROBLEM_NONE) {
        result = Py_BuildValue("O(iLL)", Py_None, problem, (long long)problem_record,
                               (long long)problem_column);
        goto done;
    }
    PyObject *list = PyList_New(num_columns);
    if (list == NULL) goto done;
    for (Py_ssize_t c = 0; c < num_columns; c++) {
        /* bytearrays, so that numpy's views of them are writable, as TensorFlow's arrays are. */
        PyObject *values = PyByteArray_FromStringAndSize(
            (const char *)columns[c].values, (Py_ssize_t)(columns[c].count * sizeof(int64_t)));
        PyObject *row_lengths = PyByteArray_FromStringAndSize(
            (const char *)columns[c].row_lengths, (Py_ssize_t)(num_records * sizeof(int64_t)));
        PyObject *pair = values && row_lengths ? PyTuple_Pack(2, values, row_lengths) : NULL;
        Py_XDECREF(values);
        Py_XDECREF(row_lengths);
        if (pair == NULL) {
            Py_DECREF(list);
            goto done;
        }
        PyList_SET_ITEM(list, c, pair);
    }
    result = Py_BuildValue("NO", list, Py_None);
done:
    if (columns != NULL) {
        for (Py_ssize_t c = 0; c < num_columns; c++) {
            PyMem_RawFree(columns[c].values);
            PyMem_RawFree(columns[c].row_lengths);
        }
    }
    PyMem_Free(columns);
    PyMem_Free(table.slots);
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&starts_view);
    PyBuffer_Release(&lengths_view);
    return result;
}

static PyMethodDef methods[] = {
    {"find_records", find_records, METH_VARARGS, find_records_doc},
    {"parse_int64_features", parse_int64_features, METH_VARARGS, parse_int64_features_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tfrecord_framing",
    "Frames TFRecords and parses tf.Example int64 features without the GIL.", -1, methods,
};

PyMODINIT_FUNC PyInit__tfrecord_framing(void) { return PyModule_Create(&module); }
