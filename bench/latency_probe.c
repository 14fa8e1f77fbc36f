/*
 * latency_probe: an MQTT 3.1.1 latency probe in C, independent of Kite's
 * Deno load tool (bench/load.ts), for bench/c_latency.ts.
 *
 * One thread, one epoll: a publisher and a subscriber connection to one
 * broker, QoS 0 PUBLISHes of a fixed payload on one topic at a fixed rate,
 * each written when a timerfd (no timer slack) says it is due, and each
 * delivery timed when the read that brought it returns. Latency is measured
 * from the time a message was due (a late write counts its lateness), and
 * also from its write. Every measured message is kept, so p99.9 and max are
 * over all of them. Optionally holds N idle connections (CONNECT, CONNACK,
 * then nothing) open while measuring; those a broker refuses (its
 * connection limit) are closed and counted as `idleRefused`. With
 * `--dump FILE`, also writes each measured message to FILE, one line each in
 * the order received: its sequence number, then its latency from the due
 * time and from the write, in nanoseconds (message i was due i / rate
 * seconds after the first; bench/latency_episodes.ts reads it).
 *
 *   cc -O2 -o latency_probe bench/latency_probe.c
 *   taskset -c 1 ./latency_probe --port 1883 --rate 10000 --warmup 10 \
 *     --duration 5 [--size 64] [--idle 10000] [--host 127.0.0.1] \
 *     [--dump latencies.txt]
 *
 * Prints one JSON object on stdout; times in microseconds. Exit status 1
 * with a one-line message on stderr when the broker cannot be reached or
 * answers wrongly.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define PROBE_NAME "latency_probe"
#include "probe_common.h"

#define TOPIC "probe/latency"
#define STAMP 24 /* payload head: sequence, due, written (3 x u64) */

static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get_u64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/*
 * Reads one whole packet (blocking). Returns its return code (CONNACK: the
 * second byte; SUBACK: the first granted QoS), or -1 when the broker closed
 * the connection first; dies on another packet type.
 */
static int answer(int fd, uint8_t type, const char *what) {
  uint8_t h, b, body[256];
  size_t len = 0, mul = 1;
  ssize_t r;
  while ((r = read(fd, &h, 1)) < 0 && errno == EINTR) {
  }
  if (r == 0 || (r < 0 && errno == ECONNRESET)) return -1;
  if (r < 0) die("%s: read: %s", what, strerror(errno));
  do {
    read_all(fd, &b, 1);
    len += (b & 127) * mul;
    mul *= 128;
  } while (b & 128);
  if (len > sizeof body) die("%s: a %zu-byte answer", what, len);
  read_all(fd, body, len);
  if ((h >> 4) != type || len == 0) {
    die("%s: packet type %d, %zu bytes", what, h >> 4, len);
  }
  return len < 3 ? body[len - 1] : body[type == 2 ? 1 : 2];
}

static void expect(int fd, uint8_t type, const char *what) {
  int code = answer(fd, type, what);
  if (code < 0) die("%s: the broker closed the connection", what);
  if (code != 0) die("%s: refused (code %d)", what, code);
}

static int dial(const char *host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket: %s", strerror(errno));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) die("bad host %s", host);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    die("connect to %s:%d: %s", host, port, strerror(errno));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static int open_client(const char *host, int port, const char *id) {
  uint8_t buf[128];
  int fd = dial(host, port);
  write_all(fd, buf, connect_packet(buf, id, 1));
  expect(fd, 2, "CONNACK");
  return fd;
}

/*
 * Opens n idle connections, 200 at a time: CONNECTs first, then CONNACKs.
 * Returns how many the broker refused (its connection limit) and closes
 * those.
 */
static int open_idle(const char *host, int port, int n) {
  int refused = 0;
  uint8_t buf[128];
  char id[48];
  int batch[200];
  for (int done = 0; done < n;) {
    int k = n - done < 200 ? n - done : 200;
    for (int j = 0; j < k; j++) {
      batch[j] = dial(host, port);
      snprintf(id, sizeof id, "probe-idle-%d-%d", (int)getpid(), done + j);
      write_all(batch[j], buf, connect_packet(buf, id, 1));
    }
    for (int j = 0; j < k; j++) {
      if (answer(batch[j], 2, "idle CONNACK") != 0) {
        close(batch[j]);
        refused++;
      }
    }
    done += k;
  }
  return refused;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *dump = 0;
  int port = 1883, size = 64, idle = 0;
  double rate = 10000, warmup = 10, duration = 5;
  static struct option opts[] = {
      {"host", 1, 0, 'h'},   {"port", 1, 0, 'p'},     {"rate", 1, 0, 'r'},
      {"warmup", 1, 0, 'w'}, {"duration", 1, 0, 'd'}, {"size", 1, 0, 's'},
      {"idle", 1, 0, 'i'},   {"dump", 1, 0, 'o'},     {0, 0, 0, 0}};
  for (int c; (c = getopt_long(argc, argv, "", opts, 0)) != -1;) {
    switch (c) {
    case 'h': host = optarg; break;
    case 'p': port = atoi(optarg); break;
    case 'r': rate = atof(optarg); break;
    case 'w': warmup = atof(optarg); break;
    case 'd': duration = atof(optarg); break;
    case 's': size = atoi(optarg); break;
    case 'i': idle = atoi(optarg); break;
    case 'o': dump = optarg; break;
    default:
      fprintf(stderr, "usage: latency_probe --port N [--host H] [--rate R] "
                      "[--warmup S] [--duration S] [--size B] [--idle N] "
                      "[--dump FILE]\n");
      return 2;
    }
  }
  if (rate <= 0 || duration <= 0 || warmup < 0 || size < STAMP ||
      size > 4096 || idle < 0) {
    die("bad arguments: rate > 0, duration > 0, %d <= size <= 4096", STAMP);
  }
  raise_file_limit();

  char id[48];
  snprintf(id, sizeof id, "probe-sub-%d", (int)getpid());
  int sub = open_client(host, port, id);
  uint8_t pkt[4200];
  size_t tlen = strlen(TOPIC), i = 0;
  pkt[i++] = 0x82; /* SUBSCRIBE, packet id 1, QoS 0 */
  i += put_varint(pkt + i, 2 + 2 + tlen + 1);
  pkt[i++] = 0;
  pkt[i++] = 1;
  pkt[i++] = 0;
  pkt[i++] = (uint8_t)tlen;
  memcpy(pkt + i, TOPIC, tlen);
  i += tlen;
  pkt[i++] = 0;
  write_all(sub, pkt, i);
  expect(sub, 9, "SUBACK");
  snprintf(id, sizeof id, "probe-pub-%d", (int)getpid());
  int pub = open_client(host, port, id);
  int refused = idle ? open_idle(host, port, idle) : 0;

  /* The PUBLISH, written with its stamps filled in each time. */
  size_t plen = 0;
  pkt[plen++] = 0x30;
  plen += put_varint(pkt + plen, 2 + tlen + (size_t)size);
  pkt[plen++] = 0;
  pkt[plen++] = (uint8_t)tlen;
  memcpy(pkt + plen, TOPIC, tlen);
  plen += tlen;
  uint8_t *payload = pkt + plen;
  memset(payload, 'x', (size_t)size);
  plen += (size_t)size;

  fcntl(sub, F_SETFL, fcntl(sub, F_GETFL) | O_NONBLOCK);
  int ep = epoll_create1(0);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  if (ep < 0 || tfd < 0) die("epoll/timerfd: %s", strerror(errno));
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = sub};
  epoll_ctl(ep, EPOLL_CTL_ADD, sub, &ev);
  ev.data.fd = tfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);

  uint64_t period = (uint64_t)(1e9 / rate);
  uint64_t total = (uint64_t)((warmup + duration) * rate + 0.5);
  uint64_t measured_from = (uint64_t)(warmup * rate + 0.5);
  size_t cap = (size_t)(total - measured_from) + 1;
  uint64_t *lat = malloc(cap * 8), *from_write = malloc(cap * 8),
           *lag = malloc(cap * 8), *seqs = dump ? malloc(cap * 8) : 0;
  if (!lat || !from_write || !lag || (dump && !seqs)) die("out of memory");
  size_t nlat = 0, nlag = 0;
  uint64_t received = 0, misordered = 0, last_seq = 0, have_last = 0;

  size_t rcap = 1 << 20, rlen = 0;
  uint8_t *rbuf = malloc(rcap);
  uint64_t t0 = now_ns() + 10000000u, next = 0;
  uint64_t drain_until = 0;
  struct itimerspec its = {0};
  struct rusage ru0;
  getrusage(RUSAGE_SELF, &ru0);

  for (;;) {
    uint64_t t = now_ns();
    /* Write every message now due, each with its own write. */
    while (next < total && t0 + next * period <= t) {
      uint64_t due = t0 + next * period;
      put_u64(payload, next);
      put_u64(payload + 8, due);
      uint64_t w = now_ns();
      put_u64(payload + 16, w);
      write_all(pub, pkt, plen);
      if (next >= measured_from) lag[nlag++] = w - due;
      next++;
      t = now_ns();
    }
    if (next >= total && drain_until == 0) drain_until = t + 2000000000u;
    if (drain_until && (received >= total || t >= drain_until)) break;
    int timeout = -1;
    if (next < total) {
      uint64_t due = t0 + next * period;
      its.it_value.tv_sec = (time_t)(due / 1000000000u);
      its.it_value.tv_nsec = (long)(due % 1000000000u);
      timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, 0);
    } else {
      timeout = (int)((drain_until - t) / 1000000u) + 1;
    }
    struct epoll_event evs[2];
    int n = epoll_wait(ep, evs, 2, timeout);
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int e = 0; e < n; e++) {
      if (evs[e].data.fd == tfd) {
        uint64_t x;
        while (read(tfd, &x, 8) > 0) {
        }
        continue;
      }
      for (;;) {
        if (rlen == rcap) die("a packet larger than %zu bytes", rcap);
        ssize_t r = read(sub, rbuf + rlen, rcap - rlen);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break;
        if (r <= 0) die("the broker closed the subscriber's connection");
        uint64_t at = now_ns();
        rlen += (size_t)r;
        size_t off = 0;
        for (;;) {
          size_t len = 0, mul = 1, h = off + 1;
          int whole = 0;
          while (h < rlen) {
            uint8_t b = rbuf[h++];
            len += (b & 127) * mul;
            mul *= 128;
            if (!(b & 128)) {
              whole = 1;
              break;
            }
          }
          if (!whole || h + len > rlen) break;
          if ((rbuf[off] >> 4) == 3) {
            size_t tl = ((size_t)rbuf[h] << 8) | rbuf[h + 1];
            const uint8_t *p = rbuf + h + 2 + tl;
            if ((rbuf[off] & 6) != 0) p += 2; /* a packet id */
            uint64_t seq = get_u64(p), due = get_u64(p + 8),
                     w = get_u64(p + 16);
            if (have_last && seq <= last_seq) misordered++;
            last_seq = seq;
            have_last = 1;
            received++;
            if (seq >= measured_from && nlat < cap) {
              if (seqs) seqs[nlat] = seq;
              lat[nlat] = at - due;
              from_write[nlat++] = at - w;
            }
          }
          off = h + len;
        }
        memmove(rbuf, rbuf + off, rlen - off);
        rlen -= off;
      }
    }
  }
  if (dump) {
    FILE *f = fopen(dump, "w");
    if (!f) die("%s: %s", dump, strerror(errno));
    for (size_t k = 0; k < nlat; k++) {
      fprintf(f, "%llu %llu %llu\n", (unsigned long long)seqs[k],
              (unsigned long long)lat[k], (unsigned long long)from_write[k]);
    }
    if (fclose(f) != 0) die("%s: %s", dump, strerror(errno));
  }
  struct rusage ru1;
  getrusage(RUSAGE_SELF, &ru1);
  double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec +
                        ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
               (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
                        ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) /
                   1e6;
  printf("{\"rate\":%.0f,\"size\":%d,\"idle\":%d,\"sent\":%llu,"
         "\"measured\":%llu,\"received\":%zu,\"lost\":%llu,"
         "\"misordered\":%llu,\"probeCpuSeconds\":%.3f,\"idleRefused\":%d,",
         rate, size, idle - refused, (unsigned long long)total,
         (unsigned long long)(total - measured_from), nlat,
         (unsigned long long)(total - measured_from - nlat),
         (unsigned long long)misordered, cpu, refused);
  print_dist("latency", lat, nlat, 1);
  print_dist("fromWrite", from_write, nlat, 1);
  print_dist("sendLag", lag, nlag, 0);
  printf("}\n");
  return 0;
}
