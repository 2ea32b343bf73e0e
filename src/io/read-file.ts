/**
 * Reading a user-supplied file whole (config.json, index, tokenizer files, text inputs): only regular files, only up
 * to a size cap, and through one file descriptor (open, fstat, read the same fd: no check-then-open race).
 *
 * Why: a FIFO as config.json would block `readFileSync` forever (waiting for a writer), `/dev/zero` would be read
 * until memory runs out, and a 10 GB file by mistake would be read whole before JSON.parse fails. The open uses
 * O_NONBLOCK so that opening a FIFO returns at once (it is then refused by fstat); on a regular file O_NONBLOCK has
 * no effect.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { oneLine } from './safetensors.js';
import { UserError } from '../util/errors.js';

/** Cap for JSON files of a model folder. Real tokenizer.json files reach ~35 MB (Gemma 3: 33 MB). */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;
/** Cap for text inputs (prompts, corpora read whole). V8 strings cannot exceed ~512 M characters anyway. */
export const MAX_TEXT_BYTES = 256 * 1024 * 1024;

/** What a non-regular file is, for the message ("a FIFO", "a character device", …). */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a plain file';
}

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? (e instanceof Error ? e.message : String(e));
}

/**
 * Open `path` for reading and check it is a regular file; returns the fd and its size. The caller closes the fd.
 * `what` names the file in messages (defaults to the path).
 */
export function openRegularFile(path: string, what = path): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const c = errCode(e);
    if (c === 'EISDIR') throw new UserError(oneLine(`${what} is not a regular file (a folder)`));
    throw new UserError(oneLine(`cannot open ${what}: ${c}`));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UserError(oneLine(`${what} is not a regular file (${fileKind(st)})`));
    return { fd, size: st.size };
  } catch (e) {
    closeSync(fd);
    if (e instanceof UserError) throw e;
    throw new UserError(oneLine(`cannot open ${what}: ${errCode(e)}`));
  }
}

/** The bytes of a regular file of at most `maxBytes` bytes. */
export function readRegularFile(path: string, maxBytes: number, what = path): Buffer {
  const { fd, size } = openRegularFile(path, what);
  try {
    if (size > maxBytes) throw new UserError(oneLine(`${what} is ${size} bytes, more than the ${maxBytes}-byte limit for this kind of file`));
    // One byte more than fstat said, to notice a file that grows while we read it (a log being written, say).
    const buf = Buffer.allocUnsafe(size + 1);
    let done = 0;
    while (done < buf.length) {
      let n: number;
      try {
        n = readSync(fd, buf, done, buf.length - done, null);
      } catch (e) {
        throw new UserError(oneLine(`cannot read ${what}: ${errCode(e)}`));
      }
      if (n === 0) break;
      done += n;
    }
    if (done > size) throw new UserError(oneLine(`${what} grew while being read (was ${size} bytes)`));
    return buf.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

/** A regular file's text (UTF-8), at most `maxBytes` bytes. */
export function readTextFile(path: string, maxBytes = MAX_TEXT_BYTES, what = path): string {
  return readRegularFile(path, maxBytes, what).toString('utf8');
}

/** A regular JSON file, parsed; a UserError naming the file when it is not valid JSON. */
export function readJsonFile(path: string, maxBytes = MAX_JSON_BYTES, what = path): unknown {
  const text = readTextFile(path, maxBytes, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(oneLine(`${what} is not valid JSON (${e instanceof Error ? e.message : String(e)})`));
  }
}
