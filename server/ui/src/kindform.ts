// Forms built from settings tables (settings.ts): each setting's editor (a
// labelled control, or rows of a list of messages with Add and Remove), the
// layout (short fields side by side, sections in their own fieldset), and
// KindSettings, the kind selector with one fieldset per kind that the job
// form and the channel form are made of.

import { h } from "./dom";
import type { Control, FormFields } from "./fields";
import {
  type KindSpec,
  type Setting,
  type SettingProblem,
  type SettingType,
  protoPath,
  setValueAt,
  settingKey,
  settingText,
  settingValue,
  valueAt,
} from "./settings";
import type { FieldViolation } from "./types";

/** Edits one setting in a form. */
interface SettingEditor {
  /** The field's element: a labelled control, or a fieldset of rows. */
  element: HTMLElement;
  /** The JSON value it holds (undefined: left out); problems go to `problems`. */
  read(problems: SettingProblem[]): unknown;
}

function settingEditor(fields: FormFields, key: string, setting: Setting, stored: unknown): SettingEditor {
  if (setting.type === "rows") return rowsEditor(fields, key, setting, stored);
  if (setting.type === "checkbox") {
    const box = h("input", { type: "checkbox", checked: Boolean(stored) });
    return { element: fields.field(key, setting.label, box, setting.hint), read: () => box.checked };
  }
  const text = settingText(setting, stored);
  let control: Control;
  if (["headers", "list", "multiline", "body"].includes(setting.type)) {
    control = h("textarea", { rows: setting.type === "multiline" || setting.type === "body" ? 3 : 2, spellcheck: "false" });
    control.value = text;
  } else if (setting.type === "select") {
    control = h("select", {}, (setting.options ?? []).map(([value, label]) => h("option", { value, text: label })));
    control.value = text;
  } else {
    control = h("input", {
      type: setting.type === "secret" ? "password" : setting.type === "url" ? "url" : "text",
      value: text,
      autocomplete: setting.type === "secret" ? "new-password" : "off",
      spellcheck: "false",
      inputmode: setting.type === "number" ? "numeric" : setting.type === "decimal" ? "decimal" : null,
    });
  }
  return { element: fields.field(key, setting.label, control, setting.hint), read: (problems) => settingValue(setting, control.value, problems) };
}

/** A list of messages as rows of inputs, with Add and Remove buttons. */
function rowsEditor(fields: FormFields, key: string, setting: Setting, stored: unknown): SettingEditor {
  const columns = setting.columns ?? [];
  const item = setting.item ?? "row";
  const Item = item.charAt(0).toUpperCase() + item.slice(1);
  const list = h("div", { class: "rows-list" });
  const add = h("button", { type: "button", class: "small", text: `Add ${item}` });
  const rows: { el: HTMLElement; controls: Control[]; remove: HTMLButtonElement }[] = [];
  const group = fields.group(key, setting.label, [list, add], {
    hint: setting.hint,
    focusable: add,
    partControl: (index, part) => {
      const row = rows[index];
      const at = columns.findIndex((c) => protoPath(c.key) === part);
      return row ? (row.controls[Math.max(at, 0)] ?? row.el) : undefined;
    },
  });
  const renumber = () =>
    rows.forEach((row, i) => {
      row.controls.forEach((control, j) => control.setAttribute("aria-label", `${Item} ${i + 1} ${columns[j]?.label.toLowerCase() ?? ""}`));
      row.remove.setAttribute("aria-label", `Remove ${item} ${i + 1}`);
    });
  const addRow = (values: Record<string, unknown>) => {
    const controls = columns.map((column): Control => {
      const stored = values[column.key];
      if (column.type === "select") {
        const select = h("select", {}, (column.options ?? []).map(([value, label]) => h("option", { value, text: label })));
        select.value = settingText({ key: column.key, label: column.label, type: "select", options: column.options }, stored);
        return select;
      }
      return h("input", { type: "text", value: typeof stored === "string" ? stored : "", placeholder: column.label, autocomplete: "off", spellcheck: "false" });
    });
    controls.forEach((control) => control.setAttribute("aria-describedby", group.errorId));
    const remove = h("button", { type: "button", class: "small", text: "Remove" });
    const row = { el: h("div", { class: "rows-item" }, controls, remove), controls, remove };
    remove.addEventListener("click", () => {
      rows.splice(rows.indexOf(row), 1);
      row.el.remove();
      renumber();
      add.focus();
    });
    rows.push(row);
    list.append(row.el);
    renumber();
    return row;
  };
  (Array.isArray(stored) ? stored : []).forEach((values) => addRow(values ?? {}));
  add.addEventListener("click", () => addRow({}).controls[0]?.focus());
  return {
    element: group.set,
    read: () =>
      rows
        .map((row) => {
          const message: Record<string, unknown> = {};
          row.controls.forEach((control, j) => {
            const value = control.value.trim();
            if (value) message[columns[j]?.key ?? ""] = value;
          });
          return message;
        })
        // A row whose text columns are all empty is no row.
        .filter((message) => columns.some((c) => c.type === "text" && message[c.key])),
  };
}

const SHORT: SettingType[] = ["text", "secret", "number", "decimal", "duration", "select", "statusRanges"];

/** The editors' elements laid out: short ones side by side, sections in their own fieldset. */
function layout(settings: Setting[], elements: HTMLElement[]): HTMLElement[] {
  const out: HTMLElement[] = [];
  let section: { name: string; el: HTMLElement } | undefined;
  let row: HTMLElement | undefined;
  settings.forEach((setting, i) => {
    const el = elements[i];
    if (!el) return;
    if ((setting.section ?? "") !== (section?.name ?? "")) {
      section = setting.section ? { name: setting.section, el: h("fieldset", { class: "section" }, h("legend", { text: setting.section })) } : undefined;
      if (section) out.push(section.el);
      row = undefined;
    }
    const push = (child: HTMLElement) => (section ? section.el.append(child) : out.push(child));
    if (!SHORT.includes(setting.type)) {
      row = undefined;
      push(el);
      return;
    }
    if (!row) {
      row = h("div", { class: "row" });
      push(row);
    }
    row.append(el);
  });
  return out;
}

/**
 * A selector of kinds and one fieldset per kind, built from the kinds'
 * settings tables; only the chosen kind's fieldset shows, and `read`
 * returns the chosen kind's message. Each field is registered with
 * `fields` under settingKey(kind, setting), where locateInKinds puts the
 * server's violations.
 */
export class KindSettings<K extends string> {
  readonly selector: HTMLSelectElement;
  /** The chosen kind's description. */
  readonly about: HTMLElement;
  readonly sets: HTMLFieldSetElement[];
  private readonly editors = new Map<K, { setting: Setting; editor: SettingEditor }[]>();

  /** `stored(kind)` is the stored message of that kind ({} when it is another); `legend` names a kind's fieldset. */
  constructor(
    fields: FormFields,
    private readonly kinds: KindSpec<K>[],
    initial: K,
    stored: (kind: K) => unknown,
    legend: (spec: KindSpec<K>) => string,
  ) {
    this.selector = h("select", {}, kinds.map((spec) => h("option", { value: spec.kind, text: spec.label })));
    this.selector.value = initial;
    this.about = h("p", { class: "hint kind-about" });
    this.sets = kinds.map((spec) => {
      const message = stored(spec.kind) ?? {};
      const editors = spec.settings.map((setting) => ({
        setting,
        editor: settingEditor(fields, settingKey(spec.kind, setting), setting, valueAt(message, setting.key)),
      }));
      this.editors.set(spec.kind, editors);
      const elements = editors.map(({ editor }) => editor.element);
      return h("fieldset", { class: "check-fields", "data-kind": spec.kind }, h("legend", { text: legend(spec) }), layout(spec.settings, elements));
    });
    this.selector.addEventListener("change", () => this.show());
    this.show();
  }

  get kind(): K {
    return this.selector.value as K;
  }

  private show(): void {
    this.sets.forEach((set, i) => (set.hidden = this.kinds[i]?.kind !== this.kind));
    this.about.textContent = this.kinds.find((spec) => spec.kind === this.kind)?.about ?? "";
  }

  /** The chosen kind's message; problems go to `violations` with paths relative to the resource ("dns.name"). */
  read(violations: FieldViolation[]): Record<string, unknown> {
    const problems: SettingProblem[] = [];
    const message: Record<string, unknown> = {};
    const editors = this.editors.get(this.kind) ?? [];
    const values = editors.map(({ setting, editor }) => ({ setting, value: editor.read(problems) }));
    const omitted = values.filter(({ setting, value }) => setting.omitsMessage && !value).map(({ setting }) => setting.key.replace(/\.[^.]+$/, "."));
    for (const { setting, value } of values) {
      if (!omitted.some((prefix) => setting.key.startsWith(prefix))) setValueAt(message, setting.key, value);
    }
    violations.push(...problems.map((p) => ({ field: `${protoPath(this.kind)}.${p.path}`, description: p.description })));
    return message;
  }
}

