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

export function fmtBytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function fmtNum(v) {
  if (typeof v !== "number") return v == null ? "—" : String(v);
  if (Number.isInteger(v)) return fmtInt(v);
  return Math.abs(v) >= 1000 ? fmtInt(Math.round(v)) : String(Number(v.toPrecision(4)));
}

export function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" }) : "—";
}
