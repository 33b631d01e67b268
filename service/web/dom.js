// Tiny DOM builders: data from the API only ever reaches the page as text nodes or attributes.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (name === "text") el.textContent = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name in el && !(el instanceof SVGElement) && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** h("td", {class: "x", "data-testid": "y", onclick: f}, "text", otherNode) */
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);

export const svg = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

export const $ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`);

export const fmtInt = (n) => (n == null ? "—" : Number(n).toLocaleString("en"));

/** A size in binary units, named as such (1 MiB = 1024² bytes). */
export function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function fmtNum(v) {
  if (typeof v !== "number") return v == null ? "—" : String(v);
  if (Number.isInteger(v)) return fmtInt(v);
  return Math.abs(v) >= 1000 ? fmtInt(Math.round(v)) : String(Number(v.toPrecision(4)));
}

/** A number of the data as the data holds it, thousands grouped: never rounded (all the digits of JavaScript's
 * shortest form, which reads back as the same number). fmtNum is for figures about the data (means, shares). */
export function fmtData(v) {
  if (typeof v !== "number" || !Number.isFinite(v)) return v == null ? "" : String(v);
  const digits = String(Math.abs(v)).split("e")[0].replace(".", "").replace(/^0+/, "").length;
  return v.toLocaleString("en", { maximumSignificantDigits: Math.min(21, Math.max(1, digits)) });
}

export function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" }) : "—";
}

/** A duration in milliseconds, to the unit that reads best: "850 ms", "12.4 s", "3 min 05 s", "2 h 07 min". */
export function fmtDuration(ms) {
  if (ms == null || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}
