// The create / edit form of a notification channel, in a modal dialog,
// built from the per-kind table in channelkinds.ts. Create is POST
// /v1/notification-channels; edit is PATCH /v1/notification-channels/{id}
// with the name, enabled, group wait and the kind's settings, at the version
// the form was opened at. Secrets arrive as "***" and go back as "***"
// unless edited (the server keeps the stored value while the URL's origin
// stays the same). The server's field violations appear beside their fields.

import { ApiError, Code, describe, notifications } from "./api";
import { CHANNEL_KINDS, channelFieldOf, kindOf } from "./channelkinds";
import { showDialog } from "./dialogs";
import { h, uid } from "./dom";
import { FormFields } from "./fields";
import { humanDuration, parseDuration } from "./format";
import { KindSettings } from "./kindform";
import type { ChannelKind, FieldViolation, NotificationChannel } from "./types";

/** Opens the form; resolves with the saved channel, or undefined when closed without saving. */
export function openChannelForm(existing?: NotificationChannel): Promise<NotificationChannel | undefined> {
  return new Promise((resolve) => {
    let saved: NotificationChannel | undefined;
    const editing = Boolean(existing?.id);
    const channel = existing ?? {};
    const titleId = uid("channel-form-title");
    const fields = new FormFields("channel", channelFieldOf);
    const field = fields.field.bind(fields);

    const name = h("input", { type: "text", value: channel.name ?? "", maxlength: 128, autocomplete: "off" });
    const enabled = h("input", { type: "checkbox", checked: channel.enabled ?? true });
    const groupWait = h("input", { type: "text", value: channel.groupWait ? humanDuration(channel.groupWait) : "", autocomplete: "off" });
    const initialKind: ChannelKind = kindOf(channel) ?? "webhook";
    const kinds = new KindSettings(fields, CHANNEL_KINDS, initialKind, (k) => channel[k], (spec) => `${spec.label} settings`);
    // The kind cannot change (delete the channel and create another).
    kinds.selector.disabled = editing;

    const submitLabel = editing ? "Save channel" : "Create channel";
    const submit = h("button", { type: "submit", class: "primary", text: submitLabel });
    const cancel = h("button", { type: "button", text: "Cancel" });
    const form = h(
      "form",
      { novalidate: true, class: "channel-form" },
      h("h2", { id: titleId, text: editing ? `Edit channel ${channel.name ?? ""}`.trim() : "New channel" }),
      fields.alertArea,
      field("name", "Name", name),
      h(
        "div",
        { class: "row" },
        field("kind", "Kind", kinds.selector, editing ? "A channel's kind cannot change" : undefined),
        field("groupWait", "Group wait", groupWait, "Events within this long are sent as one message; 0s: each alone; empty: 10s"),
      ),
      kinds.about,
      kinds.sets,
      field("enabled", "Enabled", enabled),
      h("div", { class: "dialog-actions" }, cancel, submit),
    );
    const dialog = h("dialog", { class: "dialog dialog-form", "aria-labelledby": titleId }, form);

    /** The channel the form describes, or the problems found before asking the server. */
    const read = (): { channel: NotificationChannel } | { violations: FieldViolation[] } => {
      const violations: FieldViolation[] = [];
      const out: NotificationChannel = { name: name.value.trim(), enabled: enabled.checked };
      if (groupWait.value.trim()) {
        const parsed = parseDuration(groupWait.value);
        if (parsed) out.groupWait = parsed;
        else violations.push({ field: "group_wait", description: `"${groupWait.value}" is not a duration such as 0s, 10s or 1m` });
      }
      out[kinds.kind] = kinds.read(violations);
      return violations.length ? { violations } : { channel: out };
    };

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      fields.clear();
      const result = read();
      if ("violations" in result) {
        fields.show(result.violations);
        return;
      }
      submit.disabled = true;
      submit.textContent = editing ? "Saving…" : "Creating…";
      try {
        const response =
          editing && existing?.id
            ? await notifications.updateChannel(existing.id, { ...result.channel, version: existing.version ?? "0" })
            : await notifications.createChannel(result.channel);
        saved = response.channel;
        dialog.close();
      } catch (err) {
        if (err instanceof ApiError && err.violations.length) fields.show(err.violations, err.message);
        else if (err instanceof ApiError && err.code === Code.AlreadyExists) fields.show([{ field: "name", description: err.message }]);
        else if (err instanceof ApiError && err.code === Code.Aborted)
          fields.alert(`This channel was changed by someone else since the form was opened (${err.message}). Close the form and edit it again.`);
        else fields.alert(describe(err));
      } finally {
        submit.disabled = false;
        submit.textContent = submitLabel;
      }
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => resolve(saved));
    showDialog(dialog);
    name.focus();
  });
}
