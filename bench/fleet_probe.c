/*
 * fleet_probe: issue 20's fleet scenario measured in C, independent of
 * Kite's Deno load tool (bench/_fleet.ts), for bench/c_fleet.ts.
 *
 * N devices (10,000 by default) each publish one QoS 1 message a second
 * (200 bytes) on fleet/<i>/telemetry, their sends spread evenly over the
 * second; five subscribers take fleet/+/telemetry and one takes #, all at
 * QoS 1; every client has a persistent session (MQTT 3.1.1, Clean Session
 * 0). Each second the next 1% of the devices reconnect: right after the
 * PUBACK of their next message (nothing in flight) they send DISCONNECT,
 * close, and connect again under the same client id, expecting their
 * session back; messages that fall due meanwhile are sent once they are
 * back, with their due time.
 *
 * One thread, one epoll, waiting with epoll_pwait2 (nanosecond timeout, no
 * timer slack) until the next device is due; each message is one write, stamped with its device,
 * sequence number, due time and write time. Subscribers read as much as is
 * there and answer every QoS 1 PUBLISH of one read with one write of
 * PUBACKs. Latency is from the due time to the read that brought the
 * message, over every message due in the measured window, at all six
 * subscribers; every one is kept, so p99.9 and max are exact. After the
 * last send the probe waits (up to 10 s) for everything to arrive; lost is
 * what any subscriber never got.
 *
 *   cc -O2 -o fleet_probe bench/fleet_probe.c
 *   taskset -c 1 ./fleet_probe --port 1883 [--devices 10000] [--warmup 5] \
 *     [--duration 10] [--payload 200] [--reconnect 1] [--pid BROKER]
 *
 * `--pid` adds the broker's CPU over the measured window (all its
 * threads) and its RSS at the end of it. Prints one JSON object on stdout,
 * times in microseconds; exit status 1 with a one-line message on stderr
 * when the broker cannot be reached or answers wrongly.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
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
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define PROBE_NAME "fleet_probe"
#include "probe_common.h"

#define SUBS 6
#define STAMP 24 /* payload head: device, seq (u32 each), due, written (u64) */
#define PENDING 16

static const char *FILTERS[SUBS] = {
    "fleet/+/telemetry", "fleet/+/telemetry", "fleet/+/telemetry",
    "fleet/+/telemetry", "fleet/+/telemetry", "#"};

static struct sockaddr_in addr;
static const char *host = "127.0.0.1";
static int port;

static int dial(int nonblocking) {
  int fd = socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) die("socket: %s (raise the open file limit)", strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 &&
      !(nonblocking && errno == EINPROGRESS)) {
    die("connect to %s:%d: %s", host, port, strerror(errno));
  }
  return fd;
}

/* Reads a CONNACK (blocking); dies unless accepted. */
static void expect_connack(int fd) {
  uint8_t b[4];
  read_all(fd, b, 4);
  if (b[0] != 0x20 || b[1] != 2) die("expected a CONNACK, got type %d", b[0] >> 4);
  if (b[3] != 0) die("CONNECT refused (code %d)", b[3]);
}

static char run_id[16];

static void device_id(char *id, size_t n, int i) {
  snprintf(id, n, "cfleet-%s-d%d", run_id, i);
}

/* A device: its socket, counts, and what fell due while it reconnected. */
struct device {
  int fd;
  uint32_t sent, acked;
  int up;         /* connected (else reconnecting) */
  int reconnect;  /* reconnect after the next PUBACK */
  int connecting; /* reconnect: 1 connect() pending, 2 CONNACK awaited */
  uint8_t in[4];
  int have;
  uint64_t gone; /* when the reconnect began */
  uint64_t pending[PENDING];
  int npending;
};

struct sub {
  int fd;
  uint8_t *buf;
  size_t len;
  uint32_t *next_seq; /* per device: the next sequence number expected */
};

static long process_rss_kb(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *fp = fopen(path, "r");
  long kb = -1;
  if (!fp) return -1;
  while (fgets(line, sizeof line, fp)) {
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  }
  fclose(fp);
  return kb;
}

static int ep;
static struct device *devs;
static int ndev;
static int payload_size = 200;
static uint8_t pkt[4200];
static uint64_t window_from, window_to;
static uint64_t *send_lag;
static size_t nlag, cap;
static uint64_t *reconnect_times;
static size_t nreconnect, reconnect_failures, session_lost;

static void watch(int fd, uint32_t key, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.u32 = key};
  if (epoll_ctl(ep, op, fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
}

/* Writes device i's next message, due at `due`. */
static void send_message(int i, uint64_t due) {
  struct device *d = &devs[i];
  char topic[48];
  int tlen = snprintf(topic, sizeof topic, "fleet/%d/telemetry", i);
  size_t n = 0;
  pkt[n++] = 0x32; /* PUBLISH, QoS 1 */
  n += put_varint(pkt + n, 2 + (size_t)tlen + 2 + (size_t)payload_size);
  pkt[n++] = 0;
  pkt[n++] = (uint8_t)tlen;
  memcpy(pkt + n, topic, (size_t)tlen);
  n += (size_t)tlen;
  uint16_t id = (uint16_t)(d->sent % 65535 + 1);
  pkt[n++] = (uint8_t)(id >> 8);
  pkt[n++] = (uint8_t)id;
  uint8_t *p = pkt + n;
  uint32_t dev = (uint32_t)i, seq = d->sent;
  uint64_t w = now_ns();
  memcpy(p, &dev, 4);
  memcpy(p + 4, &seq, 4);
  memcpy(p + 8, &due, 8);
  memcpy(p + 16, &w, 8);
  n += (size_t)payload_size;
  write_all(d->fd, pkt, n);
  d->sent++;
  if (due >= window_from && due < window_to && nlag < cap) send_lag[nlag++] = w - due;
}

static void begin_reconnect(int i) {
  struct device *d = &devs[i];
  static const uint8_t disconnect[2] = {0xe0, 0};
  write_all(d->fd, disconnect, 2);
  epoll_ctl(ep, EPOLL_CTL_DEL, d->fd, 0);
  close(d->fd);
  d->up = 0;
  d->reconnect = 0;
  d->gone = now_ns();
  d->fd = dial(1);
  d->connecting = 1;
  d->have = 0;
  watch(d->fd, (uint32_t)i, EPOLLOUT | EPOLLIN, EPOLL_CTL_ADD);
}

static void on_device(int i) {
  struct device *d = &devs[i];
  if (d->connecting == 1) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) die("reconnect to %s:%d: %s", host, port, strerror(err));
    char id[64];
    device_id(id, sizeof id, i);
    uint8_t buf[128];
    write_all(d->fd, buf, connect_packet(buf, id, 0));
    d->connecting = 2;
    watch(d->fd, (uint32_t)i, EPOLLIN, EPOLL_CTL_MOD);
    return;
  }
  for (;;) {
    ssize_t r = read(d->fd, d->in + d->have, (size_t)(4 - d->have));
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r == 0) die("the broker closed device %d's connection", i);
    if (r < 0) die("device %d: read: %s", i, strerror(errno));
    if ((d->have += (int)r) < 4) continue;
    d->have = 0;
    if (d->connecting == 2) {
      if (d->in[0] != 0x20 || d->in[3] != 0) {
        reconnect_failures++;
        die("device %d: reconnect refused (type %d, code %d)", i,
            d->in[0] >> 4, d->in[3]);
      }
      if (!(d->in[2] & 1)) session_lost++;
      d->connecting = 0;
      d->up = 1;
      reconnect_times[nreconnect++] = now_ns() - d->gone;
      for (int k = 0; k < d->npending; k++) send_message(i, d->pending[k]);
      d->npending = 0;
      continue;
    }
    if (d->in[0] != 0x40) die("device %d: packet type %d", i, d->in[0] >> 4);
    d->acked++;
    if (d->reconnect && d->acked == d->sent) {
      begin_reconnect(i);
      return;
    }
  }
}

int main(int argc, char **argv) {
  double warmup = 5, duration = 10, reconnect_pct = 1;
  int broker_pid = 0;
  ndev = 10000;
  static struct option opts[] = {
      {"host", 1, 0, 'h'},     {"port", 1, 0, 'p'},      {"devices", 1, 0, 'n'},
      {"warmup", 1, 0, 'w'},   {"duration", 1, 0, 'd'},  {"payload", 1, 0, 's'},
      {"reconnect", 1, 0, 'r'}, {"pid", 1, 0, 'P'},      {0, 0, 0, 0}};
  for (int c; (c = getopt_long(argc, argv, "", opts, 0)) != -1;) {
    switch (c) {
    case 'h': host = optarg; break;
    case 'p': port = atoi(optarg); break;
    case 'n': ndev = atoi(optarg); break;
    case 'w': warmup = atof(optarg); break;
    case 'd': duration = atof(optarg); break;
    case 's': payload_size = atoi(optarg); break;
    case 'r': reconnect_pct = atof(optarg); break;
    case 'P': broker_pid = atoi(optarg); break;
    default:
      die("usage: fleet_probe --port N [--devices N] [--warmup S] "
          "[--duration S] [--payload B] [--reconnect PCT] [--pid BROKER] "
          "[--host ADDR]");
    }
  }
  if (port <= 0 || ndev <= 0 || ndev > 1000000 || duration <= 0 ||
      warmup < 0 || payload_size < STAMP || payload_size > 4000 ||
      reconnect_pct < 0 || reconnect_pct > 100) {
    die("bad arguments: --port and --devices > 0, --duration > 0, "
        "%d <= --payload <= 4000, 0 <= --reconnect <= 100", STAMP);
  }
  raise_file_limit();
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) die("bad host %s", host);
  snprintf(run_id, sizeof run_id, "%x", (unsigned)(now_ns() ^ (uint64_t)getpid()) & 0xffffff);
  ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1: %s", strerror(errno));

  /* Subscribers: persistent sessions, QoS 1. */
  struct sub subs[SUBS];
  uint8_t buf[256];
  char id[64];
  for (int s = 0; s < SUBS; s++) {
    snprintf(id, sizeof id, "cfleet-%s-sub%d", run_id, s);
    subs[s].fd = dial(0);
    write_all(subs[s].fd, buf, connect_packet(buf, id, 0));
    expect_connack(subs[s].fd);
    size_t flen = strlen(FILTERS[s]), i = 0;
    buf[i++] = 0x82;
    i += put_varint(buf + i, 2 + 2 + flen + 1);
    buf[i++] = 0;
    buf[i++] = 1;
    buf[i++] = 0;
    buf[i++] = (uint8_t)flen;
    memcpy(buf + i, FILTERS[s], flen);
    i += flen;
    buf[i++] = 1;
    write_all(subs[s].fd, buf, i);
    uint8_t ack[5];
    read_all(subs[s].fd, ack, 5);
    if (ack[0] != 0x90 || ack[4] != 1) die("SUBSCRIBE %s refused", FILTERS[s]);
    fcntl(subs[s].fd, F_SETFL, fcntl(subs[s].fd, F_GETFL) | O_NONBLOCK);
    subs[s].buf = malloc(1 << 22);
    subs[s].len = 0;
    subs[s].next_seq = calloc((size_t)ndev, 4);
    watch(subs[s].fd, (uint32_t)(ndev + s), EPOLLIN, EPOLL_CTL_ADD);
  }

  /* Devices, 200 CONNECTs at a time, then their CONNACKs. */
  devs = calloc((size_t)ndev, sizeof *devs);
  uint64_t c0 = now_ns();
  for (int done = 0; done < ndev;) {
    int k = ndev - done < 200 ? ndev - done : 200;
    for (int j = 0; j < k; j++) {
      devs[done + j].fd = dial(0);
      device_id(id, sizeof id, done + j);
      write_all(devs[done + j].fd, buf, connect_packet(buf, id, 0));
    }
    for (int j = 0; j < k; j++) {
      struct device *d = &devs[done + j];
      expect_connack(d->fd);
      fcntl(d->fd, F_SETFL, fcntl(d->fd, F_GETFL) | O_NONBLOCK);
      d->up = 1;
      watch(d->fd, (uint32_t)(done + j), EPOLLIN, EPOLL_CTL_ADD);
    }
    done += k;
  }
  double connect_seconds = (double)(now_ns() - c0) / 1e9;

  /* epoll_pwait2's timeout without the default 50 µs of timer slack. */
  int coarse = 0; /* no epoll_pwait2 here: epoll_wait's milliseconds */
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  uint64_t slot = (uint64_t)(1e9 / ndev);
  uint64_t t0 = now_ns() + 10000000u;
  uint64_t total = (uint64_t)((warmup + duration) * ndev + 0.5);
  window_from = t0 + (uint64_t)(warmup * 1e9);
  window_to = window_from + (uint64_t)(duration * 1e9);
  int per_round = (int)(ndev * reconnect_pct / 100 + 0.5);
  cap = (size_t)(duration * ndev * SUBS) + 16;
  uint64_t *lat = malloc(cap * 8);
  send_lag = malloc(cap * 8);
  reconnect_times = malloc(((size_t)(warmup + duration + 12) * (size_t)per_round + 16) * 8);
  if (!lat || !send_lag || !reconnect_times) die("out of memory");
  size_t nlat = 0;
  uint64_t delivered = 0, misordered = 0;
  uint64_t next = 0, next_round = t0 + 1000000000u;
  int round_start = 0;
  double broker0 = -1, broker1 = -1, self0 = 0, self1 = 0;
  long rss = -1;
  int in_window = 0;
  uint64_t measured_from = 0, measured_to = 0;
  uint64_t drain_until = 0;
  uint8_t acks[1 << 16];
  struct epoll_event evs[512];

  for (;;) {
    uint64_t t = now_ns();
    if (!in_window && t >= window_from) {
      in_window = 1;
      if (broker_pid) broker0 = process_cpu(broker_pid);
      self0 = self_cpu();
      measured_from = t;
    } else if (in_window == 1 && (t >= window_to || next >= total)) {
      /* The window ends with its last send (due just before window_to). */
      in_window = 2;
      if (broker_pid) {
        broker1 = process_cpu(broker_pid);
        rss = process_rss_kb(broker_pid);
      }
      self1 = self_cpu();
      measured_to = t;
    }
    while (next < total && t0 + next * slot <= t) {
      int i = (int)(next % (uint64_t)ndev);
      uint64_t due = t0 + next * slot;
      if (devs[i].up) send_message(i, due);
      else if (devs[i].npending < PENDING) devs[i].pending[devs[i].npending++] = due;
      else die("device %d: %d messages due while reconnecting", i, PENDING);
      next++;
      t = now_ns();
    }
    while (per_round > 0 && next < total && t >= next_round) {
      for (int j = 0; j < per_round; j++) devs[(round_start + j) % ndev].reconnect = 1;
      round_start = (round_start + per_round) % ndev;
      next_round += 1000000000u;
    }
    if (next >= total && drain_until == 0) drain_until = t + 10000000000u;
    if (drain_until) {
      uint64_t sent = 0, acked = 0;
      int reconnecting = 0;
      for (int i = 0; i < ndev; i++) {
        sent += devs[i].sent;
        acked += devs[i].acked;
        reconnecting |= !devs[i].up;
      }
      if ((!reconnecting && delivered >= sent * SUBS && acked == sent) ||
          t >= drain_until) {
        break;
      }
    }
    /* Wait for the next due time (or 10 ms while draining). */
    uint64_t wait = 10000000u;
    if (next < total) {
      uint64_t due = t0 + next * slot;
      if (!in_window && window_from < due) due = window_from;
      t = now_ns();
      wait = due > t ? due - t : 0;
    }
    struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000u),
                          .tv_nsec = (long)(wait % 1000000000u)};
    int n = coarse ? -1 : epoll_pwait2(ep, evs, 512, &ts, 0);
    if (n < 0 && !coarse && errno == ENOSYS) coarse = 1; /* a kernel < 5.11 */
    if (coarse) {
      /* Milliseconds, rounded up: later sends, which sendLag shows. */
      n = epoll_wait(ep, evs, 512, (int)((wait + 999999) / 1000000));
    }
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int e = 0; e < n; e++) {
      uint32_t key = evs[e].data.u32;
      if (key < (uint32_t)ndev) {
        on_device((int)key);
        continue;
      }
      struct sub *s = &subs[key - (uint32_t)ndev];
      for (;;) {
        if (s->len == (1 << 22)) die("a packet larger than 4 MiB");
        ssize_t r = read(s->fd, s->buf + s->len, (1 << 22) - s->len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break;
        if (r <= 0) die("the broker closed a subscriber's connection");
        uint64_t at = now_ns();
        s->len += (size_t)r;
        size_t off = 0, nacks = 0;
        for (;;) {
          size_t len = 0, mul = 1, h = off + 1;
          int whole = 0;
          while (h < s->len) {
            uint8_t b = s->buf[h++];
            len += (b & 127) * mul;
            mul *= 128;
            if (!(b & 128)) {
              whole = 1;
              break;
            }
          }
          if (!whole || h + len > s->len) break;
          uint8_t first = s->buf[off];
          if ((first >> 4) == 3) {
            size_t tl = ((size_t)s->buf[h] << 8) | s->buf[h + 1];
            const uint8_t *p = s->buf + h + 2 + tl;
            if (first & 6) {
              if (nacks + 4 > sizeof acks) {
                write_all(s->fd, acks, nacks);
                nacks = 0;
              }
              acks[nacks++] = 0x40;
              acks[nacks++] = 2;
              acks[nacks++] = p[0];
              acks[nacks++] = p[1];
              p += 2;
            }
            uint32_t dev, seq;
            uint64_t due;
            memcpy(&dev, p, 4);
            memcpy(&seq, p + 4, 4);
            memcpy(&due, p + 8, 8);
            if (dev < (uint32_t)ndev) {
              if (seq != s->next_seq[dev]) misordered++;
              if (seq >= s->next_seq[dev]) s->next_seq[dev] = seq + 1;
              delivered++;
              if (due >= window_from && due < window_to && nlat < cap) {
                lat[nlat++] = at - due;
              }
            }
          }
          off = h + len;
        }
        if (nacks) write_all(s->fd, acks, nacks);
        memmove(s->buf, s->buf + off, s->len - off);
        s->len -= off;
      }
    }
  }
  if (in_window != 2) die("the measured window never ended");
  uint64_t sent = 0, acked = 0;
  for (int i = 0; i < ndev; i++) {
    sent += devs[i].sent;
    acked += devs[i].acked;
  }
  double seconds = (double)(measured_to - measured_from) / 1e9;
  printf("{\"devices\":%d,\"subscribers\":%d,\"payload\":%d,\"warmup\":%.1f,"
         "\"duration\":%.1f,\"connectSeconds\":%.3f,\"sent\":%llu,"
         "\"expected\":%llu,\"delivered\":%llu,\"lost\":%lld,"
         "\"misordered\":%llu,\"unacked\":%llu,\"reconnects\":%zu,"
         "\"reconnectFailures\":%zu,\"sessionLost\":%zu,"
         "\"probeCpuSeconds\":%.3f,",
         ndev, SUBS, payload_size, warmup, duration, connect_seconds,
         (unsigned long long)sent, (unsigned long long)(sent * SUBS),
         (unsigned long long)delivered,
         (long long)(sent * SUBS) - (long long)delivered,
         (unsigned long long)misordered, (unsigned long long)(sent - acked),
         nreconnect, reconnect_failures, session_lost, self1 - self0);
  if (broker0 >= 0 && broker1 >= 0) {
    printf("\"brokerCpuSeconds\":%.3f,\"brokerCpuPct\":%.1f,", broker1 - broker0,
           (broker1 - broker0) / seconds * 100);
  }
  if (rss >= 0) printf("\"brokerRssKB\":%ld,", rss);
  print_dist("latency", lat, nlat, 1);
  print_dist("sendLag", send_lag, nlag, 1);
  print_dist("reconnect", reconnect_times, nreconnect, 0);
  printf("}\n");
  /* Reset, not close: no TIME_WAIT for the next run's connects. */
  struct linger hard = {.l_onoff = 1, .l_linger = 0};
  for (int s = 0; s < SUBS; s++) {
    setsockopt(subs[s].fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    close(subs[s].fd);
  }
  for (int i = 0; i < ndev; i++) {
    setsockopt(devs[i].fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    close(devs[i].fd);
  }
  return 0;
}
