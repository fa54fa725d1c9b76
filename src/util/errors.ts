import { toKebab } from './case.js';

/**
 * Errors that reach the user. A SpurmemError's message already names the file, row, key or flag and
 * what was expected; the CLI prints it without a stack trace and exits with status 1 (2 for usage).
 */
export class SpurmemError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'SpurmemError';
  }
}

/** A bad command-line flag or option value (exit status 2). */
export class UsageError extends SpurmemError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** The message of any thrown value. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** camelCase option name -> its command-line flag (weightDecay -> --weight-decay). */
export function flagName(key: string): string {
  return '--' + toKebab(key);
}

/**
 * A UsageError for the first problem zod found in an options object, naming the flag and the option
 * (`option --weight-decay (weightDecay): Too small: expected number to be >=0`) or the unknown keys.
 */
export function optionsError(issues: readonly { path: readonly PropertyKey[]; message: string; code?: string; keys?: readonly string[] }[]): UsageError {
  const issue = issues[0];
  const key = issue.path.map(String).join('.');
  if (!key && issue.keys && issue.keys.length) {
    return new UsageError(`unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')} (options are camelCase, e.g. topK)`);
  }
  const top = String(issue.path[0] ?? '');
  return new UsageError(`option ${top ? `${flagName(top)} (${key})` : '(options)'}: ${issue.message}`);
}
