/** Assert that `fn` throws a one-line UserError matching `re`; returns it. */
import assert from 'node:assert/strict';
import { UserError } from '../../src/util/errors.js';

export function userError(fn: () => unknown, re: RegExp): UserError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof UserError, `expected a UserError matching ${re}, got ${err === undefined ? 'no error' : String(err)}`);
  assert.ok(!/[\n\r]/.test(err.message), `message should be one line: ${JSON.stringify(err.message)}`);
  assert.match(err.message, re);
  return err;
}
