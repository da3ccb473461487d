/**
 * The decryptability proof enable, rotate and decrypt-all run before a change (issue 17 item 1): the
 * config about to be applied is checked against every value in etcd with `config check`'s scanner
 * (through the follow-ups), and the change is refused when some stored value would become unreadable.
 * Results carry counts, provider:key names and etcd keys, never key material.
 */
import {type StageConfig, stageConfig} from '../../encryption/config/load.js'
import {preconditionError} from '../../errors.js'
import type {ClusterFollowUps} from '../follow-ups.js'
import type {ConfigCheckResult} from './config-check.js'
import type {ControlPlaneDeps} from '../../changes/deps.js'

/** An EncryptionConfiguration equivalent to none (what an apiserver without the flag reads with). */
const NO_ENCRYPTION_TEXT = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - '*.*'
    providers:
      - identity: {}
`

/** NO_ENCRYPTION_TEXT as a stage passes it on (parsed on first use, not when the module loads). */
export const noEncryptionConfig = (): StageConfig => (noEncryption ??= stageConfig(NO_ENCRYPTION_TEXT))
let noEncryption: StageConfig | undefined

const EXAMPLES = 3

export interface ReadCheck {
  /**
   * readable: every value proven readable; unreadable: some are not (reported by a dry run, or gone
   * ahead with --force); not-run: etcd could not be read, nothing is proven.
   */
  status: 'readable' | 'unreadable' | 'not-run'
  /** --force was given and the check found unreadable values. */
  forced?: boolean
  values?: number
  unreadable?: number
  /** Unreadable values per resource and how they are stored: `{secrets: {'aescbc:key1': 3}}`. */
  unreadableAs?: Record<string, Record<string, number>>
  /** Up to 3 etcd keys of unreadable values. */
  examples?: string[]
  /** Why the check did not run. */
  reason?: string
}

/** `secrets (aescbc:key1=3, identity=1); configmaps (...)`. */
export function unreadableText(check: ReadCheck): string {
  return Object.entries(check.unreadableAs ?? {})
    .map(
      ([resource, as]) =>
        `${resource} (${Object.entries(as)
          .map(([k, n]) => `${k}=${n}`)
          .join(', ')})`,
    )
    .join('; ')
}

/** One line for the result views: `Read check: …`. */
export function readCheckLine(check: ReadCheck): string {
  switch (check.status) {
    case 'readable':
      return `every stored value (${check.values}) is readable with the config to apply`
    case 'unreadable':
      return `${check.unreadable} of ${check.values} stored value(s) would be unreadable: ${unreadableText(check)}${check.forced ? ' (gone ahead with --force)' : ''}`
    case 'not-run':
      return `NOT RUN (${check.reason}); nothing proves the stored values stay readable`
  }
}

function summary(result: ConfigCheckResult): ReadCheck {
  const unreadableAs: Record<string, Record<string, number>> = {}
  for (const r of result.resources) if (r.unreadable > 0) unreadableAs[r.resource] = r.unreadableAs
  return {
    status: result.readable ? 'readable' : 'unreadable',
    values: result.values,
    unreadable: result.unreadable,
    ...(result.readable ? {} : {unreadableAs, examples: result.examples.slice(0, EXAMPLES)}),
  }
}

/**
 * Checks `configText` against etcd before `what` changes anything. Unreadable values refuse the
 * change (CONFIG_CANNOT_READ, exit 3) unless `force` or `dryRun` (a dry run reports them); an etcd
 * that cannot be read is a warning and the caller goes on, with the check reported as not run.
 */
export async function readCheck(
  deps: Pick<ControlPlaneDeps, 'onEvent'> & {followUps?: Partial<Pick<ClusterFollowUps, 'checkConfig'>>},
  config: StageConfig,
  options: {what: string; force?: boolean; dryRun?: boolean; unchanged?: string},
): Promise<ReadCheck> {
  if (!deps.followUps?.checkConfig) return notRun(deps, options.what, 'etcd cannot be read here')
  deps.onEvent?.({
    type: 'info',
    message: `read check: can the config ${options.what} applies read every value in etcd?`,
  })
  let check: ReadCheck
  try {
    check = summary(await deps.followUps.checkConfig(config))
  } catch (error) {
    return notRun(
      deps,
      options.what,
      `etcd could not be read: ${error instanceof Error ? error.message : String(error)}`,
    )
  }
  if (check.status === 'readable') return check
  if (options.dryRun) return options.force ? {...check, forced: true} : check
  if (!options.force) {
    throw preconditionError(
      'CONFIG_CANNOT_READ',
      `Refused: with the config ${options.what} applies, ${check.unreadable} of ${check.values} value(s) stored in etcd would be unreadable: ${unreadableText(check)}; e.g. ${(check.examples ?? []).join(', ')}. ${options.unchanged ?? 'Nothing was changed.'}`,
      {
        hint: 'Keep the keys those values are stored under in the config (or rewrite them first); `kubectl encryption config check FILE` lists them. To go ahead anyway (the apiservers will answer 500 for them), pass --force with the context name.',
      },
    )
  }
  deps.onEvent?.({
    type: 'warning',
    message: `--force: going ahead although ${check.unreadable} stored value(s) would be unreadable: ${unreadableText(check)}`,
  })
  return {...check, forced: true}
}

function notRun(deps: Pick<ControlPlaneDeps, 'onEvent'>, what: string, reason: string): ReadCheck {
  deps.onEvent?.({
    type: 'warning',
    message: `read check not run before ${what} (${reason}); going on without proof that every stored value stays readable`,
  })
  return {status: 'not-run', reason}
}
