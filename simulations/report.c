#define _POSIX_C_SOURCE 200809L
/* vix-sim: the HTML report, one self-contained page (inline SVG, no script,
 * nothing fetched). Over virtual time: operations applied per node, outbox
 * depth per node, partitions / isolations / crashes marked, the heal and
 * the moment of convergence. Up to 16 nodes every node has its own line;
 * past that the charts show the spread (min, median, max; max and mean). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define W 900.0
#define H 260.0
#define X0 70.0
#define Y0 20.0
#define PER_NODE_MAX 16u

static const char *const PALETTE[10] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static void esc(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '<') fputs("&lt;", f);
    else if (*s == '>') fputs("&gt;", f);
    else if (*s == '&') fputs("&amp;", f);
    else if (*s == '"') fputs("&quot;", f);
    else fputc(*s, f);
  }
}

typedef struct chart {
  FILE *f;
  uint64_t t_end;
  double vmax;
} chart;

static double cx(const chart *c, uint64_t t) { return X0 + (double)t / (double)(c->t_end > 0 ? c->t_end : 1) * W; }
static double cy(const chart *c, double v) { return Y0 + H - (c->vmax > 0 ? v / c->vmax : 0) * H; }

static void fmt_t(uint64_t ms, char *out, size_t n) {
  if (ms >= 3600000) snprintf(out, n, "%.2f h", (double)ms / 3600000.0);
  else if (ms >= 60000) snprintf(out, n, "%.1f min", (double)ms / 60000.0);
  else snprintf(out, n, "%.1f s", (double)ms / 1000.0);
}

/* Frame, axes, ticks, the marks shared by both charts. */
static void chart_open(const chart *c, const sim *s, const char *title, const char *ylabel) {
  FILE *f = c->f;
  fprintf(f, "<h2>%s</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
             "font-family=\"sans-serif\" font-size=\"11\">\n",
          title, X0 + W + 20, Y0 + H + 45);
  /* partitions and isolations: bands across the chart */
  for (size_t k = 0; k < s->iv_n; k++) {
    const sim_interval *v = &s->iv[k];
    if (v->what == 'c') continue;
    uint64_t to = v->to == UINT64_MAX ? c->t_end : v->to;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" opacity=\"0.15\"><title>%s %s</title></rect>\n",
            cx(c, v->from), Y0, cx(c, to) - cx(c, v->from) < 1 ? 1 : cx(c, to) - cx(c, v->from), H,
            v->what == 'p' ? "#d62728" : "#ff7f0e", v->what == 'p' ? "partition" : "isolated node", "");
  }
  fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#333\"/>\n", X0, Y0, W, H);
  for (int k = 0; k <= 5; k++) {
    double v = c->vmax * k / 5.0;
    fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%.0f\" y=\"%.1f\" "
               "text-anchor=\"end\">%.0f</text>\n",
            X0, X0 + W, cy(c, v), cy(c, v), X0 - 4, cy(c, v) + 4, v);
    uint64_t t = c->t_end * (uint64_t)k / 5;
    char ts[32];
    fmt_t(t, ts, sizeof ts);
    fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", cx(c, t), Y0 + H + 15, ts);
  }
  fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">virtual time</text>\n", X0 + W / 2, Y0 + H + 32);
  fprintf(f, "<text x=\"14\" y=\"%.0f\" transform=\"rotate(-90 14 %.0f)\" text-anchor=\"middle\">%s</text>\n", Y0 + H / 2,
          Y0 + H / 2, ylabel);
}

static void vline(const chart *c, uint64_t t, const char *color, const char *label, int row) {
  if (t == 0 || t > c->t_end) return;
  fprintf(c->f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\"/>"
                "<text x=\"%.1f\" y=\"%.0f\" fill=\"%s\">%s</text>\n",
          cx(c, t), cx(c, t), Y0, Y0 + H, color, cx(c, t) + 3, Y0 + 12 + 12 * row, color, label);
}

static void chart_close(const chart *c, const sim *s) {
  vline(c, s->heal_at, "#555", "heal", 0);
  vline(c, s->last_apply_v, "#2ca02c", "last op applied", 1);
  vline(c, s->converged_at, "#006d2c", "convergence seen", 2);
  fputs("</svg>\n", c->f);
}

/* One series: value(k) for every sample k; UINT32_MAX breaks the line. */
typedef double (*series_fn)(const sim *s, size_t k, uint32_t arg, bool *gap);

static void polyline(const chart *c, const sim *s, series_fn fn, uint32_t arg, const char *color, double width,
                     const char *title) {
  FILE *f = c->f;
  bool open = false;
  for (size_t k = 0; k < s->samples_n; k++) {
    bool gap = false;
    double v = fn(s, k, arg, &gap);
    if (gap) {
      if (open) fputs("\"/>\n", f);
      open = false;
      continue;
    }
    if (!open) {
      fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"><title>%s</title></polyline>"
                 "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" points=\"",
              color, width, title, color, width);
      open = true;
    }
    fprintf(f, "%.1f,%.1f ", cx(c, s->sample_t[k]), cy(c, v));
  }
  if (open) fputs("\"/>\n", f);
}

static const uint32_t *row(const sim *s, size_t k) { return &s->samples[k * 2 * s->n]; }

static double applied_of(const sim *s, size_t k, uint32_t node, bool *gap) {
  (void)gap;
  return row(s, k)[node];
}

static double depth_of(const sim *s, size_t k, uint32_t node, bool *gap) {
  uint32_t v = row(s, k)[s->n + node];
  *gap = v == UINT32_MAX;
  return *gap ? 0 : v;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Spread of applied counts at sample k: which = 0 min, 1 median, 2 max. */
static double applied_stat(const sim *s, size_t k, uint32_t which, bool *gap) {
  (void)gap;
  uint32_t *v = malloc(sizeof *v * s->n);
  if (v == NULL) return 0;
  memcpy(v, row(s, k), sizeof *v * s->n);
  qsort(v, s->n, sizeof *v, cmp_u32);
  double r = which == 0 ? v[0] : which == 1 ? v[s->n / 2] : v[s->n - 1];
  free(v);
  return r;
}

/* Outbox depth over running nodes: which = 0 mean, 1 max. */
static double depth_stat(const sim *s, size_t k, uint32_t which, bool *gap) {
  uint64_t sum = 0, up = 0, mx = 0;
  for (uint32_t i = 0; i < s->n; i++) {
    uint32_t v = row(s, k)[s->n + i];
    if (v == UINT32_MAX) continue;
    sum += v;
    up++;
    if (v > mx) mx = v;
  }
  *gap = up == 0;
  return which == 1 ? (double)mx : up > 0 ? (double)sum / (double)up : 0;
}

/* The axis top: the largest value rounded up to 5 x {1, 2, 5} x 10^k, so
 * the five ticks fall on round numbers. */
static double max_over(const sim *s, bool depth) {
  double m = 1;
  for (size_t k = 0; k < s->samples_n; k++)
    for (uint32_t i = 0; i < s->n; i++) {
      uint32_t v = row(s, k)[(depth ? s->n : 0) + i];
      if (v != UINT32_MAX && v > m) m = v;
    }
  double step = 1;
  while (step * 5 < m / 5) step *= 10; /* bounded: m < 2^32 */
  for (int k = 0; k < 40 && step * 5 < m; k++) step *= (k % 3 == 1) ? 2.5 : 2;
  return step * 5;
}

/* One lane per node (up to 64), crashes in black, isolation in orange. */
static void lanes(FILE *f, const sim *s, uint64_t t_end) {
  uint32_t n = s->n <= 64 ? s->n : 1;
  double lane = 12, h = lane * n + 40;
  chart c = {f, t_end, 1};
  fprintf(f, "<h2>Crashes and isolation%s</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
             "font-family=\"sans-serif\" font-size=\"10\">\n",
          s->n <= 64 ? " per node" : " (all nodes on one lane)", X0 + W + 20, h);
  for (uint32_t i = 0; i < n; i++) {
    double y = 10 + i * lane;
    fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/><text x=\"%.0f\" y=\"%.1f\" "
               "text-anchor=\"end\">%s%u</text>\n",
            X0, X0 + W, y + lane / 2, y + lane / 2, X0 - 4, y + lane / 2 + 3, s->n <= 64 ? "node " : "all ",
            s->n <= 64 ? i : s->n);
  }
  for (size_t k = 0; k < s->iv_n; k++) {
    const sim_interval *v = &s->iv[k];
    if (v->what == 'p') continue;
    uint32_t l = s->n <= 64 ? v->node : 0;
    uint64_t to = v->to == UINT64_MAX ? t_end : v->to;
    double x = cx(&c, v->from), w = cx(&c, to) - x;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>node %u %s</title></rect>\n", x,
            10 + l * lane + 2, w < 2 ? 2 : w, lane - 4, v->what == 'c' ? "#222" : "#ff7f0e", v->node,
            v->what == 'c' ? "down (crashed)" : "isolated");
  }
  double y = 10 + n * lane + 14;
  char a[32], b[32];
  fmt_t(0, a, sizeof a);
  fmt_t(t_end, b, sizeof b);
  fprintf(f, "<text x=\"%.0f\" y=\"%.1f\">%s</text><text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n</svg>\n", X0, y, a,
          X0 + W, y, b);
}

static void write_head(FILE *f, const sim *s) {
  char th[65], cmd[8192];
  for (int i = 0; i < 32; i++) snprintf(th + 2 * i, 3, "%02x", s->trace_hash[i]);
  sim_cfg_command(s->cfg, "vix-sim", cmd, sizeof cmd);
  fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>vix-sim seed %" PRIu64 "</title>\n"
             "<style>body{font-family:sans-serif;margin:20px;color:#222}code{background:#f4f4f4;padding:2px 4px}"
             "table{border-collapse:collapse}td{padding:2px 10px;border-bottom:1px solid #eee}"
             ".ok{color:#006d2c}.fail{color:#d62728}</style></head><body>\n",
          s->cfg->seed);
  fprintf(f, "<h1>vix-sim: <span class=\"%s\">%s</span> &mdash; seed %" PRIu64 ", %u nodes, %" PRIu64 " client ops</h1>\n",
          s->failed ? "fail" : "ok", s->failed ? "FAIL" : "all invariants hold", s->cfg->seed, s->n, s->cfg->ops);
  if (s->failed) {
    fputs("<p class=\"fail\">", f);
    esc(f, s->why);
    fputs("</p>\n", f);
  }
  fputs("<p>Replay: <code>", f);
  esc(f, cmd);
  fprintf(f, "</code><br>trace_hash <code>%s</code></p>\n", th);
  fprintf(f, "<table><tr><td>acknowledged writes</td><td>%" PRIu64 "</td><td>applications (all nodes)</td><td>%" PRIu64 "</td></tr>\n"
             "<tr><td>heal at</td><td>%.1f s</td><td>last op applied at</td><td>%.1f s</td></tr>\n"
             "<tr><td>convergence seen at</td><td>%.1f s</td><td>end</td><td>%.1f s</td></tr>\n"
             "<tr><td>frames lost / duplicated / held back</td><td>%" PRIu64 " / %" PRIu64 " / %" PRIu64 "</td>"
             "<td>lost to cuts</td><td>%" PRIu64 "</td></tr>\n"
             "<tr><td>partitions / asymmetric cuts / flaps</td><td>%" PRIu64 " / %" PRIu64 " / %" PRIu64 "</td>"
             "<td>crashes / isolations</td><td>%" PRIu64 " / %" PRIu64 "</td></tr></table>\n",
          s->tot.writes, s->tot.applications, (double)s->heal_at / 1e3, (double)s->last_apply_v / 1e3,
          (double)s->converged_at / 1e3, (double)s->now / 1e3, s->tot.dropped, s->tot.duplicated, s->tot.reordered,
          s->tot.cut_dropped, s->tot.partitions, s->tot.asyms, s->tot.flaps, s->tot.crashes, s->tot.isolations);
  fputs("<p>Red bands: partitions. Orange: a node isolated. Dashed lines: the heal (end of chaos), the last operation "
        "applied anywhere, the convergence check that first saw every node equal.</p>\n",
        f);
}

/* Per node up to PER_NODE_MAX nodes, else the spread. */
static void write_charts(FILE *f, const sim *s, uint64_t t_end) {
  bool each = s->n <= PER_NODE_MAX;
  chart c = {f, t_end, max_over(s, false)};
  chart_open(&c, s, each ? "Operations applied, per node" : "Operations applied: min, median, max over nodes",
             "operations applied");
  chart d = {f, t_end, max_over(s, true)};
  for (uint32_t i = 0; each && i < s->n; i++) {
    char title[32];
    snprintf(title, sizeof title, "node %u", i);
    polyline(&c, s, applied_of, i, PALETTE[i % 10], 1.5, title);
  }
  if (!each) {
    polyline(&c, s, applied_stat, 0, "#d62728", 1.5, "min");
    polyline(&c, s, applied_stat, 1, "#1f77b4", 2.0, "median");
    polyline(&c, s, applied_stat, 2, "#2ca02c", 1.5, "max");
  }
  chart_close(&c, s);
  chart_open(&d, s, each ? "Outbox depth (pending + in flight), per node" : "Outbox depth: max and mean over running nodes",
             "outbox entries");
  for (uint32_t i = 0; each && i < s->n; i++) {
    char title[32];
    snprintf(title, sizeof title, "node %u", i);
    polyline(&d, s, depth_of, i, PALETTE[i % 10], 1.5, title);
  }
  if (!each) {
    polyline(&d, s, depth_stat, 1, "#d62728", 1.5, "max");
    polyline(&d, s, depth_stat, 0, "#1f77b4", 2.0, "mean");
  }
  chart_close(&d, s);
  lanes(f, s, t_end);
  if (each) {
    fputs("<p>", f);
    for (uint32_t i = 0; i < s->n; i++)
      fprintf(f, "<span style=\"color:%s\">&#9632; node %u</span> &nbsp; ", PALETTE[i % 10], i);
    fputs("</p>\n", f);
  }
}

bool sim_report_write(const sim *s, const char *path, char *err, size_t err_bytes) {
  if (s->samples_n == 0) {
    snprintf(err, err_bytes, "no samples (the run failed before it started)");
    return false;
  }
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    snprintf(err, err_bytes, "cannot write %s", path);
    return false;
  }
  write_head(f, s);
  write_charts(f, s, s->sample_t[s->samples_n - 1]);
  fprintf(f, "<p>%zu samples, every %" PRIu64 " ms of virtual time. Written by vix-sim.</p></body></html>\n", s->samples_n,
          s->sample_every);
  bool ok = ferror(f) == 0;
  ok = fclose(f) == 0 && ok;
  if (!ok) snprintf(err, err_bytes, "write error on %s", path);
  return ok;
}
