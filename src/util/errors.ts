/**
 * Errors a user can act on. The CLI prints `message` on one line and exits with code 2;
 * anything else is a bug and keeps its stack trace.
 */
export class UserError extends Error {
  override name = 'UserError';
}

/** A safetensors file that is truncated, malformed or lies about its contents. */
export class SafetensorsError extends UserError {
  override name = 'SafetensorsError';
}
