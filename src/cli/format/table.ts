// Column alignment with Go's text/tabwriter semantics, which docker's tables come from:
// cells end at '\t'; the last cell of a line is not aligned; a column's width is fixed per
// "column block" (consecutive lines that have that cell), as max(cell width + padding, minwidth).
// docker's list commands use minwidth 10, padding 3 ("docker ps", "docker images"); `docker
// version` uses minwidth 20, padding 1.

export interface TabwriterOptions {
  minWidth: number;
  padding: number;
  padChar?: string;
}

export const DOCKER_TABLE: TabwriterOptions = { minWidth: 10, padding: 3 };
export const DOCKER_VERSION_TABLE: TabwriterOptions = { minWidth: 20, padding: 1 };

/** Display width: code points (as tabwriter counts runes). */
function width(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Aligns `text` (lines of tab-terminated cells) as tabwriter would and returns the result. */
export function tabwrite(text: string, opts: TabwriterOptions): string {
  const pad = opts.padChar ?? ' ';
  const endsWithNewline = text.endsWith('\n');
  const lines = (endsWithNewline ? text.slice(0, -1) : text).split('\n').map((l) => l.split('\t'));
  const out: string[] = new Array(lines.length);
  const widths: number[] = [];

  // Go's format(): recursively find column blocks and print lines once all their widths are known.
  const writeLines = (from: number, to: number): void => {
    for (let i = from; i < to; i++) {
      const cells = lines[i];
      let s = '';
      cells.forEach((c, j) => {
        s += c;
        if (j < cells.length - 1 && j < widths.length) s += pad.repeat(Math.max(0, widths[j] - width(c)));
      });
      out[i] = s;
    }
  };
  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    let start = line0;
    for (let i = line0; i < line1; i++) {
      if (column >= lines[i].length - 1) continue;
      writeLines(start, i);
      start = i;
      let w = opts.minWidth;
      for (; i < line1; i++) {
        if (column >= lines[i].length - 1) break;
        w = Math.max(w, width(lines[i][column]) + opts.padding);
      }
      widths.push(w);
      format(start, i);
      widths.pop();
      start = i;
      i--; // the outer loop's i++ revisits line i, which ended the block
    }
    writeLines(start, line1);
  };
  format(0, lines.length);
  return out.join('\n') + (endsWithNewline ? '\n' : '');
}
