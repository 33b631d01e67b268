// The page: sign in, submit a task (upload straight to the object store), follow every task live over
// ONE EventSource on /api/v1/events, show results, keep the history current; transform a completed task's
// dataset with a command and move through its versions (versions.js); search it (search.js). Master data
// takes other sources (sources.js) and a data contract besides the primary.

import { ApiError, del, get, getKey, post, randomKey, setKey } from "./api.js";
import { $, fmtBytes, fmtDuration, fmtInt, fmtTime, h } from "./dom.js";
import { chainCost, paramsEditor } from "./form.js";
import { profileViews } from "./profile_views.js";
import * as results from "./results.js";
import { SEARCH_TOOL, searchPanel } from "./search.js";
import { sourcesField } from "./sources.js";
import { describe, extension, refreshExpired, uploadAll } from "./upload.js";
import { TRANSFORM_TOOL, versionsPanel } from "./versions.js";

const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "EXPIRED"]);
const RETRYABLE = new Set(["FAILED", "CANCELLED", "EXPIRED"]);
// Failures a retry can only repeat: the same inputs and parameters would be refused again.
const FINAL_ERRORS = new Set(["INVALID_FILE", "INVALID_PARAMETERS", "INPUT_MISSING"]);
const ROLES = ["primary", "baseline", "schema"]; // the inputs of one file each, with a field of their own
const MAX_MESSAGES = 200;
const PAGE = 20;
const el = (id) => document.getElementById(id);

const state = {
  me: null,
  catalog: [],
  tool: null,
  editors: new Map(), // agent_id -> params editor of the current tool
  tasks: new Map(), // task_id -> {task, states: {agent_id: pending|running|done|failed}, messages: []}
  current: null, // the task in the live view
  shown: 0, // the last message number shown in the live view
  fetching: new Set(), // task ids being read after a progress event of an unknown task
  resultFor: null,
  cursor: null,
  pending: null, // {taskId, items} of an upload that can be resumed
  replay: null, // the EventSource replaying the stored events of the task in view
  spent: new Map(), // task_id -> credits charged, from the ledger
  spentSince: Infinity, // the ledger read covers the tasks created since then (ms)
  // the event stream
  es: null,
  generation: 0,
  lastId: 0,
  seen: new Set(),
  delay: 1000,
  everLive: false,
};

// --- errors ----------------------------------------------------------------------------------------

function showError(error) {
  const banner = el("error-banner");
  banner.textContent = error instanceof Error ? error.message : String(error);
  banner.dataset.code = (error && error.code) || "";
  banner.hidden = false;
}

function clearError() {
  el("error-banner").hidden = true;
  el("error-banner").textContent = "";
}

/** A message next to the control it concerns: `where` is file-error-<role> or submit-error (by Run). */
function showFieldError(where, error) {
  const box = el(where);
  box.textContent = error instanceof Error ? error.message : String(error);
  box.dataset.code = (error && error.code) || "";
  box.hidden = false;
}

function clearFieldError(where) {
  el(where).hidden = true;
  el(where).textContent = "";
}

/** Where a refusal of Run belongs: beside the file it names (upload-urls' details.name), else beside Run. */
function errorPlace(error) {
  const name = error && error.details && error.details.name;
  if (typeof name !== "string") return "submit-error";
  const role = ROLES.find((r) => name === r || name.startsWith(r + "."));
  return role ? `file-error-${role}` : sources.errorPlace(name) || "submit-error";
}

const guarded = (fn) => async (...args) => {
  try {
    await fn(...args);
  } catch (error) {
    showError(error);
  }
};

// --- sign in / out ---------------------------------------------------------------------------------

async function signIn(key) {
  setKey(key);
  try {
    state.me = await get("/me");
  } catch (error) {
    setKey(null);
    throw error;
  }
  clearError();
  showUser();
  el("signin").hidden = true;
  el("app").hidden = false;
  el("who").hidden = false;
  el("api-key").value = "";
  connect();
  await Promise.all([loadCatalog(), loadHistory(true)]);
  el("tool-select").focus();
}

function showUser() {
  const me = state.me;
  el("user-name").textContent = `${me.name} · ${fmtInt(me.credits)} credits`;
  updateCost();
}

function signOut() {
  state.generation++;
  versions.reset();
  search.reset();
  if (state.es) state.es.close();
  setKey(null);
  stopReplay();
  Object.assign(state, { es: null, me: null, tasks: new Map(), current: null, pending: null, lastId: 0, seen: new Set(), everLive: false, resultFor: null, spent: new Map(), spentSince: Infinity });
  el("history-body").replaceChildren();
  el("app").hidden = true;
  el("who").hidden = true;
  el("signin").hidden = false;
  el("results").hidden = true;
  renderLive();
  clearError();
  el("api-key").focus();
}

let meTimer = 0;
function refreshCredits() {
  clearTimeout(meTimer);
  meTimer = setTimeout(async () => {
    try {
      [state.me] = await Promise.all([get("/me"), loadSpent()]);
      showUser();
    } catch {
      /* the next refresh will do */
    }
  }, 300);
}

// --- the tool form ---------------------------------------------------------------------------------

async function loadCatalog() {
  state.catalog = (await get("/tools")).tools;
  const select = el("tool-select");
  select.replaceChildren(...state.catalog.map((t) => h("option", { value: t.tool_id, text: `${t.name} (${t.tool_id})` })));
  renderTool(select.value);
}

function renderTool(toolId) {
  const tool = state.catalog.find((t) => t.tool_id === toolId);
  state.tool = tool;
  state.editors.clear();
  el("tool-desc").textContent = tool ? tool.description : "";
  const rows = (tool ? tool.agents : []).map((agent) => {
    const id = agent.agent_id;
    const editor = paramsEditor(agent);
    state.editors.set(id, editor);
    const box = h("input", { type: "checkbox", id: `agent-${id}`, "data-testid": `agent-${id}`, checked: agent.in_default_chain, value: id });
    editor.el.hidden = !box.checked;
    box.addEventListener("change", () => {
      editor.el.hidden = !box.checked;
      updateCost();
    });
    return h(
      "div",
      { class: "agent" },
      h("div", { class: "check" }, box, h("label", { for: box.id }, h("strong", { text: agent.name }), ` · ${agent.credits} credits${agent.needs_baseline ? ", only with a baseline" : ""}`, h("small", { text: agent.description }))),
      editor.el,
    );
  });
  el("agents").replaceChildren(...rows);
  for (const role of ROLES) {
    const formats = acceptedFormats(role);
    el(`file-${role}`).accept = formats.map((f) => "." + f).join(",");
    el(`formats-${role}`).textContent = formats.length ? `Reads ${formats.map((f) => "." + f).join(", ")}.` : "";
    checkFile(role);
  }
  el("baseline-field").hidden = !takes("baseline");
  el("schema-field").hidden = !takes("schema");
  el("sources-field").hidden = !takes("source");
  el("commands-field").hidden = !tool || tool.tool_id !== TRANSFORM_TOOL; // Transform My Data: what to do
  sources.setFormats(acceptedFormats("source"));
  updateCost();
}

/** Whether the tool in the form takes an input of this role, as the catalog says. */
const takes = (role) => !!(state.tool && state.tool.inputs.some((i) => i.role === role));

/** The file formats (extensions) the tool in the form reads for an input role, as the catalog says. */
function acceptedFormats(role) {
  const spec = state.tool && state.tool.inputs.find((i) => i.role === role);
  return spec ? spec.formats : [];
}

/** Refuses, as soon as it is chosen, a file the tool cannot read (its extension is not among the role's
 *  formats): the field is emptied and says why beside it. */
function checkFile(role) {
  const input = el(`file-${role}`);
  const file = input.files[0];
  const formats = acceptedFormats(role);
  clearFieldError(`file-error-${role}`);
  if (!file || !formats.length || formats.includes(extension(file))) return;
  const kind = extension(file) ? `a .${extension(file)} file` : "a file without an extension";
  input.value = "";
  el(`bytes-${role}`).textContent = "";
  showFieldError(`file-error-${role}`, `${file.name} is ${kind}: ${state.tool.name} reads ${formats.map((f) => "." + f).join(", ")}. Choose another file.`);
}

const tickedAgents = () => (state.tool ? state.tool.agents.filter((a) => el(`agent-${a.agent_id}`).checked) : []);

function updateCost() {
  if (!state.tool || !state.me) return;
  const hasBaseline = !el("baseline-field").hidden && el("file-baseline").files.length > 0;
  const ticked = tickedAgents();
  const { cost, skipped } = chainCost(ticked, hasBaseline);
  el("advanced-summary").textContent = `Advanced: agents (${ticked.length} of ${state.tool.agents.length}), parameters, priority (${el("priority").value})`;
  const note = skipped.length ? ` ${skipped.map((a) => a.name).join(", ")}: only with a baseline file, not charged without one.` : "";
  el("cost").textContent = `Cost: ${fmtInt(cost)} credits (you have ${fmtInt(state.me.credits)}), each agent charged as it starts.${note}`;
}

/** An upload item of a file field: its role and file, and the bar and note that show its progress. */
const fieldItem = (role, file) => ({ role, file, bar: el(`upload-progress-${role}`), note: el(`bytes-${role}`) });

function resetBars(items) {
  for (const role of ROLES) {
    el(`upload-progress-${role}`).max = 1;
    el(`upload-progress-${role}`).value = 0;
    el(`bytes-${role}`).textContent = "";
  }
  for (const { bar, note, file } of items) {
    bar.max = Math.max(1, file.size);
    bar.value = 0;
    note.textContent = "";
  }
}

function onBytes(item, bytes) {
  item.bar.value = Math.min(bytes, item.bar.max);
  item.note.textContent = `${fmtBytes(bytes)} of ${fmtBytes(item.bar.max)} sent`;
}

/** Run: every refusal, the page's or the API's, is shown beside the control it concerns. */
async function submit(event) {
  event.preventDefault();
  clearError();
  for (const where of ["submit-error", "form-commands-error", ...ROLES.map((r) => `file-error-${r}`)]) clearFieldError(where);
  el("form-commands").removeAttribute("aria-invalid");
  sources.clearErrors();
  try {
    await run();
  } catch (error) {
    const agentId = error instanceof ApiError && error.details && error.details.agent_id;
    if (error.code === "INVALID_PARAMETERS" && agentId === "transformer" && !el("commands-field").hidden) {
      return refuseCommands(error); // a command of the box: said beside it
    }
    if (error.code === "INVALID_PARAMETERS" && state.editors.has(agentId)) {
      el("advanced").open = true;
      state.editors.get(agentId).refuse(error.message);
    }
    showFieldError(errorPlace(error), error);
  }
}

/** The Commands box of Transform My Data (one command a line, blank lines skipped). */
const formCommands = () => el("form-commands").value.split("\n").map((line) => line.trim()).filter(Boolean);

function refuseCommands(error) {
  el("form-commands").setAttribute("aria-invalid", "true");
  el("form-commands").focus();
  showFieldError("form-commands-error", error);
}

async function run() {
  const tool = state.tool;
  const agents = tickedAgents().map((a) => a.agent_id);
  const primary = el("file-primary").files[0];
  const baseline = el("baseline-field").hidden ? null : el("file-baseline").files[0];
  const schema = el("schema-field").hidden ? null : el("file-schema").files[0];
  if (!tool) return showFieldError("submit-error", "Choose a tool.");
  if (!primary) {
    el("file-primary").focus();
    return showFieldError("file-error-primary", "Choose the primary file.");
  }
  const badLabel = el("sources-field").hidden ? null : sources.check();
  if (badLabel) {
    badLabel.focus();
    return showFieldError("submit-error", "A source's label is not valid (see beside it).");
  }
  if (!agents.length) {
    el("advanced").open = true;
    return showFieldError("submit-error", "Tick at least one agent under Advanced.");
  }
  const parameters = {};
  for (const agent of tickedAgents()) {
    const editor = state.editors.get(agent.agent_id);
    const result = editor.result();
    if (result.error) {
      el("advanced").open = true;
      editor.focus();
      return showFieldError("submit-error", `The parameters of ${agent.name} are not valid (see beside them): ${result.error}`);
    }
    if (Object.keys(result.value).length) parameters[agent.agent_id] = result.value;
  }
  if (!el("commands-field").hidden) {
    // Transform My Data does only what it is told: the box's commands after any given under Advanced.
    const given = parameters.transformer || {};
    const commands = [...(Array.isArray(given.commands) ? given.commands : []), ...formCommands()];
    if (!commands.length && !(Array.isArray(given.operations) && given.operations.length)) {
      return refuseCommands('Type what to do, one command a line, for example "remove rows where email is null".');
    }
    if (commands.length) parameters.transformer = { ...given, commands };
  }
  const body = { tool_id: tool.tool_id, priority: el("priority").value };
  if (agents.join() !== tool.default_chain.join()) body.agents = agents;
  if (Object.keys(parameters).length) body.parameters = parameters;

  const items = [fieldItem("primary", primary)];
  if (baseline) items.push(fieldItem("baseline", baseline));
  if (!el("sources-field").hidden) items.push(...sources.items());
  if (schema) items.push(fieldItem("schema", schema));
  resetBars(items);
  el("resume-upload").hidden = true;
  setBusy(true);
  try {
    const task = await post("/tasks", body, { "Idempotency-Key": randomKey() });
    let reply;
    try {
      reply = await post(`/tasks/${task.task_id}/upload-urls`, { files: items.map((i) => describe(i.role, i.file)) });
    } catch (error) {
      discard(task.task_id); // a refused file leaves no task behind
      throw error;
    }
    for (const item of items) item.entry = reply.uploads.find((u) => u.name === describe(item.role, item.file).name);
    onTask(task);
    select(task.task_id);
    el("live").scrollIntoView({ behavior: motion(), block: "start" });
    state.pending = { taskId: task.task_id, items };
    await upload(false);
  } finally {
    setBusy(false);
  }
}

async function discard(taskId) {
  try {
    await post(`/tasks/${taskId}/cancel`);
    await del(`/tasks/${taskId}`);
  } catch {
    /* it expires on its own */
  }
  forget(taskId);
}

async function upload(resume) {
  const { taskId, items } = state.pending;
  try {
    if (resume) await refreshExpired(taskId, items);
    await uploadAll(taskId, items, onBytes, resume);
  } catch (error) {
    el("resume-upload").hidden = false;
    throw error;
  }
  el("resume-upload").hidden = true;
  state.pending = null;
  onTask(await post(`/tasks/${taskId}/process`));
}

/** Smooth scrolling unless the user asked for reduced motion. */
const motion = () => (matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth");

function setBusy(busy) {
  el("submit").disabled = busy;
  el("resume-upload").disabled = busy;
  el("task-form").setAttribute("aria-busy", String(busy));
}

// --- task state ------------------------------------------------------------------------------------

function record(task) {
  let rec = state.tasks.get(task.task_id);
  if (!rec) {
    rec = { task, states: {}, messages: [], count: 0, result: null };
    state.tasks.set(task.task_id, rec);
    estimateStates(rec);
  }
  return rec;
}

/** Agent states of a task first seen mid-way: the chain spends 10..90 % in its agents, evenly. */
function estimateStates(rec) {
  const { agents, status, current_agent: current, progress } = rec.task;
  const at = current ? agents.indexOf(current) : status === "COMPLETED" ? agents.length : Math.floor(((progress - 10) / 80) * agents.length);
  agents.forEach((a, i) => {
    rec.states[a] = i < at ? "done" : i === at && current ? "running" : "pending";
  });
  if (["FAILED", "CANCELLED", "EXPIRED"].includes(status) && at >= 0 && at < agents.length && progress > 10) rec.states[agents[at]] = "failed";
}

function advance(rec, current) {
  const agents = rec.task.agents;
  const at = agents.indexOf(current);
  if (at >= 0) {
    agents.forEach((a, i) => {
      if (i < at && rec.states[a] !== "failed") rec.states[a] = "done";
    });
    rec.states[current] = "running";
  } else {
    for (const a of agents) if (rec.states[a] === "running") rec.states[a] = "done";
  }
}

/** A line of the task's messages: `at` when it happened (null: unknown), else now. While the task's stored
 *  events are replayed, the replay alone writes its messages (it goes on live until the task is done). */
function pushMessage(rec, text, eventId = null, at = new Date(), replayed = false) {
  if (rec.replaying && !replayed) return;
  rec.messages.push({ n: ++rec.count, at, text, eventId });
  if (rec.messages.length > MAX_MESSAGES) rec.messages.splice(0, rec.messages.length - MAX_MESSAGES);
  if (rec.task.task_id === state.current) appendMessages(rec);
}

/** A status line; a failure's message is its error's, so the sentence is said once. */
function statusText(task) {
  const { status, message, error } = task;
  return `${status}${message ? " — " + message : ""}${error && error.message !== message ? ": " + error.message : ""}`;
}

const progressText = (p) => `${p.progress}% ${p.message || ""}`;

/** How recent a task object is: its latest timestamp (a retry sets a new queued_at). */
const stamp = (t) => Math.max(...[t.created_at, t.upload_started_at, t.queued_at, t.started_at, t.finished_at].map((v) => (v ? Date.parse(v) : 0)));

/** A whole task object: a status/done event (in order), or an API answer (which may be older than the
 *  events already seen, e.g. process's QUEUED after the stream's PROCESSING: then it is ignored). */
function onTask(task, event = null, eventId = null) {
  const fromEvent = event !== null;
  const known = state.tasks.has(task.task_id);
  const rec = record(task);
  const { status: before, message: beforeMessage } = rec.task;
  if (known && !fromEvent) {
    if (stamp(task) < stamp(rec.task)) return;
    if (before === task.status && task.status === "PROCESSING") task.progress = Math.max(task.progress, rec.task.progress);
  }
  rec.task = task;
  if (known && before !== task.status) {
    if (TERMINAL.has(before) && !TERMINAL.has(task.status)) {
      for (const a of task.agents) rec.states[a] = "pending"; // a retry starts again
      rec.result = null;
      if (state.resultFor === task.task_id) state.resultFor = null;
    }
    if (task.status === "COMPLETED") for (const a of task.agents) if (rec.states[a] !== "failed") rec.states[a] = "done";
    if (["FAILED", "CANCELLED", "EXPIRED"].includes(task.status)) for (const a of task.agents) if (rec.states[a] === "running") rec.states[a] = "failed";
    if (TERMINAL.has(task.status)) refreshCredits();
  }
  if (task.status === "PROCESSING" && task.current_agent) advance(rec, task.current_agent);
  // Every status event is shown; "done" repeats the last status, so it is shown only when it says more.
  const news = event === "status" || (event === "done" && (before !== task.status || beforeMessage !== task.message));
  if (news || !known) pushMessage(rec, statusText(task), eventId);
  upsertRow(task);
  versions.onTask(task);
  search.onTask(task);
  if (task.task_id === state.current) renderLive();
}

function onProgress(p, eventId = null) {
  const rec = state.tasks.get(p.task_id);
  if (!rec) {
    if (state.fetching.has(p.task_id)) return;
    state.fetching.add(p.task_id);
    return guarded(async () => {
      try {
        onTask(await get(`/tasks/${p.task_id}`));
      } finally {
        state.fetching.delete(p.task_id);
      }
    })();
  }
  Object.assign(rec.task, { progress: p.progress, current_agent: p.current_agent, message: p.message });
  if (rec.task.status !== "PROCESSING" && !TERMINAL.has(rec.task.status)) rec.task.status = "PROCESSING";
  advance(rec, p.current_agent);
  pushMessage(rec, progressText(p), eventId);
  upsertRow(rec.task);
  if (p.task_id === state.current) renderLive();
}

function forget(taskId) {
  state.tasks.delete(taskId);
  const row = $(`history-row-${taskId}`);
  if (row) row.remove();
  if (state.current === taskId) select(null);
  el("history-empty").hidden = !!el("history-body").children.length;
}

// --- the event stream: ONE EventSource for all of the user's tasks ---------------------------------

function setConnection(text) {
  el("connection-state").textContent = text;
  el("connection-state").dataset.state = text;
}

async function connect() {
  const generation = ++state.generation;
  if (state.es) state.es.close();
  state.es = null;
  setConnection(state.everLive ? "reconnecting" : "connecting");
  let token;
  try {
    token = (await post("/events/token")).token;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut();
      return showError(error);
    }
    return retryLater(generation);
  }
  if (generation !== state.generation) return;
  const resumeFrom = state.lastId;
  let url = `/api/v1/events?token=${encodeURIComponent(token)}`;
  if (resumeFrom) url += `&last_event_id=${resumeFrom}`;
  const es = new EventSource(url);
  state.es = es;
  es.onopen = () => {
    const wasLive = state.everLive;
    state.everLive = true;
    state.delay = 1000;
    setConnection("live");
    // Without an id to resume from, the stream starts "now": read the current state again.
    if (wasLive && !resumeFrom) guarded(() => loadHistory(true))();
  };
  es.onerror = () => {
    if (state.es !== es) return;
    es.close();
    state.es = null;
    setConnection("reconnecting");
    retryLater(generation);
  };
  for (const name of ["status", "progress", "done"]) es.addEventListener(name, onEvent);
}

function retryLater(generation) {
  setConnection("reconnecting");
  setTimeout(() => generation === state.generation && connect(), state.delay);
  state.delay = Math.min(state.delay * 2, 15000);
}

function onEvent(event) {
  const id = Number(event.lastEventId);
  if (id) {
    if (state.seen.has(id)) return;
    state.seen.add(id);
    if (state.seen.size > 4000) for (const old of [...state.seen].slice(0, 2000)) state.seen.delete(old);
    state.lastId = Math.max(state.lastId, id);
  }
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    return;
  }
  if (event.type === "progress") onProgress(data, id);
  else if (data.deleted) forget(data.task_id); // deleted, here or elsewhere: its last status event says so
  else onTask(data, event.type, id);
}

// --- the live view ---------------------------------------------------------------------------------

function agentName(id) {
  const tool = state.catalog.find((t) => t.agents.some((a) => a.agent_id === id));
  const agent = tool && tool.agents.find((a) => a.agent_id === id);
  return agent ? agent.name : id;
}

function select(taskId) {
  stopReplay();
  state.current = taskId;
  state.shown = 0;
  state.resultFor = null;
  el("messages").replaceChildren();
  for (const row of el("history-body").children) row.classList.toggle("current", row.dataset.testid === `history-row-${taskId}`);
  renderLive();
}

function appendMessages(rec) {
  const list = el("messages");
  for (const m of rec.messages) {
    if (m.n <= state.shown) continue;
    const attrs = m.eventId === null ? {} : { "data-event-id": String(m.eventId) };
    const at = m.at ? h("time", { datetime: m.at.toISOString(), text: m.at.toLocaleTimeString() }) : h("span", { class: "muted", title: "This event carries no time of its own", text: "·" });
    list.append(h("li", attrs, at, " ", m.text));
    state.shown = m.n;
  }
  while (list.children.length > MAX_MESSAGES) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}

function renderTimeline(rec) {
  el("agent-timeline").replaceChildren(
    ...rec.task.agents.map((a) => {
      const s = rec.states[a] || "pending";
      return h("li", { "data-testid": `timeline-${a}`, "data-state": s, class: `state-${s}` }, h("span", { class: "dot", "aria-hidden": "true" }), `${agentName(a)} `, h("span", { class: "muted", text: s }));
    }),
  );
}

function renderLive() {
  const rec = state.current && state.tasks.get(state.current);
  el("live-empty").hidden = !!rec;
  el("live-body").hidden = !rec;
  versions.show(rec ? rec.task : null);
  search.show(rec ? rec.task : null);
  if (!rec) {
    el("results").hidden = true;
    return;
  }
  const t = rec.task;
  el("task-status").textContent = t.status;
  el("task-status").dataset.status = t.status;
  el("current-agent").textContent = t.current_agent ? agentName(t.current_agent) : "—";
  el("live-id").textContent = `${t.tool_id} · ${t.task_id}`;
  el("overall-progress").value = t.progress;
  el("overall-text").textContent = `${t.progress} %`;
  el("task-error").hidden = !t.error;
  el("task-error").textContent = t.error ? `${t.error.code}: ${t.error.message}` : "";
  renderTimeline(rec);
  appendMessages(rec);
  if (t.status === "COMPLETED") {
    if (state.resultFor !== t.task_id) guarded(() => showResult(rec))();
  } else {
    el("results").hidden = true;
    state.resultFor = null;
  }
}

async function showResult(rec) {
  const taskId = rec.task.task_id;
  state.resultFor = taskId;
  let result, files;
  try {
    [result, files] = await Promise.all([rec.result || get(`/tasks/${taskId}/result`), get(`/tasks/${taskId}/downloads`)]);
  } catch (error) {
    state.resultFor = null; // the next update tries again
    throw error;
  }
  rec.result = result;
  if (state.current !== taskId) return;
  const list = results.envelopes(result, rec.task.agents);
  for (const e of list) if (e.agent_id in rec.states) rec.states[e.agent_id] = e.status === "error" ? "failed" : "done";
  renderTimeline(rec);
  el("result-note").textContent = `Result: ${result.status}${result.duration_ms != null ? ` in ${fmtInt(result.duration_ms)} ms` : ""}${rec.task.cached ? " (from the cache)" : ""}.`;
  el("downloads").replaceChildren(results.downloads(files.files));
  el("summary").replaceChildren(results.summaryCards(list));
  el("alerts").replaceChildren(results.alertsTable(list));
  el("issues").replaceChildren(results.issuesTable(list));
  el("columns").replaceChildren(results.columnsView(list), profileViews(list));
  el("results").hidden = false;
  versions.showResult(rec.task, result);
  search.showResult(rec.task, result);
}

// --- replaying a task's stored events ---------------------------------------------------------------

/** When a status was reached, as the task object of its event says (a retry's queued_at is its own). */
function statusTime(task) {
  const field = TERMINAL.has(task.status) ? "finished_at" : { CREATED: "created_at", UPLOADING: "upload_started_at", QUEUED: "queued_at", PROCESSING: "started_at" }[task.status];
  const at = field && task[field];
  return at ? new Date(at) : null;
}

/** Shows the task's own event log in the live view: its per-task stream from the first stored event
 *  (last_event_id=0), each status with the time its task object gives; live until the task is done. */
async function replay(taskId) {
  const { token } = await post("/events/token");
  const rec = state.tasks.get(taskId);
  if (state.current !== taskId || !rec) return;
  stopReplay();
  Object.assign(rec, { messages: [], count: 0, replaying: true });
  state.shown = 0;
  el("messages").replaceChildren();
  const es = new EventSource(`/api/v1/tasks/${taskId}/events?token=${encodeURIComponent(token)}&last_event_id=0`);
  state.replay = { es, rec };
  let last = "";
  const onReplayed = (event) => {
    const data = JSON.parse(event.data);
    const id = Number(event.lastEventId);
    // As live: "done" repeats the last status, so it is shown only when it says more.
    const text = event.type === "progress" ? progressText(data) : statusText(data);
    if (event.type === "progress") pushMessage(rec, text, id, data.at ? new Date(data.at) : null, true);
    else if (!data.deleted && !(event.type === "done" && text === last)) pushMessage(rec, text, id, statusTime(data), true);
    if (event.type !== "progress") last = text;
    if (event.type === "done" || data.deleted) stopReplay();
  };
  for (const name of ["status", "progress", "done"]) es.addEventListener(name, onReplayed);
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) stopReplay(); // refused: the live stream writes the messages again
  };
}

function stopReplay() {
  if (!state.replay) return;
  state.replay.es.close();
  state.replay.rec.replaying = false;
  state.replay = null;
}

// --- dataset versions ------------------------------------------------------------------------------

/** A transform the command box created: followed like any task, in the live view. */
function followTransform(task) {
  onTask(task);
  select(task.task_id);
}

function openVersion(taskId) {
  if (state.tasks.has(taskId)) return select(taskId);
  guarded(async () => {
    onTask(await get(`/tasks/${taskId}`));
    select(taskId);
  })();
}

function transformCost() {
  const tool = state.catalog.find((t) => t.tool_id === TRANSFORM_TOOL);
  return tool ? tool.default_chain_credits : null;
}

const versions = versionsPanel({ onCreated: followTransform, onOpen: openVersion, cost: transformCost });

// --- search ----------------------------------------------------------------------------------------

function searchCost(agentId) {
  const tool = state.catalog.find((t) => t.tool_id === SEARCH_TOOL);
  const agent = tool && tool.agents.find((a) => a.agent_id === agentId);
  return agent ? agent.credits : null;
}

/** A search task the panel made: in the history like any task; the panel itself waits for its result. */
const search = searchPanel({ cost: searchCost, onCreated: (task) => onTask(task) });

// --- other sources (master data) -------------------------------------------------------------------

const sources = sourcesField({ root: el("sources-field"), list: el("source-list"), picker: el("file-source"), formatsNote: el("formats-source"), areaError: el("file-error-source") });

// --- history ---------------------------------------------------------------------------------------

async function loadHistory(reset) {
  const status = el("history-status-filter").value;
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (status) params.set("status", status);
  if (!reset && state.cursor) params.set("cursor", state.cursor);
  const [page] = await Promise.all([get(`/tasks?${params}`), reset ? loadSpent() : null]);
  if (reset) el("history-body").replaceChildren();
  for (const task of page.items) onTask(task);
  // onTask puts rows of unseen tasks on top: put this page's in the API's order (newest first).
  el("history-body").append(...page.items.map((t) => $(`history-row-${t.task_id}`)).filter(Boolean));
  state.cursor = page.next_cursor;
  el("load-more").hidden = !page.next_cursor;
  el("history-empty").hidden = !!el("history-body").children.length;
}

/** The credits each task was charged (debits less refunds), from the newest page of the ledger, for a task object
 *  that does not say (an event's); a task created since its oldest line has all its lines there. */
async function loadSpent() {
  const page = await get("/me/ledger?limit=200");
  const spent = new Map();
  for (const line of page.items) {
    if (line.task_id && (line.kind === "debit" || line.kind === "refund")) spent.set(line.task_id, (spent.get(line.task_id) || 0) - line.amount);
  }
  state.spent = spent;
  state.spentSince = page.next_cursor ? Date.parse(page.items[page.items.length - 1].created_at) : -Infinity;
  for (const { task } of state.tasks.values()) {
    const cell = $(`history-credits-${task.task_id}`);
    if (cell) cell.textContent = creditsOf(task);
  }
}

function creditsOf(task) {
  if (task.credits != null) return task.credits === 0 && task.cached ? "0 (cache)" : fmtInt(task.credits); // GET and the list say
  if (state.spent.has(task.task_id)) return fmtInt(state.spent.get(task.task_id));
  if (Date.parse(task.created_at) < state.spentSince) return "—";
  return task.cached ? "0 (cache)" : "0";
}

/** The user's file as upload-urls declared it ({display_name, size}), or null (e.g. a chained task's). */
const primaryInput = (task) => (task.inputs || []).find((i) => i.role === "primary") || null;

function fileCells(task) {
  const id = task.task_id;
  const input = primaryInput(task);
  const name = input ? input.display_name || input.name : task.source_task_id ? `from task ${task.source_task_id.slice(0, 8)}` : "—";
  return [
    h("td", { class: "file", "data-testid": `history-file-${id}`, title: name, text: name }),
    h("td", { class: "num", "data-testid": `history-size-${id}`, text: input && input.size != null ? fmtBytes(input.size) : "—" }),
  ];
}

function durationOf(task) {
  return task.started_at && task.finished_at ? fmtDuration(Date.parse(task.finished_at) - Date.parse(task.started_at)) : "—";
}

/** Retry is offered where it can succeed: not after a failure that the same inputs would repeat. */
const retriable = (task) => RETRYABLE.has(task.status) && !(task.error && FINAL_ERRORS.has(task.error.code));

function actionButton(kind, task, enabled, label, why = null) {
  return h("button", {
    title: why,
    type: "button",
    class: "small secondary",
    "data-testid": `${kind}-${task.task_id}`,
    "data-action": kind,
    "data-task": task.task_id,
    disabled: !enabled,
    "aria-label": `${label} task ${task.task_id.slice(0, 8)}`,
    text: label,
  });
}

function historyRow(task) {
  return h(
    "tr",
    { "data-testid": `history-row-${task.task_id}`, "data-status": task.status, class: task.task_id === state.current ? "current" : "" },
    h("td", {}, h("time", { datetime: task.created_at, text: fmtTime(task.created_at) })),
    h("td", { text: task.tool_id }),
    fileCells(task),
    h("td", {}, h("span", { class: "status", "data-status": task.status, text: task.status }), task.error && task.error.code !== task.status ? h("small", { text: task.error.code }) : null),
    h("td", {}, h("progress", { max: 100, value: task.progress, "aria-label": `Progress ${task.progress} %` }), ` ${task.progress} %`),
    h("td", { class: "num", "data-testid": `history-duration-${task.task_id}`, text: durationOf(task) }),
    h("td", { class: "num", "data-testid": `history-credits-${task.task_id}`, text: creditsOf(task) }),
    h(
      "td",
      { class: "row-actions" },
      actionButton("view", task, true, "View"),
      actionButton("cancel", task, !TERMINAL.has(task.status), "Cancel"),
      actionButton("retry", task, retriable(task), "Retry", task.error && FINAL_ERRORS.has(task.error.code) ? "A retry would fail the same way: run a new task with a corrected file or parameters." : null),
      actionButton("delete", task, TERMINAL.has(task.status), "Delete"),
    ),
  );
}

function upsertRow(task) {
  const row = $(`history-row-${task.task_id}`);
  const filter = el("history-status-filter").value;
  if (row) {
    const focused = document.activeElement && row.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    const fresh = historyRow(task);
    row.replaceWith(fresh);
    if (focused) {
      const button = fresh.querySelector(`[data-action="${focused}"]`);
      (button && !button.disabled ? button : fresh.querySelector('[data-action="view"]')).focus();
    }
  } else if (!filter || filter === task.status) {
    el("history-body").prepend(historyRow(task));
    el("history-empty").hidden = true;
  }
}

async function onHistoryClick(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const { action, task } = button.dataset;
  clearError();
  if (action === "view") {
    select(task);
    el("live").scrollIntoView({ behavior: motion(), block: "start" });
    await replay(task);
  } else if (action === "cancel" || action === "retry") {
    onTask(await post(`/tasks/${task}/${action}`));
  } else if (action === "delete") {
    await del(`/tasks/${task}`);
    const next = button.closest("tr").nextElementSibling || button.closest("tr").previousElementSibling;
    forget(task);
    (next ? next.querySelector('[data-action="view"]') : el("history-status-filter")).focus();
  }
}

// --- wiring ----------------------------------------------------------------------------------------

function dropZone(zone) {
  const input = zone.querySelector("input[type=file]");
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) input.files = e.dataTransfer.files;
    input.dispatchEvent(new Event("change"));
  });
  input.addEventListener("change", () => {
    const file = input.files[0];
    el(`bytes-${zone.dataset.role}`).textContent = file ? `${file.name}, ${fmtBytes(file.size)}` : "";
    checkFile(zone.dataset.role);
    updateCost();
  });
}

function start() {
  el("signin-form").addEventListener(
    "submit",
    guarded(async (e) => {
      e.preventDefault();
      const key = el("api-key").value.trim();
      if (key) await signIn(key);
    }),
  );
  el("sign-out").addEventListener("click", signOut);
  el("tool-select").addEventListener("change", (e) => renderTool(e.target.value));
  el("priority").addEventListener("change", updateCost);
  el("task-form").addEventListener("submit", submit);
  el("resume-upload").addEventListener("click", async () => {
    clearFieldError("submit-error");
    setBusy(true);
    try {
      await upload(true);
    } catch (error) {
      showFieldError("submit-error", error);
    } finally {
      setBusy(false);
    }
  });
  el("history-status-filter").addEventListener("change", guarded(() => loadHistory(true)));
  el("load-more").addEventListener("click", guarded(() => loadHistory(false)));
  el("history-body").addEventListener("click", guarded(onHistoryClick));
  document.querySelectorAll(".drop").forEach(dropZone);
  const key = getKey();
  if (key) guarded(() => signIn(key))();
}

start();
