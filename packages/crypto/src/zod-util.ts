/**
 * Render a zod issue path as `a.b[2].c`.
 * @param path - the issue's path
 * @returns a readable field path (`$` for the root)
 */
export function zodIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out === '' ? '$' : out;
}
