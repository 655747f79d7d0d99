// The lock between garbage collection and everything that adds content (pull, load, import,
// build). Writers hold it shared for their whole operation: between "blob committed" and "image
// record written" a blob is referenced by nothing, and a collector running in that window would
// delete it. The collector holds it exclusively, so it sees only finished operations.
//
// In-process only: one daemon owns a data root (the pid-file lock guarantees it), and CLI commands
// go through the daemon. Writers never wait for each other; a collector waits for the writers
// that are running, and writers that arrive while it waits queue behind it, so a stream of pulls
// cannot starve a prune.

export class GcLock {
  private readers = 0;
  private writer = false;
  private readonly waiting: Array<{ exclusive: boolean; wake: () => void }> = [];

  /** Runs `fn` while holding the lock shared (pull, load, import). */
  async shared<T>(fn: () => Promise<T> | T): Promise<T> {
    await this.acquire(false);
    try {
      return await fn();
    } finally {
      this.release(false);
    }
  }

  /** Runs `fn` while holding the lock exclusively (prune). */
  async exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    await this.acquire(true);
    try {
      return await fn();
    } finally {
      this.release(true);
    }
  }

  /** For tests and diagnostics. */
  get state(): { readers: number; writer: boolean; waiting: number } {
    return { readers: this.readers, writer: this.writer, waiting: this.waiting.length };
  }

  private canTake(exclusive: boolean): boolean {
    if (this.writer) return false;
    if (exclusive) return this.readers === 0;
    // A waiting collector goes first (see the header).
    return !this.waiting.some((w) => w.exclusive);
  }

  private acquire(exclusive: boolean): Promise<void> {
    if (this.waiting.length === 0 && this.canTake(exclusive)) {
      this.take(exclusive);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiting.push({ exclusive, wake: resolve });
    });
  }

  private take(exclusive: boolean): void {
    if (exclusive) this.writer = true;
    else this.readers++;
  }

  private release(exclusive: boolean): void {
    if (exclusive) this.writer = false;
    else this.readers--;
    // Wake in order: the first waiter, and if it is a reader, every reader up to the next writer.
    while (this.waiting.length) {
      const next = this.waiting[0]!;
      if (next.exclusive) {
        if (this.writer || this.readers > 0) return;
        this.waiting.shift();
        this.take(true);
        next.wake();
        return;
      }
      if (this.writer) return;
      this.waiting.shift();
      this.take(false);
      next.wake();
    }
  }
}

const locks = new WeakMap<object, GcLock>();

/** The lock for one content store (keyed by the store object: one per data root in a daemon). */
export function gcLockFor(store: object): GcLock {
  let l = locks.get(store);
  if (!l) {
    l = new GcLock();
    locks.set(store, l);
  }
  return l;
}
