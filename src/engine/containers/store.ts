// Container records in the metadata DB: one row per container, the record as JSON, the name
// unique (SQLite enforces what would otherwise be a race between two creates with one name).
import { registerMigrations, type MetadataDb } from '../db.ts';
import type { ContainerRecord } from './types.ts';

registerMigrations('containers', [
  {
    version: 1,
    name: 'containers (id, unique name, record JSON)',
    up: (db) => db.exec(`CREATE TABLE containers (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      created TEXT NOT NULL,
      record TEXT NOT NULL
    ) STRICT`),
  },
]);

export class ContainerStore {
  private readonly cache = new Map<string, ContainerRecord>();

  constructor(private readonly db: MetadataDb) {
    db.migrate('containers');
    for (const row of db.sqlite.prepare('SELECT record FROM containers ORDER BY created').all() as Array<{ record: string }>) {
      const rec = JSON.parse(row.record) as ContainerRecord;
      this.cache.set(rec.Id, rec);
    }
  }

  /** Inserts a new record; false when the name is taken (the caller reports the conflict). */
  insert(rec: ContainerRecord): boolean {
    try {
      this.db.sqlite.prepare('INSERT INTO containers (id, name, created, record) VALUES (?, ?, ?, ?)').run(rec.Id, rec.Name, rec.Created, JSON.stringify(rec));
    } catch (err) {
      if (String((err as Error).message).includes('UNIQUE')) return false;
      throw err;
    }
    this.cache.set(rec.Id, rec);
    return true;
  }

  /** Writes the record as it is now (after any change to it). */
  save(rec: ContainerRecord): void {
    this.db.sqlite.prepare('UPDATE containers SET name = ?, record = ? WHERE id = ?').run(rec.Name, JSON.stringify(rec), rec.Id);
  }

  remove(id: string): void {
    this.db.sqlite.prepare('DELETE FROM containers WHERE id = ?').run(id);
    this.cache.delete(id);
  }

  all(): ContainerRecord[] {
    return [...this.cache.values()];
  }

  byId(id: string): ContainerRecord | undefined {
    return this.cache.get(id);
  }

  byName(name: string): ContainerRecord | undefined {
    const n = name.startsWith('/') ? name : `/${name}`;
    for (const r of this.cache.values()) if (r.Name === n) return r;
    return undefined;
  }
}
