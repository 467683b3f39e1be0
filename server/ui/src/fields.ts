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
  /** For a list of rows: the control of row `index` (its `part`, a proto field name), marked and focused instead of the field. */
  partControl?: (index: number, part: string | undefined) => HTMLElement | undefined;
}

/**
 * Where a server field path belongs: the form field's key, how to name the
 * sub-path ("" for none), and for a path into a list its entry and field.
 */
export interface FieldTarget {
  key: string;
  detail: string;
  index?: number;
  part?: string;
}

export type FieldLocator = (path: string) => FieldTarget | undefined;

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

  /**
   * A fieldset of several controls (rows of a list) with a hint and an
   * error line, registered as one field; `errorId` is for the controls'
   * aria-describedby.
   */
  group(
    key: string,
    legend: string,
    content: Node[],
    options: { hint?: string; focusable: HTMLElement; partControl?: Field["partControl"] },
  ): { set: HTMLFieldSetElement; errorId: string } {
    const id = uid(`${this.prefix}-${key}`);
    const error = h("p", { id: `${id}-error`, class: "field-error" });
    const hint = options.hint ? h("p", { id: `${id}-hint`, class: "hint", text: options.hint }) : null;
    const set = h(
      "fieldset",
      { class: "group", "data-field": key, "aria-describedby": hint ? `${hint.id} ${error.id}` : error.id },
      h("legend", { text: legend }),
      content,
      hint,
      error,
    );
    this.register({ key, control: set, focusable: options.focusable, error, wrapper: set, partControl: options.partControl });
    return { set, errorId: error.id };
  }

  clear(): void {
    this.alertArea.replaceChildren();
    for (const f of this.fields.values()) {
      f.error.textContent = "";
      f.control.removeAttribute("aria-invalid");
      f.wrapper.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
      f.wrapper.classList.remove("has-error");
    }
  }

  /** Shows violations beside their fields; the rest in the alert. Focuses the first. */
  show(violations: FieldViolation[], fallback?: string): void {
    const unplaced: string[] = [];
    let first: HTMLElement | undefined;
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
      const part = target.index === undefined ? undefined : f.partControl?.(target.index, target.part);
      part?.setAttribute("aria-invalid", "true");
      first ??= part ?? f.focusable;
    }
    const messages = unplaced.length ? unplaced : fallback && !first ? [fallback] : [];
    if (messages.length) this.alertArea.replaceChildren(...messages.map((m) => h("p", { text: m })));
    else if (first) this.alertArea.replaceChildren(h("p", { text: "Some fields need attention: see the messages beside them." }));
    if (first) first.focus();
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

