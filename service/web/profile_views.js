// The unified profiler's dataset views: correlations, missing values, sample rows and duplicate rows.
// Each section shows only when its key is in the profiler's `data`; lists and matrices are capped (a profile of
// 10,000 columns stays quick to draw), every cap said in a caption or a note.

import { fmtInt, fmtNum, h } from "./dom.js";
import { fmtValue, MAX_COLUMNS, table } from "./results.js";

const MAX_HEATMAP = 30;
const MAX_NAMES = 12;
const METHODS = { pearson: "Pearson", spearman: "Spearman", cramers_v: "Cramér's V" };
const SAMPLE_PARTS = [
  ["head", "First rows"],
  ["tail", "Last rows"],
  ["random", "Random rows"],
];

/** A cell of a sample row: the value as written, the whole of a long one in its tooltip. */
function valueCell(v) {
  const text = fmtValue(v);
  return h("td", { class: v == null ? "null" : null, title: text.length > 40 ? text : null, text });
}

const pct = (v) => (v == null ? "—" : `${fmtNum(v)}%`);
const fixed = (v) => (v == null ? "—" : v.toFixed(2));

/** Names joined, the first MAX_NAMES of them. */
function names(list) {
  const shown = list.slice(0, MAX_NAMES).join(", ");
  return list.length > MAX_NAMES ? `${shown} and ${fmtInt(list.length - MAX_NAMES)} more` : shown;
}

function section(testid, title, ...children) {
  const id = `h-${testid}`;
  return h("section", { class: "profile-section", "data-testid": testid, "aria-labelledby": id }, h("h3", { id, text: title }), children);
}

/** A correlation matrix as a table, each cell tinted by its value (blue positive, red negative); the value is
 *  written in the cell, so the colour is never the only carrier. The first MAX_HEATMAP columns. */
function heatmap(testid, caption, matrix) {
  const columns = matrix.columns || [];
  const shown = columns.slice(0, MAX_HEATMAP);
  const cell = (v, a, b) => {
    if (v == null) return h("td", { class: "heat na", title: `${a} × ${b}: undefined`, text: "—" });
    const strength = Math.min(1, Math.abs(v));
    const colour = v >= 0 ? "var(--heat-positive)" : "var(--heat-negative)";
    return h("td", {
      class: strength > 0.55 ? "heat strong" : "heat",
      style: `background-color: color-mix(in srgb, ${colour} ${Math.round(strength * 100)}%, transparent)`,
      title: `${a} × ${b}: ${v}`,
      "data-value": v,
      text: fixed(v),
    });
  };
  const note = columns.length > shown.length ? ` (first ${shown.length} of ${columns.length} columns)` : ` (${columns.length} columns)`;
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "heatmap", "data-testid": testid },
      h("caption", { text: caption + note }),
      h("thead", {}, h("tr", {}, h("td"), shown.map((c) => h("th", { scope: "col", title: c }, h("span", { text: c }))))),
      h(
        "tbody",
        {},
        shown.map((a, i) => h("tr", {}, h("th", { scope: "row", text: a }), shown.map((b, j) => cell((matrix.matrix[i] || [])[j], a, b)))),
      ),
    ),
  );
}

function correlationsSection(c) {
  const near = new Set((c.near_duplicates || []).map((p) => `${p.column_a}\u0000${p.column_b}\u0000${p.method}`));
  const key = (p) => `${p.column_a}\u0000${p.column_b}\u0000${p.method}`;
  const strongest = c.strongest_pairs || [];
  const listed = new Set(strongest.map(key));
  // Near duplicates beyond the strongest few are listed too, in order of strength.
  const pairs = [...strongest, ...(c.near_duplicates || []).filter((p) => !listed.has(key(p)))].sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
  const rows = pairs.map((p) => {
    const dup = near.has(key(p));
    return h(
      "tr",
      { class: dup ? "near-duplicate" : null, "data-near-duplicate": dup ? "true" : "false" },
      h("td", { text: p.column_a }),
      h("td", { text: p.column_b }),
      h("td", { text: METHODS[p.method] || p.method }),
      h("td", { class: "num", text: fixed(p.value) }, dup ? h("span", { class: "badge severity-high", text: "near duplicate" }) : null),
      h("td", { class: "num", text: fmtInt(p.rows) }),
    );
  });
  const matrices = Object.keys(METHODS).filter((m) => c[m] && (c[m].columns || []).length > 1);
  const holder = h("div", { "data-testid": "correlation-heatmap-holder" });
  const pick = h("select", { id: "correlation-method", "data-testid": "correlation-method" }, matrices.map((m) => h("option", { value: m, text: METHODS[m] })));
  const draw = () => holder.replaceChildren(heatmap("correlation-heatmap", `${METHODS[pick.value]} correlation`, c[pick.value]));
  pick.addEventListener("change", draw);
  if (matrices.length) draw();
  const skipped = Object.entries(c.skipped || {});
  const nearCount = (c.near_duplicates || []).length;
  return section(
    "correlations",
    "Correlations",
    h(
      "p",
      { class: "muted", "data-testid": "correlations-note" },
      `Over ${fmtInt(c.rows_used)} rows${c.sampled ? " (an evenly spaced sample)" : ""}, each pair on the rows where both have a value. `,
      `${fmtInt(nearCount)} near-duplicate ${nearCount === 1 ? "pair" : "pairs"} (|value| ≥ ${c.threshold}).`,
    ),
    table("strongest-pairs", "Strongest pairs", ["Column A", "Column B", "Method", "Value", "Rows"], rows, "No pair to compare."),
    matrices.length > 1 ? h("p", { class: "field inline" }, h("label", { for: "correlation-method", text: "Matrix" }), pick) : null,
    matrices.length ? holder : null,
    skipped.length
      ? h(
          "details",
          { "data-testid": "correlations-skipped" },
          h("summary", { text: `${fmtInt(skipped.length)} ${skipped.length === 1 ? "column" : "columns"} left out` }),
          h("ul", { class: "small" }, skipped.slice(0, MAX_COLUMNS).map(([col, why]) => h("li", {}, h("strong", { text: col }), `: ${why}`))),
          skipped.length > MAX_COLUMNS ? h("p", { class: "muted", text: `and ${fmtInt(skipped.length - MAX_COLUMNS)} more` }) : null,
        )
      : null,
  );
}

function missingSection(m) {
  const byNulls = [...(m.columns || [])].filter((c) => c.null_count > 0).sort((a, b) => b.null_count - a.null_count);
  const bars = byNulls.slice(0, MAX_COLUMNS).map((c) =>
    h(
      "tr",
      { "data-column": c.column },
      h("th", { scope: "row", text: c.column }),
      h("td", { class: "num", text: fmtInt(c.null_count) }),
      h("td", { class: "num", text: pct(c.null_percentage) }),
      h("td", { class: "bar-cell", "aria-hidden": "true" }, h("span", { class: "bar", style: `width: ${Math.min(100, Math.max(0, c.null_percentage || 0))}%` })),
    ),
  );
  const more = byNulls.length > bars.length ? ` (the ${bars.length} with the most, of ${fmtInt(byNulls.length)})` : "";
  const patterns = (m.patterns || []).map((p) =>
    h(
      "tr",
      {},
      h("td", { text: names(p.columns), title: p.columns.length > MAX_NAMES ? p.columns.join(", ") : null }),
      h("td", { class: "num", text: fmtInt(p.columns.length) }),
      h("td", { class: "num", text: fmtInt(p.rows) }),
      h("td", { class: "num", text: pct(p.percentage) }),
    ),
  );
  const nullity = m.nullity_correlation;
  const rows = m.rows || 0;
  return section(
    "missing-values",
    "Missing values",
    h(
      "p",
      { "data-testid": "missing-summary" },
      `${fmtInt(m.rows_with_missing)} of ${fmtInt(rows)} rows miss a value (${pct(rows ? Math.round((m.rows_with_missing / rows) * 1e4) / 100 : 0)}); `,
      `${fmtInt(m.rows_complete)} complete, ${fmtInt(m.rows_all_missing)} entirely empty; ${fmtInt(m.distinct_patterns)} distinct ${m.distinct_patterns === 1 ? "pattern" : "patterns"}.`,
    ),
    byNulls.length
      ? h(
          "div",
          { class: "scroll" },
          h(
            "table",
            { "data-testid": "nullity-bars", class: "nullity" },
            h("caption", { text: `Missing values per column${more}` }),
            h("thead", {}, h("tr", {}, ["Column", "Missing", "%", "Share of rows"].map((t) => h("th", { scope: "col", text: t })))),
            h("tbody", {}, bars),
          ),
        )
      : h("p", { class: "muted", "data-testid": "nullity-bars", text: "No column misses a value." }),
    table("missing-patterns", "Columns missing together, most frequent first", ["Columns missing together", "Columns", "Rows", "% of rows"], patterns, "No row misses a value."),
    nullity && (nullity.columns || []).length > 1 ? heatmap("nullity-heatmap", "Nullity correlation (how columns go missing together)", nullity) : null,
  );
}

/** The sample rows as tabs (First, Last, Random): an ARIA tab list, arrow keys move between the tabs. */
function sampleTabs(s) {
  const columns = s.columns || [];
  const shown = columns.slice(0, MAX_COLUMNS);
  const parts = SAMPLE_PARTS.filter(([part]) => Array.isArray(s[part]));
  const head = ["Row", ...shown];
  const rowsOf = (part) =>
    s[part].map((row) => h("tr", {}, h("th", { scope: "row", text: fmtInt(row.row_index) }), shown.map((c) => valueCell(row[c]))));
  const tabs = parts.map(([part, label]) =>
    h("button", { type: "button", role: "tab", id: `sample-tab-${part}`, "data-testid": `sample-tab-${part}`, "aria-controls": `sample-panel-${part}`, "aria-selected": "false", tabindex: "-1", text: label }),
  );
  const panels = parts.map(([part, label]) =>
    h(
      "div",
      { role: "tabpanel", id: `sample-panel-${part}`, "aria-labelledby": `sample-tab-${part}`, hidden: true, tabindex: "0" },
      table(`sample-${part}`, part === "random" ? `${label} (seed ${s.seed})` : label, head, rowsOf(part), "No rows."),
    ),
  );
  const choose = (i, focus) => {
    tabs.forEach((t, j) => {
      t.setAttribute("aria-selected", String(i === j));
      t.tabIndex = i === j ? 0 : -1;
      panels[j].hidden = i !== j;
    });
    if (focus) tabs[i].focus();
  };
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => choose(i, false));
    t.addEventListener("keydown", (e) => {
      const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
      if (to === undefined) return;
      e.preventDefault();
      choose((to + tabs.length) % tabs.length, true);
    });
  });
  if (tabs.length) choose(0, false);
  const note = s.columns_truncated || columns.length > shown.length ? h("p", { class: "muted", text: `Showing the first ${shown.length} columns.` }) : null;
  return h("div", { class: "sample-tabs" }, h("div", { role: "tablist", "aria-label": "Sample rows", class: "tabs" }, tabs), note, panels);
}

function duplicatesView(d, columns) {
  const groups = d.groups || [];
  const keys = columns && columns.length ? columns : Object.keys((groups[0] && groups[0].row) || {});
  const shown = keys.slice(0, MAX_COLUMNS);
  const rows = groups.map((g) =>
    h(
      "tr",
      {},
      h("td", { class: "num", text: fmtInt(g.count) }),
      h("td", { text: `${g.row_indexes.map(fmtInt).join(", ")}${g.count > g.row_indexes.length ? ", …" : ""}` }),
      shown.map((c) => valueCell(g.row[c])),
    ),
  );
  return [
    h("h4", { text: "Duplicate rows" }),
    h(
      "p",
      { "data-testid": "duplicates-summary" },
      d.duplicate_rows ? `${fmtInt(d.duplicate_rows)} ${d.duplicate_rows === 1 ? "row repeats" : "rows repeat"} an earlier row, in ${fmtInt(d.groups_total)} ${d.groups_total === 1 ? "group" : "groups"}.` : "No row repeats another.",
    ),
    groups.length ? table("duplicate-groups", `Groups of equal rows, largest first${d.groups_total > groups.length ? ` (${groups.length} of ${fmtInt(d.groups_total)})` : ""}`, ["Rows", "Row numbers", ...shown], rows, "") : null,
  ];
}

/** The dataset views of the unified profiler's envelope in `list` (the agents' envelopes), or nothing. */
export function profileViews(list) {
  const profiler = list.find((e) => e.agent_id === "unified-profiler");
  const data = (profiler && profiler.data) || {};
  return h(
    "div",
    { "data-testid": "profile-views" },
    data.correlations ? correlationsSection(data.correlations) : null,
    data.missing_patterns ? missingSection(data.missing_patterns) : null,
    data.samples || data.duplicate_rows_sample
      ? section(
          "samples",
          "Samples",
          data.samples ? sampleTabs(data.samples) : null,
          data.duplicate_rows_sample ? duplicatesView(data.duplicate_rows_sample, data.samples && data.samples.columns) : null,
        )
      : null,
  );
}
