import {DEFAULT_CONFIG_PATH, kmsSocketDirs} from '../controlplane/apiserver-manifest.js'
import {putIdentityFirst} from '../encryption/config/edit.js'
import {configHash, keyFingerprint} from '../encryption/fingerprint.js'
import {checkConfigBytes, stageConfig} from '../encryption/config/load.js'
import type {EncryptionConfiguration} from '../encryption/config/model.js'
import {interruptedError, PluginError, preconditionError} from '../errors.js'
import {backupDirFor} from '../ssh/remote-files.js'
import {
  type EncryptedLeft,
  encryptedLeft,
  parseConfigText,
  type ClusterFollowUps,
  type RewriteSummary,
} from './follow-ups.js'
import {
  editBase,
  type FileDiff,
  type NodeSnapshot,
  planDiffs,
  planNode,
  plannedOutcomes,
  readNode,
} from '../changes/plan.js'
import type {ControlPlaneDeps} from '../changes/deps.js'
import {type KubeadmConfigOutcome, syncKubeadmConfig} from '../changes/kubeadm-config-sync.js'
import {type NodeOutcome, type NodePlan, rollOut} from '../changes/rollout.js'
import {noEncryptionConfig, type ReadCheck, readCheck} from './scan/read-check.js'
import {runStages, type Stage} from '../changes/stage-runner.js'

/** The seed's "Decrypting all data" as named stages; running the command again continues safely. */
export const DECRYPT_STAGES = ['identity-first', 'rewrite', 'scan', 'remove-encryption'] as const
export type DecryptStage = (typeof DECRYPT_STAGES)[number]

export interface DecryptAllOptions {
  /** After a clean scan, take the flag, mount and volume out of the manifests (and the config off the nodes). */
  removeEncryption?: boolean
  force?: boolean
  dryRun?: boolean
  /** Keep kubeadm's ClusterConfiguration in step when removing (default true). */
  kubeadmConfig?: boolean
  timeoutMs?: number
}

export interface DecryptAllDeps extends ControlPlaneDeps {
  followUps?: Pick<ClusterFollowUps, 'rewrite' | 'scan'> & Partial<Pick<ClusterFollowUps, 'checkConfig'>>
}

export interface DecryptStageResult {
  stage: DecryptStage
  status: 'done' | 'unchanged' | 'planned' | 'pending' | 'skipped' | 'failed'
  nodes?: NodeOutcome[]
  detail?: string
  /** identity-first and remove-encryption: could the stage's config read every value in etcd? Checked before the stage changes anything. */
  readCheck?: ReadCheck
}

export interface ReadableKey {
  provider: string
  key: string
  fingerprint?: string
}

/** The keys one resource's values were written under while the config was on (names only). */
export interface BackupKeys {
  /** As the config lists it: `secrets`, `*.apps`, `*.*`. */
  resource: string
  /** `provider:key` (`aescbc:key1`, `kms:vault`), as `status --scan --snapshot` names what a backup needs. */
  keys: string[]
}

export interface DecryptAllResult {
  dryRun: boolean
  /** Encryption was already off on every node: nothing to do. */
  alreadyOff: boolean
  configPath?: string
  /** Hash of the identity-first config the nodes run after the first stage. */
  configHash?: string
  /** Keys kept so values not yet rewritten stay readable (names and fingerprints only). */
  readableKeys: ReadableKey[]
  stages: DecryptStageResult[]
  rewrite?: RewriteSummary
  /** What the scan found still encrypted; total 0 proves the decryption. */
  scan?: EncryptedLeft
  /** Nothing encrypted is left (the scan ran and found none). */
  decrypted: boolean
  /** --remove-encryption done: no node runs with --encryption-provider-config any more. */
  removed: boolean
  kubeadmConfig?: KubeadmConfigOutcome
  backupDir?: string
  /** Where each node's config went when removed (it still holds the old keys; older etcd backups need them). */
  configBackups: Array<{node: string; path: string}>
  /**
   * --remove-encryption: per resource, the keys of the config being removed. etcd backups taken
   * before the decryption hold values under them; only a config with these keys opens such a backup.
   */
  keysForOlderBackups?: BackupKeys[]
  diffs: FileDiff[]
  next: string[]
}

const DECRYPT_NEXT = 'kubectl encryption decrypt-all'

function readableKeys(config: EncryptionConfiguration): ReadableKey[] {
  const keys = new Map<string, ReadableKey>()
  for (const entry of config.resources ?? []) {
    for (const provider of entry.providers) {
      for (const [type, spec] of Object.entries(provider)) {
        for (const k of (spec as {keys?: Array<{name: string; secret: string}>} | undefined)?.keys ?? []) {
          keys.set(`${type}/${k.name}`, {provider: type, key: k.name, fingerprint: keyFingerprint(k.secret)})
        }
        const kms = (spec as {name?: string} | undefined)?.name
        if (type === 'kms' && kms) keys.set(`kms/${kms}`, {provider: 'kms', key: kms})
      }
    }
  }
  return [...keys.values()]
}

/**
 * Per resource of the configs (in their order, each name once), every key that is not identity:
 * a value of that resource in an older backup may be under any of them. Identity-only resources
 * need no key and are left out.
 */
export function keysForOlderBackups(configTexts: string[]): BackupKeys[] {
  const byResource = new Map<string, Set<string>>()
  for (const text of configTexts) {
    for (const entry of parseConfigText(text).resources ?? []) {
      const keys: string[] = []
      for (const provider of entry.providers) {
        for (const [type, spec] of Object.entries(provider)) {
          if (type === 'identity' || !spec) continue
          if (type === 'kms') {
            const name = (spec as {name?: string}).name
            if (name) keys.push(`kms:${name}`)
          } else for (const k of (spec as {keys?: Array<{name: string}>}).keys ?? []) keys.push(`${type}:${k.name}`)
        }
      }
      for (const resource of entry.resources ?? []) {
        const set = byResource.get(resource) ?? new Set<string>()
        for (const k of keys) set.add(k)
        byResource.set(resource, set)
      }
    }
  }
  return [...byResource].filter(([, keys]) => keys.size > 0).map(([resource, keys]) => ({resource, keys: [...keys]}))
}

const DEFAULT_TIMEOUT_MS = 300_000

/** The plans that take the flag, mount and volume out of each manifest. */
const removePlans = (from: NodeSnapshot[]) =>
  from.map((s) => planNode(s, {configPath: s.configPath, manifest: 'disable', automaticReload: false}))

/** Nodes with encryption on (flag and file) and off; a flag whose file is missing is refused. */
function splitNodes(snapshots: NodeSnapshot[], force: boolean): {on: NodeSnapshot[]; off: NodeSnapshot[]} {
  const broken = snapshots.filter((s) => s.flags.configPath !== undefined && s.config === undefined)
  if (broken.length > 0) {
    throw preconditionError(
      'CONFIG_MISSING',
      `${broken.map((s) => `${s.node} points its kube-apiserver at ${s.configPath}, which does not exist`).join('; ')}.`,
      {
        hint: 'Restore the config on that node first (from another node or a backup under /etc/kubernetes/tmp); `kubectl encryption status` shows the nodes.',
      },
    )
  }
  const on = snapshots.filter((s) => s.flags.configPath !== undefined)
  const off = snapshots.filter((s) => s.flags.configPath === undefined)
  // Some nodes off: an interrupted --remove-encryption (the others already write plaintext), else disagreement.
  if (on.length > 0 && off.length > 0 && !force && on.some((s) => putIdentityFirst(s.config as string).changed)) {
    throw preconditionError(
      'NODES_DISAGREE',
      `Encryption is on on ${on.map((s) => s.node).join(', ')} but off on ${off.map((s) => s.node).join(', ')}.`,
      {
        hint: 'Make the nodes agree first (`kubectl encryption status` shows them; `kubectl encryption enable` reuses the existing config), or pass --force CONTEXT (the context name).',
      },
    )
  }
  return {on, off}
}

async function confirm(deps: DecryptAllDeps, question: string): Promise<void> {
  if (deps.confirm && !(await deps.confirm(question)))
    throw new PluginError('precondition', 'ABORTED', 'Aborted: nothing was changed.')
}

/**
 * `kubectl encryption decrypt-all`: identity first on every node with every old key kept readable,
 * one node at a time in the safe order (docs/architecture.md §3); every apiserver back; everything the config
 * covers rewritten (now stored as plaintext); a scan of etcd that must find nothing encrypted; then,
 * with --remove-encryption, the flag, mount and volume out of each manifest and kubeadm-config.
 * Each stage is a no-op when already done, so running it again continues after a failure.
 */
export async function decryptAll(options: DecryptAllOptions, deps: DecryptAllDeps): Promise<DecryptAllResult> {
  const force = options.force ?? false
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const names = await deps.nodes()
  if (names.length === 0)
    throw preconditionError('NO_CONTROL_PLANE', 'No control-plane nodes found.', {
      hint: 'Check the context: `kubectl get nodes -l node-role.kubernetes.io/control-plane`.',
    })
  const snapshots: NodeSnapshot[] = []
  for (const node of names) snapshots.push(await readNode(node, deps.files(node), DEFAULT_CONFIG_PATH))
  const {on} = splitNodes(snapshots, force)
  const result: DecryptAllResult = {
    dryRun: options.dryRun ?? false,
    alreadyOff: false,
    readableKeys: [],
    stages: [],
    decrypted: false,
    removed: false,
    configBackups: [],
    diffs: [],
    next: [],
  }
  if (on.length === 0) {
    result.alreadyOff = true
    result.decrypted = true
    result.removed = true
    return result
  }

  const {target} = editBase(on, (c) => putIdentityFirst(c).text, force)
  // Parsed once here; the read check, the rewrite and the scan get it as it is.
  const identityFirst = stageConfig(target)
  result.configPath = on[0]?.configPath
  result.configHash = configHash(target)
  result.readableKeys = readableKeys(identityFirst.config)
  const identityPlans = on.map((s) =>
    planNode(s, {
      configText: target,
      configPath: s.configPath,
      manifest: 'keep',
      automaticReload: s.flags.automaticReload,
    }),
  )
  result.diffs.push(...planDiffs(identityPlans))
  const changes = identityPlans.some((p) => p.files.length > 0)
  // The proof before the first change (and before the question): the identity-first config keeps
  // every key, so only values no key of the nodes' config opens show up here.
  const identityCheck = changes
    ? await readCheck(deps, identityFirst, {what: 'decrypt-all stage identity-first', force, dryRun: options.dryRun})
    : undefined
  const withCheck = identityCheck ? {readCheck: identityCheck} : {}

  if (options.dryRun) {
    result.stages.push({
      stage: 'identity-first',
      status: changes ? 'planned' : 'unchanged',
      nodes: plannedOutcomes(identityPlans),
      ...withCheck,
    })
    result.stages.push({stage: 'rewrite', status: 'pending'}, {stage: 'scan', status: 'pending'})
    if (options.removeEncryption) {
      // What removal would change in today's manifests (the identity-first edit aside).
      const plans = removePlans(on)
      result.diffs.push(...planDiffs(plans).map((d) => ({...d, path: `${d.path} (after a clean scan)`})))
      result.stages.push({stage: 'remove-encryption', status: 'planned', nodes: plannedOutcomes(plans)})
      result.keysForOlderBackups = keysForOlderBackups([target])
      if (options.kubeadmConfig !== false) {
        result.kubeadmConfig = await syncKubeadmConfig(
          deps.objects,
          {kind: 'disable', socketDirs: socketDirsOf(on)},
          true,
        )
        if (result.kubeadmConfig.diff)
          result.diffs.push({
            node: '(cluster)',
            path: 'kube-system/configmap/kubeadm-config (after a clean scan)',
            diff: result.kubeadmConfig.diff,
          })
      }
    } else result.stages.push({stage: 'remove-encryption', status: 'skipped', detail: 'without --remove-encryption'})
    return result
  }

  const what = options.removeEncryption
    ? 'decrypt everything and then remove encryption at rest'
    : 'decrypt everything stored encrypted'
  await confirm(
    deps,
    `Put identity first on ${on.map((s) => s.node).join(', ')} (each kube-apiserver restarts or reloads, one at a time), rewrite every object the config covers, and ${what}?`,
  )
  const backupDir = backupDirFor(deps.now?.() ?? new Date())
  const usedBackups = () => result.stages.some((s) => s.nodes?.some((n) => n.backups.length > 0))

  const stages: Array<Stage<DecryptStage>> = [
    {
      // Seed: "place the identity provider as the first entry … and restart all kube-apiserver processes".
      name: 'identity-first',
      run: async () => {
        const rollout = await rollOut(identityPlans, {
          files: (n) => deps.files(n),
          waiter: deps.waiter,
          backupDir,
          timeoutMs,
          onEvent: deps.onEvent,
          signal: deps.signal,
          stage: 'identity-first',
        })
        result.stages.push({
          stage: 'identity-first',
          status: rollout.failure ? 'failed' : changes ? 'done' : 'unchanged',
          nodes: rollout.nodes,
          ...withCheck,
        })
        if (rollout.failure) throw rollout.failure
        // Nodes that already had the config (a run continued) must be up too before the rewrite relies on them.
        for (const plan of identityPlans)
          if (plan.files.length === 0) await waitRunning(deps, plan, on, target, timeoutMs)
        if (usedBackups()) result.backupDir = backupDir
        if (!deps.followUps)
          throw preconditionError('REWRITE_UNAVAILABLE', 'The rewrite and the etcd scan are not available here.', {
            hint: 'Run `kubectl encryption rewrite -A` and `kubectl encryption status --scan`.',
          })
        return undefined
      },
    },
    {
      // Seed: `kubectl get secrets --all-namespaces -o json | kubectl replace -f -`, for everything covered.
      name: 'rewrite',
      run: async () => {
        result.rewrite = await followUps().rewrite(identityFirst, deps.signal)
        if (deps.signal?.aborted)
          throw interruptedError(`stage rewrite (${result.rewrite.rewritten} object(s) rewritten so far)`)
        const rewriteOk = result.rewrite.failed === 0 && result.rewrite.incomplete.length === 0
        result.stages.push({
          stage: 'rewrite',
          status: rewriteOk ? 'done' : 'failed',
          detail: `${result.rewrite.rewritten} rewritten, ${result.rewrite.alreadyCurrent} already plaintext, ${result.rewrite.failed} failed`,
        })
        return undefined
      },
    },
    {
      // The proof. Anything still encrypted (also orphans the API cannot rewrite) stops here.
      name: 'scan',
      run: async () => {
        const scan = encryptedLeft(await followUps().scan(identityFirst))
        result.scan = scan
        result.decrypted = scan.total === 0
        result.stages.push({
          stage: 'scan',
          status: result.decrypted ? 'done' : 'failed',
          detail: result.decrypted
            ? `${scan.scanned} value(s) scanned, none encrypted`
            : `${scan.total} value(s) still encrypted (${Object.entries(scan.byResource)
                .map(([r, n]) => `${r}=${n}`)
                .join(', ')})`,
        })
        if (!result.decrypted) {
          result.next.push(
            `${DECRYPT_NEXT}   # again after fixing what the rewrite could not write; \`kubectl encryption status --scan\` lists the values`,
          )
          result.stages.push({stage: 'remove-encryption', status: 'skipped', detail: 'encrypted values are left'})
          return 'stop'
        }
        if (!options.removeEncryption) {
          result.stages.push({stage: 'remove-encryption', status: 'skipped', detail: 'without --remove-encryption'})
          result.next.push(
            `${DECRYPT_NEXT} --remove-encryption   # takes the flag and the config off the nodes (the old keys go to the backup dir)`,
          )
          return 'stop'
        }
        return undefined
      },
    },
    {name: 'remove-encryption', run: () => removeEncryption(on, options, deps, result, backupDir, usedBackups)},
  ]
  const followUps = () => deps.followUps!
  await runStages(stages, {
    signal: deps.signal,
    onEvent: deps.onEvent,
    // Whatever stops a stage, the result so far (stages, nodes, rewrite counts) goes with the error.
    onFailure: (running, error) => {
      if (!result.stages.some((s) => s.stage === running))
        result.stages.push({
          stage: running,
          status: 'failed',
          detail: error instanceof Error ? error.message : String(error),
        })
      if (usedBackups()) result.backupDir ??= backupDir
    },
    partialResult: () => result,
  })
  return result
}

/** Stage 4: the flag, mount and volume out of each manifest (read again: stage 1 changed them). */
async function removeEncryption(
  on: NodeSnapshot[],
  options: DecryptAllOptions,
  deps: DecryptAllDeps,
  result: DecryptAllResult,
  backupDir: string,
  usedBackups: () => boolean,
): Promise<undefined> {
  const force = options.force ?? false
  const current: NodeSnapshot[] = []
  for (const s of on) current.push(await readNode(s.node, deps.files(s.node), s.configPath))
  const plans = removePlans(current)
  result.diffs.push(...planDiffs(plans))
  // Without the flag the apiservers read everything as plaintext: the whole of etcd must be (the scan
  // before covered only the resources the config lists).
  const removalCheck = await readCheck(deps, noEncryptionConfig(), {
    what: 'decrypt-all stage remove-encryption',
    force,
    unchanged: 'Stage remove-encryption changed nothing.',
  })
  // Named before the first node loses its config, so a removal stopped halfway still says them.
  result.keysForOlderBackups = keysForOlderBackups(current.flatMap((s) => (s.config === undefined ? [] : [s.config])))
  const removal = await rollOut(plans, {
    files: (n) => deps.files(n),
    waiter: deps.waiter,
    backupDir,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    onEvent: deps.onEvent,
    signal: deps.signal,
    stage: 'remove-encryption',
  })
  result.stages.push({
    stage: 'remove-encryption',
    status: removal.failure ? 'failed' : 'done',
    nodes: removal.nodes,
    readCheck: removalCheck,
  })
  if (removal.failure) throw removal.failure
  result.kubeadmConfig =
    options.kubeadmConfig === false
      ? {status: 'skipped', changes: []}
      : await syncKubeadmConfig(deps.objects, {kind: 'disable', socketDirs: socketDirsOf(current)}, false)
  // The config file still holds the keys: into the backup dir (0700, owner and mode kept), off the config path.
  for (const s of current) {
    const files = deps.files(s.node)
    if ((await files.stat(s.configPath)) === undefined) continue
    result.configBackups.push({node: s.node, path: await files.backup(s.configPath, backupDir)})
    await files.remove(s.configPath)
  }
  result.removed = true
  if (usedBackups() || result.configBackups.length > 0) result.backupDir = backupDir
  return undefined
}

/** The KMS socket directories of the nodes' configs: their kubeadm-config extraVolumes go with the config. */
function socketDirsOf(snapshots: NodeSnapshot[]): string[] {
  const dirs = snapshots.flatMap((s) =>
    s.config === undefined ? [] : kmsSocketDirs(checkConfigBytes(Buffer.from(s.config), '<config>').config),
  )
  return [...new Set(dirs)].sort()
}

/** An unchanged node must still run `target` before the rewrite relies on it (reload metrics, or ready). */
async function waitRunning(
  deps: DecryptAllDeps,
  plan: NodePlan,
  on: NodeSnapshot[],
  target: string,
  timeoutMs: number,
): Promise<void> {
  const snapshot = on.find((s) => s.node === plan.node)
  if (snapshot?.flags.automaticReload) await deps.waiter.waitConfigLoaded(plan.node, configHash(target), timeoutMs)
  else await deps.waiter.waitRestored(plan.node, await deps.waiter.snapshot(plan.node), timeoutMs)
}
