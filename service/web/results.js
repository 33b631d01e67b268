// A completed task's result (GET .../result: per agent the envelope of PRODUCT.md) and its downloads.

import { fmtBytes, fmtNum, h, svg } from "./dom.js";

const SEVERITY_ORDER = { critical: 0, high: 1, medium: 2, low: 3 };
const MAX_ROWS = 300;
const MAX_COLUMNS = 60;

/** The agents' envelopes in chain order. */
export function envelopes(result, order) {
  const agents = result.agents || {};
  const list = Array.isArray(agents) ? agents : Object.values(agents);
  const rank = (e) => (order.indexOf(e.agent_id) + 1 || 999);
  return list.sort((a, b) => rank(a) - rank(b));
}

const badge = (severity) => h("span", { class: `badge severity-${severity}`, text: severity });

function table(testid, caption, head, rows, empty) {
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

export function summaryCards(list) {
  return h(
    "div",
    { "data-testid": "summary-cards" },
    list.map((e) =>
      h(
        "section",
        { class: "agent-summary" },
        h("h4", {}, e.agent_name || e.agent_id, e.status === "error" ? h("span", { class: "badge severity-critical", text: "failed" }) : null),
        e.error ? h("p", { class: "task-error", text: e.error }) : null,
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

function columnCard(field) {
  const p = field.properties || {};
  const s = field.statistics || {};
  const d = field.distribution || {};
  const facts = [
    ["Type", `${field.data_type}${field.semantic_type ? " · " + field.semantic_type : ""}`],
    ["Missing", `${fmtNum(p.null_percentage)}%`],
    ["Distinct", `${fmtNum(p.unique_count)} (${fmtNum(p.unique_percentage)}%)`],
    ["Quality", fmtNum(field.quality_score)],
  ];
  if (s.mean != null) facts.push(["Mean", fmtNum(s.mean)], ["Min – max", `${fmtNum(s.min)} – ${fmtNum(s.max)}`]);
  if (p.estimated_pii_type) facts.push(["PII", `${p.estimated_pii_type} (${p.estimated_sensitivity_level})`]);
  const chart = d.histogram && d.histogram.counts ? histogram(d.histogram, field.field_name) : d.top_values && d.top_values.length ? topValues(d.top_values, field.field_name) : null;
  return h(
    "li",
    { class: "column-card", "data-column": field.field_name },
    h("h4", { text: field.field_name }),
    h("dl", {}, facts.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])),
    chart,
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
