#define _POSIX_C_SOURCE 200809L
/* vix-sim: options, scenarios, the replay command, swarm fault mixes.
 *
 * One table lists every option: its name, its type and where it lives in
 * sim_cfg. Parsing, scenario files, the usage text and the replay command
 * all read the same table, so a run's printed command always replays it
 * (percentages are parsed as decimal text into parts per million, never
 * through floating point, so they print back exactly). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"
#include "sim.h"

typedef enum otype { O_U32, O_U64, O_PPM, O_MS, O_RANGE, O_TOPO, O_MIX, O_MILLI, O_FLAG, O_STR, O_BUG, O_ONOFF } otype;

typedef struct opt {
  const char *name;
  otype type;
  size_t off;
  bool identity; /* part of what the run is: printed in the replay command */
  const char *help;
} opt;

#define F(field) offsetof(sim_cfg, field)

static const opt OPTS[] = {
    {"nodes", O_U32, F(nodes), true, "number of nodes"},
    {"ops", O_U64, F(ops), true, "client operations in total"},
    {"seed", O_U64, F(seed), true, "the seed (swarm: the first seed)"},
    {"topology", O_TOPO, F(topo), true, "full|line|ring|random"},
    {"degree", O_U32, F(degree), true, "random topology: links per node"},
    {"latency", O_RANGE, F(latency_ms), true, "base latency range, e.g. 1ms-20ms (at least 1 ms)"},
    {"tail", O_PPM, F(tail_ppm), true, "chaos: % of frames delayed by up to --tail-ms more"},
    {"tail-ms", O_MS, F(tail_ms), true, "chaos: longest extra delay of a tail frame"},
    {"drop", O_PPM, F(drop_ppm), true, "chaos: % of frames lost"},
    {"dup", O_PPM, F(dup_ppm), true, "chaos: % of frames delivered twice"},
    {"reorder", O_PPM, F(reorder_ppm), true, "chaos: % of frames held back (later ones overtake)"},
    {"reorder-ms", O_MS, F(reorder_ms), true, "chaos: longest hold-back of a reordered frame"},
    {"partitions", O_U32, F(partitions), true, "chaos: random partition episodes"},
    {"partition-ms", O_RANGE, F(partition_ms), true, "duration of a random partition or asymmetric cut"},
    {"asym", O_U32, F(asym), true, "chaos: random asymmetric cuts (one direction of a link)"},
    {"flap", O_PPM, F(flap_ppm), true, "chaos: % of links that flap"},
    {"flap-ms", O_RANGE, F(flap_ms), true, "time a flapping link stays up or down"},
    {"crashes", O_U32, F(crashes), true, "chaos: random node crashes"},
    {"crash-ms", O_RANGE, F(crash_ms), true, "how long a crashed node stays down"},
    {"skew", O_MS, F(skew_ms), true, "per-node clock offset, uniform in [-skew, +skew]"},
    {"drift", O_U32, F(drift_ppm), true, "per-node clock rate error in ppm, uniform in [-drift, +drift]"},
    {"conn-timeout", O_MS, F(conn_timeout_ms), true, "a cut link's connection dies after this"},
    {"tick", O_MS, F(tick_ms), true, "poll nodes at multiples of this (an event loop's round; 1ms: at every event)"},
    {"redial", O_RANGE, F(redial_ms), true, "delay before a dropped connection is dialled again"},
    {"mix", O_MIX, F(mix), true, "weights put:del:incr"},
    {"keys", O_U32, F(keys), true, "distinct keys"},
    {"zipf", O_MILLI, F(zipf_milli), true, "Zipf exponent of the key popularity (0: uniform)"},
    {"payload", O_U32, F(payload_bytes), true, "bytes of a put's value"},
    {"op-gap", O_MS, F(op_gap_ms), true, "mean gap between client operations (mesh-wide)"},
    {"idem", O_PPM, F(idem_ppm), true, "% of writes with an idempotency key"},
    {"retry", O_PPM, F(retry_ppm), true, "% of client ops that retry the node's last keyed write"},
    {"chaos-tail", O_MS, F(tail_after_ms), true, "chaos goes on this long after the last op"},
    {"quiesce-max", O_MS, F(quiesce_max_ms), true, "virtual time allowed to converge after healing"},
    {"settle", O_MS, F(settle_ms), true, "converged must stay converged this long"},
    {"check-every", O_MS, F(check_every_ms), true, "interval of the convergence check"},
    {"map-mib", O_U32, F(map_mib), true, "LMDB map size per node, MiB"},
    {"origin-quota", O_U32, F(origin_quota), true,
     "new origins a node accepts per peer per minute (0: max(64, 2 x nodes), enough for every node's origin)"},
    {"equivocate", O_FLAG, F(equivocate), true,
     "node 1 gets node 0's identity: one writer on two devices, different branches to different peers"},
    {"managed", O_FLAG, F(managed), true,
     "a managed mesh: node 0 creates it, the others join with its invites (issue 16)"},
    {"spare", O_U32, F(spare), true, "--managed: the last K nodes start only at a membership event"},
    {"admins", O_U32, F(admins), true, "--managed: nodes 0..N-1 are admins, the others writers"},
    {"compact", O_ONOFF, F(compact), true,
     "--managed: on (the default) or off: every node compacts its log below the stable cut (every 2 s, or after 200 ops)"},
    {"tamper-snapshot", O_FLAG, F(tamper_snapshot), true,
     "--managed: before a late device's snapshot is installed, a copy with one byte flipped must be refused"},
    {"join-net", O_FLAG, F(join_net), true,
     "--managed: a device joining by invite gets its snapshot over the session (BEHIND, SNAPREQ), not from the simulator"},
    {"rekey-grace", O_MS, F(rekey_grace_ms), true,
     "--managed: a handshake on an older mesh key is taken this long after a rekey (vs_node_cfg.rekey_grace_ms)"},
    {"suspend-after", O_MS, F(suspend_after_ms), true,
     "--managed: a member silent this long leaves the stable cut (vs_node_cfg.suspend_after_ms; default 30 d; 0: never)"},
    {"invite-expiry", O_MS, F(invite_ms), true,
     "--managed: lifetime of the invites the admins make (default 24h; compaction holds a member's chain until it expires)"},
    {"inject-bug", O_BUG, F(bug), true, "fault-injection build: switch on one deliberate bug"},
    {"json", O_FLAG, F(json), false, "print a JSON summary"},
    {"sig-cache", O_U32, F(sig_cache), false,
     "entries of the signature cache all nodes share (0: off; the same run, fewer ed25519 verifications)"},
    {"keep", O_FLAG, F(keep), false, "keep the node directories"},
    {"verbose", O_FLAG, F(verbose), false, "print the phases"},
    {"report", O_STR, F(report), false, "write an HTML report to FILE"},
    {"swarm", O_U64, F(swarm), false, "run K seeds with randomized fault mixes"},
    {"stop-on-fail", O_FLAG, F(stop_on_fail), false, "swarm: stop at the first failing seed"},
    {"dir", O_STR, F(dir_base), false, "parent of the temporary directory (default $TMPDIR or /tmp)"},
};
#define NOPTS (sizeof OPTS / sizeof OPTS[0])

void sim_cfg_default(sim_cfg *c) {
  memset(c, 0, sizeof *c);
  c->nodes = 5;
  c->ops = 200;
  c->seed = 1;
  c->topo = SIM_TOPO_RANDOM;
  c->degree = 4;
  c->latency_ms = (sim_range){1, 20};
  c->tail_ms = 500;
  c->drop_ppm = 20000;
  c->dup_ppm = 10000;
  c->reorder_ppm = 50000;
  c->reorder_ms = 100;
  c->partitions = 1;
  c->partition_ms = (sim_range){1000, 10000};
  c->asym = 1;
  c->flap_ppm = 100000;
  c->flap_ms = (sim_range){500, 5000};
  c->crashes = 1;
  c->crash_ms = (sim_range){100, 5000};
  c->skew_ms = 50;
  c->drift_ppm = 100;
  c->conn_timeout_ms = 3000;
  c->tick_ms = 1;
  c->redial_ms = (sim_range){100, 1000};
  c->mix[0] = 50;
  c->mix[1] = 10;
  c->mix[2] = 40;
  c->keys = 64;
  c->zipf_milli = 1000;
  c->payload_bytes = 16;
  c->op_gap_ms = 10;
  c->idem_ppm = 100000;
  c->retry_ppm = 50000;
  c->tail_after_ms = 1000;
  c->quiesce_max_ms = 600000;
  c->settle_ms = 3000;
  c->check_every_ms = 1000;
  c->map_mib = 32;
  c->admins = 1;
  c->rekey_grace_ms = 600000; /* the library's default */
  c->suspend_after_ms = VS_SUSPEND_AFTER_MS_DEFAULT;
  c->invite_ms = SIM_INVITE_MS_DEFAULT;
  c->sig_cache = SIM_SIG_CACHE_DEFAULT;
}

static bool errf(char *err, size_t err_bytes, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool errf(char *err, size_t err_bytes, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, err_bytes, fmt, ap);
  va_end(ap);
  return false;
}

/* ---- scalar parsers ---- */

static bool parse_u64(const char *s, uint64_t *out) {
  if (s == NULL || !isdigit((unsigned char)s[0])) return false;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return false;
  *out = (uint64_t)v;
  return true;
}

/* "12.5" with at most `frac` fractional digits, times 10^frac, optional
 * trailing `suffix` character. No floating point: exact round trips. */
static bool parse_fixed(const char *s, unsigned frac, char suffix, uint64_t *out) {
  if (s == NULL || !isdigit((unsigned char)s[0])) return false;
  uint64_t v = 0;
  size_t i = 0;
  for (; isdigit((unsigned char)s[i]) && i < 12; i++) v = v * 10 + (uint64_t)(s[i] - '0');
  unsigned digits = 0;
  if (s[i] == '.') {
    i++;
    for (; isdigit((unsigned char)s[i]) && digits < frac; i++, digits++) v = v * 10 + (uint64_t)(s[i] - '0');
    if (isdigit((unsigned char)s[i])) return false; /* more precision than kept */
  }
  for (; digits < frac; digits++) v *= 10;
  if (suffix != 0 && s[i] == suffix) i++;
  if (s[i] != '\0') return false;
  *out = v;
  return true;
}

bool sim_parse_pct(const char *s, uint32_t *ppm_out) {
  uint64_t v;
  if (!parse_fixed(s, 4, '%', &v) || v > SIM_PPM) return false; /* percent with 4 decimals = ppm */
  *ppm_out = (uint32_t)v;
  return true;
}

bool sim_parse_ms(const char *s, uint64_t *ms_out) {
  if (s == NULL || !isdigit((unsigned char)s[0])) return false;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0) return false;
  uint64_t mul;
  if (*end == '\0' || strcmp(end, "ms") == 0) mul = 1;
  else if (strcmp(end, "s") == 0) mul = 1000;
  else if (strcmp(end, "m") == 0) mul = 60000;
  else if (strcmp(end, "h") == 0) mul = 3600000;
  else return false;
  if (v > UINT64_MAX / 1000 / 3600 / 24) return false; /* more than a few thousand years */
  *ms_out = (uint64_t)v * mul;
  return true;
}

static bool parse_range(const char *s, sim_range *out) {
  const char *dash = strchr(s, '-');
  char lo[64];
  if (dash == NULL || (size_t)(dash - s) >= sizeof lo) {
    uint64_t v;
    if (!sim_parse_ms(s, &v)) return false;
    *out = (sim_range){v, v};
    return true;
  }
  memcpy(lo, s, (size_t)(dash - s));
  lo[dash - s] = '\0';
  sim_range r;
  if (!sim_parse_ms(lo, &r.lo) || !sim_parse_ms(dash + 1, &r.hi) || r.hi < r.lo) return false;
  *out = r;
  return true;
}

static void fmt_ms(uint64_t ms, char *out, size_t out_bytes) {
  if (ms != 0 && ms % 3600000 == 0) snprintf(out, out_bytes, "%" PRIu64 "h", ms / 3600000);
  else if (ms != 0 && ms % 60000 == 0) snprintf(out, out_bytes, "%" PRIu64 "m", ms / 60000);
  else if (ms != 0 && ms % 1000 == 0) snprintf(out, out_bytes, "%" PRIu64 "s", ms / 1000);
  else snprintf(out, out_bytes, "%" PRIu64 "ms", ms);
}

static void fmt_fixed(uint64_t v, unsigned frac, char *out, size_t out_bytes) {
  uint64_t scale = 1;
  for (unsigned i = 0; i < frac; i++) scale *= 10;
  uint64_t ip = v / scale, fp = v % scale;
  if (fp == 0) {
    snprintf(out, out_bytes, "%" PRIu64, ip);
    return;
  }
  char digits[24];
  snprintf(digits, sizeof digits, "%0*" PRIu64, (int)frac, fp);
  size_t len = strlen(digits);
  while (len > 0 && digits[len - 1] == '0') digits[--len] = '\0';
  snprintf(out, out_bytes, "%" PRIu64 ".%s", ip, digits);
}

static const char *const TOPO_NAMES[] = {"random", "full", "line", "ring"};

/* ---- the table ---- */

static const opt *opt_find(const char *name) {
  for (size_t i = 0; i < NOPTS; i++)
    if (strcmp(OPTS[i].name, name) == 0) return &OPTS[i];
  return NULL;
}

static bool opt_set(sim_cfg *c, const opt *o, const char *v, char *err, size_t err_bytes) {
  void *p = (char *)c + o->off;
  uint64_t u;
  switch (o->type) {
    case O_U32:
      if (!parse_u64(v, &u) || u > UINT32_MAX) return errf(err, err_bytes, "--%s: not a number: %s", o->name, v);
      *(uint32_t *)p = (uint32_t)u;
      return true;
    case O_U64:
      if (!parse_u64(v, &u)) return errf(err, err_bytes, "--%s: not a number: %s", o->name, v);
      *(uint64_t *)p = u;
      return true;
    case O_PPM:
      if (!sim_parse_pct(v, (uint32_t *)p)) return errf(err, err_bytes, "--%s: not a percentage 0-100: %s", o->name, v);
      return true;
    case O_MS:
      if (!sim_parse_ms(v, (uint64_t *)p)) return errf(err, err_bytes, "--%s: not a duration (250ms, 2s, 3m, 1h): %s", o->name, v);
      return true;
    case O_RANGE:
      if (!parse_range(v, (sim_range *)p)) return errf(err, err_bytes, "--%s: not a range (10ms-2s): %s", o->name, v);
      return true;
    case O_TOPO:
      for (unsigned k = 0; k < 4; k++)
        if (strcmp(v, TOPO_NAMES[k]) == 0) {
          *(sim_topo *)p = (sim_topo)k;
          return true;
        }
      return errf(err, err_bytes, "--topology: full, line, ring or random, not %s", v);
    case O_MIX: {
      uint32_t *m = p;
      unsigned a, b, d;
      char tail;
      if (sscanf(v, "%u:%u:%u%c", &a, &b, &d, &tail) != 3 || a + b + d == 0 || a > 1000000 || b > 1000000 || d > 1000000)
        return errf(err, err_bytes, "--mix: put:del:incr weights, e.g. 50:10:40, not %s", v);
      m[0] = a;
      m[1] = b;
      m[2] = d;
      return true;
    }
    case O_MILLI:
      if (!parse_fixed(v, 3, 0, &u) || u > 10000) return errf(err, err_bytes, "--%s: a number 0-10 with 3 decimals: %s", o->name, v);
      *(uint32_t *)p = (uint32_t)u;
      return true;
    case O_FLAG: *(bool *)p = true; return true;
    case O_ONOFF:
      if (strcmp(v, "on") == 0) *(uint8_t *)p = SIM_ON;
      else if (strcmp(v, "off") == 0) *(uint8_t *)p = SIM_OFF;
      else return errf(err, err_bytes, "--%s: on or off, not %s", o->name, v);
      return true;
    case O_STR: *(const char **)p = v; return true;
    case O_BUG:
      if (strlen(v) >= sizeof c->bug) return errf(err, err_bytes, "--inject-bug: unknown bug %s", v);
      snprintf(c->bug, sizeof c->bug, "%s", v);
      return true;
  }
  return false;
}

/* The value as the command line would give it. */
static void opt_get(const sim_cfg *c, const opt *o, char *out, size_t out_bytes) {
  const void *p = (const char *)c + o->off;
  char a[32], b[32];
  switch (o->type) {
    case O_U32: snprintf(out, out_bytes, "%" PRIu32, *(const uint32_t *)p); break;
    case O_U64: snprintf(out, out_bytes, "%" PRIu64, *(const uint64_t *)p); break;
    case O_PPM: fmt_fixed(*(const uint32_t *)p, 4, out, out_bytes); break;
    case O_MS: fmt_ms(*(const uint64_t *)p, out, out_bytes); break;
    case O_RANGE: {
      const sim_range *r = p;
      fmt_ms(r->lo, a, sizeof a);
      fmt_ms(r->hi, b, sizeof b);
      snprintf(out, out_bytes, "%s-%s", a, b);
      break;
    }
    case O_TOPO: snprintf(out, out_bytes, "%s", TOPO_NAMES[*(const sim_topo *)p]); break;
    case O_MIX: {
      const uint32_t *m = p;
      snprintf(out, out_bytes, "%u:%u:%u", m[0], m[1], m[2]);
      break;
    }
    case O_MILLI: fmt_fixed(*(const uint32_t *)p, 3, out, out_bytes); break;
    case O_FLAG: snprintf(out, out_bytes, "%s", *(const bool *)p ? "1" : ""); break;
    case O_ONOFF: {
      uint8_t x = *(const uint8_t *)p;
      snprintf(out, out_bytes, "%s", x == SIM_ON ? "on" : x == SIM_OFF ? "off" : "");
      break;
    }
    case O_STR: snprintf(out, out_bytes, "%s", *(const char *const *)p ? *(const char *const *)p : ""); break;
    case O_BUG: snprintf(out, out_bytes, "%s", c->bug); break;
  }
}

/* ---- scheduled events ---- */

static bool sched_add(sim_cfg *c, uint64_t at_ms, const char *text, char *err, size_t err_bytes) {
  if (c->sched_n >= SIM_SCHED_MAX) return errf(err, err_bytes, "more than %u scheduled events", SIM_SCHED_MAX);
  while (isspace((unsigned char)*text)) text++;
  size_t len = strlen(text);
  while (len > 0 && isspace((unsigned char)text[len - 1])) len--;
  if (len == 0 || len >= SIM_SCHED_TEXT_BYTES) return errf(err, err_bytes, "bad event text");
  sim_sched *e = &c->sched[c->sched_n];
  e->at_ms = at_ms;
  memcpy(e->text, text, len);
  e->text[len] = '\0';
  sim_sched_op op;
  char groups_err[128];
  /* Syntax now (node numbers are checked against --nodes in sim_cfg_check). */
  if (!sim_sched_parse(e->text, SIM_NODES_MAX, &op, groups_err, sizeof groups_err))
    return errf(err, err_bytes, "event \"%s\": %s", e->text, groups_err);
  c->sched_n++;
  return true;
}

/* "TIME TEXT..." as given to --event. */
static bool event_arg(sim_cfg *c, const char *v, char *err, size_t err_bytes) {
  char when[64];
  const char *sp = strchr(v, ' ');
  if (sp == NULL || (size_t)(sp - v) >= sizeof when) return errf(err, err_bytes, "--event: \"TIME EVENT\", e.g. \"5s crash 2\"");
  memcpy(when, v, (size_t)(sp - v));
  when[sp - v] = '\0';
  uint64_t at;
  if (!sim_parse_ms(when, &at)) return errf(err, err_bytes, "--event: bad time %s", when);
  return sched_add(c, at, sp + 1, err, err_bytes);
}

bool sim_cfg_load_scenario(sim_cfg *c, const char *path, char *err, size_t err_bytes) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return errf(err, err_bytes, "%s: %s", path, strerror(errno));
  char line[512];
  unsigned lineno = 0;
  bool ok = true;
  while (ok && fgets(line, sizeof line, f) != NULL && lineno < 100000) {
    lineno++;
    char *hash = strchr(line, '#');
    if (hash != NULL) *hash = '\0';
    char *p = line;
    while (isspace((unsigned char)*p)) p++;
    size_t len = strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1])) p[--len] = '\0';
    if (len == 0) continue;
    char word[64], rest[448];
    rest[0] = '\0';
    if (sscanf(p, "%63s %447[^\n]", word, rest) < 1) continue;
    char sub[256];
    if (strcmp(word, "at") == 0) {
      char when[64];
      if (sscanf(rest, "%63s %447[^\n]", when, rest) != 2) {
        ok = errf(sub, sizeof sub, "\"at TIME EVENT\" expected");
      } else {
        uint64_t at;
        ok = sim_parse_ms(when, &at) ? sched_add(c, at, rest, sub, sizeof sub) : errf(sub, sizeof sub, "bad time %s", when);
      }
    } else {
      const opt *o = opt_find(word);
      if (o == NULL || !o->identity || o->type == O_BUG) ok = errf(sub, sizeof sub, "unknown option %s", word);
      else if (o->type == O_FLAG) ok = opt_set(c, o, "", sub, sizeof sub);
      else if (rest[0] == '\0') ok = errf(sub, sizeof sub, "%s needs a value", word);
      else {
        /* The value must outlive the file: only O_STR keeps a pointer, and
         * scenarios cannot set those (they are modes, not identity). */
        ok = opt_set(c, o, rest, sub, sizeof sub);
      }
    }
    if (!ok) errf(err, err_bytes, "%s:%u: %s", path, lineno, sub);
  }
  fclose(f);
  return ok;
}

bool sim_cfg_parse(sim_cfg *c, int argc, char **argv, char *err, size_t err_bytes) {
  sim_cfg_default(c);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0) return errf(err, err_bytes, "unexpected argument %s", a);
    a += 2;
    const char *eq = strchr(a, '=');
    char name[64];
    const char *val = NULL;
    size_t nlen = eq != NULL ? (size_t)(eq - a) : strlen(a);
    if (nlen >= sizeof name) return errf(err, err_bytes, "unknown option --%s", a);
    memcpy(name, a, nlen);
    name[nlen] = '\0';
    if (eq != NULL) val = eq + 1;
    if (strcmp(name, "help") == 0) return errf(err, err_bytes, "help");
    if (strcmp(name, "scenario") == 0 || strcmp(name, "event") == 0) {
      if (val == NULL && i + 1 < argc) val = argv[++i];
      if (val == NULL) return errf(err, err_bytes, "--%s needs a value", name);
      bool ok = name[0] == 's' ? sim_cfg_load_scenario(c, val, err, err_bytes) : event_arg(c, val, err, err_bytes);
      if (!ok) return false;
      continue;
    }
    const opt *o = opt_find(name);
    if (o == NULL) return errf(err, err_bytes, "unknown option --%s", name);
    if (o->type != O_FLAG && val == NULL) {
      if (i + 1 >= argc) return errf(err, err_bytes, "--%s needs a value", name);
      val = argv[++i];
    }
    if (!opt_set(c, o, val != NULL ? val : "", err, err_bytes)) return false;
  }
  return sim_cfg_check(c, err, err_bytes);
}

bool sim_cfg_check(const sim_cfg *c, char *err, size_t err_bytes) {
  if (c->nodes < 1 || c->nodes > SIM_NODES_MAX) return errf(err, err_bytes, "--nodes: 1 to %u", SIM_NODES_MAX);
  if (c->topo == SIM_TOPO_FULL && c->nodes - 1 > VS_NODE_PEERS_MAX)
    return errf(err, err_bytes, "--topology full: at most %u nodes (a node holds %u peers)", VS_NODE_PEERS_MAX + 1,
                VS_NODE_PEERS_MAX);
  if (c->degree < 1 || c->degree > VS_NODE_PEERS_MAX / 2) return errf(err, err_bytes, "--degree: 1 to %u", VS_NODE_PEERS_MAX / 2);
  if (c->latency_ms.lo < 1) return errf(err, err_bytes, "--latency: at least 1 ms (virtual time must move on)");
  if (c->keys < 1) return errf(err, err_bytes, "--keys: at least 1");
  if (c->payload_bytes > VS_OP_PAYLOAD_BYTES_MAX) return errf(err, err_bytes, "--payload: at most %u", VS_OP_PAYLOAD_BYTES_MAX);
  if (c->drift_ppm > 100000) return errf(err, err_bytes, "--drift: at most 100000 ppm (10%%)");
  if (c->skew_ms > 365ull * 24 * 3600 * 1000) return errf(err, err_bytes, "--skew: at most a year");
  if (c->map_mib < 1 || c->map_mib > 1u << 20) return errf(err, err_bytes, "--map-mib: 1 to 1048576");
  if (c->sig_cache > VS_SIG_CACHE_ENTRIES_MAX) return errf(err, err_bytes, "--sig-cache: 0 to %u", VS_SIG_CACHE_ENTRIES_MAX);
  if (c->equivocate && c->nodes <= SIM_HONEST_REF)
    return errf(err, err_bytes, "--equivocate: at least %u nodes (the twins 0 and 1, honest nodes from %u on)",
                SIM_HONEST_REF + 1, SIM_HONEST_REF);
  if (c->managed && c->equivocate && c->admins != 1)
    return errf(err, err_bytes, "--managed --equivocate: one admin, node %u (the creator; the twins 0 and 1 are one writer)",
                SIM_HONEST_REF);
  if (!c->managed && (c->spare != 0 || c->admins != 1 || c->rekey_grace_ms != 600000 || c->compact != SIM_AUTO || c->tamper_snapshot))
    return errf(err, err_bytes, "--spare, --admins, --rekey-grace, --compact and --tamper-snapshot need --managed (an open mesh never compacts)");
  if (!c->managed && (c->suspend_after_ms != VS_SUSPEND_AFTER_MS_DEFAULT || c->invite_ms != SIM_INVITE_MS_DEFAULT))
    return errf(err, err_bytes, "--suspend-after and --invite-expiry need --managed (an open mesh has no members)");
  if (c->invite_ms < 1) return errf(err, err_bytes, "--invite-expiry: at least 1 ms");
  if (!c->managed && c->join_net) return errf(err, err_bytes, "--join-net needs --managed (an open mesh never compacts)");
  if (c->managed && (c->spare >= c->nodes || c->admins < 1 || c->admins > c->nodes - c->spare))
    return errf(err, err_bytes, "--managed: --spare below --nodes, --admins from 1 to the nodes that are not spares");
  if (c->check_every_ms < 1 || c->conn_timeout_ms < 1 || c->tick_ms < 1 || c->tick_ms > 60000) return errf(err, err_bytes, "--check-every, --conn-timeout, --tick: at least 1 ms (--tick at most 1m)");
  if (c->bug[0] != '\0' && sim_bug_mask(c->bug) == 0) {
#ifdef VS_FAULT_INJECTION
    return errf(err, err_bytes, "--inject-bug: unknown bug %s", c->bug);
#else
    return errf(err, err_bytes, "--inject-bug needs the fault-injection build (vix-sim-faults, cmake -DVS_FAULT_INJECTION=ON)");
#endif
  }
  for (uint32_t i = 0; i < c->sched_n; i++) {
    sim_sched_op op;
    char sub[128];
    if (!sim_sched_parse(c->sched[i].text, c->nodes, &op, sub, sizeof sub))
      return errf(err, err_bytes, "event \"%s\": %s", c->sched[i].text, sub);
    if (sim_sched_is_mesh(op.kind) && !c->managed)
      return errf(err, err_bytes, "event \"%s\": a membership event needs --managed", c->sched[i].text);
    bool joins = op.kind == SCH_INVITE_JOIN || op.kind == SCH_EXPIRED_JOIN || op.kind == SCH_DOUBLE_JOIN || op.kind == SCH_OUTSIDER;
    uint32_t first_spare = c->nodes - c->spare;
    if (joins && (op.node < first_spare || (op.kind == SCH_DOUBLE_JOIN && op.b < first_spare)))
      return errf(err, err_bytes, "event \"%s\": the device that joins must be a spare (nodes %u-%u)", c->sched[i].text,
                  first_spare, c->nodes - 1);
    if (op.kind != SCH_OUTSIDER && sim_sched_is_mesh(op.kind) && op.a >= first_spare)
      return errf(err, err_bytes, "event \"%s\": the admin must be a node that is not a spare", c->sched[i].text);
  }
  return true;
}

/* ---- the replay command ---- */

static void append(char *out, size_t out_bytes, size_t *len, const char *s) {
  size_t n = strlen(s);
  if (*len + n + 1 > out_bytes) return;
  memcpy(out + *len, s, n + 1);
  *len += n;
}

static void append_arg(char *out, size_t out_bytes, size_t *len, const char *s) {
  bool plain = s[0] != '\0';
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && strchr("-_.:/%,=+@", *p) == NULL) plain = false;
  append(out, out_bytes, len, " ");
  if (plain) {
    append(out, out_bytes, len, s);
    return;
  }
  append(out, out_bytes, len, "'");
  for (const char *p = s; *p; p++) {
    char one[2] = {*p, 0};
    append(out, out_bytes, len, *p == '\'' ? "'\\''" : one);
  }
  append(out, out_bytes, len, "'");
}

void sim_cfg_command(const sim_cfg *c, const char *argv0, char *out, size_t out_bytes) {
  sim_cfg d;
  sim_cfg_default(&d);
  size_t len = 0;
  out[0] = '\0';
  append(out, out_bytes, &len, argv0);
  for (size_t i = 0; i < NOPTS; i++) {
    const opt *o = &OPTS[i];
    if (!o->identity) continue;
    char v[96], dv[96];
    opt_get(c, o, v, sizeof v);
    opt_get(&d, o, dv, sizeof dv);
    bool always = strcmp(o->name, "nodes") == 0 || strcmp(o->name, "ops") == 0 || strcmp(o->name, "seed") == 0;
    if (!always && strcmp(v, dv) == 0) continue;
    char flag[80];
    snprintf(flag, sizeof flag, "--%s", o->name);
    append(out, out_bytes, &len, " ");
    append(out, out_bytes, &len, flag);
    if (o->type != O_FLAG) append_arg(out, out_bytes, &len, v); /* a flag takes no value */
  }
  for (uint32_t i = 0; i < c->sched_n; i++) {
    char at[32], ev[SIM_SCHED_TEXT_BYTES + 40];
    fmt_ms(c->sched[i].at_ms, at, sizeof at);
    snprintf(ev, sizeof ev, "%s %s", at, c->sched[i].text);
    append(out, out_bytes, &len, " --event");
    append_arg(out, out_bytes, &len, ev);
  }
}

/* ---- swarm ---- */

/* A fault mix drawn from the seed alone (not from the run's PRNG), so the
 * printed command of a failing seed replays it without --swarm. */
void sim_cfg_swarm(const sim_cfg *base, uint64_t seed, sim_cfg *out) {
  *out = *base;
  out->seed = seed;
  out->swarm = 0;
  sim_rng r;
  sim_rng_seed(&r, seed ^ 0x5357524d21ull); /* "SWRM!" */
  out->drop_ppm = (uint32_t)sim_rng_below(&r, 150001);   /* 0-15% */
  out->dup_ppm = (uint32_t)sim_rng_below(&r, 100001);    /* 0-10% */
  out->reorder_ppm = (uint32_t)sim_rng_below(&r, 200001); /* 0-20% */
  out->reorder_ms = sim_rng_range(&r, 5, 300);
  out->tail_ppm = sim_rng_ppm(&r, 500000) ? (uint32_t)sim_rng_below(&r, 50001) : 0;
  out->tail_ms = sim_rng_range(&r, 50, 3000);
  out->latency_ms.lo = sim_rng_range(&r, 1, 10);
  out->latency_ms.hi = out->latency_ms.lo + sim_rng_below(&r, 60);
  out->partitions = (uint32_t)sim_rng_below(&r, 4);
  out->partition_ms.lo = sim_rng_range(&r, 200, 5000);
  out->partition_ms.hi = out->partition_ms.lo + sim_rng_below(&r, 20000);
  out->asym = (uint32_t)sim_rng_below(&r, 4);
  out->flap_ppm = sim_rng_ppm(&r, 500000) ? (uint32_t)sim_rng_below(&r, 400001) : 0;
  out->flap_ms.lo = sim_rng_range(&r, 50, 2000);
  out->flap_ms.hi = out->flap_ms.lo + sim_rng_below(&r, 5000);
  out->crashes = (uint32_t)sim_rng_below(&r, 5);
  out->crash_ms.lo = sim_rng_below(&r, 2000);
  out->crash_ms.hi = out->crash_ms.lo + sim_rng_below(&r, 10000);
  out->skew_ms = sim_rng_ppm(&r, 500000) ? 0 : sim_rng_below(&r, 3000);
  out->drift_ppm = sim_rng_ppm(&r, 500000) ? 0 : (uint32_t)sim_rng_below(&r, 2001);
  out->conn_timeout_ms = sim_rng_range(&r, 500, 6000);
  uint32_t t = (uint32_t)sim_rng_below(&r, 8);
  out->topo = t < 4 ? SIM_TOPO_RANDOM : t == 4 ? SIM_TOPO_RING : t == 5 ? SIM_TOPO_LINE : SIM_TOPO_FULL;
  if (out->topo == SIM_TOPO_FULL && out->nodes - 1 > VS_NODE_PEERS_MAX) out->topo = SIM_TOPO_RANDOM;
  out->degree = (uint32_t)sim_rng_range(&r, 2, 6);
  out->mix[0] = (uint32_t)sim_rng_range(&r, 1, 100);
  out->mix[1] = (uint32_t)sim_rng_below(&r, 40);
  out->mix[2] = (uint32_t)sim_rng_below(&r, 100);
  out->keys = (uint32_t)sim_rng_range(&r, 1, 200);
  out->zipf_milli = (uint32_t)sim_rng_below(&r, 1601);
  out->op_gap_ms = sim_rng_range(&r, 1, 25);
  out->idem_ppm = (uint32_t)sim_rng_below(&r, 300001);
  out->retry_ppm = (uint32_t)sim_rng_below(&r, 100001);
}

void sim_usage(FILE *f) {
  fprintf(f,
          "usage: vix-sim --nodes N --ops M --seed S [fault options] [--swarm K] [--json]\n"
          "       vix-sim --scenario FILE [options]\n"
          "A run: chaos (faults on) for M client ops, heal (links up, nodes restarted, no faults),\n"
          "quiesce, then check the invariants. A failure prints the command that replays it.\n\n");
  for (size_t i = 0; i < NOPTS; i++) {
    sim_cfg d;
    sim_cfg_default(&d);
    char v[96];
    opt_get(&d, &OPTS[i], v, sizeof v);
    bool show = OPTS[i].type != O_FLAG && OPTS[i].type != O_STR && v[0] != '\0';
    fprintf(f, "  --%-13s %s%s%s%s\n", OPTS[i].name, OPTS[i].help, show ? " [" : "", show ? v : "", show ? "]" : "");
  }
  fprintf(f,
          "  --scenario FILE  load options and scheduled events from FILE (later options override)\n"
          "  --event 'T EV'   schedule EV at virtual time T (same syntax as a scenario's \"at\" line)\n"
          "\n"
          "Events: partition G|G.. (G: 0-3,7 or rest) | partition random | heal-partition |\n"
          "  crash N|random [DOWN] | restart N | isolate N | rejoin N | cut A-B|A>B | uncut A-B|A>B |\n"
          "  flap A-B|all MIN-MAX | unflap A-B|all | skew N MS | drift N PPM | rolling-restart GAP DOWN\n"
          "  --managed: revoke A N | invite-join A N | expired-join A N | double-join A N M | outsider N\n"
          "  (A an admin; N, M spares: --spare K)\n"
          "Exit: 0 all invariants hold, 1 an invariant failed, 2 usage, 3 storage.\n");
}

bool sim_cfg_compacts(const sim_cfg *c) { return c->managed && c->compact != SIM_OFF; }
