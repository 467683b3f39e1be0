// The token prompt (a modal dialog the API client opens on any 401) and the
// header's sign-in / sign-out buttons. The token lives in sessionStorage
// under "monitor.token": it is gone when the tab closes.

import { askForToken, getToken, installTokenPrompt, isAuthRequired, onTokenChange, setToken } from "./api";
import { showDialog } from "./dialogs";
import { alerts, h, uid } from "./dom";

function tokenDialog(reason: string): Promise<boolean> {
  return new Promise((resolve) => {
    const titleId = uid("token-title");
    const reasonId = uid("token-reason");
    const inputId = uid("token-input");
    const errorId = uid("token-error");
    let entered = false;
    const input = h("input", {
      id: inputId,
      name: "token",
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      "aria-describedby": `${reasonId} ${errorId}`,
    });
    const error = h("p", { id: errorId, class: "field-error" });
    const cancel = h("button", { type: "button", text: "Cancel" });
    const form = h(
      "form",
      { method: "dialog", novalidate: true },
      h("h2", { id: titleId, text: "Sign in" }),
      h("p", { id: reasonId, text: `${reason} Enter an API token (it is kept only for this tab).`.trim() }),
      h("div", { class: "field" }, h("label", { for: inputId, text: "API token" }), input, error),
      h("div", { class: "dialog-actions" }, cancel, h("button", { type: "submit", class: "primary", text: "Sign in" })),
    );
    const dialog = h("dialog", { class: "dialog dialog-small", "aria-labelledby": titleId, "aria-describedby": reasonId }, form);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) {
        error.textContent = "Enter a token.";
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      setToken(token);
      entered = true;
      dialog.close();
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => resolve(entered));
    showDialog(dialog);
    input.focus();
  });
}

/** Wires the prompt into the API client and the header buttons; `refresh` reloads the current page. */
export function setupAuth(refresh: () => void): void {
  installTokenPrompt(tokenDialog);
  const signIn = document.getElementById("sign-in");
  const signOut = document.getElementById("sign-out");
  const update = () => {
    const hasToken = Boolean(getToken());
    signOut?.toggleAttribute("hidden", !hasToken);
    // "Sign in" only where the server wants a token: an open server needs none.
    signIn?.toggleAttribute("hidden", hasToken || !isAuthRequired());
  };
  signIn?.addEventListener("click", async () => {
    if (await askForToken("")) {
      alerts.clearAll();
      refresh();
    }
  });
  signOut?.addEventListener("click", () => {
    setToken(null);
    alerts.clearAll();
    alerts.show("Signed out: the token was removed from this tab.", { kind: "info", key: "auth" });
    refresh();
  });
  onTokenChange(update);
  update();
}
