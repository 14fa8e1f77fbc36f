/*
 * What bench/latency_probe.c, bench/connect_probe.c and bench/fleet_probe.c
 * share: errors, the clock, MQTT's variable-length integer and CONNECT, whole reads and
 * writes, percentiles, and CPU time. Each includes it after defining
 * PROBE_NAME (the prefix of its error lines).
 */
#ifndef PROBE_COMMON_H
#define PROBE_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Prints "PROBE_NAME: <message>" on stderr and exits with status 1. */
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs(PROBE_NAME ": ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* MQTT's variable-length integer; returns its length. */
static inline size_t put_varint(uint8_t *p, size_t n) {
  size_t i = 0;
  do {
    uint8_t b = n % 128;
    n /= 128;
    p[i++] = n ? b | 0x80 : b;
  } while (n);
  return i;
}

/* Writes all of p (a non-blocking socket is retried while full). */
static inline void write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (w <= 0) die("write: %s", strerror(errno));
    p += w;
    n -= (size_t)w;
  }
}

/* Reads exactly n bytes (blocking); dies on EOF or an error. */
static inline void read_all(int fd, uint8_t *p, size_t n) {
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) die("the broker closed a connection during set-up");
    if (r < 0) die("read: %s", strerror(errno));
    p += r;
    n -= (size_t)r;
  }
}

static inline int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentiles of n values in ns (sorted in place), as µs. */
static inline void print_dist(const char *name, uint64_t *v, size_t n, int comma) {
  qsort(v, n, sizeof *v, cmp_u64);
  static const double q[] = {0.5, 0.9, 0.99, 0.999};
  static const char *k[] = {"p50", "p90", "p99", "p999"};
  printf("\"%s\":{", name);
  for (int i = 0; i < 4; i++) {
    size_t r = (size_t)(q[i] * (double)n + 0.999999);
    double us = n ? (double)v[(r ? r : 1) - 1] / 1000.0 : 0;
    printf("\"%s\":%.1f,", k[i], us);
  }
  printf("\"max\":%.1f}%s", n ? (double)v[n - 1] / 1000.0 : 0, comma ? "," : "");
}

/* This process's CPU time so far, in seconds. */
static inline double self_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*
 * CPU time of all of process pid's threads so far, in seconds (the sum of
 * each /proc/PID/task/TID/schedstat, in ns), or -1 when unreadable.
 */
static inline double process_cpu(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return -1;
  uint64_t ns = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char f[300];
    snprintf(f, sizeof f, "/proc/%d/task/%s/schedstat", pid, e->d_name);
    FILE *fp = fopen(f, "r");
    if (!fp) continue;
    unsigned long long t;
    if (fscanf(fp, "%llu", &t) == 1) ns += t;
    fclose(fp);
  }
  closedir(d);
  return (double)ns / 1e9;
}

/* A CONNECT (MQTT 3.1.1, keep alive 0) for client `id`: Clean Session 1
 * when `clean`, else 0 (a persistent session). Returns its length. */
static inline size_t connect_packet(uint8_t *p, const char *id, int clean) {
  size_t idlen = strlen(id), i = 0;
  p[i++] = 0x10;
  i += put_varint(p + i, 10 + 2 + idlen);
  memcpy(p + i, clean ? "\0\4MQTT\4\2\0\0" : "\0\4MQTT\4\0\0\0", 10);
  i += 10;
  p[i++] = (uint8_t)(idlen >> 8);
  p[i++] = (uint8_t)idlen;
  memcpy(p + i, id, idlen);
  return i + idlen;
}

/* Raises the open file limit to its hard limit (many connections). */
static inline void raise_file_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

#endif
