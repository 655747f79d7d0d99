// The daemon's metadata database: one SQLite file, <data-root>/berth.db, written only by the daemon.
//
// WAL with synchronous=NORMAL: a commit is durable against a process crash (kill -9) at once and
// against power loss from the next checkpoint; readers never block the writer. Blobs and
// snapshots live on disk beside it; this file holds what refers to them.
//
// Schema changes are migrations, grouped by component ("engine", "images", "containers", …) so
// each module owns its tables and versions without a central list:
//
//   registerMigrations('images', [
//     { version: 1, name: 'images and tags', up: (db) => db.exec('CREATE TABLE …') },
//   ]);
//
// The daemon applies every registered component at start (MetadataDb.migrate()); a module that
// opens the DB later can call db.migrate('images', list) itself. Each migration runs in its own
// transaction together with its schema_migrations row, so a crash leaves it applied or not.
// A database written by a newer Berth (a version this build does not know) is refused rather
// than used with a schema the code does not understand.
import Database from 'better-sqlite3';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type SqliteDatabase = Database.Database;

export interface Migration {
  /** 1, 2, 3, … without gaps, per component. */
  version: number;
  /** Says what it does; stored for people reading the DB. */
  name: string;
  up: (db: SqliteDatabase) => void;
}

export class MetadataDbError extends Error {
  override name = 'MetadataDbError';
}

const registry = new Map<string, Migration[]>();

function checkList(component: string, migrations: Migration[]): Migration[] {
  if (!/^[a-z][a-z0-9_-]*$/.test(component)) throw new MetadataDbError(`invalid migration component name "${component}"`);
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  sorted.forEach((m, i) => {
    if (m.version !== i + 1) throw new MetadataDbError(`migrations of "${component}" must be numbered 1, 2, 3, … without gaps (found ${m.version} at position ${i + 1})`);
  });
  return sorted;
}

/** Declares a component's migrations (at module load); the daemon applies them at start. */
export function registerMigrations(component: string, migrations: Migration[]): void {
  registry.set(component, checkList(component, migrations));
}

/** The components registered so far (for tests and diagnostics). */
export function registeredComponents(): string[] {
  return [...registry.keys()];
}

// The daemon's own tables.
registerMigrations('engine', [
  {
    version: 1,
    name: 'meta key/value table (daemon ID)',
    up: (db) => db.exec('CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT'),
  },
]);

export class MetadataDb {
  readonly sqlite: SqliteDatabase;
  readonly path: string;

  private constructor(path: string, sqlite: SqliteDatabase) {
    this.path = path;
    this.sqlite = sqlite;
  }

  /** Opens (creating if needed) the database file and prepares the migrations table. */
  static open(path: string): MetadataDb {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    let sqlite: SqliteDatabase;
    try {
      sqlite = new Database(path);
      sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('synchronous = NORMAL');
      sqlite.pragma('foreign_keys = ON');
      // A second connection (e.g. a CLI tool reading the DB) must wait, not fail, during a commit.
      sqlite.pragma('busy_timeout = 5000');
      sqlite.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        component TEXT NOT NULL,
        version INTEGER NOT NULL,
        name TEXT NOT NULL,
        applied_at TEXT NOT NULL,
        PRIMARY KEY (component, version)
      ) STRICT`);
    } catch (e) {
      throw new MetadataDbError(`cannot open the metadata database ${path}: ${(e as Error).message}`);
    }
    try { chmodSync(path, 0o600); } catch { /* the data root is 0700 anyway */ }
    return new MetadataDb(path, sqlite);
  }

  /** The highest applied version of a component (0 if none). */
  version(component: string): number {
    const row = this.sqlite.prepare('SELECT MAX(version) AS v FROM schema_migrations WHERE component = ?').get(component) as { v: number | null };
    return row.v ?? 0;
  }

  /**
   * Applies pending migrations: of one component (with its list, or the registered one), or of
   * every registered component when called without arguments. Returns the migrations applied.
   */
  migrate(component?: string, migrations?: Migration[]): Array<{ component: string; version: number; name: string }> {
    const work: Array<[string, Migration[]]> = component === undefined
      ? [...registry.entries()].sort(([a], [b]) => (a === 'engine' ? -1 : b === 'engine' ? 1 : a.localeCompare(b)))
      : [[component, checkList(component, migrations ?? registry.get(component) ?? [])]];
    const applied: Array<{ component: string; version: number; name: string }> = [];
    const record = this.sqlite.prepare('INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)');
    for (const [comp, list] of work) {
      const current = this.version(comp);
      if (current > list.length) {
        throw new MetadataDbError(
          `${this.path} was written by a newer Berth: component "${comp}" is at schema version ${current}, ` +
          `this build knows up to ${list.length}; upgrade Berth or use another --data-root`);
      }
      for (const m of list.slice(current)) {
        const run = this.sqlite.transaction(() => {
          m.up(this.sqlite);
          record.run(comp, m.version, m.name, new Date().toISOString());
        });
        try {
          run();
        } catch (e) {
          throw new MetadataDbError(`migration ${comp} #${m.version} (${m.name}) failed on ${this.path}: ${(e as Error).message}`);
        }
        applied.push({ component: comp, version: m.version, name: m.name });
      }
    }
    return applied;
  }

  getMeta(key: string): string | undefined {
    const row = this.sqlite.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string): void {
    this.sqlite.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** Runs fn in one transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.sqlite.transaction(fn)();
  }

  close(): void {
    if (!this.sqlite.open) return;
    try {
      // Fold the WAL back so the file alone is a complete copy after a clean shutdown.
      this.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    } catch { /* still close */ }
    this.sqlite.close();
  }
}
