// Docker's `filters` query parameter (filters.Args): {"key": {"value": true, …}, …}, or the
// pre-1.22 form {"key": ["value", …]}. The CLI's `--filter key=value` builds it; every list
// endpoint and /events reads it with the same matching rules, implemented once here.

export class InvalidFilterError extends Error {
  override name = 'InvalidFilterError';
}

export class FilterArgs {
  private readonly fields = new Map<string, Set<string>>();

  /** Parses the JSON text of a `filters` parameter ('' = no filters). */
  static fromJSON(text: string | null | undefined): FilterArgs {
    const args = new FilterArgs();
    if (!text) return args;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new InvalidFilterError(`invalid filter: ${(e as Error).message}`);
    }
    if (parsed === null) return args;
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidFilterError('invalid filter: expected a JSON object of {"key": {"value": true}}');
    for (const [key, values] of Object.entries(parsed as Record<string, unknown>)) {
      if (Array.isArray(values)) {
        for (const v of values) {
          if (typeof v !== 'string') throw new InvalidFilterError(`invalid filter: values of "${key}" must be strings`);
          args.add(key, v);
        }
      } else if (values !== null && typeof values === 'object') {
        for (const [v, on] of Object.entries(values as Record<string, unknown>)) {
          if (typeof on !== 'boolean') throw new InvalidFilterError(`invalid filter: "${key}": {"${v}": …} must be true or false`);
          if (on) args.add(key, v);
        }
      } else {
        throw new InvalidFilterError(`invalid filter: "${key}" must map to an object or an array`);
      }
    }
    return args;
  }

  /** `key=value` strings as the CLI's --filter takes them. */
  static fromPairs(pairs: string[]): FilterArgs {
    const args = new FilterArgs();
    for (const p of pairs) {
      const eq = p.indexOf('=');
      if (eq <= 0) throw new InvalidFilterError(`bad format of filter (expected name=value)`);
      args.add(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim());
    }
    return args;
  }

  add(key: string, value: string): this {
    let set = this.fields.get(key);
    if (!set) this.fields.set(key, (set = new Set()));
    set.add(value);
    return this;
  }

  get(key: string): string[] {
    return [...(this.fields.get(key) ?? [])];
  }

  keys(): string[] {
    return [...this.fields.keys()];
  }

  contains(key: string): boolean {
    return this.fields.has(key);
  }

  get size(): number {
    return this.fields.size;
  }

  /** Refuses keys an endpoint does not know, with docker's message. */
  validate(accepted: Iterable<string>): void {
    const ok = new Set(accepted);
    for (const key of this.fields.keys()) {
      if (!ok.has(key)) throw new InvalidFilterError(`invalid filter '${key}'`);
    }
  }

  /** True when the key is absent, or `source` is one of its values. */
  exactMatch(key: string, source: string): boolean {
    const set = this.fields.get(key);
    return !set || set.size === 0 || set.has(source);
  }

  /** True when the key is absent, or `source` equals or starts with one of its values. */
  fuzzyMatch(key: string, source: string): boolean {
    const set = this.fields.get(key);
    if (!set || set.size === 0 || set.has(source)) return true;
    for (const v of set) if (source.startsWith(v)) return true;
    return false;
  }

  /** Label-style match: every value ("k" or "k=v") must hold in `attrs`. */
  matchKVList(key: string, attrs: Record<string, string> | undefined): boolean {
    const set = this.fields.get(key);
    if (!set || set.size === 0) return true;
    if (!attrs) return false;
    for (const v of set) {
      const eq = v.indexOf('=');
      if (eq < 0) {
        if (!Object.hasOwn(attrs, v)) return false;
      } else if (attrs[v.slice(0, eq)] !== v.slice(eq + 1)) {
        return false;
      }
    }
    return true;
  }

  /** A boolean filter (dangling=true): undefined when absent; refuses anything but true/false/1/0. */
  boolValue(key: string): boolean | undefined {
    const values = this.get(key);
    if (values.length === 0) return undefined;
    const norm = values.map((v) => v.toLowerCase());
    for (const v of norm) {
      if (!['true', 'false', '1', '0'].includes(v)) throw new InvalidFilterError(`invalid filter '${key}=${v}'`);
    }
    return norm.some((v) => v === 'true' || v === '1');
  }

  /** The JSON the API expects (new form), or '' when empty. */
  encode(): string {
    if (this.fields.size === 0) return '';
    const out: Record<string, Record<string, boolean>> = {};
    for (const [k, set] of this.fields) {
      out[k] = {};
      for (const v of set) out[k][v] = true;
    }
    return JSON.stringify(out);
  }
}
