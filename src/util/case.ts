/**
 * The one case converter: option keys are camelCase in the Node API (`topK`), snake_case in sweep files
 * (`top_k`) and kebab-case on the command line (`--top-k`).
 */

/** The words of a camelCase, snake_case or kebab-case key, lower case (`topK` -> ['top', 'k']). */
export function keyWords(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[\s_-]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
}

/** `top_k`, `top-k` or `topK` -> `topK`. */
export function toCamel(key: string): string {
  return keyWords(key)
    .map((w, i) => (i === 0 ? w : w[0].toUpperCase() + w.slice(1)))
    .join('');
}

/** `topK` -> `top_k`. */
export function toSnake(key: string): string {
  return keyWords(key).join('_');
}

/** `topK` -> `top-k`. */
export function toKebab(key: string): string {
  return keyWords(key).join('-');
}

/** Converts the keys of an object, leaving out undefined values. */
export function convertKeys(o: Record<string, unknown>, convert: (key: string) => string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[convert(k)] = v;
  return out;
}
