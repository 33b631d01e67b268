// A parameters editor per agent, generated from the agent's JSON Schema (GET /api/v1/tools).
// Two views of one value: a form (booleans, enums, numbers, strings; arrays and objects as small JSON
// fields) and a JSON text of the overrides (only what differs from the defaults). Editing either updates
// the other; the JSON text is what gets submitted.

import { h } from "./dom.js";

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** The schema a value must fit: {"anyOf": [X, {"type": "null"}]} is X that may also be null. */
function simple(prop) {
  if (!prop.anyOf) return { ...prop, nullable: false };
  const others = prop.anyOf.filter((p) => p.type !== "null");
  return others.length === 1 ? { ...others[0], ...prop, anyOf: undefined, nullable: true } : { ...prop, nullable: false };
}

/** Why ``value`` does not fit ``prop`` ("" when it does). References ($ref) are left to the API. */
export function check(value, prop) {
  const p = simple(prop);
  if (value === null) return p.nullable ? "" : "must not be empty";
  if (p.enum) return p.enum.includes(value) ? "" : `must be one of: ${p.enum.join(", ")}`;
  switch (p.type) {
    case "boolean":
      return typeof value === "boolean" ? "" : "must be true or false";
    case "integer":
    case "number":
      if (typeof value !== "number" || !Number.isFinite(value)) return "must be a number";
      if (p.type === "integer" && !Number.isInteger(value)) return "must be a whole number";
      if (p.minimum != null && value < p.minimum) return `must be ≥ ${p.minimum}`;
      if (p.maximum != null && value > p.maximum) return `must be ≤ ${p.maximum}`;
      if (p.exclusiveMinimum != null && value <= p.exclusiveMinimum) return `must be > ${p.exclusiveMinimum}`;
      if (p.exclusiveMaximum != null && value >= p.exclusiveMaximum) return `must be < ${p.exclusiveMaximum}`;
      return "";
    case "string":
      if (typeof value !== "string") return "must be text";
      return p.minLength && value.length < p.minLength ? `must have at least ${p.minLength} characters` : "";
    case "array":
      if (!Array.isArray(value)) return "must be a JSON list […]";
      for (const item of value) {
        const why = p.items && !p.items.$ref ? check(item, p.items) : "";
        if (why) return `each item ${why}`;
      }
      return "";
    case "object":
      return value && typeof value === "object" && !Array.isArray(value) ? "" : "must be a JSON object {…}";
    default:
      return "";
  }
}

function control(key, prop, inputId) {
  const p = simple(prop);
  if (p.type === "boolean") {
    const input = h("input", { type: "checkbox", id: inputId });
    return { input, read: () => input.checked, write: (v) => (input.checked = !!v) };
  }
  if (p.enum) {
    const input = h("select", { id: inputId }, p.enum.map((v, i) => h("option", { value: String(i), text: String(v) })));
    return { input, read: () => p.enum[input.selectedIndex], write: (v) => (input.selectedIndex = Math.max(0, p.enum.indexOf(v))) };
  }
  if (p.type === "integer" || p.type === "number") {
    const input = h("input", {
      type: "number",
      id: inputId,
      inputmode: p.type === "integer" ? "numeric" : "decimal",
      step: p.type === "integer" ? "1" : "any",
      min: p.minimum ?? p.exclusiveMinimum,
      max: p.maximum ?? p.exclusiveMaximum,
      placeholder: p.nullable ? "empty: automatic" : null,
    });
    const read = () => {
      const raw = input.value.trim();
      if (raw === "") return p.nullable ? null : undefined; // cleared: the default
      return input.validity.badInput ? NaN : Number(raw);
    };
    return { input, read, write: (v) => (input.value = v == null ? "" : String(v)) };
  }
  if (p.type === "string") {
    const input = h("input", { type: "text", id: inputId, autocomplete: "off", spellcheck: "false" });
    return { input, read: () => input.value, write: (v) => (input.value = v ?? "") };
  }
  const input = h("textarea", { id: inputId, rows: 1, class: "code", spellcheck: "false", placeholder: p.type === "array" ? "[]" : "{}" });
  const read = () => {
    const raw = input.value.trim();
    if (raw === "") return undefined;
    try {
      return JSON.parse(raw);
    } catch {
      throw new Error("is not valid JSON");
    }
  };
  return { input, read, write: (v) => (input.value = v === undefined ? "" : JSON.stringify(v)) };
}

/** The editor of one agent: {el, json (the textarea), result() -> {value, error}}. */
export function paramsEditor(agent) {
  const id = agent.agent_id;
  const props = (agent.parameters_schema || {}).properties || {};
  const errorEl = h("p", { class: "field-error", "data-testid": `params-error-${id}`, "aria-live": "polite", hidden: true });
  const json = h("textarea", {
    id: `params-${id}`,
    "data-testid": `params-${id}`,
    class: "code",
    rows: 1,
    spellcheck: "false",
    "aria-describedby": `params-error-id-${id}`,
  });
  errorEl.id = `params-error-id-${id}`;
  json.value = "{}";
  let error = "";

  const fields = Object.entries(props).map(([key, prop]) => {
    const inputId = `p-${id}-${key}`;
    const c = control(key, prop, inputId);
    const hint = h("small", { id: `${inputId}-hint`, text: prop.description || "" });
    const why = h("small", { class: "field-error", id: `${inputId}-err` });
    c.input.setAttribute("aria-describedby", `${inputId}-hint ${inputId}-err`);
    const label = h("label", { for: inputId, text: prop.title || key });
    const wrap = h("div", { class: c.input.type === "checkbox" ? "field check" : "field" }, c.input.type === "checkbox" ? [c.input, label] : [label, c.input], hint, why);
    c.write(prop.default);
    return { key, prop, ...c, why, wrap };
  });

  const show = (message) => {
    error = message;
    errorEl.textContent = message;
    errorEl.hidden = !message;
    json.setAttribute("aria-invalid", message ? "true" : "false");
  };
  const mark = (field, message) => {
    field.why.textContent = message;
    field.input.setAttribute("aria-invalid", message ? "true" : "false");
  };

  // Form -> JSON: each field that differs from its default.
  const fromForm = () => {
    const overrides = {};
    const problems = [];
    for (const f of fields) {
      let value;
      try {
        value = f.read();
      } catch (e) {
        mark(f, e.message);
        problems.push(`${f.prop.title || f.key} ${e.message}`);
        continue;
      }
      const why = value === undefined ? "" : check(value, f.prop);
      mark(f, why);
      if (why) problems.push(`${f.prop.title || f.key} ${why}`);
      if (value !== undefined && !same(value, f.prop.default)) overrides[f.key] = value;
    }
    json.value = JSON.stringify(overrides, null, Object.keys(overrides).length > 2 ? 1 : 0);
    show(problems.join("; "));
  };

  // JSON -> form.
  const fromJson = () => {
    let value;
    try {
      value = json.value.trim() ? JSON.parse(json.value) : {};
    } catch (e) {
      return show(`Invalid JSON: ${e.message}`);
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) return show("Parameters must be a JSON object {…}");
    const problems = Object.entries(value).map(([key, v]) => {
      const prop = props[key];
      const why = prop ? check(v, prop) : "is not a parameter of this agent";
      return why && `${key} ${why}`;
    });
    show(problems.filter(Boolean).join("; "));
    for (const f of fields) {
      f.write(f.key in value ? value[f.key] : f.prop.default);
      mark(f, "");
    }
  };

  const form = h("div", { class: "param-grid" }, fields.map((f) => f.wrap));
  form.addEventListener("input", fromForm);
  form.addEventListener("change", fromForm);
  json.addEventListener("input", fromJson);

  const el = h(
    "div",
    { class: "params" },
    h("label", { for: json.id, class: "small", text: "Parameters (JSON: only what differs from the defaults)" }),
    json,
    errorEl,
    fields.length ? h("details", {}, h("summary", { text: `Edit with a form (${fields.length} settings)` }), form) : null,
  );

  return {
    el,
    /** Shows the API's refusal of these parameters beside the editor, and puts the cursor in it. */
    refuse(message) {
      show(message);
      json.focus();
    },
    focus: () => json.focus(),
    result() {
      if (error) return { error };
      const value = json.value.trim() ? JSON.parse(json.value) : {};
      return { value };
    },
  };
}

/**
 * What a chain of catalog agents costs as the service charges it: each agent as it starts, and an agent that
 * needs a baseline (drift-detector) only when a baseline file is given; without one it leaves the default
 * chain, or, chosen on purpose, runs free to say it was skipped. {cost, skipped: the agents not charged}.
 */
export function chainCost(agents, hasBaseline) {
  const skipped = hasBaseline ? [] : agents.filter((a) => a.needs_baseline);
  const cost = agents.filter((a) => !skipped.includes(a)).reduce((sum, a) => sum + a.credits, 0);
  return { cost, skipped };
}
