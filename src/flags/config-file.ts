import {readBoundedFile} from '../encryption/config/load.js'
import {PluginError, preconditionError, usageError} from '../errors.js'

export interface LocalConfigFile {
  path: string
  bytes: Buffer
}

/** Reads the file a `--config` flag names; an unreadable file is a usage error that names it. */
export async function readConfigFlag(path: string | undefined): Promise<LocalConfigFile | undefined> {
  if (!path) return undefined
  try {
    const read = await readBoundedFile(path)
    if (read.refused)
      throw preconditionError('CONFIG_TOO_LARGE', `--config ${path} ${read.refused}; nothing was done`, {
        hint: 'Pass the EncryptionConfiguration file itself.',
      })
    return {path, bytes: read.bytes!}
  } catch (error) {
    if (error instanceof PluginError) throw error
    throw usageError(
      'CONFIG_UNREADABLE',
      `cannot read --config ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    )
  }
}
