// A small element builder, so views read as the markup they make, and the
// page-wide alert area every failed request reports to.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/**
 * Creates an element. Attributes whose name starts with "on" are event
 * listeners; `true` sets a boolean attribute, `false`/null/undefined leave it
 * out; "text" sets textContent.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "text") {
      el.textContent = String(value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el: Element, children: (Child | Child[])[]): void {
  for (const child of children) {
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else if (child !== null && child !== undefined && child !== false) el.appendChild(document.createTextNode(String(child)));
  }
}

/** Sets textContent only when it changed (keeps selections and avoids layout work). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** Sets or removes an attribute only when it changed. */
export function setAttr(el: Element, name: string, value: string | null): void {
  if (value === null) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) {
    el.setAttribute(name, value);
  }
}

/** Replaces the children of `el`. */
export function replaceChildren(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

let nextId = 0;
/** How long a confirmation stays up. */
const INFO_MS = 8000;
/** A document-unique id for label/aria wiring. */
export function uid(prefix: string): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * The alert area under the header. Messages with a key replace the previous
 * one of that key (so a failing poll shows one message, not one per try);
 * each can be dismissed.
 */
export const alerts = {
  show(message: string, options: { key?: string; kind?: "error" | "info" } = {}): void {
    const area = document.getElementById("alerts");
    if (!area) return;
    const kind = options.kind ?? "error";
    const key = options.key ?? `alert-${(nextId += 1)}`;
    let item = area.querySelector<HTMLElement>(`[data-key="${CSS.escape(key)}"]`);
    if (!item) {
      item = h("div", { "data-key": key });
      area.appendChild(item);
    }
    item.className = `alert alert-${kind}`;
    // Errors interrupt a screen reader; confirmations wait their turn.
    item.setAttribute("role", kind === "error" ? "alert" : "status");
    window.clearTimeout(Number(item.dataset.timer ?? 0));
    if (kind === "info") {
      const target = item;
      item.dataset.timer = String(window.setTimeout(() => target.remove(), INFO_MS));
    }
    replaceChildren(
      item,
      h("p", { class: "alert-text", text: message }),
      h("button", {
        type: "button",
        class: "alert-dismiss",
        "aria-label": "Dismiss message",
        text: "×",
        onclick: () => item?.remove(),
      }),
    );
  },
  clear(key: string): void {
    document.querySelector(`#alerts [data-key="${CSS.escape(key)}"]`)?.remove();
  },
  clearAll(): void {
    document.getElementById("alerts")?.replaceChildren();
  },
};
