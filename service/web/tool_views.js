// What a task did to the data, per tool: one headline card (the figures a person asks first), then the details
// folded. A clean's details show a sample of changed cells before and after (from the result) and the quarantined
// rows with their original values (from quarantine.csv, read a bounded byte range at a time, never whole).
//
// Every figure comes from the result the API stores (its `summary`, `steps` and the agents' envelopes), the same
// numbers the output files hold: rows out are cleaned_data.csv's rows, quarantined rows are quarantine.csv's.

import { get } from "./api.js";
import { fmtBytes, fmtInt, fmtNum, h } from "./dom.js";

const PAGE_ROWS = 20;
const RANGE_BYTES = 64 * 1024; // one read of quarantine.csv
const MAX_RANGE_BYTES = 1024 * 1024; // a read grows to this to hold one very long row, no further
const MAX_SHOWN_COLUMNS = 60;
const SEVERITIES = ["critical", "high", "medium", "low"];
// The clean agents that change cells, named by what they do to them.
const CHANGE_KINDS = {
  "type-fixer": "converted to their type",
  "field-standardization": "standardised",
  "null-handler": "filled in",
  "outlier-remover": "outliers replaced",
};

const plural = (n, one, many = `${one}s`) => `${fmtInt(n)} ${n === 1 ? one : many}`;
const envelopeOf = (list, id) => list.find((e) => e.agent_id === id && e.status === "success");
const metric = (list, id, key) => {
  const e = envelopeOf(list, id);
  return e && e.summary_metrics ? e.summary_metrics[key] : undefined;
};

/** A figure of the headline: a label, the value as text, its raw numbers as data-* attributes (tests read them). */
function figure(key, label, value, note, data = {}) {
  const attrs = Object.fromEntries(Object.entries(data).map(([k, v]) => [`data-${k}`, v == null ? null : String(v)]));
  return h(
    "div",
    { class: "figure", "data-testid": `headline-${key}`, ...attrs },
    h("dt", { text: label }),
    h("dd", {}, value),
    note ? h("dd", { class: "figure-note" }, note) : null,
  );
}

const arrow = (a, b) => `${fmtInt(a)} → ${fmtInt(b)}`;

function alertCounts(summary) {
  const counts = summary.alerts_by_severity || {};
  const total = SEVERITIES.reduce((sum, s) => sum + (counts[s] || 0), 0);
  const badges = SEVERITIES.filter((s) => counts[s]).map((s) => h("span", { class: `badge severity-${s}`, text: `${fmtInt(counts[s])} ${s}` }));
  return figure("alerts", "Alerts", badges.length ? badges : "none", total ? plural(total, "alert") : "nothing to look at first", Object.fromEntries(SEVERITIES.map((s) => [s, counts[s] || 0])));
}

function profileFigures(result) {
  const s = result.summary || {};
  const grade = s.quality_grade ?? "—";
  return [
    figure("grade", "Quality grade", String(grade), s.quality_score != null ? `score ${fmtNum(s.quality_score)} of 100` : "no quality score in this chain", { grade: s.quality_grade, score: s.quality_score }),
    figure("shape", "Rows × columns", `${fmtInt(s.rows)} × ${fmtInt(s.columns)}`, s.primary, { rows: s.rows, columns: s.columns }),
    alertCounts(s),
  ];
}

/** [step, its count of `key`] for each step (chain order) whose count is above 0. */
const stepCounts = (steps, key) => steps.filter((step) => step[key] > 0).map((step) => [step, step[key]]);

function cleanFigures(result) {
  const s = result.summary || {};
  const steps = result.steps || [];
  const removedBy = stepCounts(steps, "rows_removed").map(([step, n]) => `${step.agent_name} ${fmtInt(n)}`);
  const changedBy = stepCounts(steps, "cells_changed_total");
  return [
    figure("rows", "Rows in → out", arrow(s.rows, s.rows_out), s.retention_percentage != null ? `${fmtNum(s.retention_percentage)}% kept, in cleaned_data.csv` : null, { in: s.rows, out: s.rows_out }),
    figure("quarantined", "Quarantined rows", fmtInt(s.rows_quarantined), s.rows_quarantined ? `in quarantine.csv, removed by ${removedBy.join(", ")}` : "no row removed", { count: s.rows_quarantined }),
    figure(
      "cells",
      "Cells changed",
      fmtInt(s.cells_changed),
      changedBy.length
        ? h("ul", { class: "kinds" }, changedBy.map(([step, n]) => h("li", { "data-agent": step.agent_id, text: `${fmtInt(n)} ${CHANGE_KINDS[step.agent_id] || `by ${step.agent_name}`}` })))
        : "no cell changed",
      { count: s.cells_changed, invented: s.values_invented },
    ),
  ];
}

function masterFigures(result, list) {
  const records = metric(list, "golden-record-builder", "input_records");
  const golden = metric(list, "golden-record-builder", "golden_records_created");
  const clusters = metric(list, "golden-record-builder", "clusters_formed");
  const queue = metric(list, "stewardship-flagger", "tasks_created");
  return [
    figure("golden", "Records → golden records", arrow(records, golden), golden != null ? "in master_data.csv; every record's in crosswalk.csv" : "the golden record builder did not finish", { records, golden }),
    figure("clusters", "Clusters", fmtInt(clusters), clusters != null ? "groups of two or more records merged into one" : null, { count: clusters }),
    figure("queue", "Review queue", queue != null ? plural(queue, "task") : "—", queue != null ? "for a person to decide, in stewardship_queue.csv" : "the stewardship flagger did not run", { count: queue }),
  ];
}

function transformFigures(result, list) {
  const s = result.summary || {};
  const transformer = envelopeOf(list, "transformer");
  const steps = (transformer && transformer.data && transformer.data.steps) || [];
  return [
    figure("rows", "Rows in → out", arrow(s.rows, s.rows_out), "in transformed_data.csv", { in: s.rows, out: s.rows_out }),
    figure(
      "steps",
      "Rows affected per step",
      steps.length
        ? h(
            "ol",
            { class: "kinds" },
            steps.map((step) => h("li", { "data-rows-affected": String(step.rows_affected) }, h("strong", { text: fmtInt(step.rows_affected) }), ` ${step.sentence}`)),
          )
        : "—",
      null,
      { affected: s.rows_affected },
    ),
  ];
}

function searchFigures(result) {
  const s = result.summary || {};
  return [
    figure("matches", "Matching rows", fmtInt(s.rows_matched), s.rows_matched != null ? `of ${plural(s.rows, "row")}, in search_result.csv` : "the search did not finish", { count: s.rows_matched, rows: s.rows }),
    s.total_groups != null ? figure("groups", "Groups", fmtInt(s.total_groups), "in the aggregate", { count: s.total_groups }) : null,
  ];
}

const FIGURES = {
  "profile-my-data": profileFigures,
  "clean-my-data": cleanFigures,
  "master-my-data": masterFigures,
  "transform-my-data": transformFigures,
  "search-my-data": searchFigures,
};

/** The headline card of `result` (its agents' envelopes in `list`), or null for a tool without one. */
export function headline(result, list) {
  const figures = FIGURES[result.tool_id];
  if (!figures) return null;
  return h(
    "section",
    { class: "headline", "data-testid": "headline", "data-tool": result.tool_id, "aria-label": "What happened" },
    h("dl", {}, figures(result, list)),
  );
}

// --- a table shown a page at a time ---------------------------------------------------------------

/** A captioned table of `total` rows, PAGE_ROWS at a time with Prev/Next; `rowsFor(start, end)` gives (or resolves
 *  to) the body rows [start, end). */
function pagedTable(testid, caption, head, total, rowsFor) {
  const body = h("tbody");
  const title = h("caption");
  const status = h("span", { "data-testid": `${testid}-page`, "aria-live": "polite" });
  const prev = h("button", { type: "button", class: "small secondary", "data-testid": `${testid}-prev`, text: "Prev" });
  const next = h("button", { type: "button", class: "small secondary", "data-testid": `${testid}-next`, text: "Next" });
  let start = 0;
  const show = async (at) => {
    prev.disabled = next.disabled = true;
    const end = Math.min(total, at + PAGE_ROWS);
    body.replaceChildren(...(await rowsFor(at, end)));
    start = at;
    title.textContent = `${caption}: ${total ? `${fmtInt(at + 1)}–${fmtInt(end)} of ` : ""}${fmtInt(total)}`;
    status.textContent = `Page ${fmtInt(Math.floor(at / PAGE_ROWS) + 1)} of ${fmtInt(Math.max(1, Math.ceil(total / PAGE_ROWS)))}`;
    prev.disabled = at === 0;
    next.disabled = end >= total;
  };
  const go = (at) =>
    show(at).catch((error) => {
      status.textContent = error.message;
      prev.disabled = start === 0;
      next.disabled = false; // to try again
    });
  prev.addEventListener("click", () => go(Math.max(0, start - PAGE_ROWS)));
  next.addEventListener("click", () => go(start + PAGE_ROWS));
  const view = h(
    "div",
    { class: "paged" },
    h("div", { class: "scroll" }, h("table", { "data-testid": testid }, title, h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col", text: t })))), body)),
    total > PAGE_ROWS ? h("nav", { class: "pager", "aria-label": caption }, prev, status, next) : null,
  );
  return { view, ready: show(0) };
}

/** A value with the whitespace a change may be about made visible: ␣ for a leading or trailing space, ↵ for a line
 *  break, ⇥ for a tab. */
const visible = (v) => (v == null ? v : String(v).replace(/\r?\n/g, "↵").replace(/\t/g, "⇥").replace(/^ +| +$/g, (m) => "␣".repeat(m.length)));

const cell = (v, cls) => h("td", { class: v == null ? `null ${cls || ""}`.trim() : cls || null, title: v != null && String(v).length > 40 ? String(v) : null, text: v == null ? "null" : String(v) });

// --- clean: what each agent did, changed cells before and after -----------------------------------

function stepsTable(steps) {
  const columnsChanged = (step) =>
    Object.entries(step.columns || {})
      .filter(([, c]) => c.cells_changed > 0)
      .map(([name, c]) => `${name} ${fmtInt(c.cells_changed)}`)
      .join(", ");
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { "data-testid": "clean-steps" },
      h("caption", { text: "What each agent did, in chain order" }),
      h("thead", {}, h("tr", {}, ["Step", "Agent", "Rows in → out", "Removed", "Cells changed", "Filled", "Changed per column"].map((t) => h("th", { scope: "col", text: t })))),
      h(
        "tbody",
        {},
        steps.map((step) =>
          h(
            "tr",
            { "data-agent": step.agent_id },
            h("td", { class: "num", text: String(step.step) }),
            h("td", { text: step.agent_name }),
            h("td", { class: "num", text: arrow(step.rows_before, step.rows_after) }),
            h("td", { class: "num", text: fmtInt(step.rows_removed) }),
            h("td", { class: "num", text: fmtInt(step.cells_changed_total) }),
            h("td", { class: "num", text: fmtInt(step.values_invented_total) }),
            h("td", { text: columnsChanged(step) || "—" }),
          ),
        ),
      ),
    ),
  );
}

const STANDARDISED = /^'(.*)' → '(.*)'$/s; // field-standardization's message: 'before' → 'after'

/** Changed cells the result shows one by one: {row, column, agent, before, after}. The type fixer lists a few
 *  conversions per column (no row); the standardiser, the null handler and an outlier replacement list each cell
 *  among their row-level issues (the first 1,000 per agent; all of them are in row_level_issues.parquet). */
function changedCells(list) {
  const cells = [];
  for (const e of list) {
    if (e.status !== "success") continue;
    const data = e.data || {};
    const issues = e.row_level_issues || [];
    const by = e.agent_name || e.agent_id;
    if (e.agent_id === "type-fixer") {
      for (const fix of data.fix_log || []) {
        // a column typed with its text unchanged (e.g. to a category) changed no cell as written
        for (const c of fix.sample_conversions || []) if (c.from !== c.to) cells.push({ row: null, column: fix.column, agent: by, before: c.from, after: c.to });
      }
    } else if (e.agent_id === "field-standardization") {
      for (const i of issues.filter((i) => i.issue_type === "value_standardized")) {
        const m = STANDARDISED.exec(i.message || "");
        cells.push({ row: i.row_index, column: i.column, agent: by, before: i.value, after: m ? m[2] : i.message });
      }
    } else if (e.agent_id === "null-handler") {
      for (const i of issues.filter((i) => i.issue_type === "null_imputed")) cells.push({ row: i.row_index, column: i.column, agent: by, before: null, after: i.value });
    } else if (e.agent_id === "outlier-remover") {
      const replaced = new Map((data.removal_log || []).filter((r) => r.replacement_value != null).map((r) => [r.column, r.replacement_value]));
      for (const i of issues.filter((i) => replaced.has(i.column))) cells.push({ row: i.row_index, column: i.column, agent: by, before: i.value, after: replaced.get(i.column) });
    }
  }
  return cells;
}

function changedCellsView(list, total) {
  const cells = changedCells(list);
  if (!cells.length) return h("p", { class: "muted", "data-testid": "changed-cells-empty", text: total ? "The agents changed cells without listing examples: the steps above count them." : "No cell changed." });
  const rowOf = (c) =>
    h("tr", {}, h("td", { class: "num", text: c.row == null ? "—" : fmtInt(c.row) }), h("td", { text: c.column }), h("td", { text: c.agent }), cell(visible(c.before), "before"), cell(visible(c.after), "after"));
  const { view } = pagedTable("changed-cells", "Changed cells, a sample", ["Row", "Column", "Changed by", "Before", "After"], cells.length, (a, b) => cells.slice(a, b).map(rowOf));
  const note = `${plural(cells.length, "example")} of ${plural(total || 0, "changed cell")}; rows are the input file's data rows (the type fixer shows a few conversions per column, without their rows); ␣ is a space, ↵ a line break.`;
  return [h("p", { class: "small muted", text: note }), view];
}

// --- clean: the quarantined rows, read from quarantine.csv a byte range at a time -------------------

/** The complete CSV records (RFC 4180: a quoted field may hold commas, quotes and line breaks) at the start of
 *  `text`, and the length of text they take; what follows is a record cut by the end of the range, unless `atEnd`
 *  (the text reaches the end of the file). */
function csvRecords(text, atEnd) {
  const records = [];
  let record = [];
  let field = "";
  let quoted = false;
  let end = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c !== '"') {
        field += c;
      } else if (text[i + 1] === '"') {
        field += '"';
        i++;
      } else {
        quoted = false;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ",") {
      record.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      record.push(field);
      records.push(record);
      record = [];
      field = "";
      end = i + 1;
    } else {
      field += c;
    }
  }
  if (atEnd && !quoted && (field || record.length)) {
    record.push(field);
    records.push(record);
    end = text.length;
  }
  return { records, end };
}

/** Bytes [first, last] of `url`, by an HTTP Range request; a server that ignores Range answers with the whole
 *  file, of which no more than those bytes are read. */
async function fetchRange(url, first, last) {
  let response;
  try {
    response = await fetch(url, { headers: { Range: `bytes=${first}-${last}` } });
  } catch {
    // The store's CORS rule must let the page GET with a Range header (service/storage.py, ensure_bucket).
    throw new Error("The object store did not let the page read quarantine.csv: download it to see its rows.");
  }
  if (!response.ok) throw new Error(`quarantine.csv could not be read: HTTP ${response.status}`);
  if (response.status === 206) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const parts = [];
  let read = 0;
  while (read <= last) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    read += value.length;
  }
  await reader.cancel();
  const whole = new Uint8Array(read);
  parts.reduce((at, p) => (whole.set(p, at), at + p.length), 0);
  return whole.slice(first, last + 1);
}

/** The records of the CSV file at `url` (`size` bytes), read from the start as far as asked, RANGE_BYTES at a
 *  time (more only for a record longer than that); only complete records are kept. */
function csvReader(url, size) {
  const records = [];
  let offset = 0;
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const readMore = async () => {
    for (let span = RANGE_BYTES; ; span *= 4) {
      const last = Math.min(size, offset + span) - 1;
      const bytes = await fetchRange(url, offset, last);
      const atEnd = offset + bytes.length >= size;
      const text = decoder.decode(bytes);
      const { records: found, end } = csvRecords(text, atEnd);
      if (found.length || atEnd) {
        records.push(...found);
        offset = atEnd ? size : offset + encoder.encode(text.slice(0, end)).length;
        return;
      }
      if (span >= MAX_RANGE_BYTES) throw new Error(`a quarantined row is longer than ${fmtBytes(MAX_RANGE_BYTES)}: download quarantine.csv to see it`);
    }
  };
  return {
    /** The first `count` records (fewer at the end of the file). */
    async take(count) {
      while (records.length < count && offset < size) await readMore();
      return records.slice(0, count);
    },
  };
}

function quarantineView(result, list) {
  const names = new Map(list.map((e) => [e.agent_id, e.agent_name || e.agent_id]));
  const total = (result.summary || {}).rows_quarantined || 0;
  const holder = h("div", { "data-testid": "quarantine-holder" }, h("p", { class: "muted", text: "Reading quarantine.csv…" }));
  const load = async () => {
    const files = (await get(`/tasks/${result.task_id}/downloads`)).files;
    const file = files.find((f) => f.name === "quarantine.csv");
    if (!file) return holder.replaceChildren(h("p", { class: "muted", text: "This task has no quarantine.csv." }));
    const reader = csvReader(file.url, file.size);
    const [header] = await reader.take(1);
    // row_index, agent_id and reason, then the row's values as they were when an agent removed it
    const columns = header.slice(3, 3 + MAX_SHOWN_COLUMNS);
    const rowOf = (r) => h("tr", {}, h("td", { class: "num", text: fmtInt(Number(r[0])) }), h("td", { text: names.get(r[1]) || r[1] }), h("td", { class: "reason", text: r[2] }), r.slice(3, 3 + MAX_SHOWN_COLUMNS).map((v) => cell(v === "" ? null : v)));
    const rowsFor = async (a, b) => (await reader.take(b + 1)).slice(a + 1).map(rowOf);
    const { view, ready } = pagedTable("quarantine-rows", "Quarantined rows, with their values when removed", ["Row", "Removed by", "Reason", ...columns], total, rowsFor);
    await ready;
    holder.replaceChildren(
      h(
        "div",
        {},
        h("p", { class: "small muted" }, `Read from quarantine.csv (${fmtBytes(file.size)}) a page at a time. `, h("a", { href: file.url, download: file.name, text: "Download it all" }), "."),
        header.length - 3 > columns.length ? h("p", { class: "muted", text: `Showing the first ${columns.length} of ${header.length - 3} columns.` }) : null,
        view,
      ),
    );
  };
  return folded("quarantine", `Quarantined rows (${fmtInt(total)})`, total ? holder : h("p", { class: "muted", text: "No row was removed." }), total ? load : null);
}

/** A <details> block, closed unless `open`; `onFirstOpen` runs the first time it is opened (an error is said
 *  inside it). */
function folded(testid, title, content, onFirstOpen = null, open = false) {
  const box = h("details", { class: "result-details", "data-testid": testid, open }, h("summary", { text: title }), content);
  if (onFirstOpen) {
    const open = async () => {
      box.removeEventListener("toggle", open);
      try {
        await onFirstOpen();
      } catch (error) {
        content.replaceChildren(h("p", { class: "task-error", role: "alert", text: error.message }));
      }
    };
    box.addEventListener("toggle", open);
  }
  return box;
}

/** The folded details of `result` beside the agents' own cards (`agentCards`, folded too). */
export function details(result, list, agentCards) {
  const failed = list.filter((e) => e.status === "error").length;
  const title = `Each agent's summary (${plural(list.length, "agent")}${failed ? `, ${fmtInt(failed)} failed` : ""})`;
  const blocks = [folded("agent-details", title, agentCards, null, failed > 0)]; // a failure is not folded away
  if (result.tool_id === "clean-my-data") {
    const steps = result.steps || [];
    const s = result.summary || {};
    blocks.push(
      folded("clean-steps-details", "What each agent did", stepsTable(steps)),
      folded("changed-cells-details", `Changed cells before and after (${fmtInt(s.cells_changed)})`, h("div", {}, changedCellsView(list, s.cells_changed))),
      quarantineView(result, list),
    );
  }
  return blocks;
}
