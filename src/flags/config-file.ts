import {readFile} from 'node:fs/promises'

import {usageError} from '../errors.js'

export interface LocalConfigFile {
  path: string
  bytes: Buffer
}

/** Reads the file a `--config` flag names; an unreadable file is a usage error that names it. */
export async function readConfigFlag(path: string | undefined): Promise<LocalConfigFile | undefined> {
  if (!path) return undefined
  try {
    return {path, bytes: await readFile(path)}
  } catch (error) {
    throw usageError('CONFIG_UNREADABLE', `cannot read --config ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}
