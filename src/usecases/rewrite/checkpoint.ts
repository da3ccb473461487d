import {createHash} from 'node:crypto'
import {constants} from 'node:fs'
import {access, mkdir, readdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {basename, dirname, join} from 'node:path'

import {preconditionError, usageError} from '../../errors.js'
import type {FailureReason} from './api-errors.js'

/** Per resource (and namespace) counts; the same shape in results and checkpoints. */
export interface RewriteCounters {
  listed: number
  rewritten: number
  alreadyCurrent: number
  /** Dry run only: objects a real run would write back. */
  wouldRewrite: number
  conflictsRetried: number
  skipped: number
  failed: number
}

export interface RewriteFailure {
  /** "secrets", or "<plural>.<group>" */
  resource: string
  namespace?: string
  /** Absent when the list itself failed. */
  name?: string
  /** --engine svm: the StorageVersionMigration that failed (no object is named then). */
  migration?: string
  reason: FailureReason
  /** HTTP status, 0 when no response arrived. */
  status?: number
  message: string
}

/** Progress of one listing unit: one resource in one namespace (or all namespaces / cluster scope). */
export interface UnitCheckpoint {
  /** Every object up to and including this key (`ns/name` or `name`) is done. */
  after?: string
  /** Objects done out of order above `after`. */
  doneAhead: string[]
  complete: boolean
  counters: RewriteCounters
}

export interface RewriteCheckpoint {
  version: 1
  /** What the run covers (cluster, context, resources, namespaces, selector, mode); a resume must match it. */
  scope: string
  updatedAt: string
  units: Record<string, UnitCheckpoint>
  failures: RewriteFailure[]
  failuresTruncated: number
  /** Absent: the client engine. 'svm': the run's StorageVersionMigrations, per unit (`group/resource`). */
  engine?: 'svm'
  runId?: string
  migrations?: Record<string, MigrationCheckpoint>
}

/** One resource's StorageVersionMigration in an `--engine svm` run. */
export interface MigrationCheckpoint {
  name: string
  /** 1, then one more for each Failed migration created anew by a resume. */
  attempt: number
  failed?: boolean
}

export interface CheckpointStore {
  /** Where the checkpoint lives, for messages. */
  readonly location: string
  load(): Promise<RewriteCheckpoint | undefined>
  save(checkpoint: RewriteCheckpoint): Promise<void>
  clear(): Promise<void>
}

export function emptyCounters(): RewriteCounters {
  return {listed: 0, rewritten: 0, alreadyCurrent: 0, wouldRewrite: 0, conflictsRetried: 0, skipped: 0, failed: 0}
}

/** `$XDG_STATE_HOME/kubectl-encryption` (default `~/.local/state/kubectl-encryption`). */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME?.startsWith('/') ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state')
  return join(base, 'kubectl-encryption')
}

/** One file per cluster/context and scope, so runs against different clusters never mix. */
export function checkpointPath(stateDir: string, scope: string): string {
  const id = createHash('sha256').update(scope).digest('hex').slice(0, 16)
  return join(stateDir, `rewrite-${id}.json`)
}

/**
 * A checkpoint file, mode 0600 in a 0700 directory, replaced atomically (temp file + rename) so a
 * kill at any moment leaves either the previous or the next complete checkpoint.
 */
export class FileCheckpointStore implements CheckpointStore {
  /**
   * `createDir`: make the directory (0700) on first save; the default state dir is made, a directory
   * the user named (--state-file) must already exist, as any other output file's.
   */
  constructor(
    readonly location: string,
    private readonly options: {createDir?: boolean; flag?: string} = {},
  ) {}

  /**
   * Checked before a run starts, so a path that cannot hold the checkpoint fails at once (exit 2 for a
   * directory given as the file, 3 for a missing or unwritable directory), not after the work is done.
   */
  async check(): Promise<void> {
    const what = this.options.flag ? `${this.options.flag} ${this.location}` : `the checkpoint file ${this.location}`
    if (this.location.trim() === '')
      throw usageError('STATE_FILE_INVALID', `${this.options.flag ?? 'the checkpoint file'} must not be empty`)
    const info = await stat(this.location).catch(() => undefined)
    if (info?.isDirectory())
      throw usageError('STATE_FILE_IS_DIRECTORY', `${what} is a directory; nothing was done`, {
        hint: `Name a file, e.g. ${join(this.location, 'rewrite.json')}.`,
      })
    if (info && !info.isFile())
      throw usageError('STATE_FILE_INVALID', `${what} is not a regular file; nothing was done`)
    const dir = dirname(this.location)
    const dirInfo = await stat(dir).catch(() => undefined)
    if (!dirInfo && this.options.createDir !== false) return
    if (!dirInfo)
      throw preconditionError('STATE_DIR_MISSING', `the directory of ${what} does not exist; nothing was done`, {
        hint: `Create ${dir} first (mode 0700), or name a file in an existing directory.`,
      })
    if (!dirInfo.isDirectory())
      throw preconditionError(
        'STATE_DIR_MISSING',
        `${dir} (the directory of ${what}) is not a directory; nothing was done`,
      )
    try {
      await access(dir, constants.W_OK | constants.X_OK)
      if (info) await access(this.location, constants.R_OK | constants.W_OK)
    } catch {
      throw preconditionError('STATE_FILE_NOT_WRITABLE', `cannot write ${what}: permission denied; nothing was done`, {
        hint: 'Name a file in a directory you own.',
      })
    }
  }

  async load(): Promise<RewriteCheckpoint | undefined> {
    let text: string
    try {
      text = await readFile(this.location, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
    const parsed = JSON.parse(text) as RewriteCheckpoint
    if (parsed?.version !== 1 || typeof parsed.units !== 'object')
      throw new Error(`${this.location} is not a rewrite checkpoint`)
    return parsed
  }

  async save(checkpoint: RewriteCheckpoint): Promise<void> {
    if (this.options.createDir !== false) await mkdir(dirname(this.location), {recursive: true, mode: 0o700})
    const temp = `${this.location}.${process.pid}.tmp`
    await writeFile(temp, JSON.stringify(checkpoint), {mode: 0o600})
    await rename(temp, this.location)
  }

  /** Removes the checkpoint and any temp file a killed run left half-written beside it. */
  async clear(): Promise<void> {
    await rm(this.location, {force: true})
    const prefix = `${basename(this.location)}.`
    const leftovers = (await readdir(dirname(this.location)).catch(() => [] as string[])).filter(
      (f) => f.startsWith(prefix) && f.endsWith('.tmp'),
    )
    await Promise.all(leftovers.map((f) => rm(join(dirname(this.location), f), {force: true})))
  }
}
