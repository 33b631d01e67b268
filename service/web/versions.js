// Dataset versions and seed 003's chat: beside the task in view, a command box ("remove rows where email is
// null") that transforms the selected version (POST /tasks/{id}/transform), and the version history
// (GET /tasks/{id}/lineage: the ancestors from the root upload, this task, its children). A refused command is
// explained here, beside the box, with its suggestions as one-click fixes; the new task is handed to the page,
// which follows it live like any other.

import { ApiError, get, post, randomKey } from "./api.js";
import { fmtInt, fmtTime, h } from "./dom.js";
import { SEARCH_TOOL } from "./search.js";

export const TRANSFORM_TOOL = "transform-my-data";
const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "EXPIRED"]);
const EXAMPLES = [
  "remove rows where email is null",
  "keep rows where age >= 18",
  "rename column zip to postcode",
  "fill missing price with median",
  "deduplicate on email keeping last",
  "sort by signup_date descending",
  "lowercase email",
];
const TOKEN_END = /[\s,()=<>!]/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const QUOTES = "'\"`";
const el = (id) => document.getElementById(id);

/** The entries of a lineage answer in history order: root first, this task, then its children. */
function entriesOf(lineage) {
  return [
    ...lineage.ancestors.map((entry) => ({ entry, role: "ancestor" })),
    { entry: lineage.task, role: "this" },
    ...lineage.children.map((entry) => ({ entry, role: "child" })),
  ];
}

/** [start, end) of the word (or quoted name) a refusal points at, or null. */
export function tokenAt(text, position) {
  if (!Number.isInteger(position) || position < 0 || position >= text.length) return null;
  const quote = text[position];
  if (QUOTES.includes(quote)) {
    const close = text.indexOf(quote, position + 1);
    return [position, close < 0 ? text.length : close + 1];
  }
  let end = position;
  while (end < text.length && !TOKEN_END.test(text[end])) end++;
  return [position, Math.max(end, position + 1)];
}

/** The text that replaces `token` by `suggestion`: quoted as the token was, or when the name needs it. */
function replacement(token, suggestion) {
  const quote = token[0];
  if (QUOTES.includes(quote) && token.length > 1 && token.endsWith(quote)) return quote + suggestion + quote;
  return IDENTIFIER.test(suggestion) ? suggestion : `"${suggestion}"`;
}

/** A column name as a command writes it: bare when it is an identifier, else in double quotes. */
const written = (column) => (IDENTIFIER.test(column) ? column : `"${column}"`);

/** Example commands on a version's own columns ({name, dtype} as its result's summary.dataset lists them), so
 *  that a click gives a command that runs; the generic ones when the columns are not known. */
export function examplesFor(columns) {
  const usable = (columns || []).filter((c) => typeof c.name === "string" && c.name && !/["\n]/.test(c.name));
  if (!usable.length) return EXAMPLES;
  const text = usable.filter((c) => c.dtype === "String");
  const numbers = usable.filter((c) => /^(U?Int|Float|Decimal)/.test(c.dtype));
  const dates = usable.filter((c) => /^Date/.test(c.dtype));
  const prefer = (list, ...patterns) => patterns.map((p) => list.find((c) => p.test(c.name))).find(Boolean) || list[0];
  const key = prefer(text, /mail/i, /name/i) || usable[0];
  const number = prefer(numbers, /amount|price|total/i, /qty|quantity|age/i);
  const order = dates[0] || number || usable[0];
  const last = usable[usable.length - 1];
  return [
    `remove rows where ${written(key.name)} is null`,
    number ? `fill missing ${written(number.name)} with median` : null,
    `sort by ${written(order.name)} descending`,
    `deduplicate on ${written(key.name)} keeping last`,
    text.length ? `trim ${written(text[0].name)}` : null,
    `rename column ${written(last.name)} to new_name`,
  ].filter(Boolean);
}

/** The outcome of a transform task's result: row counts, and per step its sentence and how its columns were
 *  read when not exactly as written ("column 'emial' read as 'email'"). */
export function outcomeOf(result) {
  const summary = (result && result.summary) || {};
  const agents = (result && result.agents) || {};
  const envelope = (Array.isArray(agents) ? agents : Object.values(agents)).find((e) => e.agent_id === "transformer") || {};
  const metrics = envelope.summary_metrics || {};
  const data = envelope.data || {};
  const pick = (key) => [summary[key], metrics[key], data[key]].find((v) => v != null);
  const notes = (data.steps || []).map((step) => step.notes || []);
  return {
    steps: (pick("transformations") || []).map((sentence, i) => ({ sentence, notes: notes[i] || [] })),
    rowsBefore: pick("rows_before") ?? summary.rows,
    rowsAfter: pick("rows_after") ?? summary.rows_out,
    rowsAffected: pick("rows_affected"),
  };
}

/**
 * The versions panel. `onCreated(task)`: a transform task was created (the page records and follows it);
 * `onOpen(taskId)`: show that version's task in the live view; `cost()`: the transform's credits, or null.
 */
export function versionsPanel({ onCreated, onOpen, cost }) {
  const state = {
    view: null, // the task in view: {task_id, status, tool_id, rows}
    lineage: null,
    selected: null, // the version the command applies to
    chosen: false, // the user picked `selected` (else it follows the task in view)
    generation: 0,
    timer: 0,
    busy: false,
    columns: new Map(), // task id -> the columns of its dataset version (null: not reported)
    examplesOf: undefined, // the version the examples were made for
  };

  // --- the version history ---------------------------------------------------------------------------

  function byId(taskId) {
    if (!state.lineage) return null;
    return entriesOf(state.lineage).find((e) => e.entry.task_id === taskId) || null;
  }

  function versionNumber(taskId) {
    const found = byId(taskId);
    if (!found) return null;
    const depth = state.lineage.ancestors.length;
    return found.role === "ancestor" ? state.lineage.ancestors.indexOf(found.entry) + 1 : found.role === "this" ? depth + 1 : depth + 2;
  }

  /** The version a command goes to when the user picked none: the task in view once completed; a failed
   *  transform's parent (continue from where it started). */
  function defaultTarget() {
    const view = state.view;
    const parent = state.lineage && state.lineage.ancestors[state.lineage.ancestors.length - 1];
    if (view.tool_id === TRANSFORM_TOOL && TERMINAL.has(view.status) && view.status !== "COMPLETED" && parent) return parent.task_id;
    return view.task_id;
  }

  async function load() {
    const generation = ++state.generation;
    const taskId = state.view.task_id;
    let lineage;
    try {
      lineage = await get(`/tasks/${taskId}/lineage`);
    } catch (error) {
      if (generation !== state.generation) return;
      state.lineage = null;
      el("version-list").replaceChildren();
      el("versions-note").textContent = `Version history unavailable: ${error.message}`;
      el("versions-note").hidden = false;
      renderTarget();
      return;
    }
    if (generation !== state.generation) return;
    state.lineage = lineage;
    if (!state.chosen || !byId(state.selected)) {
      state.chosen = false;
      state.selected = defaultTarget();
    }
    renderList();
    renderTarget();
  }

  function refreshSoon() {
    clearTimeout(state.timer);
    state.timer = setTimeout(() => state.view && load(), 150);
  }

  function entryItem({ entry, role }) {
    const id = entry.task_id;
    const n = versionNumber(id);
    const sentences = entry.transformations || [];
    const completed = entry.status === "COMPLETED";
    const choice = h("input", {
      type: "radio",
      name: "version-choice",
      id: `version-choice-${id}`,
      value: id,
      "data-testid": `version-choice-${id}`,
      checked: id === state.selected,
      disabled: !completed,
    });
    choice.addEventListener("change", () => {
      state.selected = id;
      state.chosen = true;
      renderList();
      renderTarget();
      el("transform-command").focus();
    });
    const note = role === "this" ? "this task" : role === "child" ? "made from this version" : n === 1 ? "root" : "";
    return h(
      "li",
      { class: `version version-${role}${id === state.selected ? " selected" : ""}`, "data-testid": `version-${id}`, "data-role": role, "data-status": entry.status },
      h(
        "div",
        { class: "version-head" },
        choice,
        h(
          "label",
          { for: choice.id },
          h("span", { class: "version-n", text: `v${n}` }),
          " ",
          h("strong", { text: entry.tool_id }),
          " ",
          h("span", { class: "status", "data-status": entry.status, text: entry.status }),
          " ",
          h("span", { "data-testid": `version-rows-${id}`, text: entry.rows == null ? "rows unknown" : `${fmtInt(entry.rows)} rows` }),
          note ? h("span", { class: "muted", text: ` · ${note}` }) : null,
          h("small", {}, h("time", { datetime: entry.created_at, text: fmtTime(entry.created_at) })),
        ),
        role === "this" ? null : h("button", { type: "button", class: "small secondary", "data-testid": `version-open-${id}`, "aria-label": `Open version ${n}, task ${id.slice(0, 8)}`, text: "Open", onclick: () => onOpen(id) }),
      ),
      sentences.length ? h("ul", { class: "sentences", "data-testid": `version-sentences-${id}` }, sentences.map((s) => h("li", { text: s }))) : null,
    );
  }

  /** The history: the searches made from this version folded under one line (a dataset searched thirty
   *  times lists one "30 searches" line, not thirty versions); open while one of them is the one picked. */
  function renderList() {
    const entries = entriesOf(state.lineage);
    const isSearch = ({ entry, role }) => role === "child" && entry.tool_id === SEARCH_TOOL;
    const searches = entries.filter(isSearch);
    const items = entries.filter((e) => !isSearch(e)).map(entryItem);
    if (searches.length) {
      items.push(
        h(
          "li",
          { class: "searches", "data-testid": "version-searches" },
          h(
            "details",
            { open: searches.some((e) => e.entry.task_id === state.selected) },
            h("summary", { "data-testid": "version-searches-summary", text: `${searches.length} search${searches.length === 1 ? "" : "es"} of this version` }),
            h("ol", { class: "versions" }, searches.map(entryItem)),
          ),
        ),
      );
    }
    el("versions-note").hidden = true;
    el("version-list").replaceChildren(...items);
  }

  // --- the command box -------------------------------------------------------------------------------

  function renderTarget() {
    const found = byId(state.selected);
    const target = found ? found.entry : state.view;
    const n = found ? `v${versionNumber(target.task_id)} · ` : "";
    const rows = target.rows == null ? "" : ` · ${fmtInt(target.rows)} rows`;
    const ready = target.status === "COMPLETED";
    el("transform-target").textContent = `Applies to ${n}${target.tool_id}${rows}${ready ? "" : ` (${target.status}: Run waits until it completes)`}`;
    const credits = cost();
    el("transform-run").textContent = credits == null ? "Run" : `Run (${fmtInt(credits)} credits)`;
    el("transform-run").disabled = state.busy || !ready;
    renderExamples(ready ? target.task_id : null);
  }

  /** The examples for the version the command goes to: on its columns once its result has said them. */
  function renderExamples(taskId) {
    const columns = taskId ? state.columns.get(taskId) : null;
    if (taskId && columns === undefined && taskId !== state.view.task_id) readColumns(taskId); // the page reads the view's
    const key = columns ? taskId : null;
    if (state.examplesOf === key) return;
    state.examplesOf = key;
    el("transform-examples").replaceChildren(
      ...examplesFor(columns).map((text) => h("li", {}, h("button", { type: "button", class: "small secondary example", "data-testid": "transform-example", text, onclick: () => addExample(text) }))),
    );
  }

  async function readColumns(taskId) {
    state.columns.set(taskId, null); // asked once
    try {
      rememberColumns(taskId, await get(`/tasks/${taskId}/result`));
    } catch {
      return; // the generic examples do
    }
    if (state.view && state.selected === taskId) renderTarget();
  }

  function rememberColumns(taskId, result) {
    const dataset = result && result.summary && result.summary.dataset;
    if (dataset && Array.isArray(dataset.columns)) state.columns.set(taskId, dataset.columns);
  }

  function commandLines() {
    return el("transform-command")
      .value.split("\n")
      .map((line) => line.trim())
      .filter(Boolean);
  }

  function clearRefusal() {
    el("transform-error").hidden = true;
    el("transform-error").replaceChildren();
    el("transform-command").removeAttribute("aria-invalid");
  }

  /** The refused command with the part the API points at marked, when it says where. */
  function markedCommand(command, position) {
    const span = tokenAt(command, position);
    if (!span) return h("code", { text: command });
    return h("code", {}, command.slice(0, span[0]), h("mark", { "data-testid": "transform-error-mark", text: command.slice(span[0], span[1]) }), command.slice(span[1]));
  }

  /** The line of the box a refusal is about: by its text, else by `commands[i]`, else the only one. */
  function refusedLine(lines, details) {
    const byText = details.command != null ? lines.indexOf(details.command) : -1;
    if (byText >= 0) return byText;
    const field = /^commands\[(\d+)\]/.exec(details.field || "");
    if (field && Number(field[1]) < lines.length) return Number(field[1]);
    return lines.length === 1 ? 0 : -1;
  }

  /** Put `suggestion` in place of what the refusal points at (or of the whole line when the suggestion is a
   *  command), leaving the box ready to run again. */
  function applyFix(lineIndex, position, suggestion) {
    const lines = commandLines();
    const line = lines[lineIndex];
    const span = tokenAt(line, position);
    let caret;
    if (span) {
      const text = replacement(line.slice(span[0], span[1]), suggestion);
      lines[lineIndex] = line.slice(0, span[0]) + text + line.slice(span[1]);
      caret = span[0] + text.length;
    } else {
      lines[lineIndex] = suggestion;
      caret = suggestion.length;
    }
    const box = el("transform-command");
    box.value = lines.join("\n");
    clearRefusal();
    box.focus();
    const offset = lines.slice(0, lineIndex).reduce((sum, l) => sum + l.length + 1, 0) + caret;
    box.setSelectionRange(offset, offset);
  }

  function showRefusal(error, lines) {
    const details = (error instanceof ApiError && error.details) || {};
    const index = refusedLine(lines, details);
    const command = index >= 0 ? lines[index] : details.command;
    const position = Number.isInteger(details.position) ? details.position : null;
    const suggestions = (details.suggestions || []).map(String);
    const fixes = suggestions.map((s) => {
      const canFix = index >= 0 && (tokenAt(command, position) || /\s/.test(s));
      return canFix
        ? h("button", { type: "button", class: "small", "data-testid": "transform-suggestion", "data-suggestion": s, text: s, onclick: () => applyFix(index, position, s) })
        : h("code", { "data-testid": "transform-suggestion-text", text: s });
    });
    // replaceChildren, unlike h(), writes a null child as the text "null": only the parts there are
    el("transform-error").replaceChildren(
      ...[
        h("p", { "data-testid": "transform-error-message", text: error.message }),
        command && position !== null ? h("p", { class: "refused-command", "data-testid": "transform-error-command" }, markedCommand(command, position)) : null,
        fixes.length ? h("p", { class: "fixes" }, fixes.length === 1 ? "Did you mean " : "Did you mean one of ", ...fixes.flatMap((f, i) => (i ? [" ", f] : [f])), "?") : null,
      ].filter(Boolean),
    );
    el("transform-error").dataset.code = (error && error.code) || "";
    el("transform-error").dataset.reason = details.reason || "";
    el("transform-error").hidden = false;
    el("transform-command").setAttribute("aria-invalid", "true");
  }

  async function submit(event) {
    event.preventDefault();
    if (state.busy || el("transform-run").disabled) return; // Enter while sending, or before the version is ready
    clearRefusal();
    const lines = commandLines();
    if (!lines.length) return showRefusal(new Error(`Type a command, for example "${EXAMPLES[0]}".`), lines);
    const target = state.selected || state.view.task_id;
    const body = lines.length === 1 ? { command: lines[0] } : { commands: lines };
    state.busy = true;
    renderTarget();
    el("transform-form").setAttribute("aria-busy", "true");
    try {
      const task = await post(`/tasks/${target}/transform`, body, { "Idempotency-Key": randomKey() });
      el("transform-command").value = "";
      onCreated(task);
    } catch (error) {
      showRefusal(error, lines);
    } finally {
      state.busy = false;
      el("transform-form").setAttribute("aria-busy", "false");
      if (state.view) renderTarget();
    }
  }

  function addExample(text) {
    const box = el("transform-command");
    box.value = box.value.trim() ? `${box.value.replace(/\s+$/, "")}\n${text}` : text;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  // --- what the page calls ---------------------------------------------------------------------------

  /** The task in the live view changed or moved on: the panel shows for a completed task (its dataset is a
   *  version) and for any transform task (its version is on its way, or why it failed). */
  function show(task) {
    const visible = task && (task.status === "COMPLETED" || task.tool_id === TRANSFORM_TOOL);
    el("versions").hidden = !visible;
    if (!visible) {
      state.view = null;
      state.generation++;
      return;
    }
    const same = state.view && state.view.task_id === task.task_id;
    if (same && state.view.status === task.status) return;
    if (!same) {
      state.chosen = false;
      state.selected = null;
      state.lineage = null;
      el("version-list").replaceChildren();
      el("transform-outcome").hidden = true;
      clearRefusal();
    }
    state.view = { task_id: task.task_id, status: task.status, tool_id: task.tool_id, rows: null };
    if (!same) renderTarget();
    showFailure(task);
    refreshSoon();
  }

  /** A transform the worker refused (columns unknown to the API): its message beside the box too. */
  function showFailure(task) {
    if (task.tool_id !== TRANSFORM_TOOL || task.status !== "FAILED" || !task.error) return;
    const error = new ApiError(422, task.error.code, task.error.message, task.error.details || {});
    el("transform-error").replaceChildren(h("p", { "data-testid": "transform-error-message", text: `This transform failed: ${error.message}` }));
    el("transform-error").dataset.code = error.code;
    el("transform-error").hidden = false;
  }

  /** Any task's new state (the page's event stream): a version of the history, or a new child of the task in
   *  view, means the history is read again. */
  function onTask(task) {
    if (!state.view || !state.lineage) return;
    const found = byId(task.task_id);
    const newChild = !found && task.source_task_id === state.view.task_id;
    if (newChild || (found && found.entry.status !== task.status)) refreshSoon();
  }

  /** A completed task's result (the page read it for its Results): its dataset's columns make the examples; a
   *  transform's sentences, readings and rows go beside the box. */
  function showResult(task, result) {
    rememberColumns(task.task_id, result);
    if (!state.view || state.view.task_id !== task.task_id) return;
    renderTarget();
    if (task.tool_id !== TRANSFORM_TOOL) return;
    const { steps, rowsBefore, rowsAfter, rowsAffected } = outcomeOf(result);
    const rows = rowsBefore != null && rowsAfter != null ? `${fmtInt(rowsBefore)} → ${fmtInt(rowsAfter)} rows` : "";
    const affected = rowsAffected != null ? `${fmtInt(rowsAffected)} ${rowsAffected === 1 ? "row" : "rows"} affected` : "";
    el("transform-outcome").replaceChildren(
      ...[
        h("h3", { text: "Done" }),
        h("p", { "data-testid": "transform-rows", text: [rows, affected].filter(Boolean).join(" · ") || "Row counts not reported." }),
        steps.length
          ? h(
              "ul",
              { class: "sentences", "data-testid": "transform-sentences" },
              steps.map((step) => h("li", {}, h("span", { class: "sentence", text: step.sentence }), step.notes.map((note) => h("small", { class: "reading", "data-testid": "transform-reading", text: note })))),
            )
          : null,
      ].filter(Boolean),
    );
    el("transform-outcome").hidden = false;
  }

  function reset() {
    state.generation++;
    clearTimeout(state.timer);
    Object.assign(state, { view: null, lineage: null, selected: null, chosen: false, columns: new Map() });
    el("versions").hidden = true;
    el("transform-command").value = "";
    clearRefusal();
  }

  el("transform-form").addEventListener("submit", submit);
  el("transform-command").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      el("transform-form").requestSubmit();
    }
  });
  renderExamples(null);

  return { show, onTask, showResult, reset };
}
