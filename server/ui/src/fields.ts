// Labelled form controls with a hint and an error line each, and the
// server's field violations (google.rpc.BadRequest) shown beside the fields
// they name: what every form of the dashboard (jobs, alert rules, silences)
// is built from.

import { h, uid } from "./dom";
import type { FieldViolation } from "./types";

export type Control = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

/** One labelled control (or group of controls) with its error line. */
export interface Field {
  key: string;
  control: Control | HTMLFieldSetElement;
  /** What receives focus when the field has an error. */
  focusable: HTMLElement;
  error: HTMLElement;
  wrapper: HTMLElement;
}

/** Where a server field path belongs: the form field's key, and how to name the sub-path ("" for none). */
export type FieldLocator = (path: string) => { key: string; detail: string } | undefined;

/** A form's fields and its alert area (messages no field owns). */
export class FormFields {
  private readonly fields = new Map<string, Field>();
  readonly alertArea: HTMLElement;

  /** `prefix` makes the ids unique per form kind; `locate` maps server paths to fields. */
  constructor(
    private readonly prefix: string,
    private readonly locate: FieldLocator,
  ) {
    this.alertArea = h("div", { class: "form-alert", role: "alert", tabindex: -1 });
  }

  /** A labelled control with a hint and an error line wired by aria-describedby. */
  field(key: string, label: string, control: Control, hint?: string): HTMLElement {
    const id = uid(`${this.prefix}-${key}`);
    control.id = id;
    control.name = key;
    const errorId = `${id}-error`;
    const hintId = `${id}-hint`;
    const error = h("p", { id: errorId, class: "field-error" });
    control.setAttribute("aria-describedby", hint ? `${hintId} ${errorId}` : errorId);
    const isCheckbox = control instanceof HTMLInputElement && control.type === "checkbox";
    const labelEl = h("label", { for: id, text: label });
    const wrapper = h(
      "div",
      { class: isCheckbox ? "field field-checkbox" : "field", "data-field": key },
      isCheckbox ? [control, labelEl] : [labelEl, control],
      hint ? h("p", { id: hintId, class: "hint", text: hint }) : null,
      error,
    );
    this.fields.set(key, { key, control, focusable: control, error, wrapper });
    return wrapper;
  }

  /** Registers a field built by hand (a fieldset of radios or checkboxes). */
  register(field: Field): void {
    this.fields.set(field.key, field);
  }

  clear(): void {
    this.alertArea.replaceChildren();
    for (const f of this.fields.values()) {
      f.error.textContent = "";
      f.control.removeAttribute("aria-invalid");
      f.wrapper.classList.remove("has-error");
    }
  }

  /** Shows violations beside their fields; the rest in the alert. Focuses the first. */
  show(violations: FieldViolation[], fallback?: string): void {
    const unplaced: string[] = [];
    let first: Field | undefined;
    for (const v of violations) {
      const target = this.locate(v.field);
      const f = target ? this.fields.get(target.key) : undefined;
      if (!f || !target) {
        unplaced.push(`${v.field}: ${v.description}`);
        continue;
      }
      const text = target.detail ? `${target.detail}: ${v.description}` : v.description;
      f.error.textContent = f.error.textContent ? `${f.error.textContent} ${text}` : text;
      f.control.setAttribute("aria-invalid", "true");
      f.wrapper.classList.add("has-error");
      first ??= f;
    }
    const messages = unplaced.length ? unplaced : fallback && !first ? [fallback] : [];
    if (messages.length) this.alertArea.replaceChildren(...messages.map((m) => h("p", { text: m })));
    else if (first) this.alertArea.replaceChildren(h("p", { text: "Some fields need attention: see the messages beside them." }));
    if (first) first.focusable.focus();
    else this.alertArea.focus();
  }

  /** A message for the whole form (a conflict, an unreachable server). */
  alert(message: string): void {
    this.alertArea.replaceChildren(h("p", { text: message }));
    this.alertArea.focus();
  }
}

/** Reads "key=value" lines (or comma-separated pairs) into a map; problems go to `problems` under `field`. */
export function parseLabelLines(text: string, field: string, problems: FieldViolation[]): Record<string, string> {
  const map: Record<string, string> = {};
  text
    .split(/\n|,(?=[^=,]*=)/)
    .map((l) => l.trim())
    .filter(Boolean)
    .forEach((line) => {
      const at = line.indexOf("=");
      if (at <= 0) problems.push({ field, description: `"${line}" is not key=value` });
      else map[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    });
  return map;
}
/** Job ids typed one per line or separated by commas or spaces. */
export function parseIdList(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

