/*
 * toolkit.logs._scan: the compiled inner loop of `iisfleet analyze` (optional; toolkit/logs/engine.py has
 * the same semantics in pure Python and uses them when this module is missing).
 *
 * scan_segment() reads the data lines of one #Fields segment once, line by line: it counts the lines,
 * checks every line's field count, counts requests, and classifies each 401 as handshake or terminal by
 * remembering the open 401s per client (c-ip, cs(User-Agent) when logged, cs-uri-stem) in a hash table
 * and settling them at that client's next success (status below 400). The caller has already checked
 * that the segment is one site and server, so those are not part of the key.
 *
 * Log files are untrusted input: every field is addressed by (offset, length) inside the caller's
 * buffer, never by NUL-terminated string functions, and no read goes past `end`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* The positions the caller passes, in the order of Layout.fast[:9]. */
enum { F_DATE, F_TIME, F_IP, F_STEM, F_STATUS, F_SUB, F_WIN32, F_UA, F_USER, F_COUNT };

typedef struct {
    Py_ssize_t off;
    Py_ssize_t len;
} Span;

typedef struct {
    Span f[F_COUNT];        /* the fields of the 401 line (len -1 = not logged) */
    long long line;         /* 1-based line number in its file */
    long long t;            /* seconds since the epoch; valid when has_t */
    int has_t;
    int state;              /* OPEN, HANDSHAKE or TERMINAL */
    Py_ssize_t next;        /* next open 401 of the same client, -1 at the end */
} Event;

enum { OPEN = 0, HANDSHAKE = 1, TERMINAL = 2 };

/* One client key (open addressing). `sample` is an event carrying the key's bytes, for comparisons. */
typedef struct {
    uint64_t hash;
    Py_ssize_t sample;      /* -1 = empty slot */
    Py_ssize_t head, tail;  /* open 401s of this client, in line order; head -1 = none open */
} Slot;

/* One (substatus, win32) pair of handshake counts. */
typedef struct {
    uint64_t hash;
    Span sub, win32;
    Py_ssize_t count;       /* 0 = empty slot */
} CodeSlot;

typedef struct {
    const char *buf;
    Event *events;
    Py_ssize_t n_events, cap_events;
    Slot *slots;
    Py_ssize_t n_slots, cap_slots;  /* cap is a power of two */
    CodeSlot *codes;
    Py_ssize_t n_codes, cap_codes;
    Py_ssize_t open_events;
    /* The last date seen and its epoch day in seconds (consecutive lines share the date). */
    char last_date[10];
    int have_last_date;
    long long last_day;
    int last_day_ok;
    PyObject *stamp;        /* Python fallback for dates and times not in the canonical form */
} State;

/* ---- hashing (8 bytes at a time; keys are short) ------------------------------------------------ */

/* Random per process (set when the module loads): log lines are untrusted, and a fixed hash would let a
 * crafted log pile every client into one chain of the tables below. */
static uint64_t hash_seed = 0x243F6A8885A308D3ULL;

static inline uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v;
    h *= 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

static uint64_t hash_bytes(uint64_t h, const char *p, Py_ssize_t n) {
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = mix(h, v);
        p += 8;
        n -= 8;
    }
    uint64_t tail = 0;
    if (n > 0)
        memcpy(&tail, p, (size_t)n);
    /* The length goes in too, so "a" + "bc" and "ab" + "c" differ. */
    return mix(mix(h, tail), (uint64_t)n);
}

static inline int same(const char *buf, Span a, Span b) {
    return a.len == b.len && (a.len <= 0 || memcmp(buf + a.off, buf + b.off, (size_t)a.len) == 0);
}

static uint64_t client_hash(const char *buf, const Span *f) {
    uint64_t h = hash_seed;
    h = hash_bytes(h, buf + f[F_IP].off, f[F_IP].len);
    h = hash_bytes(h, buf + f[F_STEM].off, f[F_STEM].len);
    if (f[F_UA].len >= 0)
        h = hash_bytes(h, buf + f[F_UA].off, f[F_UA].len);
    return h;
}

static int same_client(const char *buf, const Span *a, const Span *b) {
    return same(buf, a[F_IP], b[F_IP]) && same(buf, a[F_STEM], b[F_STEM]) && same(buf, a[F_UA], b[F_UA]);
}

/* ---- time ---------------------------------------------------------------------------------------- */

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }
static inline int two(const char *p) { return (p[0] - '0') * 10 + (p[1] - '0'); }

/* Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's well-known civil algorithm). */
static long long days_from_civil(long long y, int m, int d) {
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153LL * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int valid_date(int y, int m, int d) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m - 1] + (m == 2 && leap);
}

/* Seconds since the epoch for a logged date and time, as engine.Scanner._stamp computes them. The
 * canonical forms (digits where "YYYY-MM-DD" and "hh:mm:ss" have them) are computed here; anything else
 * goes to the Python function so the two engines agree on odd input. Returns 1 with *t set, 0 when the
 * time is unknown, -1 on a Python error. */
static int stamp(State *st, Span date, Span clock, long long *t) {
    const char *d = st->buf + date.off, *c = st->buf + clock.off;
    int canonical = date.len >= 10 && clock.len >= 8
        && is_digit(d[0]) && is_digit(d[1]) && is_digit(d[2]) && is_digit(d[3]) && is_digit(d[5]) && is_digit(d[6])
        && is_digit(d[8]) && is_digit(d[9])
        && is_digit(c[0]) && is_digit(c[1]) && is_digit(c[3]) && is_digit(c[4]) && is_digit(c[6]) && is_digit(c[7]);
    if (canonical) {
        if (!st->have_last_date || memcmp(st->last_date, d, 10) != 0) {
            int y = two(d) * 100 + two(d + 2), m = two(d + 5), day = two(d + 8);
            memcpy(st->last_date, d, 10);
            st->have_last_date = 1;
            st->last_day_ok = valid_date(y, m, day);
            st->last_day = st->last_day_ok ? days_from_civil(y, m, day) * 86400LL : 0;
        }
        int hours = two(c), minutes = two(c + 3), seconds = two(c + 6);
        if (!st->last_day_ok || hours > 23 || minutes > 59 || seconds > 59)
            return 0;  /* no time of day: unknown, as in engine._clock_seconds */
        *t = st->last_day + hours * 3600LL + minutes * 60LL + seconds;
        return 1;
    }
    PyObject *res = PyObject_CallFunction(st->stamp, "y#y#", d, date.len, c, clock.len);
    if (res == NULL)
        return -1;
    int known = 0;
    if (res != Py_None) {
        *t = PyLong_AsLongLong(res);
        known = !(*t == -1 && PyErr_Occurred());
    }
    Py_DECREF(res);
    return PyErr_Occurred() ? -1 : known;
}

/* ---- tables -------------------------------------------------------------------------------------- */

static int grow_slots(State *st) {
    Py_ssize_t cap = st->cap_slots ? st->cap_slots * 2 : 1024;
    Slot *slots = PyMem_Malloc((size_t)cap * sizeof(Slot));
    if (slots == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < cap; i++)
        slots[i].sample = -1;
    for (Py_ssize_t i = 0; i < st->cap_slots; i++) {
        Slot *old = &st->slots[i];
        if (old->sample < 0)
            continue;
        Py_ssize_t j = (Py_ssize_t)(old->hash & (uint64_t)(cap - 1));
        while (slots[j].sample >= 0)
            j = (j + 1) & (cap - 1);
        slots[j] = *old;
    }
    PyMem_Free(st->slots);
    st->slots = slots;
    st->cap_slots = cap;
    return 0;
}

/* The slot of a client key: found, or (when `create`) a new empty one; NULL when absent or on no memory. */
static Slot *find_slot(State *st, uint64_t hash, const Span *f, int create) {
    if (create && (st->n_slots + 1) * 2 > st->cap_slots && grow_slots(st) < 0)
        return NULL;
    if (st->cap_slots == 0)
        return NULL;
    Py_ssize_t j = (Py_ssize_t)(hash & (uint64_t)(st->cap_slots - 1));
    for (;;) {
        Slot *s = &st->slots[j];
        if (s->sample < 0) {
            if (!create)
                return NULL;
            s->hash = hash;
            s->head = s->tail = -1;
            st->n_slots++;
            return s;
        }
        if (s->hash == hash && same_client(st->buf, st->events[s->sample].f, f))
            return s;
        j = (j + 1) & (st->cap_slots - 1);
    }
}

static int count_handshake(State *st, const Event *ev) {
    if ((st->n_codes + 1) * 2 > st->cap_codes) {
        Py_ssize_t cap = st->cap_codes ? st->cap_codes * 2 : 64;
        CodeSlot *codes = PyMem_Calloc((size_t)cap, sizeof(CodeSlot));
        if (codes == NULL)
            return -1;
        for (Py_ssize_t i = 0; i < st->cap_codes; i++) {
            CodeSlot *old = &st->codes[i];
            if (old->count == 0)
                continue;
            Py_ssize_t j = (Py_ssize_t)(old->hash & (uint64_t)(cap - 1));
            while (codes[j].count)
                j = (j + 1) & (cap - 1);
            codes[j] = *old;
        }
        PyMem_Free(st->codes);
        st->codes = codes;
        st->cap_codes = cap;
    }
    Span sub = ev->f[F_SUB], win32 = ev->f[F_WIN32];
    uint64_t h = hash_bytes(hash_bytes(~hash_seed, st->buf + sub.off, sub.len),
                            st->buf + win32.off, win32.len);
    Py_ssize_t j = (Py_ssize_t)(h & (uint64_t)(st->cap_codes - 1));
    for (;;) {
        CodeSlot *c = &st->codes[j];
        if (c->count == 0) {
            c->hash = h;
            c->sub = sub;
            c->win32 = win32;
            c->count = 1;
            st->n_codes++;
            return 0;
        }
        if (c->hash == h && same(st->buf, c->sub, sub) && same(st->buf, c->win32, win32)) {
            c->count++;
            return 0;
        }
        j = (j + 1) & (st->cap_codes - 1);
    }
}

static int add_event(State *st, const Span *f, long long line) {
    if (st->n_events == st->cap_events) {
        Py_ssize_t cap = st->cap_events ? st->cap_events * 2 : 256;
        Event *events = PyMem_Realloc(st->events, (size_t)cap * sizeof(Event));
        if (events == NULL)
            return -1;
        st->events = events;
        st->cap_events = cap;
    }
    Py_ssize_t index = st->n_events;
    Event *ev = &st->events[index];
    memcpy(ev->f, f, sizeof(ev->f));
    ev->line = line;
    ev->state = OPEN;
    ev->next = -1;
    long long t = 0;
    int known = stamp(st, f[F_DATE], f[F_TIME], &t);
    if (known < 0)
        return -1;
    ev->has_t = known;
    ev->t = t;
    st->n_events++;  /* before find_slot: a new slot takes this event as its sample */
    Slot *slot = find_slot(st, client_hash(st->buf, f), f, 1);
    if (slot == NULL)
        return -1;
    if (slot->sample < 0)
        slot->sample = index;
    if (slot->head < 0)
        slot->head = index;
    else
        st->events[slot->tail].next = index;
    slot->tail = index;
    st->open_events++;
    return 0;
}

/* A success from a client with open 401s: each is a handshake when the success came within the window.
 * A success whose time cannot be read settles only the 401s whose time cannot be read either (the
 * others wait for a success with a time), as engine.Scanner._check decides. */
static int settle(State *st, Slot *slot, const Span *f, long long window, long long slack, int have_max_t,
                  long long max_t) {
    long long t_ok = 0;
    int ok_known = -2;  /* not parsed yet: most settles compare equal timestamps first */
    Py_ssize_t keep_head = -1, keep_tail = -1;
    for (Py_ssize_t i = slot->head, next; i >= 0; i = next) {
        Event *ev = &st->events[i];
        next = ev->next;
        int handshake;
        if (ev->has_t && have_max_t && max_t - ev->t > window + slack) {
            /* The log moved past this 401's window before this line: whatever time this success carries
             * (a clock set back, a garbled date), the user saw the 401. */
            handshake = 0;
        } else if (same(st->buf, ev->f[F_DATE], f[F_DATE]) && same(st->buf, ev->f[F_TIME], f[F_TIME])) {
            handshake = 1;
        } else {
            if (ok_known == -2) {
                ok_known = stamp(st, f[F_DATE], f[F_TIME], &t_ok);
                if (ok_known < 0)
                    return -1;
            }
            if (ev->has_t && !ok_known) {
                ev->next = -1;
                if (keep_head < 0)
                    keep_head = i;
                else
                    st->events[keep_tail].next = i;
                keep_tail = i;
                continue;
            }
            handshake = !ev->has_t || t_ok - ev->t <= window;
        }
        ev->state = handshake ? HANDSHAKE : TERMINAL;
        if (handshake && count_handshake(st, ev) < 0)
            return -1;
        st->open_events--;
    }
    slot->head = keep_head;
    slot->tail = keep_tail;
    return 0;
}

/* ---- results ------------------------------------------------------------------------------------- */

static PyObject *field_bytes(const char *buf, Span s) {
    if (s.len < 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(buf + s.off, s.len);
}

/* (line, t or None, ip, ua or None, stem, substatus, win32, user, date, time); user is b"-" when
 * cs-username is not logged, as in the Python engine. */
static PyObject *event_tuple(const char *buf, const Event *ev) {
    PyObject *tuple = PyTuple_New(10);
    if (tuple == NULL)
        return NULL;
    PyObject *items[10];
    items[0] = PyLong_FromLongLong(ev->line);
    if (ev->has_t) {
        items[1] = PyLong_FromLongLong(ev->t);
    } else {
        Py_INCREF(Py_None);
        items[1] = Py_None;
    }
    items[2] = field_bytes(buf, ev->f[F_IP]);
    items[3] = field_bytes(buf, ev->f[F_UA]);
    items[4] = field_bytes(buf, ev->f[F_STEM]);
    items[5] = field_bytes(buf, ev->f[F_SUB]);
    items[6] = field_bytes(buf, ev->f[F_WIN32]);
    items[7] = ev->f[F_USER].len < 0 ? PyBytes_FromStringAndSize("-", 1) : field_bytes(buf, ev->f[F_USER]);
    items[8] = field_bytes(buf, ev->f[F_DATE]);
    items[9] = field_bytes(buf, ev->f[F_TIME]);
    int failed = 0;
    for (int i = 0; i < 10; i++) {
        if (items[i] == NULL) {
            failed = 1;
            Py_INCREF(Py_None);
            items[i] = Py_None;
        }
        PyTuple_SET_ITEM(tuple, i, items[i]);
    }
    if (failed) {
        Py_DECREF(tuple);
        return NULL;
    }
    return tuple;
}

static int append_new(PyObject *list, PyObject *item) {
    if (item == NULL)
        return -1;
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

/* Whether a logged sc-win32-status fits in 32 bits: unsigned decimal up to 4294967295, or a negative
 * rendering down to -2147483648. Anything else that is all digits would be masked into another,
 * valid-looking code, so the line is reported as malformed instead (engine.win32_fits is the same rule). */
static int win32_fits(const char *p, Py_ssize_t n) {
    int negative = n > 0 && p[0] == '-';
    Py_ssize_t i = negative;
    if (i >= n)
        return 1;  /* "-" (not logged) or empty: not a number, read as 0 like the Python engine */
    for (Py_ssize_t j = i; j < n; j++)
        if (!is_digit(p[j]))
            return 1;  /* not a decimal number: read as 0, never masked */
    while (i < n - 1 && p[i] == '0')
        i++;  /* leading zeros do not change the value */
    Py_ssize_t digits = n - i;
    if (digits != 10)
        return digits < 10;
    return memcmp(p + i, negative ? "2147483648" : "4294967295", 10) <= 0;
}

static int is_space(char c) {
    /* bytes.strip()'s whitespace */
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ---- the scan ------------------------------------------------------------------------------------ */

/* Count the spaces of buf[pos:stop] and record where the first `room` fields after them start
 * (starts[1..room]). With SSE2 (every x86-64 CPU) 16 bytes are compared at once and only the spaces
 * found are visited; the loads stay inside [pos, stop). */
static inline Py_ssize_t field_starts(const char *buf, Py_ssize_t pos, Py_ssize_t stop, Py_ssize_t *starts,
                                      Py_ssize_t room) {
    Py_ssize_t spaces = 0, p = pos;
#if defined(__SSE2__)
    const __m128i blank = _mm_set1_epi8(' ');
    for (; p + 16 <= stop; p += 16) {
        __m128i chunk = _mm_loadu_si128((const __m128i *)(buf + p));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, blank));
        while (mask) {
            spaces++;
            if (spaces <= room)
                starts[spaces] = p + __builtin_ctz(mask) + 1;
            mask &= mask - 1;
        }
    }
#endif
    for (; p < stop; p++) {
        if (buf[p] == ' ') {
            spaces++;
            if (spaces <= room)
                starts[spaces] = p + 1;
        }
    }
    return spaces;
}

PyDoc_STRVAR(scan_segment_doc,
"scan_segment(buf, start, end, width, fields, window, slack, line_at, stamp)\n"
"--\n\n"
"Scan the data lines buf[start:end] of one #Fields layout with `width` fields. `fields` holds the\n"
"positions of date, time, c-ip, cs-uri-stem, sc-status, sc-substatus, sc-win32-status, cs(User-Agent)\n"
"and cs-username (-1 when not logged). `line_at` is the number of lines before `start`; `stamp(date,\n"
"time)` computes seconds for dates and times this module does not read itself.\n\n"
"Returns (lines, requests, problems, handshakes, terminal, still_open): problems is a list\n"
"of (line, fields) for malformed lines, (line, 0) for blank ones and (line, b\"<sc-win32-status>\")\n"
"for 401 lines whose sc-win32-status does not fit in 32 bits; handshakes maps (substatus,\n"
"win32) to a count; terminal and still_open list the other 401s in line order as (line, t, ip, ua,\n"
"stem, substatus, win32, user, date, time); still_open are those whose window reaches past `end`.");

static PyObject *scan_segment(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    Py_ssize_t start, end, width, line_at;
    PyObject *fields_obj, *stamp_fn;
    long long window, slack;
    if (!PyArg_ParseTuple(args, "y*nnnOLLnO:scan_segment", &view, &start, &end, &width, &fields_obj,
                          &window, &slack, &line_at, &stamp_fn))
        return NULL;

    PyObject *result = NULL, *problems = NULL, *handshakes = NULL, *terminal = NULL, *still_open = NULL;
    Py_ssize_t *starts = NULL;
    State st;
    memset(&st, 0, sizeof(st));
    st.buf = view.buf;
    st.stamp = stamp_fn;

    Py_ssize_t idx[F_COUNT];
    if (!PyTuple_Check(fields_obj) || PyTuple_GET_SIZE(fields_obj) < F_COUNT) {
        PyErr_SetString(PyExc_ValueError, "fields must be a tuple of 9 positions");
        goto done;
    }
    for (int i = 0; i < F_COUNT; i++) {
        idx[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(fields_obj, i));
        if (idx[i] == -1 && PyErr_Occurred())
            goto done;
        int optional = i == F_UA || i == F_USER;
        if (idx[i] >= width || idx[i] < (optional ? -1 : 0)) {
            PyErr_SetString(PyExc_ValueError, "field position outside the layout");
            goto done;
        }
    }
    if (start < 0 || end > view.len || start > end || width < 1 || !PyCallable_Check(stamp_fn)) {
        PyErr_SetString(PyExc_ValueError, "bad segment bounds, width or stamp function");
        goto done;
    }
    starts = PyMem_Malloc((size_t)(width + 1) * sizeof(Py_ssize_t));
    problems = PyList_New(0);
    handshakes = PyDict_New();
    terminal = PyList_New(0);
    still_open = PyList_New(0);
    if (starts == NULL || problems == NULL || handshakes == NULL || terminal == NULL || still_open == NULL) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }

    const char *buf = view.buf;
    const Py_ssize_t per_line = width - 1;
    long long lines = 0, requests = 0, max_t = 0;
    int have_max_t = 0;
    Py_ssize_t pos = start;
    while (pos < end) {
        const char *nl = memchr(buf + pos, '\n', (size_t)(end - pos));
        Py_ssize_t line_end = nl ? nl - buf : end;
        Py_ssize_t next = nl ? line_end + 1 : end;
        Py_ssize_t stop = line_end;
        if (stop > pos && buf[stop - 1] == '\r')
            stop--;
        lines++;
        long long line_no = (long long)line_at + lines;

        /* Field starts; a field ends one byte before the next one starts (or at `stop`). */
        starts[0] = pos;
        Py_ssize_t spaces = field_starts(buf, pos, stop, starts, per_line);
        if (spaces != per_line || is_space(buf[pos]) || pos == stop) {
            int blank = 1;
            for (Py_ssize_t p = pos; p < stop && blank; p++)
                blank = is_space(buf[p]);
            if (blank || spaces != per_line) {
                PyObject *item = Py_BuildValue("(Ln)", line_no, blank ? (Py_ssize_t)0 : spaces + 1);
                if (append_new(problems, item) < 0)
                    goto done;
                pos = next;
                continue;
            }
        }
        starts[width] = stop + 1;
        requests++;

        Span f[F_COUNT];
        for (int i = 0; i < F_COUNT; i++) {
            if (idx[i] < 0) {
                f[i].off = 0;
                f[i].len = -1;
            } else {
                f[i].off = starts[idx[i]];
                f[i].len = starts[idx[i] + 1] - 1 - f[i].off;
            }
        }
        const char *status = buf + f[F_STATUS].off;
        int status3 = f[F_STATUS].len == 3 && is_digit(status[0]) && is_digit(status[1]) && is_digit(status[2]);
        int is_401 = status3 && status[0] == '4' && status[1] == '0' && status[2] == '1';
        int success = status3 && status[0] < '4';
        long long t = 0;
        int known = 0;
        if (is_401 && !win32_fits(buf + f[F_WIN32].off, f[F_WIN32].len)) {
            PyObject *item = Py_BuildValue("(Ly#)", line_no, buf + f[F_WIN32].off, f[F_WIN32].len);
            if (append_new(problems, item) < 0)
                goto done;
            requests--;
            pos = next;
            continue;
        }
        if (is_401) {
            if (add_event(&st, f, line_no) < 0)
                goto done;
            Event *ev = &st.events[st.n_events - 1];
            known = ev->has_t;
            t = ev->t;
        } else {
            if (success && st.open_events > 0) {
                Slot *slot = find_slot(&st, client_hash(buf, f), f, 0);
                if (slot != NULL && slot->head >= 0 && settle(&st, slot, f, window, slack, have_max_t, max_t) < 0)
                    goto done;
            }
            /* Times of the other lines only matter for the running maximum; a date change or an odd
             * value is read once per distinct date. */
            known = stamp(&st, f[F_DATE], f[F_TIME], &t);
            if (known < 0)
                goto done;
        }
        if (known && (!have_max_t || t > max_t)) {
            max_t = t;
            have_max_t = 1;
        }
        pos = next;
    }

    /* What is still open: terminal when its window has clearly passed (or it has no time), else it waits
     * for the next buffer. Both lists keep line order. */
    for (Py_ssize_t i = 0; i < st.n_events; i++) {
        Event *ev = &st.events[i];
        PyObject *target;
        if (ev->state == HANDSHAKE)
            continue;
        if (ev->state == TERMINAL || !ev->has_t || (have_max_t && max_t - ev->t > window + slack))
            target = terminal;
        else
            target = still_open;
        if (append_new(target, event_tuple(buf, ev)) < 0)
            goto done;
    }
    for (Py_ssize_t i = 0; i < st.cap_codes; i++) {
        CodeSlot *c = &st.codes[i];
        if (c->count == 0)
            continue;
        PyObject *key = Py_BuildValue("(y#y#)", buf + c->sub.off, c->sub.len, buf + c->win32.off,
                                      c->win32.len);
        PyObject *count = PyLong_FromSsize_t(c->count);
        int rc = (key && count) ? PyDict_SetItem(handshakes, key, count) : -1;
        Py_XDECREF(key);
        Py_XDECREF(count);
        if (rc < 0)
            goto done;
    }
    result = Py_BuildValue("(LLOOOO)", lines, requests, problems, handshakes, terminal, still_open);

done:
    Py_XDECREF(problems);
    Py_XDECREF(handshakes);
    Py_XDECREF(terminal);
    Py_XDECREF(still_open);
    PyMem_Free(starts);
    PyMem_Free(st.events);
    PyMem_Free(st.slots);
    PyMem_Free(st.codes);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"scan_segment", scan_segment, METH_VARARGS, scan_segment_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_scan",
    "Compiled inner loop of the iisfleet log engine (see toolkit/logs/engine.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

static int seed_hash(void) {
    PyObject *os = PyImport_ImportModule("os");
    if (os == NULL)
        return -1;
    PyObject *bytes = PyObject_CallMethod(os, "urandom", "i", (int)sizeof(hash_seed));
    Py_DECREF(os);
    if (bytes == NULL)
        return -1;
    if (PyBytes_Check(bytes) && PyBytes_GET_SIZE(bytes) == (Py_ssize_t)sizeof(hash_seed))
        memcpy(&hash_seed, PyBytes_AS_STRING(bytes), sizeof(hash_seed));
    Py_DECREF(bytes);
    return 0;
}

PyMODINIT_FUNC PyInit__scan(void) {
    if (seed_hash() < 0)
        return NULL;
    return PyModule_Create(&module);
}
