import {configHash} from '../encryption/fingerprint.js'
import {interruptedError, PluginError} from '../errors.js'
import type {RemoteFiles} from '../ssh/remote-files.js'

/**
 * The safe order of docs/architecture.md §3 for one change to the control plane, one node at a time:
 * the new files are already computed and validated (steps 1–2) when a plan reaches here; per node
 * the live files are backed up outside /etc/kubernetes/manifests (3), written atomically (4), the
 * change is awaited (5), and on failure the backups are put back and awaited again (6). The next
 * node is only touched after the previous one came back (7).
 */
export interface NodeFileChange {
  path: string
  /** Live content; undefined for a new file. */
  before?: string
  after: string
  kind: 'config' | 'manifest'
  /** For the written file (encryption configs: root 0600); default: keep the live file's. */
  mode?: number
  uid?: number
  gid?: number
  changes: string[]
}

/** How a node shows it took the change. */
export type NodeEffect =
  /** The manifest changed: the kubelet recreates the pod (mirror pod config hash) and /readyz answers. */
  | {kind: 'restart'}
  /** Only the config changed and automatic reload is on: the reload metrics show this config hash. */
  | {kind: 'reload'; configHash: string}
  | {kind: 'none'}

export interface NodePlan {
  node: string
  /** Only files whose content changes. */
  files: NodeFileChange[]
  effect: NodeEffect
}

export interface ApiserverState {
  /** `kubernetes.io/config.hash` of the node's kube-apiserver mirror pod. */
  mirrorHash?: string
}

/** Waits for one node's apiserver; throws a PluginError (code WAIT_TIMEOUT) when time runs out. */
export interface ApiserverWaiter {
  snapshot(node: string): Promise<ApiserverState>
  /** Until the mirror pod's hash differs from `before` and the node's apiserver answers /readyz. */
  waitRestarted(node: string, before: ApiserverState, timeoutMs: number): Promise<void>
  /** Until the mirror pod's hash is `original`'s again (the kubelet hashes the file) and /readyz answers. */
  waitRestored(node: string, original: ApiserverState, timeoutMs: number): Promise<void>
  /** Until the node's apiserver reports `configHash` as its loaded config (reload metrics). */
  waitConfigLoaded(node: string, configHash: string, timeoutMs: number): Promise<void>
}

export type RolloutEvent =
  | {type: 'node-start'; node: string; files: string[]}
  | {type: 'backup'; node: string; path: string; backup: string}
  | {type: 'write'; node: string; path: string}
  | {type: 'wait'; node: string; effect: NodeEffect['kind']}
  | {type: 'node-done'; node: string; status: NodeStatus}
  | {type: 'rollback'; node: string; reason: string}

export type NodeStatus = 'changed' | 'unchanged' | 'rolled-back' | 'rollback-failed' | 'not-reached' | 'planned'

export interface NodeOutcome {
  node: string
  status: NodeStatus
  files: Array<{path: string; kind: NodeFileChange['kind']; changes: string[]}>
  /** Backup file paths on the node (outside /etc/kubernetes/manifests). */
  backups: string[]
  waitedFor?: NodeEffect['kind']
  error?: string
}

export interface RolloutDeps {
  files(node: string): RemoteFiles
  waiter: ApiserverWaiter
  /** e.g. /etc/kubernetes/tmp/kubectl-encryption-<timestamp> */
  backupDir: string
  timeoutMs: number
  onEvent?: (event: RolloutEvent) => void
  /** Stop before the next node (Ctrl-C): the failure is INTERRUPTED, naming `stage` and the node. */
  signal?: AbortSignal
  stage?: string
}

export interface RolloutResult {
  nodes: NodeOutcome[]
  /** Set when a node failed: rolled back (exit 6) or the rollback failed too (exit 7). */
  failure?: PluginError
}

const dirOf = (path: string) => path.slice(0, path.lastIndexOf('/')) || '/'

async function awaitEffect(deps: RolloutDeps, node: string, effect: NodeEffect, before: ApiserverState): Promise<void> {
  if (effect.kind === 'restart') await deps.waiter.waitRestarted(node, before, deps.timeoutMs)
  else if (effect.kind === 'reload') await deps.waiter.waitConfigLoaded(node, effect.configHash, deps.timeoutMs)
}

/** Applies the plans in order; stops at the first node that fails, after rolling it back. */
export async function rollOut(plans: NodePlan[], deps: RolloutDeps): Promise<RolloutResult> {
  const outcomes: NodeOutcome[] = plans.map((p) => ({
    node: p.node,
    status: p.files.length === 0 ? 'unchanged' : 'not-reached',
    files: p.files.map((f) => ({path: f.path, kind: f.kind, changes: f.changes})),
    backups: [],
  }))
  for (const [index, plan] of plans.entries()) {
    const outcome = outcomes[index] as NodeOutcome
    if (plan.files.length > 0 && deps.signal?.aborted) {
      const done = outcomes
        .slice(0, index)
        .filter((o) => o.status === 'changed')
        .map((o) => o.node)
      return {
        nodes: outcomes,
        failure: interruptedError(
          `${deps.stage ? `stage ${deps.stage} ` : ''}(node ${plan.node}, not changed; ${done.length > 0 ? `changed: ${done.join(', ')}` : 'no node changed'})`,
        ),
      }
    }
    if (plan.files.length === 0) {
      deps.onEvent?.({type: 'node-done', node: plan.node, status: 'unchanged'})
      continue
    }
    deps.onEvent?.({type: 'node-start', node: plan.node, files: plan.files.map((f) => f.path)})
    const files = deps.files(plan.node)
    const before = await deps.waiter.snapshot(plan.node)
    // Step 3: back up every live file first; nothing is written before all backups exist.
    const written: Array<{change: NodeFileChange; backup?: string}> = []
    for (const change of plan.files) {
      let backup: string | undefined
      if (change.before !== undefined) {
        backup = await files.backup(change.path, deps.backupDir)
        outcome.backups.push(backup)
        deps.onEvent?.({type: 'backup', node: plan.node, path: change.path, backup})
      }
      written.push({change, backup})
    }
    try {
      // Step 4: config before manifest, so the apiserver never starts pointing at a missing file.
      for (const {change} of [...written].sort((a, b) =>
        a.change.kind === b.change.kind ? 0 : a.change.kind === 'config' ? -1 : 1,
      )) {
        if (change.kind === 'config') await files.mkdir(dirOf(change.path), 0o700)
        await files.writeAtomic(change.path, change.after, {mode: change.mode, uid: change.uid, gid: change.gid})
        deps.onEvent?.({type: 'write', node: plan.node, path: change.path})
      }
      // Step 5
      deps.onEvent?.({type: 'wait', node: plan.node, effect: plan.effect.kind})
      outcome.waitedFor = plan.effect.kind
      await awaitEffect(deps, plan.node, plan.effect, before)
      outcome.status = 'changed'
      deps.onEvent?.({type: 'node-done', node: plan.node, status: 'changed'})
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      outcome.error = reason
      deps.onEvent?.({type: 'rollback', node: plan.node, reason})
      outcome.status = await rollBack(plan, written, deps, files, before)
      deps.onEvent?.({type: 'node-done', node: plan.node, status: outcome.status})
      const backups = outcome.backups.length > 0 ? outcome.backups.join(', ') : '(none: the files were new)'
      const later = plans.slice(index + 1).map((p) => p.node)
      const untouched = later.length > 0 ? ` Nodes not touched: ${later.join(', ')}.` : ''
      const failure =
        outcome.status === 'rolled-back'
          ? new PluginError(
              'rolledBack',
              'NODE_ROLLED_BACK',
              `Node ${plan.node} did not take the change (${reason}); it was rolled back from ${backups}.${untouched}`,
              {
                hint: `Look at the kube-apiserver on ${plan.node} (crictl ps -a; crictl logs) for why it failed, then run the command again. Backups are kept in ${deps.backupDir} on the node.`,
                cause: error,
              },
            )
          : new PluginError(
              'rollbackFailed',
              'NODE_ROLLBACK_FAILED',
              `Node ${plan.node} did not take the change (${reason}) and the rollback did not bring it back. Manual action needed: restore ${backups} on ${plan.node}.${untouched}`,
              {
                hint: `On ${plan.node}: copy the backups from ${deps.backupDir} back over ${plan.files.map((f) => f.path).join(' and ')}, then check the kube-apiserver pod.`,
                cause: error,
              },
            )
      return {nodes: outcomes, failure}
    }
  }
  return {nodes: outcomes}
}

/** Step 6: put every backup back (a new file is removed), then wait for the apiserver again. */
async function rollBack(
  plan: NodePlan,
  written: Array<{change: NodeFileChange; backup?: string}>,
  deps: RolloutDeps,
  files: RemoteFiles,
  original: ApiserverState,
): Promise<NodeStatus> {
  try {
    // Manifest first, so the apiserver stops reading a config that is about to change back.
    for (const {change, backup} of [...written].sort((a, b) =>
      a.change.kind === b.change.kind ? 0 : a.change.kind === 'manifest' ? -1 : 1,
    )) {
      if (backup) await files.restore(backup, change.path)
      else await files.remove(change.path)
    }
    const manifestChanged = written.some((w) => w.change.kind === 'manifest')
    if (manifestChanged) await deps.waiter.waitRestored(plan.node, original, deps.timeoutMs)
    else if (plan.effect.kind === 'reload') {
      const old = written.find((w) => w.change.kind === 'config')?.change.before
      if (old !== undefined) {
        await deps.waiter.waitConfigLoaded(plan.node, configHash(old), deps.timeoutMs)
      }
    }
    return 'rolled-back'
  } catch {
    return 'rollback-failed'
  }
}
