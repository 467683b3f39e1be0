// The dashboard's entry point: hash routing (#/jobs, #/jobs/<id>,
// #/incidents, #/incidents/<id>, #/alerting, #/channels, #/workers), the header (navigation, server name and version, sign in and
// out) and the stylesheets esbuild bundles into app.css.

import "uplot/dist/uPlot.min.css";
import "../style.css";

import { AlertingView } from "./alerting";
import { api, describe, onTokenChange } from "./api";
import { setupAuth } from "./auth";
import { ChannelsView } from "./channels";
import { alerts, setText } from "./dom";
import { IncidentView } from "./incident";
import { IncidentsView } from "./incidents";
import { JobView } from "./job";
import { JobsView } from "./jobs";
import type { View } from "./view";
import { WorkersView } from "./workers";

let current: View | undefined;
let firstRoute = true;

/** The view for a location hash; undefined for hashes that are not routes (in-page anchors). */
function viewFor(hash: string): View | undefined {
  const path = hash.replace(/^#/, "");
  if (path === "" || path === "/") return new JobsView();
  if (!path.startsWith("/")) return undefined;
  const [route = "", query = ""] = path.split("?", 2);
  const parts = route.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "jobs" && parts.length === 1) return new JobsView();
  if (parts[0] === "jobs" && parts.length === 2 && parts[1]) return new JobView(parts[1]);
  if (parts[0] === "incidents" && parts.length === 1) return new IncidentsView(new URLSearchParams(query).get("jobId") ?? "");
  if (parts[0] === "incidents" && parts.length === 2 && parts[1]) return new IncidentView(parts[1]);
  if (parts[0] === "alerting" && parts.length === 1) return new AlertingView();
  if (parts[0] === "channels" && parts.length === 1) return new ChannelsView();
  if (parts[0] === "workers" && parts.length === 1) return new WorkersView();
  return new JobsView();
}

function route(): void {
  const view = viewFor(location.hash);
  if (!view) return;
  current?.destroy();
  current = view;
  const main = document.getElementById("main");
  if (!main) return;
  main.replaceChildren(view.element);
  document.title = `${view.title} · monitor`;
  const section = ["workers", "incidents", "alerting", "channels"].find((name) => location.hash.startsWith(`#/${name}`)) ?? "jobs";
  document.querySelectorAll<HTMLAnchorElement>("[data-nav]").forEach((link) => {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  });
  view.mount();
  // After a navigation, move focus to the new page's heading (not on first load).
  if (!firstRoute) view.element.querySelector<HTMLElement>("h1")?.focus();
  firstRoute = false;
}

async function loadInfo(): Promise<void> {
  const target = document.getElementById("server-info");
  if (!target) return;
  try {
    const info = await api.info();
    setText(target, [info.name, info.version].filter(Boolean).join(" "));
    alerts.clear("info");
  } catch (err) {
    setText(target, "");
    alerts.show(`Could not read the server information: ${describe(err)}`, { key: "info" });
  }
}

function start(): void {
  setupAuth(() => {
    route();
    void loadInfo();
  });
  // The skip link jumps to <main> without touching the route in the hash.
  document.querySelector(".skip-link")?.addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("main")?.focus();
  });
  onTokenChange(() => {
    if (!document.getElementById("server-info")?.textContent) void loadInfo();
  });
  window.addEventListener("hashchange", route);
  route();
  void loadInfo();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
