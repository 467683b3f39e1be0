// What the router needs of a page.

export interface View {
  /** The document title's first part. */
  readonly title: string;
  /** The page's root element, put into <main> by the router. */
  readonly element: HTMLElement;
  /** Called once the element is in the document: start loading and polling. */
  mount(): void;
  /** Stop timers, destroy charts. */
  destroy(): void;
}
