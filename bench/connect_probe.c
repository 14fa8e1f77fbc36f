/*
 * connect_probe: how fast a broker takes new MQTT connections, measured in
 * C, independent of Kite's Deno load tool, for bench/c_connects.ts.
 *
 * One thread, one epoll. Keeps `concurrency` connections being set up at a
 * time: a non-blocking connect, then one write of a CONNECT (MQTT 3.1.1,
 * clean session, keep alive 0, a client id of its own), then the CONNACK.
 * A connection that got its CONNACK is left open (out of the epoll set) and
 * the next one starts, until `count` are open; then all are closed. Each
 * connection's set-up time (socket() to the CONNACK's read) is kept, so
 * p99.9 and max are over all of them. The connections end with a reset, so
 * no TIME_WAIT is left behind to slow the next run. `--warmup N` first
 * opens (and resets) N connections the same way, unmeasured, so a JIT
 * compiler's first seconds are not in the figures. `--pid P` adds the CPU
 * time process P (the broker) spent over the measured round.
 *
 *   cc -O2 -o connect_probe bench/connect_probe.c
 *   taskset -c 1 ./connect_probe --port 1883 [--count 10000] \
 *     [--concurrency 100] [--warmup 0] [--pid BROKER] [--host 127.0.0.1]
 *
 * Prints one JSON object on stdout; times in microseconds. A connection the
 * broker refuses (a CONNACK with a non-zero code) or closes is counted and
 * not retried. Exit status 1 with a one-line message on stderr when the
 * broker cannot be reached or answers with something other than a CONNACK.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROBE_NAME "connect_probe"
#include "probe_common.h"

/* One connection being set up: its socket, when it began, what it waits for. */
struct slot {
  int fd;
  int sent; /* CONNECT written: waiting for the CONNACK */
  uint64_t start;
  uint8_t got[4]; /* the CONNACK so far */
  int have;
};

static struct sockaddr_in addr;
static int ep;
static int serial;

static void begin(struct slot *s) {
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (s->fd < 0) die("socket: %s (raise the open file limit)", strerror(errno));
  s->start = now_ns();
  s->sent = 0;
  s->have = 0;
  int one = 1;
  setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(s->fd, (struct sockaddr *)&addr, sizeof addr) < 0 &&
      errno != EINPROGRESS) {
    die("connect: %s", strerror(errno));
  }
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = s};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
    die("epoll_ctl: %s", strerror(errno));
  }
}

/* What one round of connections got. */
struct round {
  int connected, refused, closed;
  double seconds, cpu, broker_cpu;
};

static const char *host = "127.0.0.1";
static int port;
static int broker_pid; /* --pid: the broker's CPU over the round */

/*
 * Opens `count` connections, `concurrency` being set up at a time, keeping
 * each one's set-up time in `times`; then resets them all.
 */
static struct round run_round(int count, int concurrency, uint64_t *times) {
  struct round r = {0};
  int *open_fds = malloc(sizeof(int) * (size_t)count);
  struct slot *slots = calloc((size_t)concurrency, sizeof *slots);
  struct epoll_event evs[256];
  uint8_t pkt[64];
  int started = 0, active = 0;
  double cpu0 = self_cpu();
  double broker0 = broker_pid ? process_cpu(broker_pid) : -1;
  uint64_t t0 = now_ns();
  for (int i = 0; i < concurrency; i++, started++, active++) begin(&slots[i]);
  while (active > 0) {
    int n = epoll_wait(ep, evs, 256, 10000);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait: %s", strerror(errno));
    if (n == 0) die("no answer from the broker for 10 s");
    for (int i = 0; i < n; i++) {
      struct slot *s = evs[i].data.ptr;
      int done = 0, ok = 0;
      if (!s->sent) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) die("connect to %s:%d: %s", host, port, strerror(err));
        char id[40];
        snprintf(id, sizeof id, "cprobe-%d-%d", (int)getpid(), serial++);
        size_t k = connect_packet(pkt, id, 1);
        if (write(s->fd, pkt, k) != (ssize_t)k) {
          die("write CONNECT: %s", strerror(errno));
        }
        s->sent = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
        continue;
      }
      ssize_t got = read(s->fd, s->got + s->have, (size_t)(4 - s->have));
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0) {
        r.closed++;
        done = 1;
      } else if ((s->have += (int)got) == 4) {
        if (s->got[0] != 0x20 || s->got[1] != 2) {
          die("expected a CONNACK, got packet type %d", s->got[0] >> 4);
        }
        if (s->got[3] == 0) ok = 1;
        else r.refused++;
        done = 1;
      }
      if (!done) continue;
      epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, 0);
      if (ok) {
        times[r.connected] = now_ns() - s->start;
        open_fds[r.connected++] = s->fd;
      } else {
        close(s->fd);
      }
      if (started < count) {
        begin(s);
        started++;
      } else {
        active--;
      }
    }
  }
  r.seconds = (double)(now_ns() - t0) / 1e9;
  r.cpu = self_cpu() - cpu0;
  double broker1 = broker_pid ? process_cpu(broker_pid) : -1;
  r.broker_cpu = broker0 < 0 || broker1 < 0 ? -1 : broker1 - broker0;
  /* Reset rather than close: no TIME_WAIT left to slow the next round's
   * connect()s (which search the port range past them). */
  struct linger hard = {.l_onoff = 1, .l_linger = 0};
  for (int i = 0; i < r.connected; i++) {
    setsockopt(open_fds[i], SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    close(open_fds[i]);
  }
  free(open_fds);
  free(slots);
  return r;
}

int main(int argc, char **argv) {
  int count = 10000, concurrency = 100, warmup = 0;
  static struct option opts[] = {
      {"host", required_argument, 0, 'h'},
      {"port", required_argument, 0, 'p'},
      {"count", required_argument, 0, 'n'},
      {"concurrency", required_argument, 0, 'c'},
      {"warmup", required_argument, 0, 'w'},
      {"pid", required_argument, 0, 'P'},
      {0, 0, 0, 0},
  };
  for (int o; (o = getopt_long(argc, argv, "", opts, 0)) != -1;) {
    if (o == 'h') host = optarg;
    else if (o == 'p') port = atoi(optarg);
    else if (o == 'n') count = atoi(optarg);
    else if (o == 'c') concurrency = atoi(optarg);
    else if (o == 'w') warmup = atoi(optarg);
    else if (o == 'P') broker_pid = atoi(optarg);
    else die("usage: connect_probe --port N [--count N] [--concurrency N] "
             "[--warmup N] [--pid BROKER] [--host ADDR]");
  }
  if (port <= 0 || count <= 0 || concurrency <= 0 || warmup < 0) {
    die("--port, --count and --concurrency must be positive");
  }
  raise_file_limit();
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) die("bad host %s", host);
  ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1: %s", strerror(errno));

  uint64_t *times = malloc(sizeof(uint64_t) * (size_t)(count > warmup ? count : warmup));
  if (warmup > 0) {
    run_round(warmup, concurrency < warmup ? concurrency : warmup, times);
    usleep(1000000); /* the broker's part of those resets, before measuring */
  }
  struct round r =
      run_round(count, concurrency < count ? concurrency : count, times);

  int connected = r.connected;
  printf("{\"count\":%d,\"concurrency\":%d,\"warmup\":%d,\"connected\":%d,"
         "\"refused\":%d,\"closed\":%d,\"seconds\":%.4f,"
         "\"connectsPerSec\":%.1f,\"probeCpuSeconds\":%.4f,",
         count, concurrency, warmup, connected, r.refused, r.closed, r.seconds,
         connected / r.seconds, r.cpu);
  print_dist("setup", times, (size_t)connected, 0);
  if (r.broker_cpu >= 0) printf(",\"brokerCpuSeconds\":%.4f", r.broker_cpu);
  printf("}\n");
  return 0;
}
