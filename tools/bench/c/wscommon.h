/*
 * wscommon.h - small helpers shared by the benchmark's WebSocket tools.
 *
 * Owns: SHA-1 and base64 (only what the RFC 6455 handshake needs), the
 * Sec-WebSocket-Accept computation, a monotonic clock in microseconds, a
 * compact latency histogram, and a few socket helpers. Header-only so each
 * tool builds from one command: cc -O2 -o bin/x x.c
 */
#ifndef WSCOMMON_H
#define WSCOMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* accept4, memmem */
#endif

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ------------------------------------------------------------------ SHA-1 */

static inline uint32_t sha1_rol(uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }

static inline void sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80], a, b, c, d, e, f, k, t;
    int i;

    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (i = 16; i < 80; i++)
        w[i] = sha1_rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4];
    for (i = 0; i < 80; i++) {
        if (i < 20)      { f = (b & c) | (~b & d);          k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d;                   k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else             { f = b ^ c ^ d;                   k = 0xCA62C1D6; }
        t = sha1_rol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = sha1_rol(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

/* SHA-1 of a short message (the handshake input is under 100 bytes). */
static inline void sha1(const void *msg, size_t len, unsigned char out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const unsigned char *p = msg;
    unsigned char tail[128];
    size_t full = len & ~(size_t)63, rest = len - full, tlen;
    uint64_t bits = (uint64_t)len * 8;
    int i;

    for (size_t off = 0; off < full; off += 64)
        sha1_block(h, p + off);
    memset(tail, 0, sizeof(tail));
    memcpy(tail, p + full, rest);
    tail[rest] = 0x80;
    tlen = rest + 1 + 8 <= 64 ? 64 : 128;
    for (i = 0; i < 8; i++)
        tail[tlen - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tlen == 128)
        sha1_block(h, tail + 64);
    for (i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
}

/* ------------------------------------------------------------------ base64 */

/* Encodes len bytes into out (NUL-terminated); out needs 4*ceil(len/3)+1 bytes. */
static inline void base64(const unsigned char *in, size_t len, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;
    char *o = out;

    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63]; *o++ = tab[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
}

/* Sec-WebSocket-Accept for a key (RFC 6455 section 4.2.2): base64(sha1(key + GUID)). */
static inline void ws_accept(const char *key, size_t keylen, char out[29])
{
    char buf[128];
    unsigned char digest[20];

    if (keylen > sizeof(buf) - sizeof(WS_GUID))
        keylen = sizeof(buf) - sizeof(WS_GUID);
    memcpy(buf, key, keylen);
    memcpy(buf + keylen, WS_GUID, sizeof(WS_GUID) - 1);
    sha1(buf, keylen + sizeof(WS_GUID) - 1, digest);
    base64(digest, 20, out);
}

/* ------------------------------------------------------------------ misc */

static inline int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Raise the open-file limit as far as allowed (10,000 WebSockets need it). */
static inline void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static inline void set_nodelay(int fd)
{
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Case-insensitive search for a header line "name:" in a request/response head;
 * returns the trimmed value and its length, or NULL. */
static inline const char *find_header(const char *head, size_t len, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = head, *end = head + len;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

/* ------------------------------------------------------------------ histogram */

/* Latency histogram in microseconds: exact below 1024 us, then 64 sub-buckets per
 * power of two (relative error under 1.6%), up to about 2^40 us. */
#define HIST_SUB 64
#define HIST_BUCKETS (1024 + 31 * HIST_SUB)

typedef struct {
    uint64_t count[HIST_BUCKETS];
    uint64_t total;
} hist_t;

static inline int hist_index(int64_t v)
{
    int e;

    if (v < 0)
        v = 0;
    if (v < 1024)
        return (int)v;
    e = 63 - __builtin_clzll((unsigned long long)v); /* 10.. */
    if (e > 40)
        return HIST_BUCKETS - 1;
    return 1024 + (e - 10) * HIST_SUB + (int)((v >> (e - 6)) & (HIST_SUB - 1));
}

static inline int64_t hist_value(int i)
{
    int e, m;

    if (i < 1024)
        return i;
    e = (i - 1024) / HIST_SUB + 10;
    m = (i - 1024) % HIST_SUB;
    return ((int64_t)1 << e) + ((int64_t)m << (e - 6));
}

static inline void hist_add(hist_t *h, int64_t v)
{
    h->count[hist_index(v)]++;
    h->total++;
}

static inline int64_t hist_pct(const hist_t *h, double pct)
{
    uint64_t want, seen = 0;
    int i;

    if (!h->total)
        return -1;
    want = (uint64_t)(pct / 100.0 * (double)h->total);
    if (want >= h->total)
        want = h->total - 1;
    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen > want)
            return hist_value(i);
    }
    return hist_value(HIST_BUCKETS - 1);
}

#endif
