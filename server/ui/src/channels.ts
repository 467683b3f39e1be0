// The notification channels page: the channels (kind, enabled, health and
// last delivery attempt), create / edit / delete, and Test, which sends the
// test message through TestNotificationChannel and shows what the far end
// answered. Re-read every 5 s while the tab is visible.

import { describe, notifications } from "./api";
import { kindOf, kindSpec } from "./channelkinds";
import { openChannelForm } from "./channelform";
import { attemptText, healthBadge, outcomeText } from "./deliveries";
import { confirmDialog } from "./dialogs";
import { alerts, h, replaceChildren, setText } from "./dom";
import { humanDuration } from "./format";
import { refreshTimes, timeEl } from "./incidents";
import { Poller } from "./poller";
import type { ChannelTestResult, NotificationChannel } from "./types";
import type { View } from "./view";

const REFRESH_MS = 5000;

export class ChannelsView implements View {
  readonly title = "Channels";
  readonly element: HTMLElement;
  private readonly rows: HTMLTableSectionElement;
  private readonly count: HTMLElement;
  private readonly testResult: HTMLElement;
  private drawn = "";
  private readonly poller = new Poller((current) => this.load(current), REFRESH_MS);

  constructor() {
    this.rows = h("tbody", {});
    this.count = h("p", { class: "range", "aria-live": "polite", text: "Loading channels…" });
    this.testResult = h("section", { class: "card test-result", "aria-labelledby": "test-result-title", "aria-live": "polite", hidden: true });
    const create = h("button", { type: "button", class: "primary", text: "New channel" });
    create.addEventListener("click", () => void this.onCreate());
    this.element = h(
      "section",
      { class: "page channels-page", "aria-labelledby": "channels-title" },
      h("div", { class: "page-head" }, h("h1", { id: "channels-title", tabindex: -1, text: "Channels" }), h("div", { class: "buttons" }, create)),
      h("p", { class: "hint", text: "Where alert rules send their incidents. Secrets are write-only: they show as ***." }),
      this.count,
      h(
        "div",
        { class: "table-wrap", role: "region", "aria-label": "Notification channels", tabindex: 0 },
        h(
          "table",
          { class: "channels-table" },
          h("caption", { class: "visually-hidden", text: "Notification channels" }),
          h("thead", {}, h("tr", {}, ["Name", "Kind", "Enabled", "Group wait", "Health", "Last delivery", ""].map((c) => h("th", { scope: "col", text: c })))),
          this.rows,
        ),
      ),
      this.testResult,
    );
  }

  mount(): void {
    this.poller.start();
  }

  destroy(): void {
    this.poller.stop();
  }

  private async load(current: () => boolean): Promise<void> {
    try {
      const listed = await notifications.channels();
      if (!current()) return;
      this.render(listed.channels ?? []);
      alerts.clear("channels");
    } catch (err) {
      if (!current()) return;
      alerts.show(`Could not load the channels: ${describe(err)}`, { key: "channels" });
    }
  }

  private render(channels: NotificationChannel[]): void {
    setText(this.count, channels.length ? `${channels.length} channel${channels.length === 1 ? "" : "s"}` : "No channels: incidents notify nobody.");
    const key = JSON.stringify(channels);
    if (key === this.drawn) {
      refreshTimes(this.rows);
      return;
    }
    this.drawn = key;
    this.rows.replaceChildren(
      ...channels.map((channel) => {
        const name = channel.name ?? "";
        const kind = kindOf(channel);
        const test = h("button", { type: "button", class: "small", "aria-label": `Test channel ${name}`, text: "Test" });
        const edit = h("button", { type: "button", class: "small", "aria-label": `Edit channel ${name}`, text: "Edit" });
        const remove = h("button", { type: "button", class: "small danger-outline", "aria-label": `Delete channel ${name}`, text: "Delete" });
        test.addEventListener("click", () => void this.onTest(channel, test));
        edit.addEventListener("click", () => void this.onEdit(channel));
        remove.addEventListener("click", () => void this.onDelete(channel));
        const last = channel.lastAttempt;
        return h(
          "tr",
          { "data-id": channel.id ?? "", "data-name": name },
          h("th", { scope: "row", class: "name", text: name }),
          h("td", { "data-col": "kind", text: kind ? (kindSpec(kind)?.label ?? kind) : "?" }),
          h("td", { "data-col": "enabled", text: channel.enabled === false ? "no" : "yes" }),
          h("td", { text: humanDuration(channel.groupWait) || "0s" }),
          h("td", {}, healthBadge(channel)),
          h(
            "td",
            { "data-col": "last-delivery" },
            last ? h("span", {}, timeEl(last.time), ` ${outcomeText(last.outcome)}: ${attemptText(last)}`) : "—",
          ),
          h("td", { class: "actions" }, h("div", { class: "buttons" }, test, edit, remove)),
        );
      }),
    );
  }

  private showTestResult(channel: NotificationChannel, result: ChannelTestResult): void {
    const delivered = Boolean(result.delivered);
    replaceChildren(
      this.testResult,
      h("h2", { id: "test-result-title", text: `Test of ${channel.name ?? ""}` }),
      h(
        "dl",
        { class: "facts" },
        (
          [
            ["Delivered", h("span", { class: `badge ${delivered ? "health-ok" : "health-bad"}`, "data-field": "test-delivered", text: delivered ? "yes" : "no" })],
            ["Status", h("span", { "data-field": "test-status", text: result.statusCode ? String(result.statusCode) : "no answer" })],
            ["Answer", h("pre", { class: "reply", "data-field": "test-body", text: result.bodyExcerpt || "(empty)" })],
            ["Error", h("span", { "data-field": "test-error", text: result.error || "—" })],
            ["Took", h("span", { "data-field": "test-duration", text: humanDuration(result.duration) || "—" })],
          ] as [string, HTMLElement][]
        ).map(([term, value]) => h("div", {}, h("dt", { text: term }), h("dd", {}, value))),
      ),
    );
    this.testResult.hidden = false;
  }

  private async onTest(channel: NotificationChannel, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    button.textContent = "Testing…";
    try {
      const response = await notifications.testChannel(channel.id ?? "");
      this.showTestResult(channel, response.result ?? {});
    } catch (err) {
      alerts.show(`Could not test channel ${channel.name ?? ""}: ${describe(err)}`, { key: "action" });
    } finally {
      button.disabled = false;
      button.textContent = "Test";
    }
  }

  private async onCreate(): Promise<void> {
    const created = await openChannelForm();
    if (created) {
      alerts.show(`Created channel ${created.name ?? ""}.`, { kind: "info", key: "action" });
      this.poller.now();
    }
  }

  private async onEdit(channel: NotificationChannel): Promise<void> {
    let latest = channel;
    try {
      latest = (await notifications.channel(channel.id ?? "")).channel ?? channel;
    } catch (err) {
      alerts.show(`Could not open channel ${channel.name ?? ""} for editing: ${describe(err)}`, { key: "action" });
      return;
    }
    const saved = await openChannelForm(latest);
    if (saved) {
      alerts.show(`Saved channel ${saved.name ?? ""} (version ${saved.version ?? "?"}).`, { kind: "info", key: "action" });
      this.poller.now();
    }
  }

  private async onDelete(channel: NotificationChannel): Promise<void> {
    const confirmed = await confirmDialog({
      title: `Delete channel ${channel.name ?? ""}?`,
      message: `The channel "${channel.name ?? channel.id}" is removed with its delivery log; deliveries pending to it are dropped, and rules naming it no longer reach it. This cannot be undone.`,
      confirmLabel: "Delete channel",
      danger: true,
    });
    if (!confirmed) return;
    try {
      await notifications.removeChannel(channel.id ?? "", channel.version);
      alerts.show(`Deleted channel ${channel.name ?? ""}.`, { kind: "info", key: "action" });
    } catch (err) {
      alerts.show(`Could not delete channel ${channel.name ?? ""}: ${describe(err)}`, { key: "action" });
    }
    this.poller.now();
  }
}
