// Modal dialogs on the native <dialog> element: showModal() keeps focus
// inside, Escape cancels, and focus returns to where it was on close.

import { h, uid } from "./dom";

/**
 * Opens `dialog` modally and removes it from the document when it closes,
 * returning focus to the element that had it.
 */
export function showDialog(dialog: HTMLDialogElement): void {
  const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  document.body.appendChild(dialog);
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (previous && previous.isConnected) previous.focus();
  });
  dialog.showModal();
}

/** Asks a yes/no question; resolves true only when the confirming button was pressed. */
export function confirmDialog(options: {
  title: string;
  message: string;
  confirmLabel: string;
  danger?: boolean;
}): Promise<boolean> {
  return new Promise((resolve) => {
    const titleId = uid("confirm-title");
    const messageId = uid("confirm-message");
    let confirmed = false;
    const cancel = h("button", { type: "button", text: "Cancel" });
    const confirm = h("button", {
      type: "button",
      class: options.danger ? "danger" : "primary",
      text: options.confirmLabel,
    });
    const dialog = h(
      "dialog",
      { class: "dialog dialog-small", "aria-labelledby": titleId, "aria-describedby": messageId },
      h("h2", { id: titleId, text: options.title }),
      h("p", { id: messageId, text: options.message }),
      h("div", { class: "dialog-actions" }, cancel, confirm),
    );
    cancel.addEventListener("click", () => dialog.close());
    confirm.addEventListener("click", () => {
      confirmed = true;
      dialog.close();
    });
    dialog.addEventListener("close", () => resolve(confirmed));
    showDialog(dialog);
    // The safe choice has focus: Enter does not delete by accident.
    cancel.focus();
  });
}
