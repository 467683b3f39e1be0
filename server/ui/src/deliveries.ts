// How deliveries, attempts and channel health read: shared by the channels
// page (health badge, last delivery) and the incident page (its
// notifications' deliveries, each with its attempts).

import { h } from "./dom";
import { humanDuration } from "./format";
import type { DeliveryAttempt, DeliveryOutcome, DeliveryState, NotificationChannel, NotificationDelivery } from "./types";

/** "delivered", "retry", "given up". */
export function outcomeText(outcome: DeliveryOutcome | undefined): string {
  return (outcome ?? "").replace("DELIVERY_OUTCOME_", "").replace("UNSPECIFIED", "").replace(/_/g, " ").toLowerCase();
}

/** "pending", "delivered", "given up". */
export function deliveryStateText(state: DeliveryState | undefined): string {
  return (state ?? "").replace("DELIVERY_STATE_", "").replace("UNSPECIFIED", "").replace(/_/g, " ").toLowerCase();
}

/** "HTTP 500 · HTTP 500 · 12ms", what one attempt saw. */
export function attemptText(attempt: DeliveryAttempt): string {
  return [
    attempt.httpStatus ? `HTTP ${attempt.httpStatus}` : "no answer",
    attempt.error || "",
    attempt.duration ? humanDuration(attempt.duration) : "",
  ]
    .filter(Boolean)
    .join(" · ");
}

/** The state of a delivery as a badge (text and colour). */
export function deliveryStateBadge(delivery: NotificationDelivery): HTMLElement {
  const state = deliveryStateText(delivery.state);
  return h("span", { class: `badge delivery-${state.replace(" ", "-")}`, "data-col": "delivery-state", text: state });
}

/** "healthy", "unhealthy", or "no deliveries yet" as a badge. */
export function healthBadge(channel: NotificationChannel): HTMLElement {
  if (!channel.lastAttempt) return h("span", { class: "badge", "data-col": "health", text: "no deliveries yet" });
  const failures = channel.consecutiveFailures ?? 0;
  if (channel.healthy)
    return h("span", {
      class: "badge health-ok",
      "data-col": "health",
      text: failures ? `healthy (${failures} failed)` : "healthy",
    });
  return h("span", {
    class: "badge health-bad",
    "data-col": "health",
    text: `unhealthy (${failures} failed in a row)`,
  });
}
