/**
 * Writing a file that holds key material (docs/architecture.md §2: never a file that is not 0600).
 * A new file is created exclusively (O_EXCL) with mode 0600, so an existing file is never touched
 * unless `force` is set; then the data goes to a dot-prefixed 0600 temp file beside the target that is
 * renamed over it (atomic: readers see the old or the new file, never a half-written one).
 */
import {randomBytes} from 'node:crypto'
import {chmod, open, rename, rm, stat} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {preconditionError, PluginError} from '../errors.js'

export const PRIVATE_MODE = 0o600

async function writeExclusive(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'wx', PRIVATE_MODE)
  try {
    await handle.writeFile(data)
    await handle.chmod(PRIVATE_MODE) // umask can only narrow the mode; make it exact anyway
    await handle.sync()
  } finally {
    await handle.close()
  }
}

function translate(error: unknown, path: string): PluginError {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'EEXIST') {
    return preconditionError('OUTPUT_EXISTS', `${path} already exists; nothing was written.`, {
      hint: 'Choose another --output-file, or pass --force to replace it.',
    })
  }
  if (code === 'ENOENT') {
    return preconditionError('OUTPUT_DIR_MISSING', `the directory of ${path} does not exist; nothing was written.`, {
      hint: `Create ${dirname(path)} first (mode 0700 for key files).`,
    })
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return preconditionError('OUTPUT_NOT_WRITABLE', `cannot write ${path}: permission denied; nothing was written.`, {
      hint: 'Write to a directory you own, or run with the rights to write there.',
    })
  }
  if (code === 'EISDIR') {
    return preconditionError('OUTPUT_IS_DIRECTORY', `${path} is a directory; nothing was written.`, {
      hint: 'Name a file.',
    })
  }
  return new PluginError('unexpected', 'OUTPUT_WRITE_FAILED', `cannot write ${path}: ${(error as Error).message}`, {
    cause: error,
  })
}

/** Writes `data` to `path` with mode 0600; refuses to replace an existing file unless `force`. */
export async function writePrivateFile(
  path: string,
  data: string | Uint8Array,
  options: {force?: boolean} = {},
): Promise<void> {
  if (!options.force) {
    try {
      await writeExclusive(path, data)
    } catch (error) {
      throw translate(error, path)
    }
    return
  }
  const existing = await stat(path).catch(() => undefined)
  if (existing?.isDirectory()) throw translate(Object.assign(new Error('is a directory'), {code: 'EISDIR'}), path)
  const temp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`)
  try {
    await writeExclusive(temp, data)
    await rename(temp, path)
    await chmod(path, PRIVATE_MODE)
  } catch (error) {
    await rm(temp, {force: true}).catch(() => undefined)
    throw translate(error, path)
  }
}
