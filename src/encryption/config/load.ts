/**
 * Reading, decoding and validating an EncryptionConfiguration file in one step (docs/kubernetes-behaviour.md §7), with the
 * apiserver's messages (docs/kubernetes-behaviour.md §5.2). Used by `config validate` and by every operation that needs a
 * config: `loadEncryptionConfig` throws a PluginError (precondition, CONFIG_INVALID) for a bad file.
 */
import {open} from 'node:fs/promises'

import {preconditionError} from '../../errors.js'
import type {EncryptionConfiguration} from './model.js'
import {apiserverMessage, type ConfigError, REDACTED, stageError} from './errors.js'
import {parseEncryptionConfig} from './decode.js'
import {configHash} from '../fingerprint.js'
import {decodeGoBase64} from '../gocompat/base64.js'
import {goQuote} from '../gocompat/format.js'
import {validateEncryptionConfig, type ValidateOptions} from './verdict.js'

export interface ConfigCheck {
  path: string
  /** `sha256:` of the raw file bytes (docs/kubernetes-behaviour.md §5.6); absent when the file could not be read. */
  hash?: string
  config?: EncryptionConfiguration
  errors: ConfigError[]
  warnings: string[]
  /** The apiserver-style message for the errors ('' when valid). */
  message: string
}

/** Go's os error texts for the read failures a user meets (docs/kubernetes-behaviour.md §5.2 step 1). */
const GO_OS_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EPERM: 'operation not permitted',
  EIO: 'input/output error',
}

/**
 * The largest config read: 3 MiB, kube-apiserver's own bound on a request body (and far above any
 * real EncryptionConfiguration). A bigger file, or one that is not a regular file (/dev/zero, a
 * FIFO), would otherwise be read until memory runs out.
 */
export const MAX_CONFIG_BYTES = 3 * 1024 * 1024

/** Why `path` is not read at all (too big, not a regular file), or undefined; then its bytes. */
export async function readBoundedFile(
  path: string,
  max = MAX_CONFIG_BYTES,
): Promise<{bytes?: Buffer; refused?: string}> {
  const handle = await open(path, 'r')
  try {
    const info = await handle.stat()
    if (info.isDirectory()) {
      const error = new Error(`EISDIR: illegal operation on a directory, read`) as NodeJS.ErrnoException
      error.code = 'EISDIR'
      throw error
    }
    if (!info.isFile()) return {refused: 'is not a regular file'}
    if (info.size > max)
      return {
        refused: `is ${info.size} bytes, more than the ${max / 1024 / 1024} MiB an EncryptionConfiguration may have`,
      }
    return {bytes: await handle.readFile()}
  } finally {
    await handle.close()
  }
}

/** Reads the file as the apiserver does; a read error or an empty file becomes a `Read` error. */
export async function readConfigFile(path: string): Promise<{bytes?: Buffer; error?: ConfigError}> {
  let bytes: Buffer
  try {
    const read = await readBoundedFile(path)
    if (read.refused)
      return {error: stageError('Read', `encryption provider configuration file ${goQuote(path)} ${read.refused}`)}
    bytes = read.bytes!
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? ''
    const op = code === 'EISDIR' ? 'read' : 'open'
    const text = GO_OS_ERRORS[code] ?? (error as Error).message
    return {
      error: stageError(
        'Read',
        `error reading encryption provider configuration file ${goQuote(path)}: ${op} ${path}: ${text}`,
      ),
    }
  }
  if (bytes.length === 0)
    return {error: stageError('Read', `encryption provider configuration file ${goQuote(path)} is empty`)}
  return {bytes}
}

/** Decodes and validates bytes already read (e.g. from a node over ssh). */
export function checkConfigBytes(bytes: Buffer, path: string, options: ValidateOptions = {}): ConfigCheck {
  const hash = configHash(bytes)
  if (bytes.length === 0) {
    const errors = [stageError('Read', `encryption provider configuration file ${goQuote(path)} is empty`)]
    return {path, hash, errors, warnings: [], message: apiserverMessage(errors)}
  }
  const parsed = parseEncryptionConfig(bytes, path)
  if (!parsed.config) {
    const errors = redactErrors(parsed.errors, [])
    return {path, hash, errors, warnings: [], message: apiserverMessage(errors)}
  }
  const secrets = configuredSecrets(parsed.config)
  const checked = validateEncryptionConfig(parsed.config, options)
  const errors = redactErrors(checked.errors, secrets)
  const warnings = checked.warnings.map((w) => redactKeyMaterial(w, secrets))
  return {path, hash, config: parsed.config, errors, warnings, message: apiserverMessage(errors)}
}

/** Every `secret:` of the keyed providers, to be kept out of anything printed. */
function configuredSecrets(config: EncryptionConfiguration): string[] {
  const secrets: string[] = []
  for (const entry of config.resources ?? [])
    for (const provider of entry.providers ?? [])
      for (const keyed of Object.values(provider as Record<string, {keys?: Array<{secret?: unknown}>} | undefined>))
        for (const key of keyed?.keys ?? [])
          if (typeof key?.secret === 'string' && key.secret.length >= 8) secrets.push(key.secret)
  return secrets
}

/**
 * A message with key material taken out (docs/kubernetes-behaviour.md §14.6): any configured secret, and any quoted value
 * that could be one (see couldBeKey: e.g. a key pasted under `resources:`, which the apiserver would
 * echo in "Invalid value: …"), becomes "REDACTED", so real typos still show.
 */
export function redactKeyMaterial(text: string, secrets: readonly string[] = []): string {
  let out = text
  for (const secret of secrets) out = out.split(secret).join(REDACTED)
  return out.replace(/(["`'])([A-Za-z0-9+/=\r\n\\]{20,})\1/g, (whole, quote: string, body: string) =>
    couldBeKey(body) ? `${quote}${REDACTED}${quote}` : whole,
  )
}

/**
 * Go base64 of a key's size (16, 24 or 32 bytes: AES and secretbox keys), or of 16 bytes or more
 * with a digit, '+' or '/' in it. A long word of letters only that happens to be valid base64 (a
 * kind such as "EncryptionConfigurations", 18 bytes) is a typo to show, not a key.
 */
function couldBeKey(body: string): boolean {
  const text = body.replaceAll('\\n', '').replaceAll('\\r', '')
  const bytes = decodeGoBase64(text)?.length ?? 0
  return bytes === 16 || bytes === 24 || bytes === 32 || (bytes >= 16 && /[0-9+/]/.test(text))
}

function redactErrors(errors: ConfigError[], secrets: readonly string[]): ConfigError[] {
  return errors.map((e) => ({
    ...e,
    detail: redactKeyMaterial(e.detail, secrets),
    message: redactKeyMaterial(e.message, secrets),
    field: redactKeyMaterial(e.field, secrets),
  }))
}

/** Reads, decodes and validates a file; never throws for a bad file (the verdict is in `errors`). */
export async function checkConfigFile(path: string, options: ValidateOptions = {}): Promise<ConfigCheck> {
  const read = await readConfigFile(path)
  if (read.error || !read.bytes) {
    const errors = read.error ? [read.error] : []
    return {path, errors, warnings: [], message: apiserverMessage(errors)}
  }
  return checkConfigBytes(read.bytes, path, options)
}

/**
 * Reads, decodes and validates a file and returns the configuration, or throws a PluginError
 * (precondition, CONFIG_INVALID) with the apiserver's message. Messages never contain key material.
 */
export async function loadEncryptionConfig(
  path: string,
  options: ValidateOptions = {},
): Promise<{config: EncryptionConfiguration; hash: string; warnings: string[]}> {
  const check = await checkConfigFile(path, options)
  if (check.errors.length > 0 || !check.config || !check.hash) {
    throw preconditionError('CONFIG_INVALID', check.message, {
      hint: `Check the file with 'kubectl encryption config validate ${path}'.`,
    })
  }
  return {config: check.config, hash: check.hash, warnings: check.warnings}
}

/**
 * A config as a workflow's stages pass it on (enable, rotate, decrypt-all): the text that goes onto the
 * nodes, checked and parsed once, so no stage parses it again.
 */
export interface StageConfig {
  readonly text: string
  readonly config: EncryptionConfiguration
}

/** Checks and parses `text` once for the stages that follow; a config that does not load stops the workflow. */
export function stageConfig(text: string): StageConfig {
  const check = checkConfigBytes(Buffer.from(text), '<config>')
  if (!check.config || check.errors.length > 0)
    throw preconditionError('CONFIG_INVALID', `The encryption config on the nodes does not load: ${check.message}`)
  return {text, config: check.config}
}
