// Building DOM nodes from data. Text always goes in as textContent, never as HTML.

export const byId = (id) => document.getElementById(id);

/**
 * el('td', {class: 'num', dataset: {keyId: 3}}, 'text', childNode)
 * Attribute values and children are data: set as attributes and text nodes only.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function show(node, visible) {
  node.hidden = !visible;
}

/** Put a message in an (initially hidden) alert or status element, or hide it. */
export function say(node, message) {
  node.textContent = message || '';
  node.hidden = !message;
}
