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
