// A completed task's result (GET .../result: per agent the envelope of PRODUCT.md) and its downloads.

import { fmtBytes, fmtInt, fmtNum, h, svg } from "./dom.js";
import { details, headline } from "./tool_views.js";

const SEVERITY_ORDER = { critical: 0, high: 1, medium: 2, low: 3 };
export const MAX_ROWS = 300;
export const MAX_COLUMNS = 60;

/** The agents' envelopes in chain order. The list keeps the whole result as `list.result`: the views given only
 *  the list (the summary's headline card) read the task's summary and steps from it. */
export function envelopes(result, order) {
  const agents = result.agents || {};
  const list = Array.isArray(agents) ? [...agents] : Object.values(agents);
  const rank = (e) => (order.indexOf(e.agent_id) + 1 || 999);
  list.sort((a, b) => rank(a) - rank(b));
  list.result = result;
  return list;
}

const badge = (severity) => h("span", { class: `badge severity-${severity}`, text: severity });

/** A captioned table of prebuilt rows, the first MAX_ROWS of them; `empty` (a note) when there are none. */
export function table(testid, caption, head, rows, empty) {
  if (!rows.length) return h("p", { "data-testid": testid, class: "muted", text: empty });
  const shown = rows.slice(0, MAX_ROWS);
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { "data-testid": testid },
      h("caption", { text: rows.length > shown.length ? `${caption} (first ${shown.length} of ${rows.length})` : `${caption} (${rows.length})` }),
      h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, shown),
    ),
  );
}

const bySeverity = (a, b) => (SEVERITY_ORDER[a.severity] ?? 9) - (SEVERITY_ORDER[b.severity] ?? 9);

/** An agent's error, unless one of its cards already says it (a failed agent's card carries its error). */
const untold = (e) => (e.error && !(e.executive_summary || []).some((c) => c.description === e.error) ? e.error : null);

/** The headline card of the task's tool, then, folded, each agent's own cards and the tool's details. */
export function summaryCards(list) {
  const result = list.result || {};
  return h("div", { class: "result-view" }, headline(result, list), details(result, list, agentCards(list)));
}

function agentCards(list) {
  return h(
    "div",
    { "data-testid": "summary-cards" },
    list.map((e) =>
      h(
        "section",
        { class: "agent-summary" },
        h("h4", {}, e.agent_name || e.agent_id, e.status === "error" ? h("span", { class: "badge severity-critical", text: "failed" }) : null),
        untold(e) ? h("p", { class: "task-error", text: untold(e) }) : null,
        h(
          "ul",
          { class: "cards" },
          (e.executive_summary || []).map((c) =>
            h("li", { class: `card status-${c.status}` }, h("span", { class: "card-title", text: c.title }), h("strong", { class: "card-value", text: c.value }), h("span", { class: "card-desc", text: c.description })),
          ),
        ),
      ),
    ),
  );
}

export function alertsTable(list) {
  const rows = list
    .flatMap((e) => (e.alerts || []).map((a) => ({ ...a, agent: e.agent_name || e.agent_id })))
    .sort(bySeverity)
    .map((a) => h("tr", {}, h("td", {}, badge(a.severity)), h("td", { text: a.agent }), h("td", { text: a.field_name || "—" }), h("td", { text: a.message }), h("td", { text: a.recommendation })));
  return table("alerts-table", "Alerts", ["Severity", "Agent", "Field", "Alert", "Recommendation"], rows, "No alerts.");
}

export function issuesTable(list) {
  const rows = list
    .flatMap((e) => (e.issues || []).map((i) => ({ ...i, agent: e.agent_name || e.agent_id })))
    .sort(bySeverity)
    .map((i) => h("tr", {}, h("td", {}, badge(i.severity)), h("td", { text: i.agent }), h("td", { text: i.field_name || "—" }), h("td", { text: i.issue_type }), h("td", { text: i.message })));
  return table("issues-table", "Issues", ["Severity", "Agent", "Field", "Type", "Issue"], rows, "No issues.");
}

// --- per-column view: the unified profiler's data.fields ------------------------------------------

const W = 240;
const H = 64;

function histogram(hist, name) {
  const counts = hist.counts || [];
  const edges = hist.bin_edges || [];
  const top = Math.max(1, ...counts);
  const bw = W / Math.max(1, counts.length);
  return svg(
    "svg",
    { viewBox: `0 0 ${W} ${H + 14}`, class: "chart", role: "img", "aria-label": `Histogram of ${name}: ${counts.length} bins from ${fmtNum(edges[0])} to ${fmtNum(edges[edges.length - 1])}` },
    counts.map((c, i) =>
      svg("rect", { x: i * bw + 0.5, y: H - (c / top) * H, width: Math.max(1, bw - 1), height: (c / top) * H }, svg("title", { text: `${fmtNum(edges[i])} – ${fmtNum(edges[i + 1])}: ${fmtNum(c)}` })),
    ),
    svg("text", { x: 0, y: H + 12, text: fmtNum(edges[0]) }),
    svg("text", { x: W, y: H + 12, "text-anchor": "end", text: fmtNum(edges[edges.length - 1]) }),
  );
}

function topValues(values, name) {
  const shown = values.slice(0, 6);
  const top = Math.max(1, ...shown.map((v) => v.count));
  const row = 14;
  return svg(
    "svg",
    { viewBox: `0 0 ${W} ${shown.length * row}`, class: "chart", role: "img", "aria-label": `Most frequent values of ${name}: ${shown.map((v) => `${v.value} (${v.count})`).join(", ")}` },
    shown.map((v, i) => {
      const label = String(v.value ?? "null");
      return svg(
        "g",
        {},
        svg("rect", { x: 100, y: i * row + 2, width: Math.max(1, ((W - 140) * v.count) / top), height: row - 4 }),
        svg("text", { x: 96, y: i * row + 11, "text-anchor": "end", text: label.length > 14 ? label.slice(0, 13) + "…" : label }),
        svg("text", { x: 104 + ((W - 140) * v.count) / top, y: i * row + 11, text: `${fmtNum(v.percentage)}%` }),
      );
    }),
  );
}

/** A value from the result as written there (extremes, sample rows): no rounding, null shown as such. */
export const fmtValue = (v) => (v == null ? "null" : typeof v === "object" ? JSON.stringify(v) : String(v));

/** Seconds as pandas writes a Timedelta, as the profiler's `text` of a gap does: "2 days 18:00:00". */
export function fmtSeconds(seconds) {
  if (seconds == null) return "—";
  const whole = Math.round(Math.abs(seconds));
  const days = Math.floor(whole / 86400);
  const clock = [Math.floor((whole % 86400) / 3600), Math.floor((whole % 3600) / 60), whole % 60].map((n) => String(n).padStart(2, "0")).join(":");
  return `${seconds < 0 ? "-" : ""}${days} ${days === 1 ? "day" : "days"} ${clock}`;
}

/** The 5 lowest and highest values with their counts, side by side. */
function extremesTable(ext, name) {
  const lowest = (ext && ext.lowest) || [];
  const highest = (ext && ext.highest) || [];
  if (!lowest.length && !highest.length) return null;
  const cell = (e) => (e ? h("td", {}, fmtValue(e.value), h("span", { class: "muted", text: ` ×${fmtInt(e.count)}` })) : h("td"));
  return h(
    "table",
    { class: "extremes", "data-testid": "extremes" },
    h("caption", { text: `Extreme values of ${name} (× rows)` }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Lowest" }), h("th", { scope: "col", text: "Highest" }))),
    h("tbody", {}, Array.from({ length: Math.max(lowest.length, highest.length) }, (_, i) => h("tr", {}, cell(lowest[i]), cell(highest[i])))),
  );
}

/** Vertical bars of `counts` ({period, label?, count}), each with its period in a tooltip; the label says
 *  every count, so the chart reads without seeing it. */
function periodChart(counts, name, what, testid, short = (c) => String(c.label ?? c.period)) {
  const top = Math.max(1, ...counts.map((c) => c.count));
  const bw = W / Math.max(6, counts.length); // a few periods get bars of a sixth of the width, not all of it
  const every = Math.ceil(counts.length / 12);
  const said = counts.slice(0, 40).map((c) => `${c.label ?? c.period}: ${fmtInt(c.count)}`).join(", ");
  return h(
    "figure",
    { class: "period-chart", "data-testid": testid },
    h("figcaption", { text: `Rows by ${what}` }),
    svg(
      "svg",
      { viewBox: `0 0 ${W} ${H + 14}`, class: "chart", role: "img", "aria-label": `Rows of ${name} by ${what}: ${said}${counts.length > 40 ? ", …" : ""}` },
      counts.map((c, i) =>
        svg(
          "g",
          {},
          svg("rect", { x: i * bw + 0.5, y: H - (c.count / top) * H, width: Math.max(1, bw - 1), height: (c.count / top) * H, "data-period": c.period, "data-count": c.count }, svg("title", { text: `${c.label ?? c.period}: ${fmtInt(c.count)}` })),
          i % every === 0 ? svg("text", { x: i * bw + bw / 2, y: H + 11, "text-anchor": "middle", text: short(c) }) : null,
        ),
      ),
    ),
  );
}

/** A date or datetime column's span, steps, gaps and counts per year, month, weekday and hour. */
function datetimeView(dt, name) {
  const step = dt.step || {};
  const facts = [
    ["From", dt.min, "datetime-min"],
    ["To", dt.max, "datetime-max"],
    ["Range", dt.range || fmtSeconds(dt.range_seconds), "datetime-range"],
    ["Time zone", dt.time_zone || "none"],
    ["Distinct", fmtInt(dt.distinct)],
    ["Usual step", fmtSeconds(step.most_common_seconds ?? step.median_seconds)],
    ["In the future", fmtInt(dt.future_count)],
  ];
  const gaps = dt.gaps || [];
  const charts = [
    [dt.counts_by_year, dt.years_per_period > 1 ? `${dt.years_per_period} years` : "year", "chart-year", (c) => (dt.counts_by_year.length > 8 ? `'${String(c.period).slice(-2)}` : String(c.period))],
    [dt.counts_by_month, "month", "chart-month", (c) => (c.label || String(c.period)).slice(0, 1)],
    [dt.counts_by_weekday, "weekday", "chart-weekday", (c) => (c.label || String(c.period)).slice(0, 2)],
    [dt.counts_by_hour, "hour", "chart-hour", (c) => String(c.period)],
  ].filter(([counts]) => counts && counts.length);
  return h(
    "div",
    { class: "datetime", "data-testid": "datetime-profile" },
    h("dl", {}, facts.map(([k, v, id]) => [h("dt", { text: k }), h("dd", { text: v ?? "—", "data-testid": id })])),
    gaps.length
      ? h(
          "table",
          { class: "gaps", "data-testid": "datetime-gaps" },
          h("caption", { text: `Longest gaps of ${name} (${fmtInt(dt.gaps_total ?? gaps.length)} ${(dt.gaps_total ?? gaps.length) === 1 ? "gap" : "gaps"} longer than ${fmtSeconds(dt.gap_threshold_seconds)})` }),
          h("thead", {}, h("tr", {}, ["After", "Before", "Gap"].map((t) => h("th", { scope: "col", text: t })))),
          h("tbody", {}, gaps.map((g) => h("tr", {}, h("td", { text: g.after }), h("td", { text: g.before }), h("td", { text: g.text || fmtSeconds(g.seconds) })))),
        )
      : null,
    h("div", { class: "period-charts" }, charts.map(([counts, what, id, short]) => periodChart(counts, name, what, id, short))),
  );
}

function columnCard(field) {
  const p = field.properties || {};
  const s = field.statistics || {};
  const d = field.distribution || {};
  const dt = field.datetime_profile;
  const facts = [
    ["Type", `${field.data_type}${field.semantic_type ? " · " + field.semantic_type : ""}`, "semantic-type"],
    ["Missing", `${fmtNum(p.null_percentage)}%`],
    ["Distinct", `${fmtNum(p.unique_count)} (${fmtNum(p.unique_percentage)}%)`],
    ["Quality", fmtNum(field.quality_score)],
  ];
  if (s.mean != null) facts.push(["Mean", fmtNum(s.mean)], ["Min – max", `${fmtNum(s.min)} – ${fmtNum(s.max)}`]);
  if (p.estimated_pii_type) facts.push(["PII", `${p.estimated_pii_type} (${p.estimated_sensitivity_level})`]);
  const chart = d.histogram && d.histogram.counts ? histogram(d.histogram, field.field_name) : d.top_values && d.top_values.length ? topValues(d.top_values, field.field_name) : null;
  return h(
    "li",
    { class: dt ? "column-card temporal" : "column-card", "data-column": field.field_name },
    h("h4", { text: field.field_name }),
    h("dl", {}, facts.map(([k, v, id]) => [h("dt", { text: k }), h("dd", { text: v, "data-testid": id })])),
    p.semantic_reason ? h("p", { class: "reason", "data-testid": "semantic-reason", text: p.semantic_reason }) : null,
    chart,
    extremesTable(s.extremes || (dt && dt.extremes), field.field_name),
    dt ? datetimeView(dt, field.field_name) : null,
  );
}

export function columnsView(list) {
  const profiler = list.find((e) => e.agent_id === "unified-profiler");
  const fields = (profiler && profiler.data && profiler.data.fields) || [];
  const grid = h("ul", { class: "columns" });
  const filter = h("input", { type: "search", id: "column-filter", placeholder: "column name" });
  const render = () => {
    const q = filter.value.trim().toLowerCase();
    const match = fields.filter((f) => String(f.field_name).toLowerCase().includes(q));
    grid.replaceChildren(...match.slice(0, MAX_COLUMNS).map(columnCard));
    note.textContent = match.length > MAX_COLUMNS ? `Showing ${MAX_COLUMNS} of ${match.length} columns: filter by name to see others.` : "";
  };
  const note = h("p", { class: "muted", "aria-live": "polite" });
  filter.addEventListener("input", render);
  render();
  if (!fields.length) return h("div", { "data-testid": "columns-view" }, h("p", { class: "muted", text: "No per-column profile in this result." }));
  return h(
    "div",
    { "data-testid": "columns-view" },
    fields.length > 6 ? h("p", { class: "field" }, h("label", { for: "column-filter", text: "Filter columns" }), filter) : null,
    note,
    grid,
  );
}

export function downloads(files) {
  return h(
    "ul",
    { class: "downloads" },
    files.map((f) =>
      h("li", {}, h("a", { class: "button", href: f.url, download: f.name, "data-testid": `download-${f.name}`, rel: "noopener" }, `⬇ ${f.name}`), h("span", { class: "muted", text: ` ${fmtBytes(f.size)}` })),
    ),
  );
}
