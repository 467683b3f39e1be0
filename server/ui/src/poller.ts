// Reloading a page on a timer while its tab is visible.

/**
 * Runs `load` now and then every `periodMs` while the tab is visible (a
 * hidden tab pauses, showing it again loads at once). `load` is told, by
 * `current()`, whether its answers still matter: not once a newer load
 * started or the poller stopped. A load that answers `false` schedules no
 * next one (until the tab is shown again or `now` is called).
 */
export class Poller {
  private timer: number | undefined;
  private generation = 0;
  private stopped = false;
  private readonly onVisibility = () => {
    if (document.hidden) this.pause();
    else this.now();
  };

  constructor(
    private readonly load: (current: () => boolean) => Promise<boolean | void>,
    private readonly periodMs: number,
  ) {}

  start(): void {
    document.addEventListener("visibilitychange", this.onVisibility);
    this.now();
  }

  stop(): void {
    this.stopped = true;
    this.pause();
    document.removeEventListener("visibilitychange", this.onVisibility);
  }

  /** Whether `stop` was called. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Loads now, replacing any load in flight and the pending timer. */
  now(): void {
    void this.run();
  }

  private pause(): void {
    window.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async run(): Promise<void> {
    this.pause();
    const generation = ++this.generation;
    const current = () => !this.stopped && generation === this.generation;
    const again = await this.load(current);
    if (again !== false && current() && !document.hidden) this.timer = window.setTimeout(() => void this.run(), this.periodMs);
  }
}
