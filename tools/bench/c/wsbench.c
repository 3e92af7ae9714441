/*
 * wsbench - a WebSocket load generator for the benchmark.
 *
 * Single-threaded epoll loop over N non-blocking client connections. Frames are
 * built and masked once at start-up and written as-is (a fixed mask key is
 * legal: RFC 6455 wants unpredictable keys against proxy cache poisoning,
 * which does not apply to a benchmark).
 *
 * Modes (-m):
 *   handshake   connect, send the Upgrade request, wait for the 101, close,
 *               start over; reports handshakes/s and latency (connect() to 101).
 *   echo        after the handshake, keep one message in flight per connection:
 *               send, wait for the echo, send again; reports messages/s and
 *               round-trip latency.
 *   throughput  like echo with -w messages in flight per connection (use
 *               -s 65536); reports MB/s of echoed payload received.
 *   idle        open N WebSockets, print "READY <n>" once all are open, hold
 *               them for -d seconds without traffic, then close them.
 *   http        plain HTTP/1.1 GETs of -u on keep-alive connections, one
 *               request in flight per connection; with -C, a new connection
 *               per request (Connection: close), timed from the connect.
 *               Each response must be a 200 with a Content-Length.
 *
 * Pacing (-r ops/s, handshake, echo and http modes): open loop instead of
 * closed loop. Operations (handshakes, messages, requests) are due at fixed
 * intervals and start on whichever of the -c connections is free; an
 * operation's latency runs from the moment it was due, not from when a
 * connection became free, so a proxy that falls behind is charged for the
 * wait (no coordinated omission). This measures latency at a given load,
 * where the closed loop measures it at saturation.
 *
 * Every handshake checks the 101 status and the Sec-WebSocket-Accept value;
 * echo mode compares each echoed payload with what was sent. Measurement starts
 * once all connections are open (not in handshake mode, nor in http mode with
 * -C). The result is one JSON line on stdout.
 *
 * Usage: wsbench -p port [-a addr] [-m mode] [-c conns] [-d secs] [-s size]
 *                [-w window] [-H host] [-u path] [-P subprotocol] [-k pending]
 *                [-r rate] [-C]
 */
#include "wscommon.h"

#include <arpa/inet.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

enum { M_HANDSHAKE, M_ECHO, M_THROUGHPUT, M_IDLE, M_HTTP };
enum { S_CONNECTING, S_HANDSHAKE, S_OPEN, S_DEAD };

#define RESP_MAX 4096
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="

typedef struct {
    int fd;
    int state;
    int in_free;              /* on the free stack (kept across reopening) */
    int64_t t0;               /* handshake start, or send time of oldest message */
    size_t req_off;           /* bytes of the upgrade / HTTP request written */
    char resp[RESP_MAX];      /* response head being read */
    size_t resp_len;
    int64_t body_left;        /* http: body bytes still to read, -1 while in the head */
    /* sending: identical pre-built frames, so only counts and an offset */
    int to_send;              /* whole frames still to write */
    size_t send_off;          /* bytes of the current frame already written */
    int in_flight;            /* frames sent (or being sent) and not yet echoed */
    /* receiving: a streaming frame parser */
    unsigned char hdr[14];
    size_t hdr_len;
    uint64_t payload_left;    /* payload bytes of the current frame still to read */
    uint64_t payload_pos;     /* for the echo comparison */
    int mismatch;
    int want_out;
} conn_t;

static struct {
    int mode, conns, window, pending_max;
    double duration;
    size_t size;
    const char *addr, *host, *path, *proto;
    int port;
    double rate;              /* -r: operations per second, 0 = closed loop */
    int http_close;           /* -C: a connection per HTTP request */
} cfg = {M_ECHO, 50, 1, 256, 5.0, 64, "127.0.0.1", NULL, "/", NULL, 0, 0.0, 0};

static int epfd;
static conn_t *conns;
static struct sockaddr_in target;
static char request[1024];
static size_t request_len;
static char expect_accept[29];
static unsigned char *frame;      /* one pre-built masked client frame */
static size_t frame_len;
static unsigned char *payload;    /* its unmasked payload, for comparison */
static int connecting;            /* connections not yet open (bounded by pending_max) */
static int dead;                  /* slots with no connection (to be opened) */
static int open_count;
static int measuring;             /* counters run only while set */
static int draining;              /* measurement over: stop sending */

/* Pacing (-r). The free stack holds the connections that can take the next
 * operation: dead slots in the modes that connect per operation, open idle
 * connections in the others. */
static double pace_interval;      /* microseconds between operations; 0 = closed loop */
static double pace_next;          /* when the next operation is due; 0 = not started */
static int *free_stack;
static int nfree;

static struct {
    uint64_t msgs, bytes, handshakes, errors, connect_errors, bad_handshakes, mismatches;
    uint64_t closed_by_peer, bad_responses, late;
    hist_t lat;
} st;

/* handshake mode and http -C open a connection per operation */
static int connect_per_op(void)
{
    return cfg.mode == M_HANDSHAKE || (cfg.mode == M_HTTP && cfg.http_close);
}

static void free_push(conn_t *c)
{
    if (c->in_free || !pace_interval)
        return;
    c->in_free = 1;
    free_stack[nfree++] = (int)(c - conns);
}

/* A connection that can take an operation now, or NULL. */
static conn_t *free_pop(void)
{
    while (nfree) {
        conn_t *c = &conns[free_stack[--nfree]];
        c->in_free = 0;
        if (connect_per_op() ? c->state == S_DEAD : c->state == S_OPEN && !c->in_flight)
            return c;
    }
    return NULL;
}

static void die(const char *m)
{
    perror(m);
    exit(1);
}

static void set_events(conn_t *c, uint32_t ev, int op)
{
    struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)(c - conns)};

    if (epoll_ctl(epfd, op, c->fd, &e) < 0 && op != EPOLL_CTL_DEL)
        die("epoll_ctl");
}

static void slot_dead(conn_t *c)
{
    c->state = S_DEAD;
    dead++;
    if (connect_per_op())
        free_push(c);
}

static void conn_start(conn_t *c, int64_t t0)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int in_free = c->in_free;

    if (fd < 0)
        die("socket");
    set_nodelay(fd);
    memset(c, 0, sizeof(*c));
    c->in_free = in_free;
    dead--;
    c->fd = fd;
    c->state = S_CONNECTING;
    c->t0 = t0;
    connecting++;
    if (connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0 && errno != EINPROGRESS) {
        st.connect_errors++;
        close(fd);
        connecting--;
        slot_dead(c);
        return;
    }
    c->want_out = 1;
    set_events(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void conn_close(conn_t *c)
{
    if (c->state == S_DEAD)
        return;
    if (c->state == S_OPEN)
        open_count--;
    else
        connecting--;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    slot_dead(c);
}

/* An unexpected end: count it (the main loop opens a replacement, except in the
 * measured phase of idle mode). */
static void conn_fail(conn_t *c, uint64_t *counter)
{
    (*counter)++;
    conn_close(c);
}

static void want_write(conn_t *c, int on)
{
    if (c->want_out == on)
        return;
    c->want_out = on;
    set_events(c, on ? (EPOLLIN | EPOLLOUT) : EPOLLIN, EPOLL_CTL_MOD);
}

/* One write; the bytes taken, 0 when the kernel takes none now (EPOLLOUT is then
 * armed), -1 on error. */
static ssize_t write_some(conn_t *c, const void *p, size_t n)
{
    for (;;) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -1;
        want_write(c, 1);
        return 0;
    }
}

/* Writes queued frames; returns -1 on error. */
static int send_frames(conn_t *c)
{
    while (c->to_send > 0) {
        ssize_t w = write_some(c, frame + c->send_off, frame_len - c->send_off);
        if (w <= 0)
            return (int)w;
        c->send_off += (size_t)w;
        if (c->send_off == frame_len) {
            c->send_off = 0;
            c->to_send--;
        }
    }
    want_write(c, 0);
    return 0;
}

static int queue_frame(conn_t *c, int64_t t0)
{
    if (c->in_flight == 0)
        c->t0 = t0;
    c->in_flight++;
    c->to_send++;
    return send_frames(c);
}

/* One read of a response: the bytes read, 0 when there are none yet, -1 on an
 * error or the peer's close (a response cut short). */
static ssize_t read_some(conn_t *c, void *p, size_t n)
{
    for (;;) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r > 0)
            return r;
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 && errno == EAGAIN ? 0 : -1;
    }
}

/* Takes n more bytes read into c->resp: 1 with the head's length once it is
 * complete, 0 while it is not, -1 when it does not fit. */
static int head_read(conn_t *c, size_t n, size_t *hlen)
{
    c->resp_len += n;
    c->resp[c->resp_len] = '\0';
    char *end = strstr(c->resp, "\r\n\r\n");
    if (!end)
        return c->resp_len >= RESP_MAX - 1 ? -1 : 0;
    *hlen = (size_t)(end - c->resp) + 4;
    return 1;
}

/* http: writes the rest of the request; -1 on error. */
static int send_request(conn_t *c)
{
    while (c->req_off < request_len) {
        ssize_t w = write_some(c, request + c->req_off, request_len - c->req_off);
        if (w <= 0)
            return (int)w;
        c->req_off += (size_t)w;
    }
    want_write(c, 0);
    return 0;
}

static int start_request(conn_t *c, int64_t t0)
{
    c->t0 = t0;
    c->in_flight = 1;
    c->req_off = 0;
    c->resp_len = 0;
    c->body_left = -1;
    return send_request(c);
}

static void on_open(conn_t *c)
{
    c->state = S_OPEN;
    connecting--;
    open_count++;
    if (draining)
        return;
    if (cfg.mode == M_HTTP && cfg.http_close) {
        if (start_request(c, c->t0) < 0)   /* timed from the connect */
            conn_fail(c, &st.errors);
        return;
    }
    if (pace_interval && cfg.mode != M_THROUGHPUT) {
        free_push(c);                      /* waits for its turn */
        return;
    }
    if (cfg.mode == M_HTTP) {
        if (start_request(c, now_us()) < 0)
            conn_fail(c, &st.errors);
    } else if (cfg.mode == M_ECHO || cfg.mode == M_THROUGHPUT) {
        int64_t t0 = now_us();
        for (int i = 0; i < cfg.window; i++)
            if (queue_frame(c, t0) < 0) {
                conn_fail(c, &st.errors);
                return;
            }
    }
}

/* http: reads response bytes; 1 when the whole response is in, 0 to wait, -1 on
 * failure, -2 on a status other than 200. */
static int read_response(conn_t *c)
{
    static char body[256 * 1024];

    for (;;) {
        char *dst = c->body_left < 0 ? c->resp + c->resp_len : body;
        size_t room = c->body_left < 0 ? RESP_MAX - c->resp_len - 1 : sizeof(body);
        ssize_t r = read_some(c, dst, room);
        if (r <= 0)
            return (int)r;
        if (c->body_left >= 0) {
            if (r > c->body_left)
                return -1;         /* more than the Content-Length announced */
            c->body_left -= r;
        } else {
            size_t hlen, vlen;
            int got = head_read(c, (size_t)r, &hlen);
            if (got <= 0) {
                if (got < 0)
                    return -1;
                continue;
            }
            if (strncmp(c->resp, "HTTP/1.1 200 ", 13) != 0)
                return -2;
            const char *cl = find_header(c->resp, hlen, "Content-Length", &vlen);
            if (!cl)
                return -1;
            int64_t len = strtoll(cl, NULL, 10), extra = (int64_t)(c->resp_len - hlen);
            if (len < 0 || extra > len)
                return -1;
            c->body_left = len - extra;
        }
        if (c->body_left == 0)
            return 1;
    }
}

static void on_http(conn_t *c, uint32_t ev)
{
    if ((ev & EPOLLOUT) && c->in_flight && c->req_off < request_len && send_request(c) < 0) {
        conn_fail(c, &st.errors);
        return;
    }
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    if (!c->in_flight) {
        /* an idle keep-alive connection: only its end can come */
        char b[1];
        ssize_t r = recv(c->fd, b, 1, 0);
        if (r == 0)
            conn_fail(c, &st.closed_by_peer);
        else if (r > 0 || errno != EAGAIN)
            conn_fail(c, &st.errors);
        return;
    }
    int rc = read_response(c);
    if (rc == 0)
        return;
    if (rc < 0) {
        conn_fail(c, rc == -2 ? &st.bad_responses : &st.errors);
        return;
    }
    c->in_flight = 0;
    if (measuring) {
        st.msgs++;
        hist_add(&st.lat, now_us() - c->t0);
    }
    if (cfg.http_close)
        conn_close(c);             /* the main loop or the pacer opens the next */
    else if (pace_interval)
        free_push(c);
    else if (!draining && start_request(c, now_us()) < 0)
        conn_fail(c, &st.errors);
}

/* Reads the handshake response; returns 1 when the 101 arrived (with any extra
 * bytes left at c->resp+... handled by the caller), 0 to wait, -1 on failure. */
static int read_handshake(conn_t *c, size_t *extra_off)
{
    for (;;) {
        ssize_t r = read_some(c, c->resp + c->resp_len, RESP_MAX - c->resp_len - 1);
        if (r <= 0)
            return (int)r;
        size_t hlen, vlen;
        int got = head_read(c, (size_t)r, &hlen);
        if (got <= 0) {
            if (got < 0)
                return -1;
            continue;
        }
        const char *acc = find_header(c->resp, hlen, "Sec-WebSocket-Accept", &vlen);
        if (strncmp(c->resp, "HTTP/1.1 101", 12) != 0 || !acc || vlen != 28 ||
            memcmp(acc, expect_accept, 28) != 0)
            return -2;
        *extra_off = hlen;
        return 1;
    }
}

/* Feeds server bytes through the frame parser; counts whole messages. */
static int consume(conn_t *c, const unsigned char *p, size_t n)
{
    while (n) {
        if (c->payload_left == 0 && c->hdr_len < 2) {
            c->hdr[c->hdr_len++] = *p++;
            n--;
            if (c->hdr_len < 2)
                continue;
        }
        if (c->payload_left == 0) {
            /* complete the header */
            size_t need = 2, len7 = c->hdr[1] & 0x7f;
            if (len7 == 126)
                need = 4;
            else if (len7 == 127)
                need = 10;
            while (c->hdr_len < need && n) {
                c->hdr[c->hdr_len++] = *p++;
                n--;
            }
            if (c->hdr_len < need)
                return 0;
            uint64_t len = len7;
            if (len7 == 126)
                len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
            else if (len7 == 127) {
                len = 0;
                for (int i = 0; i < 8; i++)
                    len = len << 8 | c->hdr[2 + i];
            }
            if (c->hdr[1] & 0x80)
                return -1;         /* server frames must not be masked */
            if ((c->hdr[0] & 0x0f) == 0x8)
                return -1;         /* close from the server */
            c->payload_left = len;
            c->payload_pos = 0;
            c->mismatch = 0;
            if (len == 0)
                goto message_done;
            continue;
        }
        size_t take = n < c->payload_left ? n : (size_t)c->payload_left;
        if (cfg.mode == M_ECHO && c->payload_pos + take <= cfg.size &&
            memcmp(p, payload + c->payload_pos, take) != 0)
            c->mismatch = 1;
        c->payload_pos += take;
        c->payload_left -= take;
        p += take;
        n -= take;
        if (measuring)
            st.bytes += take;
        if (c->payload_left)
            continue;
message_done:
        c->hdr_len = 0;
        if (c->payload_pos != cfg.size)
            c->mismatch = 1;
        if (c->mismatch)
            st.mismatches++;
        c->in_flight--;
        if (measuring) {
            st.msgs++;
            if (cfg.mode == M_ECHO)
                hist_add(&st.lat, now_us() - c->t0);
        }
        if (pace_interval && cfg.mode == M_ECHO) {
            free_push(c);          /* the pacer sends its next message */
            continue;
        }
        if (c->in_flight == 0 || cfg.mode == M_THROUGHPUT)
            c->t0 = now_us();
        if (!draining && queue_frame(c, now_us()) < 0)
            return -1;
    }
    return 0;
}

static void on_event(conn_t *c, uint32_t ev)
{
    static unsigned char buf[256 * 1024];

    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err || (ev & (EPOLLERR | EPOLLHUP))) {
            conn_fail(c, &st.connect_errors);
            return;
        }
        if (cfg.mode == M_HTTP) {
            want_write(c, 0);
            on_open(c);
            return;
        }
        c->state = S_HANDSHAKE;
        ev = EPOLLOUT;
    }
    if (cfg.mode == M_HTTP) {
        if (c->state == S_OPEN)
            on_http(c, ev);
        return;
    }
    if (c->state == S_HANDSHAKE) {
        if (c->req_off < request_len) {
            ssize_t w = send(c->fd, request + c->req_off, request_len - c->req_off,
                             MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN) {
                conn_fail(c, &st.errors);
                return;
            }
            if (w > 0)
                c->req_off += (size_t)w;
            if (c->req_off == request_len)
                want_write(c, 0);
            return;
        }
        size_t extra = 0;
        int rc = read_handshake(c, &extra);
        if (rc == 0)
            return;
        if (rc < 0) {
            conn_fail(c, rc == -2 ? &st.bad_handshakes : &st.errors);
            return;
        }
        if (measuring || cfg.mode == M_HANDSHAKE) {
            st.handshakes++;
            if (cfg.mode == M_HANDSHAKE)
                hist_add(&st.lat, now_us() - c->t0);
        }
        if (cfg.mode == M_HANDSHAKE) {
            conn_close(c);
            return;              /* the main loop reopens it */
        }
        on_open(c);
        if (c->state == S_OPEN && extra < c->resp_len &&
            consume(c, (unsigned char *)c->resp + extra, c->resp_len - extra) < 0)
            conn_fail(c, &st.errors);
        return;
    }
    if (c->state != S_OPEN)
        return;
    if ((ev & EPOLLOUT) && c->to_send && send_frames(c) < 0) {
        conn_fail(c, &st.errors);
        return;
    }
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            conn_fail(c, &st.errors);
            return;
        }
        if (r == 0) {
            conn_fail(c, &st.closed_by_peer);
            return;
        }
        if (consume(c, buf, (size_t)r) < 0) {
            conn_fail(c, &st.errors);
            return;
        }
        if ((size_t)r < sizeof(buf))
            return;
    }
}

static void build(void)
{
    unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t hl = 2;

    if (cfg.mode == M_HTTP)
        request_len = (size_t)snprintf(request, sizeof(request),
                                       "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", cfg.path,
                                       cfg.host, cfg.http_close ? "Connection: close\r\n" : "");
    else
        request_len = (size_t)snprintf(
            request, sizeof(request),
            "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: " WS_KEY "\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
            cfg.path, cfg.host, cfg.proto ? "Sec-WebSocket-Protocol: " : "",
            cfg.proto ? cfg.proto : "", cfg.proto ? "\r\n" : "");
    ws_accept(WS_KEY, strlen(WS_KEY), expect_accept);

    payload = malloc(cfg.size + 1);
    frame = malloc(cfg.size + 14);
    if (!payload || !frame)
        die("malloc");
    for (size_t i = 0; i < cfg.size; i++)
        payload[i] = (unsigned char)('a' + i % 26);
    frame[0] = 0x82;                     /* FIN + binary */
    if (cfg.size < 126) {
        frame[1] = (unsigned char)(0x80 | cfg.size);
    } else if (cfg.size < 65536) {
        frame[1] = 0x80 | 126;
        frame[2] = (unsigned char)(cfg.size >> 8);
        frame[3] = (unsigned char)cfg.size;
        hl = 4;
    } else {
        frame[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            frame[2 + i] = (unsigned char)((uint64_t)cfg.size >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(frame + hl, key, 4);
    hl += 4;
    for (size_t i = 0; i < cfg.size; i++)
        frame[hl + i] = payload[i] ^ key[i & 3];
    frame_len = hl + cfg.size;
}

/* Starts every operation that is due and has a free connection. */
static void dispatch_due(int64_t now)
{
    while (pace_next <= (double)now) {
        conn_t *c = free_pop();
        if (!c)
            return;                      /* all busy: the rest wait, and are charged for it */
        int64_t due = (int64_t)pace_next;
        pace_next += pace_interval;
        if (now - due > 1000)
            st.late++;
        if (connect_per_op())
            conn_start(c, due);
        else if (cfg.mode == M_HTTP) {
            if (start_request(c, due) < 0)
                conn_fail(c, &st.errors);
        } else if (queue_frame(c, due) < 0)
            conn_fail(c, &st.errors);
    }
}

/* epoll_wait with a microsecond timeout (epoll_pwait2 where the kernel has it):
 * pacing at thousands of operations a second needs better than milliseconds. */
static int wait_events(struct epoll_event *evs, int max, int64_t timeout_us)
{
    static int no_pwait2;

    if (timeout_us < 0)
        timeout_us = 0;
    if (!no_pwait2) {
        struct timespec ts = {timeout_us / 1000000, (timeout_us % 1000000) * 1000};
        int n = epoll_pwait2(epfd, evs, max, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        no_pwait2 = 1;
    }
    return epoll_wait(epfd, evs, max, (int)((timeout_us + 999) / 1000));
}

static void usage(void)
{
    fprintf(stderr,
            "usage: wsbench -p port [-a addr] [-m handshake|echo|throughput|idle|http]\n"
            "               [-c conns] [-d secs] [-s size] [-w window] [-H host] [-u path]\n"
            "               [-P subprotocol] [-k max-pending-connects] [-r ops-per-s] [-C]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const char *modes[] = {"handshake", "echo", "throughput", "idle", "http"};
    int opt;

    while ((opt = getopt(argc, argv, "a:p:m:c:d:s:w:H:u:P:k:r:C")) != -1) {
        switch (opt) {
        case 'a': cfg.addr = optarg; break;
        case 'p': cfg.port = atoi(optarg); break;
        case 'c': cfg.conns = atoi(optarg); break;
        case 'd': cfg.duration = atof(optarg); break;
        case 's': cfg.size = (size_t)atol(optarg); break;
        case 'w': cfg.window = atoi(optarg); break;
        case 'H': cfg.host = optarg; break;
        case 'u': cfg.path = optarg; break;
        case 'P': cfg.proto = optarg; break;
        case 'k': cfg.pending_max = atoi(optarg); break;
        case 'r': {
            char *end;
            cfg.rate = strtod(optarg, &end);
            if (end == optarg || *end)
                usage();
            break;
        }
        case 'C': cfg.http_close = 1; break;
        case 'm':
            cfg.mode = -1;
            for (int i = 0; i < 5; i++)
                if (strcmp(optarg, modes[i]) == 0)
                    cfg.mode = i;
            if (cfg.mode < 0)
                usage();
            break;
        default: usage();
        }
    }
    if (cfg.port <= 0 || cfg.conns <= 0 || cfg.window <= 0 || cfg.duration <= 0 ||
        cfg.pending_max <= 0 || cfg.rate < 0 || (cfg.http_close && cfg.mode != M_HTTP))
        usage();
    if (cfg.rate > 0) {
        if (cfg.mode == M_THROUGHPUT || cfg.mode == M_IDLE || cfg.window != 1) {
            fprintf(stderr, "wsbench: -r paces handshake, echo and http modes (window 1)\n");
            exit(2);
        }
        pace_interval = 1e6 / cfg.rate;
    }
    if (!cfg.host)
        cfg.host = cfg.addr;
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    memset(&target, 0, sizeof(target));
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)cfg.port);
    if (inet_pton(AF_INET, cfg.addr, &target.sin_addr) != 1)
        usage();
    build();

    epfd = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)cfg.conns, sizeof(*conns));
    free_stack = calloc((size_t)cfg.conns, sizeof(*free_stack));
    if (!conns || !free_stack)
        die("calloc");
    for (int i = 0; i < cfg.conns; i++)
        conns[i].state = S_DEAD;
    dead = cfg.conns;

    /* Connection set-up is bounded too: give up after 30 s + the run time. */
    int64_t start = now_us(), t_measure = 0, t_end = 0;
    int64_t setup_deadline = start + 30000000;
    int64_t t_ready = 0;
    struct epoll_event evs[1024];

    if (connect_per_op()) {
        measuring = 1;
        t_measure = start;
        t_end = start + (int64_t)(cfg.duration * 1e6);
        pace_next = (double)start;
        if (pace_interval)
            for (int i = cfg.conns - 1; i >= 0; i--)
                free_push(&conns[i]);
    }
    for (;;) {
        int64_t now = now_us();
        if (!t_end && (open_count == cfg.conns || now > setup_deadline)) {
            /* everything is open (or set-up timed out): start the measured phase */
            t_ready = now;
            t_measure = now;
            t_end = now + (int64_t)(cfg.duration * 1e6);
            measuring = 1;
            pace_next = (double)now;
            if (cfg.mode == M_IDLE) {
                printf("READY %d\n", open_count);
                fflush(stdout);
            }
        }
        if (t_end && now >= t_end)
            break;
        /* (re)open connections, at most pending_max in progress at once; when
         * paced, the pacer opens the per-operation ones */
        if (dead && !(cfg.mode == M_IDLE && t_end) && !(pace_interval && connect_per_op()))
            for (int i = 0; i < cfg.conns && connecting < cfg.pending_max; i++)
                if (conns[i].state == S_DEAD)
                    conn_start(&conns[i], now_us());
        int64_t timeout = 100000;
        if (pace_interval && t_end) {
            dispatch_due(now);
            if (nfree && pace_next - (double)now < (double)timeout)
                timeout = (int64_t)(pace_next - (double)now);
        }
        if (t_end && t_end - now < timeout)
            timeout = t_end - now;
        int n = wait_events(evs, 1024, timeout);
        for (int i = 0; i < n; i++)
            on_event(&conns[evs[i].data.u32], evs[i].events);
    }
    int64_t t_stop = now_us();
    int opened = open_count;
    double behind_ms = pace_interval && pace_next < (double)t_stop
                           ? ((double)t_stop - pace_next) / 1000.0 : 0.0;
    measuring = 0;
    draining = 1;
    for (int i = 0; i < cfg.conns; i++)
        conn_close(&conns[i]);

    double secs = (double)(t_stop - t_measure) / 1e6;
    double rate = cfg.mode == M_HANDSHAKE ? (double)st.handshakes / secs : (double)st.msgs / secs;
    printf("{\"tool\": \"wsbench\", \"mode\": \"%s\", \"conns\": %d, \"size\": %zu, "
           "\"window\": %d, \"seconds\": %.3f, \"setup_seconds\": %.3f, \"opened\": %d, "
           "\"handshakes\": %llu, \"messages\": %llu, \"bytes\": %llu, \"rate\": %.1f, "
           "\"mb_per_s\": %.2f, \"p50_us\": %lld, \"p99_us\": %lld, \"p999_us\": %lld, "
           "\"offered_rate\": %.1f, \"late\": %llu, \"behind_ms\": %.1f, \"errors\": %llu, "
           "\"connect_errors\": %llu, \"bad_handshakes\": %llu, \"bad_responses\": %llu, "
           "\"mismatches\": %llu, \"closed_by_peer\": %llu}\n",
           modes[cfg.mode], cfg.conns, cfg.size, cfg.window, secs,
           t_ready ? (double)(t_ready - start) / 1e6 : 0.0, opened,
           (unsigned long long)st.handshakes, (unsigned long long)st.msgs,
           (unsigned long long)st.bytes, rate, (double)st.bytes / secs / 1e6,
           (long long)hist_pct(&st.lat, 50), (long long)hist_pct(&st.lat, 99),
           (long long)hist_pct(&st.lat, 99.9), cfg.rate, (unsigned long long)st.late,
           behind_ms, (unsigned long long)st.errors, (unsigned long long)st.connect_errors,
           (unsigned long long)st.bad_handshakes, (unsigned long long)st.bad_responses,
           (unsigned long long)st.mismatches, (unsigned long long)st.closed_by_peer);
    return 0;
}
