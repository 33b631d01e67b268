// Seed 002's search on the page: beside the transform box, a search of the completed task's dataset version —
// filter chips (column = value; values offered from the profile's top values when the result has them), a keyword
// box, a date range for a date column, a paginated results table sorted by clicking a header, and a bar chart of
// an aggregate (a group-by column and a metric). Each search or page is a search-my-data task on that version
// (POST /tasks with source_task_id and "process": true): the result cache answers a repeat at once, and the
// page's one event stream (onTask) says when a queued one is done.

import { ApiError, get, post, randomKey } from "./api.js";
import { fmtData, fmtInt, fmtNum, h } from "./dom.js";

export const SEARCH_TOOL = "search-my-data";
const PAGE_SIZE = 20;
const CHART_TOP = 20;
const RECHECK_MS = 5000; // a queued search is read again this often, should its events be missed
const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "EXPIRED"]);
const METRICS = ["count", "sum", "mean", "min", "max", "distinct"];
const BUCKET_UNITS = ["month", "year", "week", "day"];
const el = (id) => document.getElementById(id);

const isDate = (dtype) => /^Date/.test(dtype || "");
const isNumber = (dtype) => /^(U?Int|Float|Decimal)/.test(dtype || "");

/** The `data` of one agent's envelope in a task's result (agents keyed by id, or a list). */
export function agentData(result, agentId) {
  const agents = (result && result.agents) || {};
  const envelope = Array.isArray(agents) ? agents.find((e) => e.agent_id === agentId) : agents[agentId];
  return (envelope && envelope.data) || null;
}

/** column -> its profile's top values (the profiler's fields), when the result has them. */
export function topValuesOf(result) {
  const found = new Map();
  const agents = (result && result.agents) || {};
  for (const envelope of Array.isArray(agents) ? agents : Object.values(agents)) {
    for (const field of (envelope && envelope.data && envelope.data.fields) || []) {
      const top = field.distribution && field.distribution.top_values;
      if (field.field_name != null && Array.isArray(top) && top.length) found.set(String(field.field_name), top.map((t) => t.value).filter((v) => v != null).map(String));
    }
  }
  return found;
}

/** The searcher's or aggregator's selection from the chips, the keyword box and the date range. */
export function selection({ chips, keyword, dateColumn, from, to }) {
  const parameters = {};
  if (chips.length) {
    parameters.filters = {};
    for (const { column, value } of chips) {
      const values = (parameters.filters[column] ||= []);
      if (!values.includes(value)) values.push(value);
    }
  }
  const keywords = keyword.split(/\s+/).filter(Boolean);
  if (keywords.length) parameters.keywords = keywords;
  if (dateColumn && (from || to)) parameters.time_ranges = [{ column: dateColumn, from: from || null, to: to || null }];
  return parameters;
}

/** "rows 21–40 of 57, page 2 of 3". */
export function positionText(data) {
  const rows = data.rows || [];
  const total = data.total_rows || 0;
  if (!rows.length) return `rows 0 of ${fmtInt(total)}, page ${data.page} of ${data.pages}`;
  const first = (data.page - 1) * data.page_size + 1;
  return `rows ${fmtInt(first)}–${fmtInt(first + rows.length - 1)} of ${fmtInt(total)}, page ${data.page} of ${data.pages}`;
}

/**
 * The search panel. `cost(agentId)`: an agent's credits, or null; `onCreated(task)`: a search task was made (the
 * page records it in its history).
 */
export function searchPanel({ cost, onCreated }) {
  const state = {
    view: null, // the task whose dataset is searched: {task_id}
    columns: [], // [{name, dtype}] of its dataset version
    top: new Map(), // column -> top values
    chips: [], // [{column, value}]
    sort: null, // {column, descending}
    page: 1,
    generation: 0, // the latest search; older answers are dropped
    chartGeneration: 0,
    waiting: new Map(), // task id -> resolve(task)
    finished: new Map(), // task id -> a terminal search task seen on the stream
  };

  // --- running a search-my-data task ---------------------------------------------------------------

  /** Create the task on the version in view and queue it in one call (or create, then process, where the API
   *  does not take "process" on create); the completed task, from the cache at once or when its events say. */
  async function runTask(agent, parameters) {
    const body = { tool_id: SEARCH_TOOL, source_task_id: state.view.task_id, agents: [agent], parameters: { [agent]: parameters } };
    let task;
    try {
      task = await post("/tasks", { ...body, process: true }, { "Idempotency-Key": randomKey() });
    } catch (error) {
      const refusedField = error instanceof ApiError && error.code === "VALIDATION_ERROR" && ((error.details && error.details.errors) || []).some((e) => (e.loc || []).at(-1) === "process");
      if (!refusedField) throw error;
      task = await post("/tasks", body, { "Idempotency-Key": randomKey() });
    }
    if (task.status === "CREATED" || task.status === "UPLOADING") task = await post(`/tasks/${task.task_id}/process`);
    onCreated(task);
    if (!TERMINAL.has(task.status)) task = await finished(task.task_id);
    if (task.status !== "COMPLETED") {
      const error = task.error || { code: task.status, message: `The search ${task.status.toLowerCase()}.` };
      throw new ApiError(422, error.code, error.message, error.details || {});
    }
    const data = agentData(await get(`/tasks/${task.task_id}/result`), agent);
    if (!data) throw new ApiError(0, "NO_RESULT", `The ${agent}'s result is missing from the task's result.`);
    return { task, data };
  }

  /** The task once terminal: from the page's event stream, read again now and then in case events were missed. */
  function finished(taskId) {
    if (state.finished.has(taskId)) return Promise.resolve(state.finished.get(taskId));
    return new Promise((resolve, reject) => {
      const timer = setInterval(recheck, RECHECK_MS);
      const done = (task) => {
        clearInterval(timer);
        state.waiting.delete(taskId);
        resolve(task);
      };
      state.waiting.set(taskId, done);
      async function recheck() {
        try {
          const task = await get(`/tasks/${taskId}`);
          if (TERMINAL.has(task.status) && state.waiting.get(taskId) === done) done(task);
        } catch (error) {
          clearInterval(timer);
          state.waiting.delete(taskId);
          reject(error);
        }
      }
      recheck();
    });
  }

  // --- the form ------------------------------------------------------------------------------------

  function currentSelection() {
    return selection({ chips: state.chips, keyword: el("search-keyword").value.trim(), dateColumn: el("search-date-column").value, from: el("search-date-from").value, to: el("search-date-to").value });
  }

  function renderColumns() {
    const names = state.columns.map((c) => c.name);
    const options = (list) => list.map((c) => h("option", { value: c.name, text: c.name }));
    el("search-filter-column").replaceChildren(...options(state.columns));
    const dates = state.columns.filter((c) => isDate(c.dtype));
    el("search-dates").hidden = !dates.length;
    el("search-date-column").replaceChildren(...options(dates));
    const numbers = state.columns.filter((c) => isNumber(c.dtype));
    el("chart-group").replaceChildren(
      ...options(state.columns.filter((c) => !isNumber(c.dtype) || c.dtype.startsWith("Int") || c.dtype.startsWith("UInt"))),
      ...dates.flatMap((c) => BUCKET_UNITS.map((unit) => h("option", { value: `${unit}:${c.name}`, text: `${c.name} by ${unit}` }))),
    );
    el("chart-column").replaceChildren(...options(numbers.length ? numbers : state.columns));
    renderValueHints();
    renderChips();
    renderMetric();
    el("search-run").textContent = labelled("Search", "searcher");
    el("chart-run").textContent = labelled("Draw", "aggregator");
    el("search-empty").hidden = names.length > 0;
  }

  function labelled(text, agent) {
    const credits = cost(agent);
    return credits == null ? text : `${text} (${fmtInt(credits)} credits)`;
  }

  /** The value box offers the chosen column's top values (the profile's), when known; any text goes. */
  function renderValueHints() {
    const values = state.top.get(el("search-filter-column").value) || [];
    el("search-filter-values").replaceChildren(...values.map((v) => h("option", { value: v })));
    el("search-filter-value").placeholder = values.length ? `e.g. ${values[0]}` : "a value";
    el("search-top-values").replaceChildren(
      ...values.slice(0, 8).map((v) => h("li", {}, h("button", { type: "button", class: "small secondary", "data-testid": "search-top-value", text: v, onclick: () => addChip(el("search-filter-column").value, v) }))),
    );
  }

  function renderChips() {
    el("search-chips").replaceChildren(
      ...state.chips.map((chip, index) =>
        h(
          "li",
          { class: "chip", "data-testid": "search-chip", "data-column": chip.column, "data-value": chip.value },
          h("span", { text: `${chip.column} = ${chip.value}` }),
          h("button", { type: "button", class: "chip-remove", "aria-label": `Remove filter ${chip.column} = ${chip.value}`, text: "×", onclick: () => removeChip(index) }),
        ),
      ),
    );
  }

  function renderMetric() {
    const counting = el("chart-metric").value === "count";
    el("chart-column").disabled = counting;
    el("chart-column-field").hidden = counting;
  }

  function addChip(column, value) {
    if (!column || state.chips.some((c) => c.column === column && c.value === value)) return;
    state.chips.push({ column, value });
    renderChips();
    search(1);
  }

  function removeChip(index) {
    state.chips.splice(index, 1);
    renderChips();
    search(1);
  }

  function onAddFilter() {
    const column = el("search-filter-column").value;
    const value = el("search-filter-value").value.trim();
    if (!value) return el("search-filter-value").focus();
    el("search-filter-value").value = "";
    addChip(column, value);
  }

  // --- the results table ---------------------------------------------------------------------------

  function showError(error) {
    const details = (error && error.details) || {};
    const suggestions = (details.suggestions || []).map(String);
    // replaceChildren, unlike h(), writes a null child as the text "null": only the parts there are
    el("search-error").replaceChildren(
      ...[
        h("p", { "data-testid": "search-error-message", text: error.message || String(error) }),
        suggestions.length ? h("p", {}, "Did you mean ", suggestions.map((s, i) => [i ? ", " : "", h("code", { text: s })]), "?") : null,
      ].filter(Boolean),
    );
    el("search-error").dataset.code = (error && error.code) || "";
    el("search-error").hidden = false;
  }

  function clearError() {
    el("search-error").hidden = true;
    el("search-error").replaceChildren();
  }

  async function search(page) {
    if (!state.view) return;
    const generation = ++state.generation;
    const parameters = { ...currentSelection(), page, page_size: PAGE_SIZE };
    if (state.sort) parameters.sort = [state.sort];
    clearError();
    setBusy(true);
    el("search-status").textContent = `Searching page ${page}…`;
    try {
      const { task, data } = await runTask("searcher", parameters);
      if (generation !== state.generation) return;
      state.page = data.page || page;
      renderRows(data, task);
    } catch (error) {
      if (generation !== state.generation) return;
      el("search-status").textContent = "";
      showError(error);
    } finally {
      if (generation === state.generation) setBusy(false);
    }
  }

  function setBusy(busy) {
    el("search-form").setAttribute("aria-busy", String(busy));
    el("search-results").setAttribute("aria-busy", String(busy));
    el("search-run").disabled = busy;
    if (busy) {
      el("search-prev").disabled = true;
      el("search-next").disabled = true;
    }
  }

  function sortHeader(column) {
    const sorted = state.sort && state.sort.column === column ? state.sort : null;
    const arrow = sorted ? (sorted.descending ? " ▼" : " ▲") : "";
    return h(
      "th",
      { scope: "col", "aria-sort": sorted ? (sorted.descending ? "descending" : "ascending") : "none" },
      h("button", { type: "button", class: "sort", "data-testid": `search-sort-${column}`, "aria-label": `Sort by ${column}${sorted && !sorted.descending ? ", descending" : ""}`, text: column + arrow, onclick: () => sortBy(column) }),
    );
  }

  function sortBy(column) {
    const same = state.sort && state.sort.column === column;
    state.sort = { column, descending: same ? !state.sort.descending : false };
    search(1);
  }

  function renderRows(data, task) {
    const rows = data.rows || [];
    const columns = data.columns && data.columns.length ? data.columns : rows.length ? Object.keys(rows[0]) : state.columns.map((c) => c.name);
    const numeric = new Set(columns.filter((c) => rows.some((r) => typeof r[c] === "number")));
    el("search-table").replaceChildren(
      h("caption", { class: "sr-only", text: "Matching rows" }),
      h("thead", {}, h("tr", {}, columns.map(sortHeader))),
      h(
        "tbody",
        {},
        rows.map((row) => h("tr", { "data-testid": "search-row" }, columns.map((c) => h("td", { class: row[c] == null ? "null" : numeric.has(c) ? "num" : null, text: row[c] == null ? "" : typeof row[c] === "number" ? fmtData(row[c]) : String(row[c]) })))),
      ),
    );
    el("search-status").textContent = `${positionText(data)}${task.cached ? " (cached)" : ""}`;
    el("search-status").dataset.cached = String(!!task.cached);
    el("search-status").dataset.total = String(data.total_rows ?? "");
    el("search-page").textContent = `Page ${fmtInt(data.page)} of ${fmtInt(data.pages)}`;
    el("search-prev").disabled = data.page <= 1;
    el("search-next").disabled = data.page >= data.pages;
    el("search-results").hidden = false;
  }

  // --- the chart -----------------------------------------------------------------------------------

  async function drawChart(event) {
    event.preventDefault();
    if (!state.view) return;
    const generation = ++state.chartGeneration;
    const group = el("chart-group").value;
    const fn = el("chart-metric").value;
    const parameters = { ...currentSelection(), top: CHART_TOP, metrics: [fn === "count" ? { fn } : { fn, column: el("chart-column").value }] };
    const bucket = /^(day|week|month|year):(.*)$/.exec(group);
    if (bucket) parameters.bucket = { unit: bucket[1], column: bucket[2] };
    else if (group) parameters.group_by = [group];
    if (bucket) parameters.sort = [{ column: bucket[2], descending: false }]; // a time line reads in time order
    clearError();
    el("chart-run").disabled = true;
    el("chart-note").textContent = "Aggregating…";
    try {
      const { task, data } = await runTask("aggregator", parameters);
      if (generation !== state.chartGeneration) return;
      renderChart(data, task);
    } catch (error) {
      if (generation !== state.chartGeneration) return;
      el("chart-note").textContent = "";
      showError(error);
    } finally {
      if (generation === state.chartGeneration) el("chart-run").disabled = false;
    }
  }

  /** Horizontal CSS bars (they read at 390 px): one per label, as long as its share of the largest value. */
  function renderChart(data, task) {
    const chart = data.chart || {};
    const labels = chart.labels || [];
    const series = (chart.series || [])[0] || { name: "", values: [] };
    const values = series.values || [];
    const largest = Math.max(0, ...values.filter((v) => typeof v === "number"));
    el("search-chart").replaceChildren(
      ...labels.map((label, i) => {
        const value = values[i];
        const share = typeof value === "number" && largest > 0 ? Math.max(0, value / largest) : 0;
        const text = label == null ? "(empty)" : String(label);
        return h(
          "li",
          { class: "chart-row", "data-testid": "chart-bar", "data-label": text, "data-value": value == null ? "" : String(value) },
          h("span", { class: "chart-label", title: text, text }),
          h("span", { class: "chart-track", "aria-hidden": "true" }, h("span", { class: "bar", style: `width: ${(share * 100).toFixed(2)}%` })),
          h("span", { class: "chart-value", text: fmtNum(value) }),
        );
      }),
    );
    el("search-chart").setAttribute("aria-label", `Chart: ${series.name || "metric"} of ${labels.length} groups`);
    const total = data.total_groups;
    el("chart-note").textContent = `${series.name || ""}: ${labels.length ? `${labels.length} of ${fmtInt(total)} groups` : "no groups"}${task.cached ? " (cached)" : ""}`;
  }

  // --- what the page calls -------------------------------------------------------------------------

  /** The task in view: the panel offers a search of a completed task's dataset, once its columns are known. */
  function show(task) {
    const completed = task && task.status === "COMPLETED";
    if (!completed) {
      if (state.view) clear();
      el("search").hidden = true;
      return;
    }
    if (state.view && state.view.task_id === task.task_id) return;
    clear();
    state.view = { task_id: task.task_id };
  }

  /** The result of the task in view (the page read it): its dataset's columns and its profile's top values. */
  function showResult(task, result) {
    if (!state.view || state.view.task_id !== task.task_id) return;
    const dataset = result && result.summary && result.summary.dataset;
    const columns = dataset && Array.isArray(dataset.columns) ? dataset.columns : [];
    if (!columns.length) return;
    state.columns = columns;
    state.top = topValuesOf(result);
    renderColumns();
    el("search").hidden = false;
  }

  /** Any task's new state (the page's stream): a search this panel waits for may be done. */
  function onTask(task) {
    if (task.tool_id !== SEARCH_TOOL || !TERMINAL.has(task.status)) return;
    const waiter = state.waiting.get(task.task_id);
    if (waiter) waiter(task);
    else {
      state.finished.set(task.task_id, task);
      if (state.finished.size > 200) state.finished.delete(state.finished.keys().next().value);
    }
  }

  function clear() {
    state.generation++;
    state.chartGeneration++;
    Object.assign(state, { view: null, columns: [], top: new Map(), chips: [], sort: null, page: 1 });
    el("search").hidden = true;
    el("search-results").hidden = true;
    el("search-table").replaceChildren();
    el("search-status").textContent = "";
    el("search-chart").replaceChildren();
    el("chart-note").textContent = "";
    el("search-keyword").value = "";
    el("search-date-from").value = "";
    el("search-date-to").value = "";
    renderChips();
    clearError();
    setBusy(false);
  }

  el("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const pending = el("search-filter-value").value.trim();
    if (pending) onAddFilter(); // a typed value counts as a chip when Search is pressed
    else search(1);
  });
  el("search-filter-add").addEventListener("click", onAddFilter);
  el("search-filter-value").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      onAddFilter();
    }
  });
  el("search-filter-column").addEventListener("change", renderValueHints);
  el("search-prev").addEventListener("click", () => search(Math.max(1, state.page - 1)));
  el("search-next").addEventListener("click", () => search(state.page + 1));
  el("chart-form").addEventListener("submit", drawChart);
  el("chart-metric").addEventListener("change", renderMetric);
  el("chart-metric").replaceChildren(...METRICS.map((m) => h("option", { value: m, text: m })));

  return { show, showResult, onTask, reset: clear };
}
