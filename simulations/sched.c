#define _POSIX_C_SOURCE 200809L
/* vix-sim: the scheduled-event grammar (see sched.h). */
#include "sched.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool errf(char *err, size_t err_bytes, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool errf(char *err, size_t err_bytes, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, err_bytes, fmt, ap);
  va_end(ap);
  return false;
}

static bool node_num(const char *s, uint32_t nodes, int64_t *out, bool random_ok) {
  if (random_ok && strcmp(s, "random") == 0) {
    *out = SCH_RANDOM;
    return true;
  }
  if (!isdigit((unsigned char)s[0])) return false;
  char *end = NULL;
  unsigned long v = strtoul(s, &end, 10);
  if (*end != '\0' || v >= nodes) return false;
  *out = (int64_t)v;
  return true;
}

static bool signed_ms(const char *s, int64_t *out) {
  bool neg = s[0] == '-';
  uint64_t v;
  if (!sim_parse_ms(s + (neg || s[0] == '+' ? 1 : 0), &v) || v > (uint64_t)INT64_MAX) return false;
  *out = neg ? -(int64_t)v : (int64_t)v;
  return true;
}

static bool range_arg(const char *s, sim_range *r) {
  char lo[32];
  const char *dash = strchr(s, '-');
  if (dash == NULL || (size_t)(dash - s) >= sizeof lo) return false;
  memcpy(lo, s, (size_t)(dash - s));
  lo[dash - s] = '\0';
  return sim_parse_ms(lo, &r->lo) && sim_parse_ms(dash + 1, &r->hi) && r->hi >= r->lo && r->lo >= 1;
}

/* "A-B" or "A>B" (or "all" when allowed). */
static bool link_arg(const char *s, uint32_t nodes, sim_sched_op *op, bool all_ok) {
  if (all_ok && strcmp(s, "all") == 0) {
    op->a = op->b = SCH_ALL;
    return true;
  }
  char a[16], b[16];
  const char *sep = strpbrk(s, "->");
  if (sep == NULL || (size_t)(sep - s) >= sizeof a || strlen(sep + 1) >= sizeof b) return false;
  memcpy(a, s, (size_t)(sep - s));
  a[sep - s] = '\0';
  snprintf(b, sizeof b, "%s", sep + 1);
  op->one_way = *sep == '>';
  return node_num(a, nodes, &op->a, false) && node_num(b, nodes, &op->b, false) && op->a != op->b;
}

bool sim_sched_parse(const char *text, uint32_t nodes, sim_sched_op *op, char *err, size_t err_bytes) {
  memset(op, 0, sizeof *op);
  char w[4][64];
  int n = sscanf(text, "%63s %63s %63s %63s", w[0], w[1], w[2], w[3]);
  if (n < 1) return errf(err, err_bytes, "empty event");
  const char *k = w[0];
  if (strcmp(k, "partition") == 0) {
    if (n != 2) return errf(err, err_bytes, "partition G|G|... or partition random");
    if (strcmp(w[1], "random") == 0) {
      op->kind = SCH_PARTITION_RANDOM;
      return true;
    }
    op->kind = SCH_PARTITION;
    op->groups = strstr(text, w[1]);
    if (nodes >= SIM_NODES_MAX) return true; /* syntax only: checked again with the node count */
    uint16_t *g = malloc(sizeof *g * nodes);
    if (g == NULL) return errf(err, err_bytes, "out of memory");
    uint32_t count;
    bool ok = sim_groups_parse(op->groups, nodes, g, &count, err, err_bytes);
    free(g);
    return ok;
  }
  if (strcmp(k, "heal-partition") == 0) {
    op->kind = SCH_UNPARTITION;
    return n == 1 ? true : errf(err, err_bytes, "heal-partition takes nothing");
  }
  if (strcmp(k, "crash") == 0 || strcmp(k, "restart") == 0 || strcmp(k, "isolate") == 0 || strcmp(k, "rejoin") == 0) {
    op->kind = k[0] == 'c' ? SCH_CRASH : k[0] == 'i' ? SCH_ISOLATE : k[2] == 's' ? SCH_RESTART : SCH_REJOIN;
    bool crash = op->kind == SCH_CRASH;
    if (n < 2 || n > (crash ? 3 : 2)) return errf(err, err_bytes, "%s N%s", k, crash ? " [DOWN]" : "");
    if (!node_num(w[1], nodes, &op->node, true)) return errf(err, err_bytes, "no node %s (0-%u or random)", w[1], nodes - 1);
    if (crash && n == 3 && !sim_parse_ms(w[2], &op->down_ms)) return errf(err, err_bytes, "bad duration %s", w[2]);
    return true;
  }
  if (strcmp(k, "cut") == 0 || strcmp(k, "uncut") == 0) {
    op->kind = k[0] == 'c' ? SCH_CUT : SCH_UNCUT;
    if (n != 2 || !link_arg(w[1], nodes, op, false)) return errf(err, err_bytes, "%s A-B or %s A>B", k, k);
    return true;
  }
  if (strcmp(k, "flap") == 0) {
    op->kind = SCH_FLAP;
    if (n != 3 || !link_arg(w[1], nodes, op, true) || op->one_way || !range_arg(w[2], &op->range))
      return errf(err, err_bytes, "flap A-B|all MIN-MAX (e.g. flap all 200ms-2s)");
    return true;
  }
  if (strcmp(k, "unflap") == 0) {
    op->kind = SCH_UNFLAP;
    if (n != 2 || !link_arg(w[1], nodes, op, true) || op->one_way) return errf(err, err_bytes, "unflap A-B|all");
    return true;
  }
  if (strcmp(k, "skew") == 0 || strcmp(k, "drift") == 0) {
    op->kind = k[0] == 's' ? SCH_SKEW : SCH_DRIFT;
    if (n != 3 || !node_num(w[1], nodes, &op->node, false)) return errf(err, err_bytes, "%s N VALUE", k);
    if (op->kind == SCH_SKEW) {
      if (!signed_ms(w[2], &op->value)) return errf(err, err_bytes, "bad offset %s (e.g. -5m, 300ms)", w[2]);
    } else {
      char *end = NULL;
      long v = strtol(w[2], &end, 10);
      if (*end != '\0' || v < -100000 || v > 100000) return errf(err, err_bytes, "drift: -100000 to 100000 ppm");
      op->value = v;
    }
    return true;
  }
  if (strcmp(k, "rolling-restart") == 0) {
    op->kind = SCH_ROLLING;
    if (n != 3 || !sim_parse_ms(w[1], &op->range.lo) || !sim_parse_ms(w[2], &op->range.hi))
      return errf(err, err_bytes, "rolling-restart GAP DOWN");
    return true;
  }
  if (strcmp(k, "revoke") == 0 || strcmp(k, "invite-join") == 0 || strcmp(k, "expired-join") == 0 ||
      strcmp(k, "double-join") == 0) {
    op->kind = k[0] == 'r' ? SCH_REVOKE : k[0] == 'i' ? SCH_INVITE_JOIN : k[0] == 'e' ? SCH_EXPIRED_JOIN : SCH_DOUBLE_JOIN;
    bool dbl = op->kind == SCH_DOUBLE_JOIN;
    if (n != (dbl ? 4 : 3) || !node_num(w[1], nodes, &op->a, false) || !node_num(w[2], nodes, &op->node, false) ||
        (dbl && (!node_num(w[3], nodes, &op->b, false) || op->b == op->node)))
      return errf(err, err_bytes, "%s A N%s (nodes 0-%u)", k, dbl ? " M" : "", nodes - 1);
    if (op->a == op->node || (dbl && op->a == op->b)) return errf(err, err_bytes, "%s: A must be another node", k);
    return true;
  }
  if (strcmp(k, "outsider") == 0) {
    op->kind = SCH_OUTSIDER;
    if (n != 2 || !node_num(w[1], nodes, &op->node, false)) return errf(err, err_bytes, "outsider N (0-%u)", nodes - 1);
    return true;
  }
  return errf(err, err_bytes, "unknown event %s", k);
}

bool sim_groups_parse(const char *spec, uint32_t nodes, uint16_t *groups, uint32_t *count_out, char *err,
                      size_t err_bytes) {
  const uint16_t UNSET = UINT16_MAX;
  for (uint32_t i = 0; i < nodes; i++) groups[i] = UNSET;
  uint32_t g = 0;
  int64_t rest = -1;
  const char *p = spec;
  /* Bounded: each round consumes at least one character of the spec. */
  for (size_t guard = 0; *p != '\0' && !isspace((unsigned char)*p) && guard < 4096; guard++) {
    if (g >= 1000) return errf(err, err_bytes, "too many groups");
    if (strncmp(p, "rest", 4) == 0) {
      rest = g;
      p += 4;
    } else {
      for (size_t guard2 = 0; guard2 < 4096; guard2++) {
        char *end = NULL;
        if (!isdigit((unsigned char)*p)) return errf(err, err_bytes, "bad group near \"%s\"", p);
        unsigned long lo = strtoul(p, &end, 10), hi = lo;
        p = end;
        if (*p == '-') {
          if (!isdigit((unsigned char)p[1])) return errf(err, err_bytes, "bad range near \"%s\"", p);
          hi = strtoul(p + 1, &end, 10);
          p = end;
        }
        if (hi < lo || hi >= nodes) return errf(err, err_bytes, "nodes %lu-%lu: not in 0-%u", lo, hi, nodes - 1);
        for (unsigned long i = lo; i <= hi; i++) {
          if (groups[i] != UNSET) return errf(err, err_bytes, "node %lu in two groups", i);
          groups[i] = (uint16_t)g;
        }
        if (*p != ',') break;
        p++;
      }
    }
    g++;
    if (*p == '|') p++;
    else if (*p != '\0' && !isspace((unsigned char)*p)) return errf(err, err_bytes, "'|' expected near \"%s\"", p);
  }
  if (g < 1) return errf(err, err_bytes, "no groups");
  bool extra = false;
  for (uint32_t i = 0; i < nodes; i++) {
    if (groups[i] != UNSET) continue;
    if (rest >= 0) groups[i] = (uint16_t)rest;
    else {
      groups[i] = (uint16_t)g; /* the nodes named nowhere: one more group */
      extra = true;
    }
  }
  *count_out = g + (extra ? 1u : 0u);
  return true;
}
