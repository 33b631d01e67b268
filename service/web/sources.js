// The "Other sources" of a master data task: up to 9 files besides the primary, each uploaded as
// source_<label>.<ext> under a label the user can edit (prefilled from the file name) and the page checks
// as the API does (API.md, "Roles by name"): lowercase letters, digits, _ and -, one label per source.

import { fmtBytes, h } from "./dom.js";
import { extension } from "./upload.js";

const MAX_SOURCES = 9;
const LABEL = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** A label from a file name, in the labels' alphabet: "CRM Export.csv" -> "crm_export". */
function slugify(fileName) {
  return fileName
    .replace(/\.[^.]*$/, "")
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "_")
    .replace(/^[_-]+|[_-]+$/g, "")
    .slice(0, 32);
}

/** Why a label cannot be used (null when it can), given the labels of the other sources. */
function labelProblem(label, others) {
  if (!label) return "Give this source a label.";
  if (!LABEL.test(label)) return `"${label}" is not a valid label: up to 32 lowercase letters, digits, _ and -, starting with a letter or digit.`;
  if (label === "primary") return `"primary" is the primary file's label: choose another.`;
  if (others.includes(label)) return `"${label}" is already the label of another source: give each source its own.`;
  return null;
}

/** The sources area of the form: `root` takes dropped files, `list` holds a row per source, `picker` adds
 *  files, `formatsNote` says which it reads and `areaError` why one was left out. */
export function sourcesField({ root, list, picker, formatsNote, areaError }) {
  const rows = []; // {file, label: <input>, error, bar, note, el}
  let formats = [];
  let keys = 0;

  function refuse(message) {
    areaError.textContent = message;
    areaError.hidden = !message;
  }

  /** Checks every label (uniqueness depends on all of them) and says beside each field what is wrong. */
  function check() {
    let first = null;
    for (const row of rows) {
      const label = row.label.value.trim();
      const problem = labelProblem(label, rows.filter((r) => r !== row).map((r) => r.label.value.trim()));
      row.error.textContent = problem || "";
      row.error.hidden = !problem;
      row.label.setAttribute("aria-invalid", String(!!problem));
      if (problem && !first) first = row.label;
    }
    return first;
  }

  function freeLabel(file) {
    const base = slugify(file.name) || "source";
    const taken = new Set(rows.map((r) => r.label.value.trim()));
    let label = base;
    for (let n = 2; taken.has(label) || label === "primary"; n++) label = `${base.slice(0, 29)}_${n}`;
    return label;
  }

  function add(file) {
    const key = ++keys;
    const id = `source-label-${key}`;
    const row = { file };
    row.label = h("input", { id, type: "text", "data-testid": id, value: freeLabel(file), spellcheck: "false", autocomplete: "off", "aria-describedby": `source-label-error-${key}`, oninput: check });
    row.error = h("p", { class: "field-error", id: `source-label-error-${key}`, "data-testid": `source-label-error-${key}`, role: "alert", hidden: true });
    row.bar = h("progress", { "data-testid": `upload-progress-source-${key}`, value: 0, max: 1, "aria-label": `Upload of ${file.name}` });
    row.note = h("small", { "aria-live": "polite", text: `${file.name}, ${fmtBytes(file.size)}` });
    const remove = h("button", { type: "button", class: "small secondary", "data-testid": `source-remove-${key}`, "aria-label": `Remove ${file.name}`, text: "Remove" });
    row.el = h("li", { class: "source", "data-testid": `source-row-${key}` }, h("div", { class: "source-head" }, h("label", { for: id, text: "Label" }), row.label, h("span", { class: "muted file-name", title: file.name, text: file.name }), remove), row.error, row.bar, row.note);
    remove.addEventListener("click", () => {
      rows.splice(rows.indexOf(row), 1);
      row.el.remove();
      refuse("");
      check();
      picker.focus();
    });
    rows.push(row);
    list.append(row.el);
  }

  /** Adds the chosen files: each one the tool reads, while there is room for it; says beside the picker
   *  which were left out and why. */
  function addFiles(files) {
    const refused = [];
    for (const file of files) {
      if (formats.length && !formats.includes(extension(file))) refused.push(`${file.name} is not a ${formats.map((f) => "." + f).join(", ")} file`);
      else if (rows.length >= MAX_SOURCES) refused.push(`${file.name} left out: at most ${MAX_SOURCES} sources besides the primary`);
      else add(file);
    }
    refuse(refused.join("; "));
    check();
  }

  picker.addEventListener("change", () => {
    addFiles([...picker.files]);
    picker.value = ""; // the same file can be chosen again after a removal
  });
  root.addEventListener("dragover", (e) => e.preventDefault());
  root.addEventListener("drop", (e) => {
    e.preventDefault();
    addFiles([...e.dataTransfer.files]);
  });

  return {
    /** The formats (extensions) the tool reads for a source, as its catalog says. */
    setFormats(extensions) {
      formats = extensions;
      picker.accept = formats.map((f) => "." + f).join(",");
      formatsNote.textContent = formats.length ? `Reads ${formats.map((f) => "." + f).join(", ")}.` : "";
    },
    /** The first label field that is not valid (its error shown beside it), or null. */
    check,
    /** Upload items of the sources: {role: "source_<label>", file, bar, note}, the bar and note showing its progress. */
    items: () => rows.map((row) => ({ role: `source_${row.label.value.trim()}`, file: row.file, bar: row.bar, note: row.note })),
    /** The id of the place for a refusal of the API naming an upload ("source_crm.csv"): beside that source. */
    errorPlace(name) {
      const row = rows.find((r) => name.startsWith(`source_${r.label.value.trim()}.`));
      return row ? row.error.id : null;
    },
    clearErrors() {
      refuse("");
      check();
    },
  };
}
