// The step cache: (parent image, step key) → the image that step produced.
//
// A step's key is a digest of everything that decides its result, as docker's classic builder
// compares container configs: the instruction with its expanded arguments (for COPY/ADD the
// sources' content checksum), the environment, user, working dir, shell and the build args in
// effect. A lookup whose image is gone (removed, pruned) is a miss and the row is dropped, so the
// cache never outlives the images it names and needs no GC of its own.
import { createHash } from 'node:crypto';
import { registerMigrations, type MetadataDb } from '../engine/db.ts';
import type { Digest } from '../image/types.ts';

registerMigrations('build', [
  {
    version: 1,
    name: 'build step cache (parent, key) → image',
    up: (db) => db.exec(`CREATE TABLE build_cache (
      parent TEXT NOT NULL,
      key TEXT NOT NULL,
      image TEXT NOT NULL,
      created TEXT NOT NULL,
      PRIMARY KEY (parent, key)
    ) STRICT;
    CREATE INDEX build_cache_image ON build_cache(image);`),
  },
]);

/** A stable digest of a JSON-able value (object keys sorted, so field order never matters). */
export function stepKey(value: unknown): string {
  const canon = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canon);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[k];
        if (x !== undefined) out[k] = canon(x);
      }
      return out;
    }
    return v;
  };
  return `sha256:${createHash('sha256').update(JSON.stringify(canon(value))).digest('hex')}`;
}

export class BuildCache {
  constructor(private readonly db: MetadataDb, private readonly exists: (image: Digest) => boolean) {
    db.migrate('build');
  }

  /** The image a step with this key produced on top of `parent` ('' for scratch), if it still exists. */
  lookup(parent: string, key: string): Digest | undefined {
    const row = this.db.sqlite.prepare('SELECT image FROM build_cache WHERE parent = ? AND key = ?').get(parent, key) as { image: string } | undefined;
    if (!row) return undefined;
    if (this.exists(row.image as Digest)) return row.image as Digest;
    this.db.sqlite.prepare('DELETE FROM build_cache WHERE parent = ? AND key = ?').run(parent, key);
    return undefined;
  }

  record(parent: string, key: string, image: Digest): void {
    this.db.sqlite.prepare('INSERT OR REPLACE INTO build_cache (parent, key, image, created) VALUES (?, ?, ?, ?)')
      .run(parent, key, image, new Date().toISOString());
  }

  /** Forgets every entry (docker builder prune); returns how many there were. */
  clear(): number {
    return this.db.sqlite.prepare('DELETE FROM build_cache').run().changes;
  }

  /** Drops entries that name removed images. */
  sweep(): number {
    let n = 0;
    const rows = this.db.sqlite.prepare('SELECT parent, key, image FROM build_cache').all() as Array<{ parent: string; key: string; image: string }>;
    for (const r of rows) {
      if (this.exists(r.image as Digest)) continue;
      this.db.sqlite.prepare('DELETE FROM build_cache WHERE parent = ? AND key = ?').run(r.parent, r.key);
      n++;
    }
    return n;
  }
}
