import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {kmsSocketDirs} from '../controlplane/apiserver-manifest.js'
import {
  addKey,
  addKmsProvider,
  type KeyedProvider,
  KEYED_PROVIDERS,
  type KmsProviderSpec,
  nextKeyName,
  promoteKey,
  promoteKmsProvider,
  removeKey,
} from '../encryption/config/edit.js'
import {checkConfigBytes, stageConfig} from '../encryption/config/load.js'
import {keyFingerprint} from '../encryption/fingerprint.js'
import {interruptedError, isPluginError, PluginError, preconditionError, usageError} from '../errors.js'
import {backupDirFor} from '../ssh/remote-files.js'
import {
  checkNodesAgree,
  type FileDiff,
  planDiffs,
  planNode,
  plannedOutcomes,
  snapshotsForEdit,
} from '../changes/plan.js'
import type {ClusterFollowUps, RewriteSummary} from './follow-ups.js'
import type {ControlPlaneDeps} from '../changes/deps.js'
import {type KubeadmConfigOutcome, syncKubeadmConfig} from '../changes/kubeadm-config-sync.js'
import {type NodeOutcome, rollOut} from '../changes/rollout.js'
import {type ReadCheck, readCheck} from './scan/read-check.js'
import {runStages, type StageOutcome} from '../changes/stage-runner.js'
import {type OperationState, OperationStateStore} from '../state/operation-state.js'

/** The seed's six rotation steps as named, resumable stages (like kubeadm phases). */
export const ROTATE_STAGES = ['add-key', 'wait-add', 'promote', 'wait-promote', 'rewrite', 'remove-old'] as const
export type RotateStage = (typeof ROTATE_STAGES)[number]

/** The provider a rotation moves to: a local key's, or a KMS v2 plugin's (`rotate --provider kms`). */
export type RotateProvider = KeyedProvider | 'kms'

export interface RotationState extends OperationState {
  operation: 'rotate'
  provider: RotateProvider
  /** The new key's name; for KMS, the new provider's name. */
  newKey: string
  /** provider kms: the provider added (its endpoint's directory is mounted into each apiserver). */
  kms?: KmsProviderSpec
  /** kek: a KMS key rotation (rotate-kek.ts: wait-key-id, rewrite-stale, scan); absent: a key or provider rotation. */
  kind?: 'kek'
  oldKey: {provider: RotateProvider; name: string}
  resources?: string[]
}

export interface RotateOptions {
  /** Provider of the new key (default: the current write provider; another one switches provider; kms moves to KMS v2). */
  provider?: RotateProvider
  /** With provider kms: the KMS v2 provider to add (name, endpoint, timeout; checked by the flags). */
  kms?: KmsProviderSpec
  /** provider kms: keep kubeadm-config's apiServer.extraVolumes in step with the socket mount (default true). */
  kubeadmConfig?: boolean
  keyName?: string
  resources?: string[]
  /** Run only this stage (it must be the next one, or one already done to repeat it). */
  stage?: RotateStage
  /** Start a new rotation even if one is recorded as in progress. */
  restart?: boolean
  backupConfirmed?: boolean
  /**
   * Local directory to which remove-old writes, mode 0600, the new config (after removal) and the
   * config before it, which still holds the old key that etcd backups from before the rewrite need.
   */
  backupDir?: string
  force?: boolean
  dryRun?: boolean
  timeoutMs?: number
}

export interface RotateDeps extends ControlPlaneDeps {
  /** rewrite: every object the config covers (stage 5); countUnderKey: values still under the old key (stage 6 precondition). */
  followUps?: Pick<ClusterFollowUps, 'rewrite' | 'countUnderKey'> & Partial<Pick<ClusterFollowUps, 'checkConfig'>>
}

export interface StageResult {
  stage: RotateStage
  /** failed: the stage this run stopped in (the error says why; nodes say how far it got). */
  status: 'done' | 'already-done' | 'planned' | 'pending' | 'failed'
  nodes?: NodeOutcome[]
  backupDir?: string
  detail?: string
  /** promote and remove-old: could the stage's config read every value in etcd? Checked before the stage changes anything. */
  readCheck?: ReadCheck
}

export interface RotateResult {
  dryRun: boolean
  provider: RotateProvider
  /** provider kms: where its plugin listens (the socket's directory is mounted by add-key). */
  kmsEndpoint?: string
  /** provider kms: kubeadm-config after add-key (the socket's extraVolume). */
  kubeadmConfig?: KubeadmConfigOutcome
  newKey: string
  newKeyFingerprint?: string
  oldKey: {provider: RotateProvider; name: string}
  stages: StageResult[]
  diffs: FileDiff[]
  /** The recorded state after this run; 'not-started' for a dry run with no rotation recorded. */
  state: {status: OperationState['status'] | 'not-started'; stage: string; completedStages: string[]}
  localBackup?: string
  /** With backupDir: the config before remove-old, holding the old key (for etcd backups from before the rewrite). */
  oldKeyBackup?: string
  /** The rewrite stage of this run: counts, its estimate and the admission webhooks it met. */
  rewrite?: RewriteSummary
}

/** What `status` shows of a recorded rotation (names only), with the command to run next. */
export interface RotationStatus {
  status: OperationState['status']
  stage: string
  completedStages: string[]
  provider: RotateProvider
  newKey: string
  oldKey: {provider: RotateProvider; name: string}
  startedAt: string
  updatedAt: string
  error?: string
  /** The command that continues the rotation; absent when it is done. */
  next?: string
}

export function rotationStatus(state: RotationState): RotationStatus {
  const all: readonly string[] = state.kind === 'kek' ? ['wait-key-id', 'rewrite-stale', 'scan'] : ROTATE_STAGES
  const pending = all.filter((s) => !state.completedStages.includes(s))
  const next =
    state.status === 'done' || pending.length === 0
      ? undefined
      : pending.length === 1 && pending[0] === 'remove-old'
        ? 'kubectl encryption rotate --backup-confirmed'
        : 'kubectl encryption rotate'
  return {
    status: state.status,
    stage: state.stage,
    completedStages: state.completedStages,
    provider: state.provider,
    newKey: state.newKey,
    oldKey: state.oldKey,
    startedAt: state.startedAt,
    updatedAt: state.updatedAt,
    ...(state.error ? {error: state.error} : {}),
    ...(next ? {next} : {}),
  }
}

function firstKeyed(config: string, resources?: string[]): {provider: KeyedProvider; name: string} {
  const check = checkConfigBytes(Buffer.from(config), '<config>')
  for (const entry of check.config?.resources ?? []) {
    if (resources && !entry.resources.some((r) => resources.includes(r))) continue
    const first = entry.providers[0] ?? {}
    const type = Object.keys(first)[0] as KeyedProvider
    const key = KEYED_PROVIDERS.includes(type) ? first[type]?.keys[0] : undefined
    if (key) return {provider: type, name: key.name}
  }
  throw preconditionError(
    'CONFIG_NOTHING_TO_ROTATE',
    'No resources entry writes with aescbc, aesgcm or secretbox; there is no local key to rotate.',
    {hint: 'Enable encryption first, or pass --resource.'},
  )
}

function fingerprintOf(config: string, provider: string, name: string): string | undefined {
  const check = checkConfigBytes(Buffer.from(config), '<config>')
  for (const entry of check.config?.resources ?? []) {
    for (const p of entry.providers) {
      const key = (p as Record<string, {keys?: Array<{name: string; secret: string}>}>)[provider]?.keys?.find(
        (k) => k.name === name,
      )
      if (key) return keyFingerprint(key.secret)
    }
  }
  return undefined
}

async function confirmRotation(deps: RotateDeps, state: RotationState, options: RotateOptions): Promise<void> {
  if (!deps.confirm) return
  const what = options.stage
    ? `stage ${options.stage}`
    : `stages ${ROTATE_STAGES.filter((s) => !state.completedStages.includes(s)).join(', ')}`
  if (
    !(await deps.confirm(
      `Rotate ${state.oldKey.provider}/${state.oldKey.name} -> ${state.provider}/${state.newKey} on every control-plane node (${what}; each kube-apiserver restarts or reloads)?`,
    ))
  ) {
    throw new PluginError('precondition', 'ABORTED', 'Aborted: nothing was changed.')
  }
}

/**
 * `kubectl encryption rotate`: the seed's rotation as six stages, state recorded in the
 * kubectl-encryption-state ConfigMap before and after each stage, so a killed run continues where
 * it stopped (`rotate` again, or `rotate --stage NAME`).
 */
export async function rotateKeys(options: RotateOptions, deps: RotateDeps): Promise<RotateResult> {
  const store = new OperationStateStore(deps.objects)
  let state = await store.read<RotationState>('rotate')
  if (state && state.status !== 'done' && !options.restart && (options.provider || options.keyName)) {
    if (
      (options.provider && options.provider !== state.provider) ||
      (options.keyName && options.keyName !== state.newKey) ||
      (options.kms && options.kms.name !== state.newKey)
    ) {
      throw usageError(
        'ROTATION_IN_PROGRESS',
        `A rotation to ${state.provider} key ${state.newKey} is in progress (stage ${state.stage}).`,
        {hint: 'Run `kubectl encryption rotate` to continue it, or pass --restart to start over.'},
      )
    }
  }
  // A dry run that starts a rotation records nothing: its key is made only to show the diff.
  const fresh = !state || state.status === 'done' || Boolean(options.restart)
  if (!state || state.status === 'done' || options.restart) {
    if (options.stage && options.stage !== 'add-key')
      throw usageError('ROTATION_NOT_STARTED', `No rotation in progress; stage ${options.stage} cannot run first.`, {
        hint: 'Run `kubectl encryption rotate` to start with add-key.',
      })
    const {source: current} = await snapshotsForEdit(deps, (c) => c, options.force ?? false)
    const old = firstKeyed(current, options.resources)
    if (options.provider === 'kms' && !options.kms)
      throw usageError('KMS_ENDPOINT_MISSING', '--provider kms needs --kms-endpoint')
    const now = new Date().toISOString()
    state = {
      operation: 'rotate',
      startedAt: now,
      updatedAt: now,
      status: 'in-progress',
      stage: 'add-key',
      completedStages: [],
      provider: options.provider ?? old.provider,
      newKey:
        options.provider === 'kms'
          ? options.kms!.name
          : (options.keyName ?? nextKeyName(current, deps.now?.() ?? new Date())),
      ...(options.provider === 'kms' ? {kms: options.kms} : {}),
      oldKey: old,
      resources: options.resources,
    }
    if (!options.dryRun) await confirmRotation(deps, state, options)
    if (!options.dryRun) await store.write(state)
  } else if (!options.dryRun) await confirmRotation(deps, state, options)
  const rotation = state
  const stages: StageResult[] = []
  const diffs: FileDiff[] = []
  const backupDir = backupDirFor(deps.now?.() ?? new Date())
  let localBackup: string | undefined
  let oldKeyBackup: string | undefined
  let lastConfig: string | undefined

  const pending = ROTATE_STAGES.filter((s) => !rotation.completedStages.includes(s))
  let toRun: RotateStage[] = pending
  if (options.stage) {
    const index = ROTATE_STAGES.indexOf(options.stage)
    const missing = ROTATE_STAGES.slice(0, index).filter((s) => !rotation.completedStages.includes(s))
    if (missing.length > 0)
      throw usageError('STAGE_OUT_OF_ORDER', `Stage ${options.stage} needs ${missing.join(', ')} first.`, {
        hint: `Run \`kubectl encryption rotate --stage ${missing[0]}\`.`,
      })
    toRun = [options.stage]
  }
  for (const s of ROTATE_STAGES)
    if (!toRun.includes(s) && rotation.completedStages.includes(s)) stages.push({stage: s, status: 'already-done'})

  const kms = rotation.provider === 'kms' ? rotation.kms : undefined
  const keyed = rotation.provider as KeyedProvider
  const edits: Partial<Record<RotateStage, (config: string) => string>> = {
    'add-key': (c) =>
      kms
        ? addKmsProvider(c, {kms, resources: rotation.resources}).text
        : addKey(c, {provider: keyed, keyName: rotation.newKey, resources: rotation.resources}).text,
    promote: (c) =>
      kms
        ? promoteKmsProvider(c, {name: kms.name, resources: rotation.resources}).text
        : promoteKey(c, {provider: keyed, keyName: rotation.newKey, resources: rotation.resources}).text,
    'remove-old': (c) =>
      removeKey(c, {
        provider: rotation.oldKey.provider as KeyedProvider,
        keyName: rotation.oldKey.name,
        resources: rotation.resources,
      }).text,
  }

  let rewrite: RewriteSummary | undefined
  let kubeadmConfig: KubeadmConfigOutcome | undefined
  const resultNow = (): RotateResult => ({
    dryRun: options.dryRun ?? false,
    provider: rotation.provider,
    newKey: rotation.newKey,
    ...(kms ? {kmsEndpoint: kms.endpoint} : {}),
    ...(kubeadmConfig ? {kubeadmConfig} : {}),
    // a dry run's new key is thrown away: its fingerprint would name a key that never exists
    newKeyFingerprint:
      lastConfig && !(options.dryRun && fresh) && !kms
        ? fingerprintOf(lastConfig, rotation.provider, rotation.newKey)
        : undefined,
    oldKey: rotation.oldKey,
    stages,
    diffs,
    state:
      options.dryRun && fresh
        ? {status: 'not-started', stage: '-', completedStages: []}
        : {status: rotation.status, stage: rotation.stage, completedStages: rotation.completedStages},
    localBackup,
    oldKeyBackup,
    rewrite,
  })

  const recorded = recordedStages(store, rotation, ROTATE_STAGES)
  // Per stage of this run: the nodes it rolled out (kept when it fails) and its read check.
  let rolledOut: NodeOutcome[] | undefined
  let check: ReadCheck | undefined
  const runStage = async (stage: RotateStage): Promise<StageOutcome> => {
    const edit = edits[stage]
    if (stage === 'remove-old') {
      if (!options.backupConfirmed && !options.backupDir) {
        throw preconditionError(
          'BACKUP_NOT_CONFIRMED',
          `Removing the old key ${rotation.oldKey.provider}/${rotation.oldKey.name} makes any etcd backup taken before the rewrite unreadable.`,
          {
            hint: 'Back up etcd now (with the new key in use), then pass --backup-confirmed, or --backup-dir DIR to also get a copy of the new config.',
          },
        )
      }
      if (!deps.followUps)
        throw preconditionError('SCAN_UNAVAILABLE', 'Cannot check etcd for values still under the old key.', {
          hint: 'Pass the --etcd-* flags so the plugin can read etcd.',
        })
    }
    if (edit) {
      const {snapshots, source, target} = await snapshotsForEdit(deps, edit, options.force ?? false)
      lastConfig = target
      // Moving to KMS, add-key also mounts the plugin socket's directory into each apiserver
      // (as enable does): the apiserver dials the socket when it loads the config.
      const mountSocket = kms !== undefined && stage === 'add-key'
      const plans = snapshots.map((s) =>
        planNode(s, {
          configText: target,
          configPath: s.configPath,
          manifest: mountSocket ? 'enable' : 'keep',
          automaticReload: s.flags.automaticReload,
        }),
      )
      diffs.push(...planDiffs(plans))
      // The stages that demote or drop a key prove first that their config reads every stored value.
      if ((stage === 'promote' || stage === 'remove-old') && plans.some((p) => p.files.length > 0)) {
        check = await readCheck(deps, stageConfig(target), {
          what: `rotate stage ${stage}`,
          force: options.force,
          dryRun: options.dryRun,
          unchanged: `Stage ${stage} changed nothing.`,
        })
      }
      // The old key never goes unproven: without the read check's answer, no value may still carry its prefix.
      if (stage === 'remove-old' && (check === undefined || check.status === 'not-run')) {
        const left = await deps.followUps!.countUnderKey(rotation.oldKey.provider, rotation.oldKey.name)
        if (left > 0) {
          throw preconditionError(
            'OLD_KEY_STILL_USED',
            `${left} value(s) in etcd are still encrypted with ${rotation.oldKey.provider}/${rotation.oldKey.name}; removing it would make them unreadable.`,
            {
              hint: 'Run `kubectl encryption rotate --stage rewrite` again (and check `kubectl encryption status --scan`).',
            },
          )
        }
      }
      if (options.dryRun) {
        stages.push({stage, status: 'planned', nodes: plannedOutcomes(plans), ...(check ? {readCheck: check} : {})})
        return 'stop' // later stages depend on this one
      }
      if (stage === 'remove-old' && options.backupDir) {
        await mkdir(options.backupDir, {recursive: true, mode: 0o700})
        const stamp = backupDir.split('-').pop()
        localBackup = join(options.backupDir, `encryption-config-${stamp}.yaml`)
        await writeFile(localBackup, target, {mode: 0o600, flag: 'wx'})
        // An etcd backup from before the rewrite is readable only with the old key: keep the config
        // that still holds it (`status --scan --snapshot FILE --config` checks a backup against it).
        if (source !== target) {
          oldKeyBackup = join(options.backupDir, `encryption-config-${stamp}-with-old-key.yaml`)
          await writeFile(oldKeyBackup, source, {mode: 0o600, flag: 'wx'})
        }
      }
      const rollout = await rollOut(plans, {
        files: (n) => deps.files(n),
        waiter: deps.waiter,
        backupDir,
        timeoutMs: options.timeoutMs ?? 300_000,
        onEvent: deps.onEvent,
        signal: deps.signal,
        stage,
      })
      rolledOut = rollout.nodes
      if (rollout.failure) throw rollout.failure
      if (mountSocket && options.kubeadmConfig !== false) {
        const first = snapshots[0]
        kubeadmConfig = await syncKubeadmConfig(
          deps.objects,
          {
            kind: 'enable',
            settings: {
              configPath: first?.configPath ?? '',
              automaticReload: first?.flags.automaticReload,
              socketDirs: kmsSocketDirs(checkConfigBytes(Buffer.from(target), '<config>').config),
            },
          },
          false,
        )
      }
      stages.push({
        stage,
        status: 'done',
        nodes: rollout.nodes,
        backupDir: rollout.nodes.some((n) => n.backups.length > 0) ? backupDir : undefined,
        ...(check ? {readCheck: check} : {}),
      })
    } else if (stage === 'wait-add' || stage === 'wait-promote') {
      if (options.dryRun) {
        stages.push({stage, status: 'pending'})
        return 'pending'
      }
      // Every apiserver must run the config the previous stage wrote (HA: a node that cannot read
      // the new key yet would fail on values written by the others). The nodes must agree on it,
      // and each apiserver must report that config as loaded (docs/kubernetes-behaviour.md §11.3), also after a restart:
      // a resumed run may find a node whose kubelet has not restarted it yet.
      const {snapshots} = await snapshotsForEdit(deps, (c) => c, false)
      const hashes = new Set(snapshots.map((s) => s.configHash))
      if (hashes.size > 1) checkNodesAgree(snapshots, false)
      for (const s of snapshots) {
        deps.onEvent?.({type: 'wait', node: s.node, effect: s.flags.automaticReload ? 'reload' : 'restart'})
        // Waiting changes nothing, so a signal may end it at once (exit 4, the stage stays next).
        await untilAborted(
          deps.waiter.waitConfigLoaded(s.node, s.configHash as string, options.timeoutMs ?? 300_000),
          deps.signal,
          `stage ${stage} (waiting for ${s.node}; nothing changed by this stage)`,
        )
      }
      lastConfig = snapshots[0]?.config
      stages.push({
        stage,
        status: 'done',
        detail: `all ${snapshots.length} apiservers run ${snapshots[0]?.configHash?.slice(0, 19)}…`,
      })
    } else if (stage === 'rewrite') {
      if (options.dryRun) {
        stages.push({stage, status: 'pending'})
        return 'pending'
      }
      if (!deps.followUps)
        throw preconditionError('REWRITE_UNAVAILABLE', 'The rewrite of existing objects is not available.')
      const {source} = await snapshotsForEdit(deps, (c) => c, false)
      lastConfig = source
      const r = await deps.followUps.rewrite(stageConfig(source), deps.signal)
      rewrite = r
      if (deps.signal?.aborted) throw interruptedError(`stage ${stage} (${r.rewritten} object(s) rewritten so far)`)
      const incomplete = r.incomplete.length > 0 ? `; not finished: ${r.incomplete.join(', ')}` : ''
      const failures = r.failures.length > 0 ? `; ${r.failures.join('; ')}` : ''
      const detail = `${r.alreadyCurrent} already current${incomplete}${failures}`
      const failed = r.failed + r.incomplete.length
      if (failed > 0)
        throw new PluginError(
          'partial',
          'REWRITE_INCOMPLETE',
          `The rewrite left ${failed} object(s) not rewritten (${detail}).`,
          {hint: 'Run `kubectl encryption rotate --stage rewrite` again.'},
        )
      stages.push({
        stage,
        status: 'done',
        detail: `${r.rewritten} object(s) of ${r.resources.join(', ') || 'no resource'} rewritten; ${detail}`,
      })
    }
    return undefined
  }
  await runStages(
    toRun.map((stage) => ({name: stage, run: () => runStage(stage)})),
    {
      // A dry run records nothing and is not stopped between stages (it changes nothing).
      signal: options.dryRun ? undefined : deps.signal,
      onEvent: deps.onEvent,
      before: async (stage) => {
        rolledOut = undefined
        check = undefined
        if (!options.dryRun) await recorded.before(stage)
      },
      after: async (stage) => {
        if (!options.dryRun) await recorded.after(stage)
      },
      onFailure: async (stage, error) => {
        if (!options.dryRun) await recorded.failed(stage, error)
        // What this run did before the stage failed stays in the result the error carries.
        const usedBackups = rolledOut?.some((n) => n.backups.length > 0)
        stages.push({
          stage,
          status: 'failed',
          ...(rolledOut ? {nodes: rolledOut} : {}),
          ...(usedBackups ? {backupDir} : {}),
          detail: errorText(error),
        })
      },
      partialResult: resultNow,
    },
  )
  return resultNow()
}

export const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error))

/**
 * What a rotation records around each stage in the state ConfigMap (rotate and rotate-kek alike):
 * the stage as in progress before anything of it happens (a kill at any point leaves it named), done
 * after it, and failed or (Ctrl-C/SIGTERM) still in progress, next to run, when it stops.
 */
export function recordedStages<S extends string, T extends RotationState>(
  store: OperationStateStore,
  state: T,
  all: readonly S[],
) {
  return {
    before: (stage: S) => store.write({...state, stage, status: 'in-progress'}),
    after: async (stage: S) => {
      state.completedStages = [...new Set([...state.completedStages, stage])]
      state.status = all.every((s) => state.completedStages.includes(s)) ? 'done' : 'in-progress'
      state.stage = stage
      delete state.error
      await store.write(state)
    },
    failed: async (stage: S, error: unknown) => {
      const interrupted = isPluginError(error) && error.code === 'INTERRUPTED'
      state.status = interrupted ? 'in-progress' : 'failed'
      state.stage = stage
      await store.write(interrupted ? state : {...state, error: errorText(error)}).catch(() => undefined)
    },
  }
}

/** `work`, or INTERRUPTED (exit 4) as soon as `signal` fires; for steps that change nothing. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined, where: string): Promise<T> {
  if (!signal) return work
  if (signal.aborted) return Promise.reject(interruptedError(where))
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(interruptedError(where))
    signal.addEventListener('abort', onAbort, {once: true})
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
