/*
 * wsecho - a small, fast WebSocket echo server for the benchmark.
 *
 * Single-threaded epoll loop. Answers an HTTP Upgrade request with 101 and a
 * correct Sec-WebSocket-Accept (echoing the first offered subprotocol), then
 * echoes every frame back unmasked (RFC 6455: server frames are never masked).
 * Pings get pongs, a close frame is answered and the connection closed. A plain
 * HTTP request (no Sec-WebSocket-Key) gets "200 ok" and a close, which keeps
 * simple health checks happy.
 *
 * Back-pressure: when the kernel does not take all output, reading from that
 * connection stops until the output is flushed.
 *
 * Usage: wsecho [-a addr] [-p port]     (port 0 = ephemeral; prints "PORT <n>")
 */
#include "wscommon.h"

#include <arpa/inet.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define FRAME_MAX (16u << 20)
#define READ_CHUNK (256 * 1024)

enum { ST_HTTP, ST_WS, ST_CLOSING };

typedef struct {
    int fd;
    int state;
    unsigned char *in;       /* unparsed input */
    size_t in_len, in_cap;
    unsigned char *out;      /* output not yet taken by the kernel */
    size_t out_len, out_off, out_cap;
    int want_out;            /* EPOLLOUT armed */
} conn_t;

static int epfd;
static conn_t **conns;
static int nconns_cap;

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        perror("realloc");
        exit(1);
    }
    return p;
}

static void reserve(unsigned char **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    *buf = xrealloc(*buf, n);
    *cap = n;
}

static conn_t *conn_new(int fd)
{
    if (fd >= nconns_cap) {
        int n = nconns_cap ? nconns_cap : 1024;
        while (n <= fd)
            n *= 2;
        conns = xrealloc(conns, sizeof(*conns) * (size_t)n);
        memset(conns + nconns_cap, 0, sizeof(*conns) * (size_t)(n - nconns_cap));
        nconns_cap = n;
    }
    conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        exit(1);
    c->fd = fd;
    c->state = ST_HTTP;
    conns[fd] = c;
    return c;
}

static void conn_free(conn_t *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c->in);
    free(c->out);
    free(c);
}

static void set_events(conn_t *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.fd = c->fd};

    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
}

/* Appends bytes to the output buffer. */
static void out_put(conn_t *c, const void *p, size_t n)
{
    reserve(&c->out, &c->out_cap, c->out_len + n);
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* Writes pending output; returns 0 when all flushed, 1 when blocked, -1 on error. */
static int flush(conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            return -1;
        }
        c->out_off += (size_t)w;
    }
    if (c->out_off < c->out_len) {
        if (!c->want_out) {
            c->want_out = 1;
            set_events(c, EPOLLOUT);   /* stop reading until drained */
        }
        return 1;
    }
    c->out_off = c->out_len = 0;
    if (c->want_out) {
        c->want_out = 0;
        set_events(c, EPOLLIN);
    }
    return 0;
}

/* Unmasks src into dst (may alias), 8 bytes at a time where possible. */
static void unmask(unsigned char *dst, const unsigned char *src, size_t n, const unsigned char key[4])
{
    uint64_t k8;
    uint32_t k4;
    size_t i = 0;

    memcpy(&k4, key, 4);
    k8 = (uint64_t)k4 << 32 | k4;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= k8;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ key[i & 3];
}

/* Appends a server frame header for a payload of n bytes. */
static void put_frame_head(conn_t *c, unsigned char b0, uint64_t n)
{
    unsigned char h[10];
    size_t hl;

    h[0] = b0;
    if (n < 126) {
        h[1] = (unsigned char)n;
        hl = 2;
    } else if (n < 65536) {
        h[1] = 126; h[2] = (unsigned char)(n >> 8); h[3] = (unsigned char)n;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)(n >> (56 - 8 * i));
        hl = 10;
    }
    out_put(c, h, hl);
}

/* Consumes complete frames from c->in, queueing the echoes. Returns -1 to close. */
static int handle_frames(conn_t *c)
{
    size_t pos = 0;
    int rc = 0;

    while (c->in_len - pos >= 2) {
        unsigned char *p = c->in + pos;
        size_t avail = c->in_len - pos, hl = 2;
        unsigned char b0 = p[0], opcode = b0 & 0x0f;
        int masked = p[1] & 0x80;
        uint64_t n = p[1] & 0x7f;

        if (n == 126) {
            if (avail < 4)
                break;
            n = (uint64_t)p[2] << 8 | p[3];
            hl = 4;
        } else if (n == 127) {
            if (avail < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | p[2 + i];
            hl = 10;
        }
        if (n > FRAME_MAX)
            return -1;
        if (masked)
            hl += 4;
        if (avail < hl + n)
            break;
        unsigned char *payload = p + hl;
        if (masked)
            unmask(payload, payload, (size_t)n, p + hl - 4);
        if (opcode == 0x9) {                       /* ping -> pong */
            put_frame_head(c, (unsigned char)((b0 & 0xf0) | 0xA), n);
        } else if (opcode == 0x8) {                /* close -> close back, then end */
            put_frame_head(c, b0, n);
            c->state = ST_CLOSING;
        } else if (opcode == 0xA) {                /* unsolicited pong: ignore */
            pos += hl + (size_t)n;
            continue;
        } else {
            put_frame_head(c, b0, n);
        }
        out_put(c, payload, (size_t)n);
        pos += hl + (size_t)n;
        if (c->state == ST_CLOSING) {
            rc = -1;
            break;
        }
    }
    if (pos) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    return rc;
}

static const char RESP_200[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
    "Connection: close\r\n\r\nok\n";

/* Handles the HTTP head once complete. Returns 1 when switched, 0 to wait, -1 to close. */
static int handle_http(conn_t *c)
{
    unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    size_t vlen, plen = 0, hlen;
    const char *key, *proto;
    char accept[29], resp[512];
    int n;

    if (!end)
        return c->in_len > HEAD_MAX ? -1 : 0;
    hlen = (size_t)(end - c->in) + 4;
    key = find_header((const char *)c->in, hlen, "Sec-WebSocket-Key", &vlen);
    if (!key) {
        out_put(c, RESP_200, sizeof(RESP_200) - 1);
        c->state = ST_CLOSING;
        return -1;
    }
    ws_accept(key, vlen, accept);
    proto = find_header((const char *)c->in, hlen, "Sec-WebSocket-Protocol", &plen);
    if (proto) {
        size_t i = 0;
        while (i < plen && proto[i] != ',' && proto[i] != ' ')
            i++;
        plen = i;
    }
    n = snprintf(resp, sizeof(resp),
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%.*s%s\r\n",
                 accept, proto ? "Sec-WebSocket-Protocol: " : "", (int)plen,
                 proto ? proto : "", proto ? "\r\n" : "");
    out_put(c, resp, (size_t)n);
    memmove(c->in, c->in + hlen, c->in_len - hlen);
    c->in_len -= hlen;
    c->state = ST_WS;
    return 1;
}

static void on_readable(conn_t *c)
{
    for (;;) {
        reserve(&c->in, &c->in_cap, c->in_len + READ_CHUNK);
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            conn_free(c);
            return;
        }
        if (r == 0) {
            conn_free(c);
            return;
        }
        c->in_len += (size_t)r;
        int rc = 0;
        if (c->state == ST_HTTP) {
            rc = handle_http(c);
            if (rc > 0)
                rc = handle_frames(c);
        } else {
            rc = handle_frames(c);
        }
        int f = flush(c);
        if (rc < 0 || f < 0) {
            conn_free(c);       /* close requested (pending bytes best effort) */
            return;
        }
        if (f == 1 || (size_t)r < READ_CHUNK)
            break;              /* blocked on output, or socket drained */
    }
}

static void on_writable(conn_t *c)
{
    int f = flush(c);

    if (f < 0) {
        conn_free(c);
        return;
    }
    if (f == 0)
        on_readable(c);         /* resume: there may be input waiting */
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;             /* EAGAIN, or EMFILE: try again on next event */
        set_nodelay(fd);
        conn_new(fd);
        struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
    }
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1";
    int port = 0, opt, one = 1;
    struct sockaddr_in sa;
    socklen_t slen = sizeof(sa);

    while ((opt = getopt(argc, argv, "a:p:")) != -1) {
        if (opt == 'a')
            addr = optarg;
        else if (opt == 'p')
            port = atoi(optarg);
        else {
            fprintf(stderr, "usage: wsecho [-a addr] [-p port]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "wsecho: bad address %s\n", addr);
        return 2;
    }
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 65535) < 0) {
        perror("wsecho: bind/listen");
        return 1;
    }
    getsockname(lfd, (struct sockaddr *)&sa, &slen);
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &e);

    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(epfd, evs, 512, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                accept_all(lfd);
                continue;
            }
            conn_t *c = fd < nconns_cap ? conns[fd] : NULL;
            if (!c)
                continue;
            if (c->want_out) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                    on_writable(c);
            } else {
                on_readable(c);
            }
        }
    }
}
