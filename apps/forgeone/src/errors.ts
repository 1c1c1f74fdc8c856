/**
 * A mistake in how the command was called (conflicting or missing options): reported like a commander
 * error, with exit status 2.
 */
export class UsageError extends Error {
  /**
   * @param message - what is wrong with the command line
   */
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit status for success. */
export const EXIT_OK = 0;
/** Exit status for a failure reported with a ForgeOne error code. */
export const EXIT_FAILURE = 1;
/** Exit status for a usage error. */
export const EXIT_USAGE = 2;
