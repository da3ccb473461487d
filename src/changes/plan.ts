import {
  APISERVER_MANIFEST_PATH,
  checkManifest,
  disableEncryptionInManifest,
  enableEncryptionInManifest,
  kmsSocketDirs,
  type ManifestEncryptionState,
  readManifestEncryption,
  setConfigHashAnnotation,
} from '../controlplane/apiserver-manifest.js'
import {maskSecrets} from '../encryption/config/edit.js'
import {configHash, keyFingerprint} from '../encryption/fingerprint.js'
import {checkConfigBytes} from '../encryption/config/load.js'
import {PluginError, preconditionError} from '../errors.js'
import {unifiedDiff} from '../output/diff.js'
import type {RemoteFiles} from '../ssh/remote-files.js'
import type {NodeFileChange, NodeOutcome, NodePlan} from './rollout.js'

/** One control-plane node as read over SSH before a change (docs/architecture.md §3 step 1). */
export interface NodeSnapshot {
  node: string
  manifest: string
  flags: ManifestEncryptionState
  /** The config file the change is about (the flag's path, else the requested path). */
  configPath: string
  config?: string
  configHash?: string
}

export async function readNode(node: string, files: RemoteFiles, defaultConfigPath: string): Promise<NodeSnapshot> {
  const manifestBytes = await files.read(APISERVER_MANIFEST_PATH)
  if (manifestBytes === undefined) {
    throw preconditionError('MANIFEST_MISSING', `Node ${node} has no ${APISERVER_MANIFEST_PATH}.`, {
      hint: 'The plugin edits kubeadm-style static pods; is the kube-apiserver on this node run some other way?',
    })
  }
  const manifest = manifestBytes.toString('utf8')
  const flags = readManifestEncryption(manifest)
  const configPath = flags.configPath ?? defaultConfigPath
  const config = (await files.read(configPath))?.toString('utf8')
  return {node, manifest, flags, configPath, config, configHash: config === undefined ? undefined : configHash(config)}
}

/** The seed's HA caution: every node must run the same config before anything changes (unless --force). */
export function checkNodesAgree(
  snapshots: NodeSnapshot[],
  force: boolean,
): {agree: boolean; hashes: Record<string, string | null>} {
  const hashes = Object.fromEntries(snapshots.map((s) => [s.node, s.flags.configPath ? (s.configHash ?? null) : null]))
  const distinct = new Set(Object.values(hashes).map((h) => h ?? 'none'))
  const agree = distinct.size <= 1
  if (!agree && !force) {
    const lines = snapshots.map(
      (s) =>
        `${s.node}: ${s.flags.configPath ? `${s.configPath} ${s.configHash?.slice(0, 19) ?? 'missing'}` : 'encryption off'}`,
    )
    throw preconditionError(
      'NODES_DISAGREE',
      `The control-plane nodes do not run the same encryption config (${lines.join('; ')}).`,
      {
        hint: 'Make the nodes agree first (`kubectl encryption status` shows them), or pass --force CONTEXT (the context name) to overwrite every node with one config.',
      },
    )
  }
  return {agree, hashes}
}

export interface ChangeSpec {
  /** The new config for this node (undefined: leave the file as it is). */
  configText?: string
  /** Where the config goes. */
  configPath: string
  manifest: 'enable' | 'disable' | 'keep'
  automaticReload: boolean
}

/** Steps 1–2 of the safe order: compute and validate every node's new files; nothing is written. */
export function planNode(snapshot: NodeSnapshot, spec: ChangeSpec): NodePlan {
  const files: NodeFileChange[] = []
  const newConfig = spec.configText
  if (newConfig !== undefined && newConfig !== snapshot.config) {
    const check = checkConfigBytes(Buffer.from(newConfig), spec.configPath, {automaticReload: spec.automaticReload})
    if (check.errors.length > 0) {
      throw new PluginError(
        'precondition',
        'CONFIG_INVALID',
        `The new encryption config for ${snapshot.node} would not load: ${check.message}`,
        {
          hint: 'Nothing was changed. Fix the config (kubectl encryption config validate) and run again.',
        },
      )
    }
    files.push({
      path: spec.configPath,
      before: snapshot.config,
      after: newConfig,
      kind: 'config',
      mode: 0o600,
      uid: 0,
      gid: 0,
      changes: [`wrote ${configHash(newConfig).slice(0, 19)}…`],
    })
  }
  const effectiveConfig = newConfig ?? snapshot.config
  let manifest = snapshot.manifest
  const manifestChanges: string[] = []
  const apply = (edit: {text: string; changes: string[]}) => {
    manifest = edit.text
    manifestChanges.push(...edit.changes)
  }
  if (spec.manifest === 'enable') {
    const socketDirs =
      effectiveConfig === undefined
        ? []
        : kmsSocketDirs(checkConfigBytes(Buffer.from(effectiveConfig), '<config>').config)
    apply(
      enableEncryptionInManifest(manifest, {
        configPath: spec.configPath,
        automaticReload: spec.automaticReload,
        socketDirs,
      }),
    )
  }
  if (spec.manifest === 'disable') {
    // The KMS sockets of the config being removed: their mounts go with it, as enable added them.
    const socketDirs =
      snapshot.config === undefined
        ? []
        : kmsSocketDirs(checkConfigBytes(Buffer.from(snapshot.config), '<config>').config)
    apply(disableEncryptionInManifest(manifest, {socketDirs}))
    apply(setConfigHashAnnotation(manifest, undefined))
  } else if (!spec.automaticReload && effectiveConfig !== undefined) {
    // Without automatic reload the apiserver reads the file only at start: restart it through the manifest.
    apply(setConfigHashAnnotation(manifest, configHash(effectiveConfig)))
  } else if (spec.automaticReload) {
    apply(setConfigHashAnnotation(manifest, undefined))
  }
  if (manifest !== snapshot.manifest) {
    checkManifest(manifest)
    files.push({
      path: APISERVER_MANIFEST_PATH,
      before: snapshot.manifest,
      after: manifest,
      kind: 'manifest',
      changes: manifestChanges,
    })
  }
  const configChanged = files.some((f) => f.kind === 'config')
  const manifestChanged = files.some((f) => f.kind === 'manifest')
  const effect: NodePlan['effect'] = manifestChanged
    ? {kind: 'restart'}
    : configChanged && spec.automaticReload
      ? {kind: 'reload', configHash: configHash(effectiveConfig ?? '')}
      : {kind: 'none'}
  return {node: snapshot.node, files, effect}
}

export interface FileDiff {
  node: string
  path: string
  /** Unified diff with key secrets masked. */
  diff: string
}

export function planDiffs(plans: NodePlan[]): FileDiff[] {
  return plans.flatMap((plan) =>
    plan.files.map((f) => ({
      node: plan.node,
      path: f.path,
      diff: unifiedDiff(f.path, f.before === undefined ? undefined : maskSecrets(f.before), maskSecrets(f.after)),
    })),
  )
}

/** Outcomes for a dry run: what each node would get. */
export function plannedOutcomes(plans: NodePlan[]): NodeOutcome[] {
  return plans.map((p) => ({
    node: p.node,
    status: p.files.length === 0 ? 'unchanged' : 'planned',
    files: p.files.map((f) => ({path: f.path, kind: f.kind, changes: f.changes})),
    backups: [],
    waitedFor: p.files.length === 0 ? undefined : p.effect.kind,
  }))
}

/** Key names and fingerprints a config writes with, per resources entry (never key bytes). */
export interface WriteKey {
  resources: string[]
  provider: string
  key?: string
  fingerprint?: string
}

export function writeKeys(configText: string): WriteKey[] {
  const check = checkConfigBytes(Buffer.from(configText), '<config>')
  return (check.config?.resources ?? []).map((entry) => {
    const first = entry.providers[0] ?? {}
    const provider = Object.keys(first)[0] ?? 'unknown'
    const keyed = (first as Record<string, {keys?: Array<{name: string; secret: string}>}>)[provider]
    const key = keyed?.keys?.[0]
    return {
      resources: entry.resources,
      provider,
      key: key?.name,
      fingerprint: key ? keyFingerprint(key.secret) : undefined,
    }
  })
}

/**
 * Reads every node and picks the config an edit starts from. All nodes must run one config (the
 * seed's HA caution), except after an interrupted run of this same edit: then some nodes have the
 * edited config (which the edit leaves unchanged) and the others the one before; the edited one is
 * rolled on, so a key already on a node is never replaced by a new one.
 */
export async function snapshotsForEdit(
  deps: {nodes(): Promise<string[]>; files(node: string): RemoteFiles},
  edit: (config: string) => string,
  force: boolean,
): Promise<{snapshots: NodeSnapshot[]; source: string; target: string}> {
  const names = await deps.nodes()
  if (names.length === 0) throw preconditionError('NO_CONTROL_PLANE', 'No control-plane nodes found.')
  const snapshots: NodeSnapshot[] = []
  for (const node of names) snapshots.push(await readNode(node, deps.files(node), '/etc/kubernetes/enc/enc.yaml'))
  const off = snapshots.filter((s) => s.flags.configPath === undefined || s.config === undefined)
  if (off.length > 0) {
    throw preconditionError(
      'ENCRYPTION_NOT_ENABLED',
      `Encryption is not enabled on ${off.map((s) => s.node).join(', ')} (no --encryption-provider-config, or its file is missing).`,
      {
        hint: 'Run `kubectl encryption enable` first.',
      },
    )
  }
  return {snapshots, ...editBase(snapshots, edit, force)}
}

/**
 * The config an edit starts from (`source`) and the one every node gets (`target`), for nodes that
 * all have a config: one config everywhere, or an interrupted run of this edit (two configs, one
 * already edited). Anything else is refused (NODES_DISAGREE) unless `force`: then the first node's.
 */
export function editBase(
  snapshots: NodeSnapshot[],
  edit: (config: string) => string,
  force: boolean,
): {source: string; target: string} {
  const texts = [...new Set(snapshots.map((s) => s.config as string))]
  if (texts.length === 1) return {source: texts[0] as string, target: edit(texts[0] as string)}
  const fixed = texts.filter((t) => edit(t) === t)
  if (texts.length === 2 && fixed.length === 1) {
    const target = fixed[0] as string
    return {source: texts.find((t) => t !== target) as string, target}
  }
  if (!force) checkNodesAgree(snapshots, false)
  const first = snapshots[0]?.config as string
  return {source: first, target: edit(first)}
}
