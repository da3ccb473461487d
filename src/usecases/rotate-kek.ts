/**
 * `kubectl encryption rotate` on a cluster that writes with a KMS v2 provider: there is no key in
 * the config to rotate, the key-encryption key (KEK) lives with the KMS plugin. After the plugin's
 * key changed (a new key ID), three resumable stages make etcd follow it (issue 15 item 6):
 *
 *   wait-key-id    every apiserver has asked the plugin for its Status since the rotation started
 *                  and they all report the same key ID (the one --kms-key-id names, if given)
 *   rewrite-stale  `rewrite -A --only-stale`: exactly the values under an older key ID (or another
 *                  provider) are written again, so the apiserver stores them under the new one
 *   scan           etcd read again: no value of the covered resources is stale; else exit 5
 *
 * State goes to the same `rotate` record as a key rotation (kind kek), so `status` shows it and
 * `rotate` again continues where a kill or Ctrl-C stopped it.
 */
import {createHash} from 'node:crypto'

import {checkConfigBytes, stageConfig} from '../encryption/config/load.js'
import {interruptedError, PluginError, preconditionError, usageError} from '../errors.js'
import {snapshotsForEdit} from '../changes/plan.js'
import type {ControlPlaneDeps} from '../changes/deps.js'
import type {CurrentKmsKey} from '../controlplane/metrics.js'
import {OperationStateStore} from '../state/operation-state.js'
import type {ClusterFollowUps, RewriteSummary} from './follow-ups.js'
import type {StaleRewrite} from './rewrite/stale-follow-up.js'
import {
  errorText,
  recordedStages,
  type RotateOptions,
  type RotateResult,
  type RotationState,
  type StageResult,
} from './rotate.js'
import {runStages, type StageOutcome} from '../changes/stage-runner.js'
import type {NodeKmsKeys} from './status/kms-keys.js'

export const KEK_STAGES = ['wait-key-id', 'rewrite-stale', 'scan'] as const
export type KekStage = (typeof KEK_STAGES)[number]

export interface KekRotationState extends RotationState {
  kind: 'kek'
  provider: 'kms'
  /** The KMS v2 write providers of the covered entries (names). */
  kmsProviders: string[]
  /** Per node, per provider: the time of the newest Status answer when the rotation started (the apiserver's clock). */
  baseline: Record<string, Record<string, string>>
  /** Per provider, the key ID hash the apiservers agreed on at the start (absent when they did not). */
  fromKeyIdHash: Record<string, string>
  /** Per provider, the key ID hash every apiserver reported at the end of wait-key-id. */
  toKeyIdHash?: Record<string, string>
  /** --kms-key-id: the hash of the key ID to wait for. */
  expectKeyIdHash?: string
}

export interface KekOptions extends Omit<RotateOptions, 'stage'> {
  stage?: string
  /** --kms-key-id: wait for exactly this key ID (as the plugin's Status returns it). */
  kmsKeyId?: string
  /** How often to read the apiservers' metrics while waiting (default 2 s). */
  pollMs?: number
}

export interface KekDeps extends ControlPlaneDeps {
  followUps?: Pick<ClusterFollowUps, 'kmsKeys' | 'scan'> & {rewriteStale: StaleRewrite}
  sleep?: (ms: number) => Promise<void>
}

export interface KekResult extends Omit<RotateResult, 'stages'> {
  kind: 'kek'
  stages: Array<Omit<StageResult, 'stage'> & {stage: KekStage}>
  kmsProviders: string[]
  fromKeyIdHash: Record<string, string>
  toKeyIdHash?: Record<string, string>
  /** The scan stage: values of the covered resources and how many are still stale. */
  scan?: {scanned: number; stale: number; byResource: Record<string, number>}
}

export const keyIdHash = (keyId: string) => `sha256:${createHash('sha256').update(keyId).digest('hex')}`
const short = (hash: string | undefined) => (hash ? `${hash.slice(0, 15)}…` : '(none)')

/** The KMS v2 providers the covered entries write with; undefined when some entry writes with something else. */
export function kmsWriteProviders(config: string, resources?: string[]): string[] | undefined {
  const check = checkConfigBytes(Buffer.from(config), '<config>')
  const names = new Set<string>()
  let any = false
  for (const entry of check.config?.resources ?? []) {
    if (resources && !entry.resources.some((r) => resources.includes(r))) continue
    const first = entry.providers[0] ?? {}
    // identity-only entries (e.g. events opted out) neither block nor count
    if ('identity' in first && entry.providers.length === 1) continue
    any = true
    const kms = first.kms
    if (kms?.apiVersion !== 'v2' || !kms.name) return undefined
    names.add(kms.name)
  }
  return any ? [...names].sort() : undefined
}

/** The newest Status answer of `provider` on each node. */
function statusOf(report: NodeKmsKeys, provider: string): CurrentKmsKey | undefined {
  return report.keys.find((k) => k.provider === provider && k.source === 'status')
}

/** Is the wait over? Else what each node still lacks (for progress and the timeout's message). */
export function keyIdSettled(
  reports: NodeKmsKeys[],
  state: Pick<KekRotationState, 'kmsProviders' | 'baseline' | 'expectKeyIdHash'>,
): {settled: true; keyIdHash: Record<string, string>} | {settled: false; waitingFor: string[]} {
  const waitingFor: string[] = []
  const agreed: Record<string, string> = {}
  for (const provider of state.kmsProviders) {
    const hashes = new Map<string, string[]>()
    for (const r of reports) {
      const s = statusOf(r, provider)
      const since = state.baseline[r.node]?.[provider]
      if (r.error) waitingFor.push(`${r.node}: metrics not readable (${r.error})`)
      else if (!s) waitingFor.push(`${r.node}: no KMS Status answer for ${provider} yet`)
      else if (since && !(Date.parse(s.at) > Date.parse(since)))
        waitingFor.push(`${r.node}: no Status answer for ${provider} since the rotation started (last ${s.at})`)
      else hashes.set(s.keyIdHash, [...(hashes.get(s.keyIdHash) ?? []), r.node])
    }
    if (hashes.size > 1)
      waitingFor.push(
        `${provider}: the apiservers report different key IDs (${[...hashes].map(([h, n]) => `${n.join(', ')}: ${short(h)}`).join('; ')})`,
      )
    const [only] = hashes.size === 1 ? [...hashes.keys()] : []
    if (only && state.expectKeyIdHash && only !== state.expectKeyIdHash)
      waitingFor.push(
        `${provider}: the apiservers report ${short(only)}, not --kms-key-id's ${short(state.expectKeyIdHash)}`,
      )
    if (only) agreed[provider] = only
  }
  return waitingFor.length === 0 ? {settled: true, keyIdHash: agreed} : {settled: false, waitingFor}
}

async function confirmKek(deps: KekDeps, state: KekRotationState, options: KekOptions): Promise<void> {
  if (!deps.confirm) return
  const what = options.stage
    ? `stage ${options.stage}`
    : `stages ${KEK_STAGES.filter((s) => !state.completedStages.includes(s)).join(', ')}`
  const ok = await deps.confirm(
    `KMS key rotation for ${state.kmsProviders.join(', ')}: wait for every apiserver to report the plugin's current key ID, then rewrite every value under an older one (${what}; no node is changed)?`,
  )
  if (!ok) throw new PluginError('precondition', 'ABORTED', 'Aborted: nothing was changed.')
}

/** Starts (or continues) the KEK rotation; see the file's comment. */
export async function rotateKek(options: KekOptions, deps: KekDeps): Promise<KekResult> {
  const store = new OperationStateStore(deps.objects)
  const recorded = await store.read<RotationState>('rotate')
  if (options.provider || options.keyName)
    throw usageError(
      'ROTATION_IN_PROGRESS',
      recorded?.kind === 'kek' && recorded.status !== 'done'
        ? `A KMS key rotation is in progress (stage ${recorded.stage}); --provider and --key-name do not apply to it.`
        : '--provider and --key-name do not apply to a KMS key rotation.',
      {hint: 'Run `kubectl encryption rotate` to continue it, or pass --restart to start over.'},
    )
  let state =
    recorded && recorded.kind === 'kek' && recorded.status !== 'done' && !options.restart
      ? (recorded as KekRotationState)
      : undefined
  const {source: config} = await snapshotsForEdit(deps, (c) => c, options.force ?? false)
  const fresh = !state
  if (options.stage && !(KEK_STAGES as readonly string[]).includes(options.stage))
    throw usageError(
      'STAGE_UNKNOWN',
      `A KMS key rotation has the stages ${KEK_STAGES.join(', ')}, not ${options.stage}.`,
    )
  if (!deps.followUps)
    throw preconditionError('KMS_UNAVAILABLE', 'The apiservers’ metrics and etcd are not available here.')
  const followUps = deps.followUps
  if (!state) {
    if (options.stage && options.stage !== 'wait-key-id')
      throw usageError(
        'ROTATION_NOT_STARTED',
        `No KMS key rotation in progress; stage ${options.stage} cannot run first.`,
        {
          hint: 'Run `kubectl encryption rotate` to start with wait-key-id.',
        },
      )
    const providers = kmsWriteProviders(config, options.resources)
    if (!providers)
      throw preconditionError('CONFIG_NOT_KMS', 'The covered resources do not all write with a KMS v2 provider.')
    // The newest Status answer per node now: the wait ends on answers after these (the apiserver's own clock).
    const reports = await followUps.kmsKeys()
    const baseline: KekRotationState['baseline'] = {}
    const fromKeyIdHash: Record<string, string> = {}
    for (const provider of providers) {
      const seen = new Set<string>()
      for (const r of reports) {
        const s = statusOf(r, provider)
        if (s) {
          ;(baseline[r.node] ??= {})[provider] = s.at
          seen.add(s.keyIdHash)
        }
      }
      if (seen.size === 1) fromKeyIdHash[provider] = [...seen][0]!
    }
    const now = new Date().toISOString()
    state = {
      operation: 'rotate',
      kind: 'kek',
      startedAt: now,
      updatedAt: now,
      status: 'in-progress',
      stage: 'wait-key-id',
      completedStages: [],
      provider: 'kms',
      newKey: providers.join(','),
      oldKey: {provider: 'kms', name: providers.join(',')},
      resources: options.resources,
      kmsProviders: providers,
      baseline,
      fromKeyIdHash,
      ...(options.kmsKeyId ? {expectKeyIdHash: keyIdHash(options.kmsKeyId)} : {}),
    } satisfies KekRotationState
    if (!options.dryRun) {
      await confirmKek(deps, state, options)
      await store.write(state)
    }
  } else {
    if (
      options.kmsKeyId &&
      keyIdHash(options.kmsKeyId) !== state.expectKeyIdHash &&
      !state.completedStages.includes('wait-key-id')
    )
      state.expectKeyIdHash = keyIdHash(options.kmsKeyId)
    if (!options.dryRun) await confirmKek(deps, state, options)
  }
  const kek = state
  const stages: KekResult['stages'] = []
  let rewrite: RewriteSummary | undefined
  let scan: KekResult['scan']
  const resultNow = (): KekResult => ({
    kind: 'kek',
    dryRun: options.dryRun ?? false,
    provider: 'kms',
    newKey: kek.newKey,
    oldKey: kek.oldKey,
    kmsProviders: kek.kmsProviders,
    fromKeyIdHash: kek.fromKeyIdHash,
    ...(kek.toKeyIdHash ? {toKeyIdHash: kek.toKeyIdHash} : {}),
    stages,
    diffs: [],
    state:
      options.dryRun && fresh
        ? {status: 'not-started', stage: '-', completedStages: []}
        : {status: kek.status, stage: kek.stage, completedStages: kek.completedStages},
    ...(rewrite ? {rewrite} : {}),
    ...(scan ? {scan} : {}),
  })

  let toRun: KekStage[] = KEK_STAGES.filter((s) => !kek.completedStages.includes(s))
  if (options.stage) {
    const stage = options.stage as KekStage
    const missing = KEK_STAGES.slice(0, KEK_STAGES.indexOf(stage)).filter((s) => !kek.completedStages.includes(s))
    if (missing.length > 0)
      throw usageError('STAGE_OUT_OF_ORDER', `Stage ${stage} needs ${missing.join(', ')} first.`, {
        hint: `Run \`kubectl encryption rotate --stage ${missing[0]}\`.`,
      })
    toRun = [stage]
  }
  for (const s of KEK_STAGES)
    if (!toRun.includes(s) && kek.completedStages.includes(s)) stages.push({stage: s, status: 'already-done'})
  if (options.dryRun) {
    const reports = await followUps.kmsKeys()
    for (const s of toRun)
      stages.push({
        stage: s,
        status: 'pending',
        ...(s === 'wait-key-id'
          ? {
              detail: `now: ${reports
                .map((r) => `${r.node} ${kek.kmsProviders.map((p) => short(statusOf(r, p)?.keyIdHash)).join(',')}`)
                .join('; ')}`,
            }
          : {}),
      })
    return resultNow()
  }

  const timeoutMs = options.timeoutMs ?? 300_000
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)))
  const stageRecord = recordedStages(store, kek, KEK_STAGES)
  const runStage = async (stage: KekStage): Promise<StageOutcome> => {
    if (stage === 'wait-key-id') {
      // The apiservers ask the plugin for its Status about once a minute (kmsv2PluginHealthzPositiveInterval
      // in k8s.io/apiserver pkg/server/options/encryptionconfig/config.go) and switch to a new DEK
      // under the new key ID when it changed: wait for an answer after the start on every node.
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const settled = keyIdSettled(await followUps.kmsKeys(), kek)
        if (settled.settled) {
          kek.toKeyIdHash = settled.keyIdHash
          break
        }
        deps.onEvent?.({type: 'info', message: `wait-key-id: ${settled.waitingFor.join('; ')}`})
        if (Date.now() >= deadline)
          throw preconditionError(
            'KMS_KEY_ID_NOT_SETTLED',
            `After ${Math.round(timeoutMs / 1000)}s the apiservers have not all reported one current KMS key ID: ${settled.waitingFor.join('; ')}.`,
            {
              hint: "Check the KMS plugin on those nodes ('kubectl encryption status'), then run `kubectl encryption rotate` again (--timeout SECONDS waits longer).",
            },
          )
        if (deps.signal?.aborted) throw interruptedError(`stage ${stage} (waiting; nothing changed)`)
        await sleep(options.pollMs ?? 2000)
        if (deps.signal?.aborted) throw interruptedError(`stage ${stage} (waiting; nothing changed)`)
      }
      const moved = kek.kmsProviders.map((p) => `${p} ${short(kek.fromKeyIdHash[p])} -> ${short(kek.toKeyIdHash?.[p])}`)
      stages.push({stage, status: 'done', detail: `every apiserver reports ${moved.join(', ')}`})
    } else if (stage === 'rewrite-stale') {
      const r = await followUps.rewriteStale(config, deps.signal)
      rewrite = r
      if (r.interrupted || deps.signal?.aborted)
        throw interruptedError(`stage ${stage} (${r.rewritten} object(s) rewritten so far)`)
      const failed = r.failed + r.incomplete.length
      if (failed > 0)
        throw new PluginError(
          'partial',
          'REWRITE_INCOMPLETE',
          `The rewrite left ${failed} object(s) not rewritten${r.failures.length > 0 ? ` (${r.failures.join('; ')})` : ''}.`,
          {hint: 'Fix the cause, then run `kubectl encryption rotate` again: it rewrites only what is still stale.'},
        )
      stages.push({
        stage,
        status: 'done',
        detail: `${r.rewritten} stale object(s) of ${r.resources.join(', ') || 'no resource'} rewritten`,
      })
    } else {
      // Judged by the key ID the apiservers report now (a later KEK change makes more values stale, rightly).
      const now = keyIdSettled(await followUps.kmsKeys(), {kmsProviders: kek.kmsProviders, baseline: {}})
      const hashes = now.settled ? now.keyIdHash : (kek.toKeyIdHash ?? {})
      const s = await followUps.scan(stageConfig(config), hashes)
      const byResource: Record<string, number> = {}
      for (const r of s.resources) if (r.stale > 0) byResource[r.resource] = r.stale
      scan = {scanned: s.keys, stale: s.totals.stale, byResource}
      if (s.totals.stale > 0) {
        // The rewrite has to run again before the proof can pass.
        kek.completedStages = kek.completedStages.filter((c) => c !== 'rewrite-stale')
        throw new PluginError(
          'checkFailed',
          'KMS_STALE_LEFT',
          `${s.totals.stale} value(s) are still not under the current key ID (${Object.entries(byResource)
            .map(([r, n]) => `${r}=${n}`)
            .join(', ')}).`,
          {hint: "Run `kubectl encryption rotate` again; 'kubectl encryption status --scan' lists them."},
        )
      }
      stages.push({stage, status: 'done', detail: `${s.keys} value(s) scanned, none under an older key ID`})
    }
    return undefined
  }
  await runStages(
    toRun.map((stage) => ({name: stage, run: () => runStage(stage)})),
    {
      signal: deps.signal,
      onEvent: deps.onEvent,
      before: stageRecord.before,
      after: stageRecord.after,
      onFailure: async (stage, error) => {
        await stageRecord.failed(stage, error)
        stages.push({stage, status: 'failed', detail: errorText(error)})
      },
      partialResult: resultNow,
    },
  )
  return resultNow()
}

/** Which rotation `rotate` runs: the recorded one in progress, else a KEK rotation when the covered entries write with KMS v2. */
export async function isKekRotation(
  options: Pick<RotateOptions, 'restart' | 'provider' | 'force' | 'resources'>,
  deps: ControlPlaneDeps,
): Promise<boolean> {
  const recorded = await new OperationStateStore(deps.objects).read<RotationState>('rotate')
  if (recorded && recorded.status !== 'done' && !options.restart) return recorded.kind === 'kek'
  if (options.provider) return false
  const {source} = await snapshotsForEdit(deps, (c) => c, options.force ?? false)
  return kmsWriteProviders(source, options.resources) !== undefined
}
