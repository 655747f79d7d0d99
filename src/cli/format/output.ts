// docker's formatter.Context for list commands (ps, images, volume ls, …):
//   no --format        the command's default table ("table {{.ID}}\t{{.Image}}…")
//   --format table     the default table too; "table <tmpl>" a table with headers
//   --format json      one {{json .}} per row
//   --format <tmpl>    <tmpl> per row, no header, no alignment
//   -q                 the command's quiet template (usually {{.ID}})
// `\t` and `\n` typed literally in a format are turned into tab and newline, as docker does;
// tables go through tabwriter with docker's settings (minwidth 10, padding 3).
import { DOCKER_TABLE, tabwrite } from './table.ts';
import { Template, TemplateError } from './template.ts';

export interface ListFormat {
  /** The user's --format ('' or undefined = default). */
  format?: string;
  quiet?: boolean;
  /** e.g. "table {{.ID}}\t{{.Image}}\t{{.Command}}". */
  defaultTable: string;
  /** Used with -q; default "{{.ID}}". */
  quietFormat?: string;
  /** Column headers by field name: {ID: "CONTAINER ID", …}; fields without one print their name upper-cased. */
  headers: Record<string, string>;
}

/** The format string after docker's preFormat: table detection and escape replacement. */
export function prepareFormat(format: string): { table: boolean; template: string } {
  let table = false;
  let f = format;
  if (f.startsWith('table')) {
    table = true;
    f = f.slice('table'.length);
  } else if (f === 'json') {
    f = '{{json .}}';
  }
  // docker trims spaces only (strings.Trim(f, " ")): a format's own newlines stay.
  f = f.replace(/^ +| +$/g, '').replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return { table, template: f };
}

/** Parses a user's template, prefixing errors as the docker CLI does. */
export function parseTemplate(text: string): Template {
  try {
    return Template.parse(text);
  } catch (e) {
    if (e instanceof TemplateError) throw new TemplateError(`template parsing error: ${e.message}`);
    throw e;
  }
}

export function renderList<T>(rows: T[], spec: ListFormat): string {
  let format = spec.quiet ? (spec.quietFormat ?? '{{.ID}}') : (spec.format || spec.defaultTable);
  if (!spec.quiet && format.trim() === 'table') format = spec.defaultTable;
  const { table, template } = prepareFormat(format);
  const tmpl = parseTemplate(template);
  let body = '';
  for (const row of rows) body += `${tmpl.execute(row)}\n`;
  if (!table) return body;
  // Headers: the same template run over a map of header names, with docker's header functions.
  const headerData = new Proxy(spec.headers, {
    get: (target, key) => (typeof key === 'string' ? (target[key] ?? key.toUpperCase()) : undefined),
    has: () => true,
    getOwnPropertyDescriptor: (target, key) => ({ configurable: true, enumerable: true, value: typeof key === 'string' ? (target[key] ?? key.toUpperCase()) : undefined }),
  });
  const header = tmpl.execute(headerData, { header: true });
  return tabwrite(`${header}\n${body}`, DOCKER_TABLE);
}

/** `--format` for a single object (version, info, inspect): the template once, plus a newline. */
export function renderObject(value: unknown, format: string): string {
  const f = format === 'json' ? '{{json .}}' : format;
  return `${parseTemplate(f).execute(value)}\n`;
}

/** docker's stringid.TruncateID: "sha256:" dropped, 12 hex digits (the IMAGE ID / CONTAINER ID columns). */
export function shortId(id: string): string {
  const i = id.indexOf(':');
  return (i >= 0 ? id.slice(i + 1) : id).slice(0, 12);
}
