/* fastload: the compiled half of the peer bench's load generator, and its do-nothing endpoint.
 *
 * Why C: the generator's own ceiling must be well above every relay it measures. In Python, the
 * fan-out receivers (1,000 sockets: epoll, recv, setsockopt per read) and the do-nothing endpoint
 * (one send per connection) were two interpreter loops sharing the box's cores, and their "ceiling"
 * was within 1.6x of the fastest relay. Here each read costs a syscall and a few compares.
 *
 * Plain C99 + Linux (epoll, TCP_QUICKACK, CLOCK_MONOTONIC, pthreads), no dependencies;
 * bench/peerbench/fastload.py compiles it with `cc -O2` into the bench's scratch folder. Modes:
 *
 *   fastload fanout PORT CONNS EXPECT KEEP DEADLINE REQ_JSON
 *       Opens CONNS websockets, says "opened N", waits for "go" on stdin, sends REQ_JSON on each,
 *       reads each to its EOSE, says "ready EOSES", then counts EVENT frames per connection and
 *       says "event K T" when the last connection has completed event K (T: CLOCK_MONOTONIC
 *       seconds, the clock of Python's time.perf_counter on Linux, so the publisher's send time
 *       and this arrival time compare). Ends with "counts C1 C2 ...", "sample LEN" + LEN bytes
 *       (the raw bytes of the first KEEP connections after their EOSE, each as a 4-byte
 *       little-endian length + bytes, for the answer check), "done".
 *   fastload bigreq PORT ROUNDS DEADLINE FILTER_JSON
 *       One connection (4 MiB receive buffer, set before connecting so the window scales);
 *       per round sends ["REQ","bigN",FILTER], reads to EOSE, says "rate EVENTS SECONDS",
 *       sends CLOSE. Ends with "answer LEN" + the first round's raw bytes, "done".
 *   fastload serve PORT CANNED_EVENT_FILE [STOP_AFTER [SENDERS]]
 *       The do-nothing endpoint, answering exactly as nullrelay.py does: EVENT -> OK and the
 *       event to every connection holding an open REQ (under its first subscription id, all the
 *       events of one read in one write); REQ -> len(ids), else min(limit, 5000) (default 500)
 *       copies of the canned event, then EOSE; CLOSE forgets the subscription. Says "ready PORT".
 *       A broadcast's sends are shared out among SENDERS threads (default 1).
 *
 * Client frames are sent with the all-zero masking key (see wsraw.py: RFC 6455 lets a server
 * unmask any key, and a zero key makes masking the identity). Errors go to stdout as "error ...".
 * Every loop is bounded in time; every mode ends when its parent process does (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define RECV_SIZE 65536
#define MAX_ANSWER 5000

/* -- small helpers ---------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void say(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n >= (int)sizeof line) n = (int)sizeof line - 1;
    const char *p = line;
    while (n > 0) {
        ssize_t w = write(1, p, (size_t)n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(3); /* the parent is gone */
        p += w;
        n -= (int)w;
    }
}

static void write_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(3);
        p += w;
        n -= (size_t)w;
    }
}

static void fail(const char *fmt, ...) {
    char line[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    say("error %s\n", line);
    exit(2);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) fail("out of memory");
    return q;
}

typedef struct {
    unsigned char *data;
    size_t len, cap, start; /* bytes [start, len) are pending */
} Buf;

static void buf_add(Buf *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        if (b->start > 0) { /* reclaim what was consumed before growing */
            memmove(b->data, b->data + b->start, b->len - b->start);
            b->len -= b->start;
            b->start = 0;
        }
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap : 4096;
            while (cap < b->len + n) cap *= 2;
            b->data = xrealloc(b->data, cap);
            b->cap = cap;
        }
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static size_t buf_pending(const Buf *b) { return b->len - b->start; }

static void buf_consume(Buf *b, size_t n) {
    b->start += n;
    if (b->start == b->len) b->start = b->len = 0;
}

static void quickack(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

/* A websocket frame header for a payload of n bytes; masked (zero key) for a client. */
static size_t frame_head(unsigned char *h, uint64_t n, int masked) {
    size_t k = 0;
    unsigned char m = masked ? 0x80 : 0;
    h[k++] = 0x81;
    if (n < 126) {
        h[k++] = m | (unsigned char)n;
    } else if (n < 65536) {
        h[k++] = m | 126;
        h[k++] = (unsigned char)(n >> 8);
        h[k++] = (unsigned char)n;
    } else {
        h[k++] = m | 127;
        for (int i = 7; i >= 0; i--) h[k++] = (unsigned char)(n >> (8 * i));
    }
    if (masked) {
        memset(h + k, 0, 4);
        k += 4;
    }
    return k;
}

static void add_frame(Buf *b, const void *payload, size_t n, int masked) {
    unsigned char h[14];
    buf_add(b, h, frame_head(h, n, masked));
    buf_add(b, payload, n);
}

/* -- server frames, walked as they arrive --------------------------------------------------------
 * A frame's kind is read from the payload's first bytes ('["EV', '["EO'), as wsraw.FrameScanner
 * does; a frame counts once it has fully arrived. State survives across reads, byte by byte in
 * headers only: payloads are skipped by arithmetic. */

enum { W_HEAD, W_VERB, W_SKIP };

typedef struct {
    unsigned char hdr[14], verb[4];
    int phase, hlen, hneed, vlen, kind; /* kind: 1 EVENT, 2 EOSE, 3 other text, 0 not text */
    uint64_t left;
} Walker;

static void walk(Walker *w, const unsigned char *p, size_t n, long *events, long *eoses) {
    size_t i = 0;
    while (i < n) {
        if (w->phase == W_HEAD) {
            w->hdr[w->hlen++] = p[i++];
            if (w->hlen == 2) {
                int l7 = w->hdr[1] & 0x7f;
                w->hneed = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((w->hdr[1] & 0x80) ? 4 : 0);
            }
            if (w->hlen < 2 || w->hlen < w->hneed) continue;
            int l7 = w->hdr[1] & 0x7f;
            uint64_t len = (uint64_t)l7;
            if (l7 == 126) {
                len = ((uint64_t)w->hdr[2] << 8) | w->hdr[3];
            } else if (l7 == 127) {
                len = 0;
                for (int k = 0; k < 8; k++) len = (len << 8) | w->hdr[2 + k];
            }
            w->left = len;
            w->vlen = 0;
            w->kind = (w->hdr[0] & 0x0f) == 1 ? 3 : 0;
            w->phase = W_VERB;
        }
        if (w->phase == W_VERB) {
            while (w->vlen < 4 && w->left > 0 && i < n) {
                w->verb[w->vlen++] = p[i++];
                w->left--;
            }
            if (w->vlen == 4 || w->left == 0) {
                if (w->kind == 3 && w->vlen == 4) {
                    if (w->verb[2] == 'E' && w->verb[3] == 'V') w->kind = 1;
                    else if (w->verb[2] == 'E' && w->verb[3] == 'O') w->kind = 2;
                }
                w->phase = W_SKIP;
            } else {
                continue; /* out of bytes */
            }
        }
        /* W_SKIP */
        uint64_t take = (uint64_t)(n - i) < w->left ? (uint64_t)(n - i) : w->left;
        i += (size_t)take;
        w->left -= take;
        if (w->left == 0) {
            if (w->kind == 1) (*events)++;
            else if (w->kind == 2) (*eoses)++;
            w->phase = W_HEAD;
            w->hlen = 0;
            w->hneed = 2;
        }
    }
}

static size_t base64(const unsigned char *in, size_t n, char *out) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[k++] = abc[(v >> 18) & 63];
        out[k++] = abc[(v >> 12) & 63];
        out[k++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out[k++] = i + 2 < n ? abc[v & 63] : '=';
    }
    return k;
}

/* -- the client side: connecting -------------------------------------------------------------- */

static void set_timeouts(int fd, double seconds) {
    struct timeval tv;
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* A blocking websocket to 127.0.0.1:port; bytes read past the 101 answer go to *rest. */
static int ws_connect(int port, double timeout, int rcvbuf, Buf *rest) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) fail("socket: %s", strerror(errno));
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    set_timeouts(fd, timeout);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        fail("connect to port %d: %s", port, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    unsigned char nonce[16]; /* RFC 6455 section 4.1: a random 16-byte nonce, base64 (24 chars) */
    if (getrandom(nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce) fail("getrandom failed");
    char key[32];
    size_t klen = base64(nonce, sizeof nonce, key);
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %.*s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     port, (int)klen, key);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) fail("port %d: handshake not sent", port);
    char head[8192];
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        if (got == sizeof head) fail("port %d: handshake answer too long", port);
        ssize_t r = recv(fd, head + got, sizeof head - got, 0);
        if (r <= 0) fail("port %d closed the connection during the handshake", port);
        got += (size_t)r;
        end = memmem(head, got, "\r\n\r\n", 4);
    }
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        size_t line = (size_t)((char *)memchr(head, '\r', got) - head);
        fail("port %d refused the websocket: %.*s", port, (int)(line < 120 ? line : 120), head);
    }
    size_t used = (size_t)(end + 4 - head);
    if (got > used) buf_add(rest, head + used, got - used);
    return fd;
}

static void send_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) fail("the relay closed the connection (send: %s)", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* -- mode: fan-out receiver ------------------------------------------------------------------- */

typedef struct {
    int fd;
    long events, eoses;
    Walker w;
    Buf kept;
} Receiver;

static int fanout(int argc, char **argv) {
    if (argc != 8) fail("usage: fanout PORT CONNS EXPECT KEEP DEADLINE REQ_JSON");
    int port = atoi(argv[2]), conns = atoi(argv[3]), expect = atoi(argv[4]), keep = atoi(argv[5]);
    double deadline = atof(argv[6]);
    const char *req = argv[7];
    if (conns <= 0 || expect < 0) fail("fanout: bad counts");
    Receiver *rs = calloc((size_t)conns, sizeof *rs);
    int *seen = calloc((size_t)expect + 1, sizeof *seen);
    unsigned char *buf = malloc(RECV_SIZE);
    if (!rs || !seen || !buf) fail("out of memory");
    double connect_by = now_s() + deadline;
    for (int i = 0; i < conns; i++) {
        double left = connect_by - now_s();
        double t = left < 0.5 ? 0.5 : left > 10 ? 10 : left;
        Buf rest = {0};
        rs[i].fd = ws_connect(port, t, 0, &rest);
        rs[i].w.hneed = 2;
        if (buf_pending(&rest)) walk(&rs[i].w, rest.data, rest.len, &rs[i].events, &rs[i].eoses);
        free(rest.data);
    }
    say("opened %d\n", conns);
    char line[64];
    if (!fgets(line, sizeof line, stdin) || strncmp(line, "go", 2) != 0) fail("no go signal");
    Buf frame = {0};
    add_frame(&frame, req, strlen(req), 1);
    for (int i = 0; i < conns; i++) send_all(rs[i].fd, frame.data, frame.len);
    long eoses = 0;
    for (int i = 0; i < conns; i++) {
        Receiver *r = &rs[i];
        set_timeouts(r->fd, 30);
        long before = r->eoses;
        while (r->eoses == before) {
            ssize_t n = recv(r->fd, buf, RECV_SIZE, 0);
            if (n <= 0) fail("the relay closed a fan-out connection before its EOSE");
            long ignored = 0;
            walk(&r->w, buf, (size_t)n, &ignored, &r->eoses);
        }
        r->events = 0; /* stored events before the EOSE are not deliveries */
        eoses++;
        fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK);
    }
    int ep = epoll_create1(0);
    for (int i = 0; i < conns; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, rs[i].fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    }
    say("ready %ld\n", eoses);
    /* The timed loop: one recv per ready socket, the arrival time right after it, QUICKACK
     * re-armed (a relay without TCP_NODELAY must not wait on our delayed ACKs). */
    struct epoll_event evs[1024];
    double end_by = now_s() + deadline;
    int complete = 0;
    while (complete < expect && now_s() < end_by) {
        int ready = epoll_wait(ep, evs, 1024, 200);
        for (int e = 0; e < ready; e++) {
            Receiver *r = &rs[evs[e].data.u32];
            ssize_t n = recv(r->fd, buf, RECV_SIZE, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0) fail("the relay closed a fan-out connection");
            double t = now_s();
            quickack(r->fd);
            if ((int)evs[e].data.u32 < keep) buf_add(&r->kept, buf, (size_t)n);
            long before = r->events, ignored = 0;
            walk(&r->w, buf, (size_t)n, &r->events, &ignored);
            for (long k = before; k < r->events && k < expect; k++) {
                if (++seen[k] == conns) {
                    complete++;
                    say("event %ld %.9f\n", k, t);
                }
            }
        }
    }
    Buf out = {0};
    buf_add(&out, "counts", 6);
    for (int i = 0; i < conns; i++) {
        char num[32];
        int n = snprintf(num, sizeof num, " %ld", rs[i].events);
        buf_add(&out, num, (size_t)n);
    }
    buf_add(&out, "\n", 1);
    write_all(1, out.data, out.len);
    Buf sample = {0};
    for (int i = 0; i < conns && i < keep; i++) {
        uint32_t n = (uint32_t)rs[i].kept.len;
        unsigned char le[4] = {(unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
                               (unsigned char)(n >> 24)};
        buf_add(&sample, le, 4);
        if (n) buf_add(&sample, rs[i].kept.data, n);
    }
    say("sample %zu\n", sample.len);
    if (sample.len) write_all(1, sample.data, sample.len);
    say("done\n");
    return 0;
}

/* -- mode: one large REQ at a time ------------------------------------------------------------ */

static int bigreq(int argc, char **argv) {
    if (argc != 6) fail("usage: bigreq PORT ROUNDS DEADLINE FILTER_JSON");
    int port = atoi(argv[2]), rounds = atoi(argv[3]);
    double deadline = atof(argv[4]);
    const char *flt = argv[5];
    Buf rest = {0}, answer = {0}, msg = {0}, frame = {0};
    int fd = ws_connect(port, 30, 4 << 20, &rest);
    Walker w = {.hneed = 2};
    long events = 0, eoses = 0;
    if (buf_pending(&rest)) walk(&w, rest.data, rest.len, &events, &eoses);
    size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    if (!buf) fail("out of memory");
    double end_by = now_s() + deadline;
    for (int n = 0; n < rounds && now_s() < end_by; n++) {
        char sub[32];
        snprintf(sub, sizeof sub, "big%d", n);
        msg.len = frame.len = 0;
        buf_add(&msg, "[\"REQ\",\"", 8);
        buf_add(&msg, sub, strlen(sub));
        buf_add(&msg, "\",", 2);
        buf_add(&msg, flt, strlen(flt));
        buf_add(&msg, "]", 1);
        add_frame(&frame, msg.data, msg.len, 1);
        events = 0;
        long want = eoses + 1;
        double t0 = now_s();
        send_all(fd, frame.data, frame.len);
        double at = t0;
        while (eoses < want) {
            ssize_t r = recv(fd, buf, cap, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) fail("the relay closed the connection (or sent no EOSE within 30 s)");
            at = now_s();
            quickack(fd);
            if (n == 0) buf_add(&answer, buf, (size_t)r);
            walk(&w, buf, (size_t)r, &events, &eoses);
        }
        say("rate %ld %.9f\n", events, at - t0);
        msg.len = frame.len = 0;
        buf_add(&msg, "[\"CLOSE\",\"", 10);
        buf_add(&msg, sub, strlen(sub));
        buf_add(&msg, "\"]", 2);
        add_frame(&frame, msg.data, msg.len, 1);
        send_all(fd, frame.data, frame.len);
    }
    say("answer %zu\n", answer.len);
    if (answer.len) write_all(1, answer.data, answer.len);
    say("done\n");
    close(fd);
    return 0;
}

/* -- mode: the do-nothing endpoint ------------------------------------------------------------ */

/* SHA-1 (FIPS 180-4), for the handshake's Sec-WebSocket-Accept only. */
static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = ((len + 8) / 64 + 1) * 64;
    unsigned char *m = calloc(total, 1);
    if (!m) fail("out of memory");
    memcpy(m, msg, len);
    m[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) m[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 |
                   (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
        for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
            else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
            else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            else f = b ^ c ^ d, k = 0xCA62C1D6;
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d, d = c, c = rol(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    free(m);
    for (int i = 0; i < 20; i++) out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

/* A bounded JSON walker, enough to read a REQ's subscription id and its filter's "ids"/"limit". */
static const unsigned char *ws_skip(const unsigned char *p, const unsigned char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static const unsigned char *skip_string(const unsigned char *p, const unsigned char *end) {
    if (p >= end || *p != '"') return NULL;
    for (p++; p < end; p++) {
        if (*p == '\\') p++;
        else if (*p == '"') return p + 1;
    }
    return NULL;
}

static const unsigned char *skip_value(const unsigned char *p, const unsigned char *end, int depth) {
    p = ws_skip(p, end);
    if (p >= end || depth > 32) return NULL;
    if (*p == '"') return skip_string(p, end);
    if (*p == '[' || *p == '{') {
        unsigned char close = *p == '[' ? ']' : '}';
        p = ws_skip(p + 1, end);
        if (p < end && *p == close) return p + 1;
        while (p && p < end) {
            if (close == '}') {
                p = skip_string(ws_skip(p, end), end);
                if (!p) return NULL;
                p = ws_skip(p, end);
                if (p >= end || *p != ':') return NULL;
                p++;
            }
            p = skip_value(p, end, depth + 1);
            if (!p) return NULL;
            p = ws_skip(p, end);
            if (p < end && *p == ',') p++;
            else if (p < end && *p == close) return p + 1;
            else return NULL;
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != ']' && *p != '}' && *p != ' ') p++; /* number, literal */
    return p;
}

/* ["VERB","sub"...: the subscription id's bytes (as sent, quotes off), or 0 if malformed. */
static size_t sub_id(const unsigned char *p, const unsigned char *end, const unsigned char **sub,
                     const unsigned char **after) {
    p = ws_skip(p, end);
    if (p >= end || *p != '[') return 0;
    p = skip_string(ws_skip(p + 1, end), end);
    if (!p) return 0;
    p = ws_skip(p, end);
    if (p >= end || *p != ',') return 0;
    const unsigned char *s = ws_skip(p + 1, end);
    const unsigned char *e = skip_string(s, end);
    if (!e) return 0;
    *sub = s + 1;
    *after = e;
    return (size_t)(e - s - 2);
}

/* How many canned events a REQ gets: len(ids), else min(limit, 5000), default 500. */
static long answer_count(const unsigned char *p, const unsigned char *end) {
    long limit = 500;
    p = ws_skip(p, end);
    if (p >= end || *p != ',') return limit;
    p = ws_skip(p + 1, end);
    if (p >= end || *p != '{') return limit;
    p = ws_skip(p + 1, end);
    while (p < end && *p == '"') {
        const unsigned char *k = p + 1;
        const unsigned char *ke = skip_string(p, end);
        if (!ke) break;
        size_t klen = (size_t)(ke - k - 1);
        p = ws_skip(ke, end);
        if (p >= end || *p != ':') break;
        p = ws_skip(p + 1, end);
        if (klen == 3 && memcmp(k, "ids", 3) == 0 && p < end && *p == '[') {
            long n = 0;
            const unsigned char *q = ws_skip(p + 1, end);
            while (q && q < end && *q != ']') {
                q = skip_value(q, end, 1);
                if (!q) return 0;
                n++;
                q = ws_skip(q, end);
                if (q < end && *q == ',') q = ws_skip(q + 1, end);
            }
            return n;
        }
        if (klen == 5 && memcmp(k, "limit", 5) == 0) limit = strtol((const char *)p, NULL, 10);
        p = skip_value(p, end, 1);
        if (!p) break;
        p = ws_skip(p, end);
        if (p < end && *p == ',') p = ws_skip(p + 1, end);
    }
    if (limit < 0) limit = 0;
    return limit < MAX_ANSWER ? limit : MAX_ANSWER;
}

typedef struct {
    char *id;
    size_t len;
} Sub;

typedef struct {
    int fd, open;
    Buf in, out;
    Sub *subs;
    int nsubs, capsubs;
} Conn;

typedef struct {
    const char *sub;
    size_t sublen;
    Buf data;
} Built;

static struct {
    int ep, listener;
    Conn **conns; /* by fd */
    int capconns, maxfd;
    const unsigned char *canned;
    size_t cannedlen;
    Buf bodies; /* the EVENT bodies of the current read, each as 4-byte length + bytes */
    Built *built; /* the broadcast frames of this read, per subscription id */
    int nbuilt, capbuilt;
    Conn **targets; /* this broadcast's subscribers, and the frames each gets */
    Buf **payloads;
    int ntargets, captargets;
    int nthreads, busy; /* sender threads (this one included); helpers still sending */
    unsigned long generation;
    pthread_mutex_t mu;
    pthread_cond_t start, finished;
} S;

static void watch(Conn *c, int writable) {
    struct epoll_event ev = {.events = EPOLLIN | (writable ? EPOLLOUT : 0), .data.fd = c->fd};
    epoll_ctl(S.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void drop(Conn *c) {
    epoll_ctl(S.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    S.conns[c->fd] = NULL;
    for (int i = 0; i < c->nsubs; i++) free(c->subs[i].id);
    free(c->subs);
    free(c->in.data);
    free(c->out.data);
    free(c);
}

/* Write now if nothing is queued (the common case: one plain write), else queue behind it. */
static void send_to(Conn *c, const unsigned char *data, size_t n) {
    if (buf_pending(&c->out)) {
        buf_add(&c->out, data, n);
        return;
    }
    ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) return; /* the peer is gone; its read will say so */
        w = 0;
    }
    if ((size_t)w < n) {
        buf_add(&c->out, data + w, n - (size_t)w);
        watch(c, 1);
    }
}

static void flush(Conn *c) {
    size_t n = buf_pending(&c->out);
    ssize_t w = send(c->fd, c->out.data + c->out.start, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        w = (ssize_t)n; /* the peer is gone: forget what was queued */
    }
    buf_consume(&c->out, (size_t)w);
    if (!buf_pending(&c->out)) watch(c, 0);
}

static void send_frame(Conn *c, const void *payload, size_t n) {
    unsigned char h[14];
    size_t k = frame_head(h, n, 0);
    if (n < 256) {
        unsigned char one[270];
        memcpy(one, h, k);
        memcpy(one + k, payload, n);
        send_to(c, one, k + n);
    } else {
        Buf b = {0};
        buf_add(&b, h, k);
        buf_add(&b, payload, n);
        send_to(c, b.data, b.len);
        free(b.data);
    }
}

/* A REQ's answer, `count` copies of one frame then the EOSE, written straight from those two
 * buffers with sendmsg (up to 1,024 pieces a call): nothing is built, so a 5,000-event answer
 * costs the kernel's copy only. What the socket does not take is queued behind. */
static void send_answer(Conn *c, const Buf *frame, long count, const Buf *eose) {
    long i = 0;       /* the piece being sent: 0..count-1 the event frame, count the EOSE */
    size_t done = 0;  /* bytes of piece i already sent */
    while (!buf_pending(&c->out) && i <= count) {
        struct iovec iov[1024];
        size_t want = 0;
        int k = 0;
        for (long j = i; j <= count && k < 1024; j++, k++) {
            const Buf *piece = j < count ? frame : eose;
            size_t skip = j == i ? done : 0;
            iov[k].iov_base = piece->data + skip;
            iov[k].iov_len = piece->len - skip;
            want += iov[k].iov_len;
        }
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = iov;
        m.msg_iovlen = (size_t)k;
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EINTR) return; /* the peer is gone */
        for (size_t left = w > 0 ? (size_t)w : 0; left > 0;) {
            size_t rest = (i < count ? frame->len : eose->len) - done;
            if (left < rest) {
                done += left;
                left = 0;
            } else {
                left -= rest;
                i++;
                done = 0;
            }
        }
        if (w < 0 || (size_t)w < want) break; /* the socket's buffer is full */
    }
    if (i > count) return;
    for (; i <= count; i++, done = 0) {
        const Buf *piece = i < count ? frame : eose;
        buf_add(&c->out, piece->data + done, piece->len - done);
    }
    watch(c, 1);
}

static void on_req(Conn *c, const unsigned char *p, const unsigned char *end) {
    const unsigned char *sub = NULL, *after = NULL;
    size_t sublen = sub_id(p, end, &sub, &after);
    if (!after) return; /* not ["REQ","sub",...]: ignored, as nullrelay.py would fail to read it */
    long count = answer_count(after, end);
    int known = 0;
    for (int i = 0; i < c->nsubs; i++)
        if (c->subs[i].len == sublen && memcmp(c->subs[i].id, sub, sublen) == 0) known = 1;
    if (!known) {
        if (c->nsubs == c->capsubs) {
            c->capsubs = c->capsubs ? 2 * c->capsubs : 4;
            c->subs = xrealloc(c->subs, (size_t)c->capsubs * sizeof *c->subs);
        }
        char *id = xrealloc(NULL, sublen + 1);
        memcpy(id, sub, sublen);
        id[sublen] = 0;
        c->subs[c->nsubs].id = id;
        c->subs[c->nsubs].len = sublen;
        c->nsubs++;
    }
    Buf frame = {0}, eose = {0}, one = {0};
    buf_add(&one, "[\"EVENT\",\"", 10);
    buf_add(&one, sub, sublen);
    buf_add(&one, "\",", 2);
    buf_add(&one, S.canned, S.cannedlen);
    buf_add(&one, "]", 1);
    add_frame(&frame, one.data, one.len, 0);
    one.len = 0;
    buf_add(&one, "[\"EOSE\",\"", 9);
    buf_add(&one, sub, sublen);
    buf_add(&one, "\"]", 2);
    add_frame(&eose, one.data, one.len, 0);
    send_answer(c, &frame, count, &eose);
    free(one.data);
    free(frame.data);
    free(eose.data);
}

static void on_message(Conn *c, const unsigned char *p, size_t n) {
    if (n < 4) return;
    const unsigned char *end = p + n;
    if (p[2] == 'E' && p[3] == 'V') {
        const unsigned char *at = memmem(p, n, "\"id\":\"", 6);
        if (at && end - at >= 6 + 64) {
            unsigned char ok[100];
            memcpy(ok, "[\"OK\",\"", 7);
            memcpy(ok + 7, at + 6, 64);
            memcpy(ok + 71, "\",true,\"\"]", 10);
            send_frame(c, ok, 81);
        }
        const unsigned char *open = memchr(p, '{', n), *close = end;
        while (close > p && close[-1] != '}') close--;
        if (open && close > open) {
            uint32_t len = (uint32_t)(close - open);
            buf_add(&S.bodies, &len, 4);
            buf_add(&S.bodies, open, len);
        }
    } else if (p[2] == 'R' && p[3] == 'E') {
        on_req(c, p, end);
    } else if (p[2] == 'C' && p[3] == 'L') {
        const unsigned char *sub = NULL, *after = NULL;
        size_t sublen = sub_id(p, end, &sub, &after);
        if (!after) return;
        for (int i = 0; i < c->nsubs; i++) {
            if (c->subs[i].len == sublen && memcmp(c->subs[i].id, sub, sublen) == 0) {
                free(c->subs[i].id);
                memmove(&c->subs[i], &c->subs[i + 1], (size_t)(c->nsubs - i - 1) * sizeof *c->subs);
                c->nsubs--;
                break;
            }
        }
    }
}

/* The broadcast's frames for one subscription id: every EVENT body of this read, under that id. */
static Buf *built_for(const Sub *s) {
    for (int i = 0; i < S.nbuilt; i++)
        if (S.built[i].sublen == s->len && memcmp(S.built[i].sub, s->id, s->len) == 0) return &S.built[i].data;
    if (S.nbuilt == S.capbuilt) {
        S.capbuilt = S.capbuilt ? 2 * S.capbuilt : 8;
        S.built = xrealloc(S.built, (size_t)S.capbuilt * sizeof *S.built);
    }
    Built *b = &S.built[S.nbuilt++];
    memset(b, 0, sizeof *b);
    b->sub = s->id;
    b->sublen = s->len;
    for (size_t off = 0; off < S.bodies.len;) {
        uint32_t len;
        memcpy(&len, S.bodies.data + off, 4);
        const unsigned char *body = S.bodies.data + off + 4;
        off += 4 + len;
        unsigned char h[14];
        buf_add(&b->data, h, frame_head(h, 10 + s->len + 2 + len + 1, 0));
        buf_add(&b->data, "[\"EVENT\",\"", 10);
        buf_add(&b->data, s->id, s->len);
        buf_add(&b->data, "\",", 2);
        buf_add(&b->data, body, len);
        buf_add(&b->data, "]", 1);
    }
    return &b->data;
}

/* One sender's share of a broadcast: targets [from, to). */
static void send_share(int from, int to) {
    for (int i = from; i < to; i++) send_to(S.targets[i], S.payloads[i]->data, S.payloads[i]->len);
}

/* The helper senders: each waits for a broadcast, sends its share, says it is done. On a box
 * with several cores a broadcast to 1,000 connections is 1,000 sends, each running the loopback
 * TCP path (and the receiver's wake-up) on the sending core: sharing them out shortens it. */
static void *sender(void *arg) {
    int me = (int)(intptr_t)arg;
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&S.mu);
        while (S.generation == seen) pthread_cond_wait(&S.start, &S.mu);
        seen = S.generation;
        int n = S.ntargets, k = S.nthreads;
        pthread_mutex_unlock(&S.mu);
        send_share((int)((long)n * me / k), (int)((long)n * (me + 1) / k));
        pthread_mutex_lock(&S.mu);
        if (--S.busy == 0) pthread_cond_signal(&S.finished);
        pthread_mutex_unlock(&S.mu);
    }
    return NULL;
}

/* Every event of this read goes to each subscriber in one write, built once per subscription id;
 * subscribers in accept order, shared out among the sender threads. */
static void broadcast(void) {
    S.ntargets = 0;
    for (int fd = 0; fd <= S.maxfd; fd++) {
        Conn *c = S.conns[fd];
        if (!c || !c->nsubs) continue;
        if (S.ntargets == S.captargets) {
            S.captargets = S.captargets ? 2 * S.captargets : 1024;
            S.targets = xrealloc(S.targets, (size_t)S.captargets * sizeof *S.targets);
            S.payloads = xrealloc(S.payloads, (size_t)S.captargets * sizeof *S.payloads);
        }
        S.targets[S.ntargets] = c;
        S.payloads[S.ntargets] = built_for(&c->subs[0]);
        S.ntargets++;
    }
    if (S.nthreads > 1 && S.ntargets >= 64) {
        pthread_mutex_lock(&S.mu);
        S.busy = S.nthreads - 1;
        S.generation++;
        pthread_cond_broadcast(&S.start);
        pthread_mutex_unlock(&S.mu);
        send_share(0, S.ntargets / S.nthreads);
        pthread_mutex_lock(&S.mu);
        while (S.busy > 0) pthread_cond_wait(&S.finished, &S.mu);
        pthread_mutex_unlock(&S.mu);
    } else {
        send_share(0, S.ntargets);
    }
    for (int i = 0; i < S.nbuilt; i++) free(S.built[i].data.data);
    S.nbuilt = 0;
    S.bodies.len = 0;
}

static void handshake(Conn *c) {
    unsigned char *d = c->in.data + c->in.start;
    size_t n = buf_pending(&c->in);
    unsigned char *end = memmem(d, n, "\r\n\r\n", 4);
    if (!end) return;
    char key[128];
    size_t klen = 0;
    for (unsigned char *line = d; line < end;) {
        unsigned char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        if (!eol) break;
        if (eol - line > 18 && strncasecmp((char *)line, "sec-websocket-key:", 18) == 0) {
            unsigned char *v = line + 18, *ve = eol;
            while (v < ve && *v == ' ') v++;
            while (ve > v && ve[-1] == ' ') ve--;
            klen = (size_t)(ve - v) < 60 ? (size_t)(ve - v) : 60;
            memcpy(key, v, klen);
        }
        line = eol + 2;
    }
    memcpy(key + klen, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    unsigned char digest[20];
    sha1((unsigned char *)key, klen + 36, digest);
    char accept[32];
    size_t alen = base64(digest, 20, accept);
    char answer[256];
    int m = snprintf(answer, sizeof answer,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %.*s\r\n\r\n",
                     (int)alen, accept);
    buf_consume(&c->in, (size_t)(end + 4 - d));
    c->open = 1;
    send_to(c, (unsigned char *)answer, (size_t)m);
}

static void frames(Conn *c) {
    for (;;) {
        unsigned char *d = c->in.data + c->in.start;
        size_t n = buf_pending(&c->in);
        if (n < 2) break;
        int opcode = d[0] & 0x0f, masked = d[1] & 0x80;
        uint64_t len = d[1] & 0x7f;
        size_t head = 2;
        if (len == 126) {
            if (n < 4) break;
            len = (uint64_t)d[2] << 8 | d[3];
            head = 4;
        } else if (len == 127) {
            if (n < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | d[2 + i];
            head = 10;
        }
        size_t mask_at = head;
        if (masked) head += 4;
        if (n < head || n - head < len) break;
        unsigned char *payload = d + head;
        if (masked && (d[mask_at] | d[mask_at + 1] | d[mask_at + 2] | d[mask_at + 3]))
            for (uint64_t i = 0; i < len; i++) payload[i] ^= d[mask_at + (i & 3)];
        if (opcode == 1) on_message(c, payload, (size_t)len);
        else if (opcode == 8) send_to(c, (const unsigned char *)"\x88\x00", 2);
        buf_consume(&c->in, head + (size_t)len);
    }
    if (S.bodies.len) broadcast();
}

static void on_readable(Conn *c) {
    unsigned char buf[262144];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        drop(c);
        return;
    }
    buf_add(&c->in, buf, (size_t)n);
    if (!c->open) handshake(c);
    if (c->open) frames(c);
}

static void on_accept(void) {
    for (int i = 0; i < 64; i++) {
        int fd = accept4(S.listener, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) return;
        int one = 1, sndbuf = 4 << 20;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        if (fd >= S.capconns) {
            int cap = S.capconns ? S.capconns : 1024;
            while (cap <= fd) cap *= 2;
            S.conns = xrealloc(S.conns, (size_t)cap * sizeof *S.conns);
            memset(S.conns + S.capconns, 0, (size_t)(cap - S.capconns) * sizeof *S.conns);
            S.capconns = cap;
        }
        Conn *c = calloc(1, sizeof *c);
        if (!c) fail("out of memory");
        c->fd = fd;
        S.conns[fd] = c;
        if (fd > S.maxfd) S.maxfd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(S.ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

static int serve(int argc, char **argv) {
    if (argc < 4) fail("usage: serve PORT CANNED_EVENT_FILE [STOP_AFTER [SENDERS]]");
    int port = atoi(argv[2]);
    double stop_after = argc > 4 ? atof(argv[4]) : 900;
    S.nthreads = argc > 5 ? atoi(argv[5]) : 1;
    if (S.nthreads < 1) S.nthreads = 1;
    pthread_mutex_init(&S.mu, NULL);
    pthread_cond_init(&S.start, NULL);
    pthread_cond_init(&S.finished, NULL);
    for (int i = 1; i < S.nthreads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, sender, (void *)(intptr_t)i) != 0) fail("pthread_create failed");
        pthread_detach(t);
    }
    FILE *f = fopen(argv[3], "rb");
    if (!f) fail("%s: %s", argv[3], strerror(errno));
    Buf canned = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(&canned, chunk, got);
    fclose(f);
    while (canned.len && (canned.data[canned.len - 1] == '\n' || canned.data[canned.len - 1] == ' '))
        canned.len--;
    S.canned = canned.data;
    S.cannedlen = canned.len;
    S.listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(S.listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(S.listener, (struct sockaddr *)&addr, sizeof addr) < 0) fail("bind: %s", strerror(errno));
    if (listen(S.listener, 2048) < 0) fail("listen: %s", strerror(errno));
    socklen_t alen = sizeof addr;
    getsockname(S.listener, (struct sockaddr *)&addr, &alen);
    S.ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = -1};
    epoll_ctl(S.ep, EPOLL_CTL_ADD, S.listener, &lev);
    say("ready %d\n", ntohs(addr.sin_port));
    struct epoll_event evs[1024];
    double end_by = now_s() + stop_after;
    while (now_s() < end_by) {
        int n = epoll_wait(S.ep, evs, 1024, 500);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd < 0) {
                on_accept();
                continue;
            }
            Conn *c = fd < S.capconns ? S.conns[fd] : NULL;
            if (!c) continue;
            if (evs[i].events & EPOLLOUT) flush(c);
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit files; /* 1,000 connections need more descriptors than a default soft limit */
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    if (argc >= 2 && strcmp(argv[1], "fanout") == 0) return fanout(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "bigreq") == 0) return bigreq(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) return serve(argc, argv);
    fail("usage: fastload fanout|bigreq|serve ...");
    return 2;
}
