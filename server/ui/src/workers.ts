// The workers page: GET /v1/workers as a table, refreshed every 5 s while
// the tab is visible.

import { api, describe } from "./api";
import { alerts, h, setText } from "./dom";
import { absoluteTime, relativeTime, sortedEntries, workerStateName } from "./format";
import { Poller } from "./poller";
import type { Worker } from "./types";
import type { View } from "./view";

const REFRESH_MS = 5000;

export class WorkersView implements View {
  readonly title = "Workers";
  readonly element: HTMLElement;
  private readonly tbody: HTMLTableSectionElement;
  private readonly count: HTMLElement;
  private readonly poller = new Poller((current) => this.load(current), REFRESH_MS);

  constructor() {
    this.tbody = h("tbody", {});
    this.count = h("p", { class: "range", "aria-live": "polite", text: "Loading workers…" });
    const columns = ["Id", "State", "Labels", "Version", "Capacity", "Assigned jobs", "Connected since", "Last heartbeat"];
    this.element = h(
      "section",
      { class: "page", "aria-labelledby": "workers-title" },
      h("div", { class: "page-head" }, h("h1", { id: "workers-title", tabindex: -1, text: "Workers" })),
      this.count,
      h(
        "div",
        { class: "table-wrap", role: "region", "aria-labelledby": "workers-caption", tabindex: 0 },
        h(
          "table",
          { class: "workers-table" },
          h("caption", { id: "workers-caption", class: "visually-hidden", text: "Probe workers" }),
          h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))),
          this.tbody,
        ),
      ),
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
      const response = await api.workers();
      if (!current()) return;
      this.render(response.workers ?? []);
      alerts.clear("workers");
    } catch (err) {
      if (!current()) return;
      alerts.show(`Could not load the workers: ${describe(err)}`, { key: "workers" });
    }
  }

  private render(workers: Worker[]): void {
    const connected = workers.filter((w) => w.state === "WORKER_STATE_CONNECTED").length;
    setText(
      this.count,
      workers.length ? `${workers.length} worker${workers.length === 1 ? "" : "s"}, ${connected} connected` : "No probe workers are known to this server.",
    );
    const time = (iso: string | undefined) =>
      iso ? h("time", { datetime: iso, title: absoluteTime(iso), text: relativeTime(iso) }) : "—";
    this.tbody.replaceChildren(
      ...workers.map((w) => {
        const state = workerStateName(w.state);
        return h(
          "tr",
          { "data-id": w.id ?? "" },
          h("th", { scope: "row", text: w.id ?? "" }),
          h("td", {}, h("span", { class: `badge worker-${state}`, text: state })),
          h(
            "td",
            {},
            sortedEntries(w.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(", ") || "—",
          ),
          h("td", { text: w.version ?? "" }),
          h("td", { class: "num", text: String(w.capacity ?? 0) }),
          h("td", { class: "num", "data-col": "assigned", text: w.assignedJobs ?? "0" }),
          h("td", {}, time(w.connectTime)),
          h("td", {}, time(w.lastHeartbeatTime)),
        );
      }),
    );
  }
}
