/** A row of aligned terminal output: a label and one value, or several values on consecutive lines. */
export type Row = readonly [label: string, value: string | readonly string[]];

/**
 * Lay out rows as `label  value`, the values aligned in one column; extra values of a row go on the following
 * lines in the same column.
 * @param rows - label and value(s)
 * @returns the lines
 */
export function layout(rows: readonly Row[]): string[] {
  const width = Math.max(0, ...rows.map(([label]) => label.length));
  const out: string[] = [];
  for (const [label, value] of rows) {
    const values = typeof value === 'string' ? [value] : value.length === 0 ? ['none'] : value;
    values.forEach((v, i) => out.push(`${(i === 0 ? label : '').padEnd(width)}  ${v}`.trimEnd()));
  }
  return out;
}

/**
 * Shorten a key id or hash to 16 hex characters for a person at a terminal; keep it whole otherwise.
 * @param hex - the full hex string
 * @param terminal - whether output goes to a terminal
 * @returns the id to print
 */
export function shortHex(hex: string, terminal: boolean): string {
  return terminal ? hex.slice(0, 16) : hex;
}

/**
 * A byte count for people: `41 B`, `12.3 KiB`, `4.0 MiB`.
 * @param bytes - the count
 * @returns the text
 */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * The usual `Examples:` block for a command's help.
 * @param lines - example command lines, each optionally followed by `  # comment`
 * @returns text for `addHelpText('after', ...)`
 */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}
