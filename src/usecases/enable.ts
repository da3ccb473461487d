import {DEFAULT_CONFIG_PATH, kmsSocketDirs} from '../controlplane/apiserver-manifest.js'
import {type StageConfig, stageConfig} from '../encryption/config/load.js'
import {type KeyedProvider, newConfig, nextKeyName} from '../encryption/config/edit.js'
import {configHash} from '../encryption/fingerprint.js'
import {generateKmsConfig} from '../encryption/config/generate.js'
import {interruptedError, PluginError, preconditionError} from '../errors.js'
import {backupDirFor} from '../ssh/remote-files.js'
import {
  checkNodesAgree,
  type FileDiff,
  planDiffs,
  planNode,
  plannedOutcomes,
  readNode,
  type WriteKey,
  writeKeys,
} from '../changes/plan.js'
import type {ClusterFollowUps, RewriteSummary, VerifySummary} from './follow-ups.js'
import type {ControlPlaneDeps} from '../changes/deps.js'
import {type KubeadmConfigOutcome, syncKubeadmConfig} from '../changes/kubeadm-config-sync.js'
import {type NodeOutcome, rollOut} from '../changes/rollout.js'
import {type ReadCheck, readCheck} from './scan/read-check.js'
import {runStages, type Stage} from '../changes/stage-runner.js'

/** enable's stages: the config onto every node (and kubeadm-config), the seed's verification, the rewrite. */
export type EnableStage = 'rollout' | 'verify' | 'rewrite'

export interface EnableOptions {
  /** Path of the config on every node (default /etc/kubernetes/enc/enc.yaml). */
  configPath?: string
  /** The user's own config (already read from --config FILE); else one is generated. */
  configText?: string
  /** kms: generate a KMS v2 provider for `kms` (no key is made; the KEK stays with the plugin). */
  provider?: KeyedProvider | 'kms'
  kms?: {name: string; endpoint: string; timeout: string}
  resources?: string[]
  automaticReload?: boolean
  force?: boolean
  dryRun?: boolean
  /** Keep kubeadm's ClusterConfiguration in step (default true). */
  kubeadmConfig?: boolean
  timeoutMs?: number
  /** After the rollout, prove new writes are encrypted (default true). */
  verify?: boolean
  /** After the rollout, rewrite existing objects the config covers (default false: the result says how). */
  rewrite?: boolean
}

export interface EnableDeps extends ControlPlaneDeps {
  /** verify and rewrite against the cluster; without them those steps are reported as not run. checkConfig: the read check before any change. */
  followUps?: Pick<ClusterFollowUps, 'verify' | 'rewrite'> & Partial<Pick<ClusterFollowUps, 'checkConfig'>>
}

export type EnableVerify = VerifySummary | {resource?: string; ok: false; problems: string[]; notRun: string}

export interface EnableResult {
  dryRun: boolean
  configPath: string
  /** generated: a fresh key; file: --config; existing: the nodes already had this file (never regenerated). */
  configSource: 'generated' | 'file' | 'existing'
  configHash: string
  writeKeys: WriteKey[]
  backupDir?: string
  nodes: NodeOutcome[]
  kubeadmConfig: KubeadmConfigOutcome
  diffs: FileDiff[]
  /** Could the config read every value in etcd? Run before any change (absent when no node changes). */
  readCheck?: ReadCheck
  /** Everything already as asked: nothing written. */
  unchanged: boolean
  /** The round trip after the rollout (absent in a dry run or with --no-verify). */
  verify?: EnableVerify
  /** The rewrite of existing objects (with --rewrite). */
  rewrite?: RewriteSummary
  /** What the user should do next, as commands. */
  next: string[]
}

export const REWRITE_NEXT = 'kubectl encryption rewrite -A'

/**
 * `kubectl encryption enable`: one config on every control-plane node (root 0600), each node's
 * kube-apiserver manifest pointed at it, one node at a time in the safe order (docs/architecture.md §3), then
 * kubeadm-config kept in step. Idempotent; a key already on a node is never replaced by a new one.
 */
export async function enableEncryption(options: EnableOptions, deps: EnableDeps): Promise<EnableResult> {
  const configPath = options.configPath ?? DEFAULT_CONFIG_PATH
  const automaticReload = options.automaticReload ?? false
  const names = await deps.nodes()
  if (names.length === 0)
    throw preconditionError(
      'NO_CONTROL_PLANE',
      'No control-plane nodes found (no nodes with the control-plane role and no kube-apiserver mirror pods).',
      {hint: 'Check the context: `kubectl get nodes -l node-role.kubernetes.io/control-plane`.'},
    )
  const snapshots = []
  for (const node of names) snapshots.push(await readNode(node, deps.files(node), configPath))
  const force = options.force ?? false
  // Only nodes that run a config can disagree: nodes still off are what an interrupted enable left
  // behind, and they get the config the others run (reused below), so running enable again continues.
  checkNodesAgree(
    snapshots.filter((s) => s.flags.configPath !== undefined),
    force,
  )

  // The config: the user's file, else what a node already has at the path (never regenerated), else new.
  const existing = snapshots.find((s) => s.config !== undefined && s.configPath === configPath)
  const enabledElsewhere = snapshots.find((s) => s.flags.configPath !== undefined && s.config !== undefined)
  let configText: string
  let configSource: EnableResult['configSource']
  let generatedFingerprint: string | undefined
  // Replacing a config the nodes run needs the read check's proof (or --force), below.
  let replacing: typeof enabledElsewhere
  if (options.configText !== undefined) {
    configText = options.configText
    configSource = 'file'
    if (enabledElsewhere && enabledElsewhere.config !== configText) replacing = enabledElsewhere
  } else if (existing?.config !== undefined || enabledElsewhere?.config !== undefined) {
    const found = existing?.config !== undefined ? existing : enabledElsewhere!
    configText = found.config!
    configSource = 'existing'
    checkExistingAsAsked(configText, options, found)
  } else {
    if (options.provider === 'kms') {
      if (!options.kms) throw new PluginError('usage', 'KMS_ENDPOINT_MISSING', '--provider kms needs --kms-endpoint')
      configText = generateKmsConfig({
        ...options.kms,
        apiVersion: 'v2',
        resources: options.resources ?? ['secrets'],
        identityFallback: true,
      }).text
    } else {
      const generated = newConfig({
        provider: options.provider,
        resources: options.resources,
        keyName: nextKeyName(undefined, deps.now?.() ?? new Date()),
      })
      configText = generated.text
      generatedFingerprint = generated.key.fingerprint
    }
    configSource = 'generated'
  }

  const plans = snapshots.map((s) =>
    planNode({...s, configPath}, {configText, configPath, manifest: 'enable', automaticReload}),
  )
  const diffs = planDiffs(plans)
  // Checked by planNode above; parsed once here for the read check, verify and the rewrite.
  const planned = stageConfig(configText)
  const kubeadmSettings = {
    configPath,
    automaticReload,
    socketDirs: kmsSocketDirs(planned.config),
  }
  const unchangedNodes = plans.every((p) => p.files.length === 0)
  // The proof, before any change (also before the question and in a dry run): every value in etcd
  // stays readable with this config. Nothing to prove when no node changes.
  const check = unchangedNodes
    ? undefined
    : await readCheck(deps, planned, {what: 'enable', force, dryRun: options.dryRun})
  if (replacing && check?.status === 'not-run' && !force) {
    throw preconditionError(
      'ALREADY_ENABLED',
      `Encryption is already enabled on ${replacing.node} with a different config (${replacing.configPath}), and etcd could not be read to prove the new one reads every stored value. Nothing was changed.`,
      {
        hint: 'Change keys with `kubectl encryption rotate`, make etcd readable (--etcd-* flags), or pass --force CONTEXT (the context name) if the new config keeps every key still in use.',
      },
    )
  }
  const base = {
    configPath,
    configSource,
    configHash: configHash(configText),
    writeKeys: writeKeys(configText),
    diffs,
    ...(check ? {readCheck: check} : {}),
  }

  if (options.dryRun) {
    const kubeadmConfig =
      options.kubeadmConfig === false
        ? {status: 'skipped' as const, changes: []}
        : await syncKubeadmConfig(deps.objects, {kind: 'enable', settings: kubeadmSettings}, true)
    if (kubeadmConfig.diff)
      diffs.push({node: '(cluster)', path: 'kube-system/configmap/kubeadm-config', diff: kubeadmConfig.diff})
    // A generated key is thrown away with the dry run: no fingerprint for a key that will never exist.
    const marker = generatedFingerprint && `<redacted ${generatedFingerprint.slice(0, 19)}>`
    const shown = marker
      ? {
          ...base,
          writeKeys: base.writeKeys.map((k) => ({...k, fingerprint: undefined})),
          diffs: diffs.map((d) => ({...d, diff: d.diff.replaceAll(marker, '<redacted: a new key, made when run>')})),
        }
      : base
    return {
      ...shown,
      dryRun: true,
      nodes: plannedOutcomes(plans),
      kubeadmConfig,
      unchanged: unchangedNodes && kubeadmConfig.status !== 'planned',
      next: [],
    }
  }

  if (!unchangedNodes && deps.confirm) {
    const touched = plans.filter((p) => p.files.length > 0).map((p) => p.node)
    if (
      !(await deps.confirm(
        `Enable encryption at rest on ${touched.join(', ')} (the kube-apiserver on each restarts, one at a time)?`,
      ))
    ) {
      throw new PluginError('precondition', 'ABORTED', 'Aborted: nothing was changed.')
    }
  }
  const backupDir = backupDirFor(deps.now?.() ?? new Date())
  let result: EnableResult | undefined
  const done = (): EnableResult => result!
  const stages: Array<Stage<EnableStage>> = [
    {
      name: 'rollout',
      run: async () => {
        const rollout = await rollOut(plans, {
          files: (n) => deps.files(n),
          waiter: deps.waiter,
          backupDir,
          timeoutMs: options.timeoutMs ?? 300_000,
          onEvent: deps.onEvent,
          signal: deps.signal,
          stage: 'rollout',
        })
        const anyChanged = rollout.nodes.some((n) => n.status === 'changed')
        const usedBackups = rollout.nodes.some((n) => n.backups.length > 0)
        result = {
          ...base,
          dryRun: false,
          backupDir: anyChanged || usedBackups ? backupDir : undefined,
          nodes: rollout.nodes,
          kubeadmConfig: {status: 'skipped', changes: [], message: 'not reached'},
          unchanged: false,
          next: [],
        }
        // A failure from here on still reports what was done (nodes changed, rolled back, not reached).
        if (rollout.failure) throw rollout.failure
        result.kubeadmConfig =
          options.kubeadmConfig === false
            ? {status: 'skipped' as const, changes: []}
            : await syncKubeadmConfig(deps.objects, {kind: 'enable', settings: kubeadmSettings}, false)
        result.unchanged = !anyChanged && result.kubeadmConfig.status !== 'updated'
        return undefined
      },
    },
  ]
  // The seed's "Verifying that data is encrypted", then "Ensure all Secrets are encrypted". A Ctrl-C
  // during the rollout stops before them: every node is done, they are what is left.
  const notStarted = 'not started; every node has the config'
  if (options.verify !== false)
    stages.push({
      name: 'verify',
      notStarted,
      run: async () => {
        done().verify = await runVerify(deps, planned)
        return undefined
      },
    })
  if (options.rewrite)
    stages.push({
      name: 'rewrite',
      notStarted,
      run: async () => {
        const r = done()
        deps.onEvent?.({type: 'info', message: 'rewriting existing objects'})
        if (!deps.followUps)
          throw preconditionError('REWRITE_UNAVAILABLE', 'The rewrite of existing objects is not available here.', {
            hint: `Run \`${REWRITE_NEXT}\`.`,
          })
        r.rewrite = await deps.followUps.rewrite(planned, deps.signal)
        if (deps.signal?.aborted)
          throw interruptedError(
            `stage rewrite (${r.rewrite.rewritten} object(s) rewritten so far; every node has the config)`,
          )
        if (r.rewrite.failed > 0 || r.rewrite.incomplete.length > 0)
          r.next.push(`${REWRITE_NEXT}   # ${r.rewrite.failed} object(s) failed; run again after fixing the cause`)
        return undefined
      },
    })
  await runStages(stages, {signal: deps.signal, partialResult: () => result})
  const r = done()
  if (!options.rewrite) r.next.push(`${REWRITE_NEXT}   # existing objects stay as they were stored until rewritten`)
  if (r.verify && !r.verify.ok) r.next.unshift('kubectl encryption verify   # then `kubectl encryption status`')
  return r
}

async function runVerify(deps: EnableDeps, config: StageConfig): Promise<EnableVerify | undefined> {
  if (!deps.followUps) return undefined
  deps.onEvent?.({type: 'info', message: 'verifying that new writes are encrypted'})
  try {
    return await deps.followUps.verify(config)
  } catch (error) {
    // Encryption is on; only the proof failed (e.g. etcd unreachable): say so, exit 5, keep the change.
    return {ok: false, problems: [], notRun: error instanceof Error ? error.message : String(error)}
  }
}

/**
 * A config the nodes already run is reused, never regenerated; but when the user asked for a
 * provider or resources it does not give, saying "already enabled as asked" would be false (and
 * leave, say, ConfigMaps in plaintext). Refused with what differs and how to get it.
 */
function checkExistingAsAsked(
  configText: string,
  options: EnableOptions,
  found: {node: string; configPath?: string},
): void {
  if (!options.provider && !options.resources) return
  const keys = writeKeys(configText)
  const differences: string[] = []
  for (const resource of options.resources ?? ['secrets']) {
    const rule = keys.find((k) => k.resources.includes(resource))
    if (!rule) differences.push(`${resource}: not covered`)
    else if (options.provider && rule.provider !== options.provider)
      differences.push(`${resource}: written with ${rule.provider}, not ${options.provider}`)
  }
  if (differences.length === 0) return
  throw preconditionError(
    'ENABLED_DIFFERENTLY',
    `Encryption is already enabled on ${found.node} (${found.configPath ?? 'its config'}), but not as asked: ${differences.join('; ')}. Nothing was changed.`,
    {
      hint: 'To change the provider or key use `kubectl encryption rotate --provider ...`; to cover other resources write the config you want and pass it with --config (see `kubectl encryption config validate`).',
    },
  )
}
