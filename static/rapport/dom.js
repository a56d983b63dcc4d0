// Small DOM helpers shared by every page. Text always goes in as text, never parsed as HTML.

export function $(selector, root) {
  return (root || document).querySelector(selector);
}

export function $$(selector, root) {
  return Array.from((root || document).querySelectorAll(selector));
}

// Builds an element: `attrs` sets attributes, with `class`, `text` and `onclick` as shorthands;
// each further argument is a child (a node, a string, which becomes a text node, or a list).
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([key, value]) => {
    if (value === null || value === undefined || value === false) return;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value === true ? "" : String(value));
  });
  appendChildren(node, children);
  return node;
}

function appendChildren(node, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    child.forEach((each) => appendChildren(node, each));
    return;
  }
  node.append(typeof child === "string" ? document.createTextNode(child) : child);
}

// Writes only when the text changed, so a redraw many times a second leaves the DOM alone.
export function setText(node, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
}

// The JSON a page carries in a json_script block (the pages run no inline script).
export function readJson(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}
