import {DEFAULT_CONFIG_PATH} from '../controlplane/apiserver-manifest.js'
import {type KeyedProvider, newConfig} from '../encryption/config-edit.js'
import {configHash} from '../encryption/fingerprint.js'
import {PluginError, preconditionError} from '../errors.js'
import {backupDirFor} from '../ssh/remote-files.js'
import {checkNodesAgree, type FileDiff, planDiffs, planNode, plannedOutcomes, readNode, type WriteKey, writeKeys} from './control-plane-change.js'
import type {ControlPlaneDeps} from './control-plane-deps.js'
import {type KubeadmConfigOutcome, syncKubeadmConfig} from './kubeadm-config-sync.js'
import {type NodeOutcome, rollOut} from './node-rollout.js'

export interface EnableOptions {
  /** Path of the config on every node (default /etc/kubernetes/enc/enc.yaml). */
  configPath?: string
  /** The user's own config (already read from --config FILE); else one is generated. */
  configText?: string
  provider?: KeyedProvider
  resources?: string[]
  automaticReload?: boolean
  force?: boolean
  dryRun?: boolean
  /** Keep kubeadm's ClusterConfiguration in step (default true). */
  kubeadmConfig?: boolean
  timeoutMs?: number
}

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
  /** Everything already as asked: nothing written. */
  unchanged: boolean
}

/**
 * `kubectl encryption enable`: one config on every control-plane node (root 0600), each node's
 * kube-apiserver manifest pointed at it, one node at a time in the safe order (DESIGN.md §3), then
 * kubeadm-config kept in step. Idempotent; a key already on a node is never replaced by a new one.
 */
export async function enableEncryption(options: EnableOptions, deps: ControlPlaneDeps): Promise<EnableResult> {
  const configPath = options.configPath ?? DEFAULT_CONFIG_PATH
  const automaticReload = options.automaticReload ?? false
  const names = await deps.nodes()
  if (names.length === 0) throw preconditionError('NO_CONTROL_PLANE', 'No control-plane nodes found (no nodes with the control-plane role and no kube-apiserver mirror pods).', {hint: 'Check the context: `kubectl get nodes -l node-role.kubernetes.io/control-plane`.'})
  const snapshots = []
  for (const node of names) snapshots.push(await readNode(node, deps.files(node), configPath))
  const force = options.force ?? false
  checkNodesAgree(snapshots, force)

  // The config: the user's file, else what a node already has at the path (never regenerated), else new.
  const existing = snapshots.find((s) => s.config !== undefined && s.configPath === configPath)
  const enabledElsewhere = snapshots.find((s) => s.flags.configPath !== undefined && s.config !== undefined)
  let configText: string
  let configSource: EnableResult['configSource']
  if (options.configText !== undefined) {
    configText = options.configText
    configSource = 'file'
    if (enabledElsewhere && enabledElsewhere.config !== configText && !force) {
      throw preconditionError('ALREADY_ENABLED', `Encryption is already enabled on ${enabledElsewhere.node} with a different config (${enabledElsewhere.configPath}); replacing it could make stored data unreadable.`, {
        hint: 'Change keys with `kubectl encryption rotate`, or pass --force if the new config keeps every key still in use.',
      })
    }
  } else if (existing?.config !== undefined) {
    configText = existing.config
    configSource = 'existing'
  } else if (enabledElsewhere?.config !== undefined) {
    configText = enabledElsewhere.config
    configSource = 'existing'
  } else {
    configText = newConfig({provider: options.provider, resources: options.resources}).text
    configSource = 'generated'
  }

  const plans = snapshots.map((s) => planNode({...s, configPath}, {configText, configPath, manifest: 'enable', automaticReload}))
  const diffs = planDiffs(plans)
  const kubeadmSettings = {configPath, automaticReload}
  const base = {configPath, configSource, configHash: configHash(configText), writeKeys: writeKeys(configText), diffs}
  const unchangedNodes = plans.every((p) => p.files.length === 0)

  if (options.dryRun) {
    const kubeadmConfig = options.kubeadmConfig === false ? {status: 'skipped' as const, changes: []} : await syncKubeadmConfig(deps.objects, {kind: 'enable', settings: kubeadmSettings}, true)
    if (kubeadmConfig.diff) diffs.push({node: '(cluster)', path: 'kube-system/configmap/kubeadm-config', diff: kubeadmConfig.diff})
    return {...base, dryRun: true, nodes: plannedOutcomes(plans), kubeadmConfig, unchanged: unchangedNodes && kubeadmConfig.status !== 'planned'}
  }

  if (!unchangedNodes && deps.confirm) {
    const touched = plans.filter((p) => p.files.length > 0).map((p) => p.node)
    if (!(await deps.confirm(`Enable encryption at rest on ${touched.join(', ')} (the kube-apiserver on each restarts, one at a time)?`))) {
      throw new PluginError('precondition', 'ABORTED', 'Aborted: nothing was changed.')
    }
  }
  const backupDir = backupDirFor(deps.now?.() ?? new Date())
  const rollout = await rollOut(plans, {files: (n) => deps.files(n), waiter: deps.waiter, backupDir, timeoutMs: options.timeoutMs ?? 300_000, onEvent: deps.onEvent})
  if (rollout.failure) throw rollout.failure
  const kubeadmConfig = options.kubeadmConfig === false ? {status: 'skipped' as const, changes: []} : await syncKubeadmConfig(deps.objects, {kind: 'enable', settings: kubeadmSettings}, false)
  const anyChanged = rollout.nodes.some((n) => n.status === 'changed')
  return {
    ...base,
    dryRun: false,
    backupDir: anyChanged ? backupDir : undefined,
    nodes: rollout.nodes,
    kubeadmConfig,
    unchanged: !anyChanged && kubeadmConfig.status !== 'updated',
  }
}
