import {posix} from 'node:path'

import {type Document, isMap, isScalar, parseDocument, type YAMLMap, type YAMLSeq} from 'yaml'

import type {EncryptionConfiguration} from '../encryption/config/model.js'
import {PluginError} from '../errors.js'
import {asMap, asSeq, mapGet, mapGetText, scalarText, toStringLikeSource} from './yaml-layout.js'

/**
 * Editing the kube-apiserver static-pod manifest (seed "Encrypting your data"; docs/kubernetes-behaviour.md §5.1): the
 * `--encryption-provider-config` flag (and automatic reload), a read-only volumeMount and a
 * DirectoryOrCreate hostPath volume for the config's directory. Edits go through the YAML Document
 * so comments and layout survive; an edit that changes nothing returns the input unchanged.
 */
export const CONFIG_FLAG = '--encryption-provider-config'
export const RELOAD_FLAG = '--encryption-provider-config-automatic-reload'
export const DEFAULT_CONFIG_PATH = '/etc/kubernetes/enc/enc.yaml'
export const APISERVER_MANIFEST_PATH = '/etc/kubernetes/manifests/kube-apiserver.yaml'

export interface ManifestEncryptionSettings {
  /** Absolute path of the EncryptionConfiguration file, the same on the host and in the pod. */
  configPath: string
  /** true: set `…-automatic-reload=true`; false: remove the flag; undefined: leave as is. */
  automaticReload?: boolean
  /** Preferred volume name (the seed's `enc`). */
  volumeName?: string
  /** Directories of the config's KMS plugin sockets: mounted (hostPath, same path) unless already visible. */
  socketDirs?: string[]
}

export interface ManifestEdit {
  text: string
  changed: boolean
  /** Human-readable list of what changed, e.g. "added flag --encryption-provider-config". */
  changes: string[]
}

/** What the manifest says about encryption (for status, and to pick up an existing setup). */
export interface ManifestEncryptionState {
  configPath?: string
  automaticReload: boolean
  /** Where the flags live in the container. */
  flagsIn: 'command' | 'args'
}

interface ApiserverContainer {
  doc: Document
  container: YAMLMap
  /** The sequence holding the flags (command or args). */
  flags: YAMLSeq
  flagsIn: 'command' | 'args'
  podSpec: YAMLMap
}

function invalid(message: string, hint?: string): PluginError {
  return new PluginError('precondition', 'MANIFEST_INVALID', message, {
    hint:
      hint ??
      'Check /etc/kubernetes/manifests/kube-apiserver.yaml on the node; the plugin edits only kubeadm-style static-pod manifests.',
  })
}

function parseManifest(text: string): Document {
  const doc = parseDocument(text, {keepSourceTokens: false})
  if (doc.errors.length > 0)
    throw invalid(`The kube-apiserver manifest is not valid YAML: ${doc.errors[0]?.message.split('\n')[0]}`)
  return doc
}

const isFlag = (node: unknown) => scalarText(node)?.startsWith('--') === true

function findContainer(doc: Document): ApiserverContainer {
  const podSpec = asMap(doc.get('spec', true))
  const containers = asSeq(podSpec?.get('containers', true))
  if (!podSpec || !containers) throw invalid('The manifest has no spec.containers; is it a Pod manifest?')
  const isApiserver = (c: unknown) => {
    if (mapGetText(c, 'name') === 'kube-apiserver') return true
    const first = asSeq(mapGet(c, 'command'))?.items[0]
    return scalarText(first) !== undefined && posix.basename(scalarText(first) ?? '') === 'kube-apiserver'
  }
  const container = asMap(containers.items.find(isApiserver))
  if (!container) throw invalid('The manifest has no kube-apiserver container.')
  const command = asSeq(container.get('command', true))
  const args = asSeq(container.get('args', true))
  // Flags live where they already are: kubeadm puts them in `command`, some installers in `args`.
  if (command?.items.some(isFlag)) return {doc, container, flags: command, flagsIn: 'command', podSpec}
  if (args) return {doc, container, flags: args, flagsIn: 'args', podSpec}
  if (command) return {doc, container, flags: command, flagsIn: 'command', podSpec}
  throw invalid('The kube-apiserver container has neither command nor args.')
}

function flagIndex(seq: YAMLSeq, flag: string): number {
  return seq.items.findIndex((item) => {
    const text = scalarText(item)
    return text === flag || text?.startsWith(`${flag}=`) === true
  })
}

function flagValue(seq: YAMLSeq, flag: string): string | undefined {
  const i = flagIndex(seq, flag)
  if (i < 0) return undefined
  const text = scalarText(seq.items[i]) ?? ''
  if (text.startsWith(`${flag}=`)) return text.slice(flag.length + 1)
  // `--flag value` as two items
  const next = scalarText(seq.items[i + 1])
  return next !== undefined && !next.startsWith('--') ? next : ''
}

/** Sets `--flag=value`, replacing an existing value in place, else inserting in sorted position. */
function setFlag(doc: Document, seq: YAMLSeq, flag: string, value: string, changes: string[]): void {
  const want = `${flag}=${value}`
  const i = flagIndex(seq, flag)
  if (i >= 0) {
    const item = seq.items[i]
    const text = scalarText(item)
    if (text === want) return
    if (text === flag) seq.items.splice(i + 1, 1) // drop the separate value item
    if (isScalar(item)) item.value = want
    else seq.items[i] = doc.createNode(want)
    changes.push(`set flag ${want}`)
    return
  }
  // kubeadm writes flags sorted; keep that order when the list is sorted, otherwise append.
  const flagTexts = seq.items.map((item) => scalarText(item)).filter((t): t is string => t?.startsWith('--') === true)
  const sorted = flagTexts.every((t, k) => k === 0 || (flagTexts[k - 1] ?? '') <= t)
  let at = seq.items.length
  if (sorted) {
    const next = seq.items.findIndex((item) => {
      const text = scalarText(item)
      return text?.startsWith('--') === true && text > want
    })
    if (next >= 0) at = next
  }
  seq.items.splice(at, 0, doc.createNode(want))
  changes.push(`added flag ${want}`)
}

function removeFlag(seq: YAMLSeq, flag: string, changes: string[]): void {
  for (let i = flagIndex(seq, flag); i >= 0; i = flagIndex(seq, flag)) {
    const text = scalarText(seq.items[i])
    const next = scalarText(seq.items[i + 1])
    seq.items.splice(i, text === flag && next !== undefined && !next.startsWith('--') ? 2 : 1)
    changes.push(`removed flag ${text?.split('=')[0]}`)
  }
}

interface VolumeInfo {
  name: string
  hostPath?: string
}

function volumesOf(podSpec: YAMLMap): VolumeInfo[] {
  return (asSeq(podSpec.get('volumes', true))?.items ?? []).map((v) => ({
    name: mapGetText(v, 'name') ?? '',
    hostPath: mapGetText(mapGet(v, 'hostPath'), 'path'),
  }))
}

function mountsOf(container: YAMLMap): Array<{name: string; mountPath: string}> {
  return (asSeq(container.get('volumeMounts', true))?.items ?? []).map((m) => ({
    name: mapGetText(m, 'name') ?? '',
    mountPath: mapGetText(m, 'mountPath') ?? '',
  }))
}

const within = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`)

/** Is the host directory already visible at the same path in the container (e.g. /etc/kubernetes mounted whole)? */
function coveredBy(c: ApiserverContainer, dir: string): {name: string; mountPath: string} | undefined {
  const volumes = volumesOf(c.podSpec)
  return mountsOf(c.container).find((m) => {
    if (!within(dir, m.mountPath)) return false
    const host = volumes.find((v) => v.name === m.name)?.hostPath
    return host !== undefined && posix.join(host, posix.relative(m.mountPath, dir)) === dir
  })
}

function ensureSeq(doc: Document, map: YAMLMap, key: string): YAMLSeq {
  const existing = asSeq(map.get(key, true))
  if (existing) return existing
  const seq = doc.createNode([]) as YAMLSeq
  map.set(key, seq)
  return seq
}

function freeVolumeName(c: ApiserverContainer, preferred: string): string {
  const taken = new Set([...volumesOf(c.podSpec).map((v) => v.name), ...mountsOf(c.container).map((m) => m.name)])
  if (!taken.has(preferred)) return preferred
  for (let n = 2; ; n++) if (!taken.has(`${preferred}-${n}`)) return `${preferred}-${n}`
}

function checkConfigPath(path: string): void {
  if (!posix.isAbsolute(path) || posix.normalize(path) !== path || path.endsWith('/')) {
    throw new PluginError(
      'usage',
      'CONFIG_PATH_INVALID',
      `The encryption config path ${JSON.stringify(path)} must be an absolute, normalised file path.`,
      {
        hint: `Use e.g. ${DEFAULT_CONFIG_PATH}.`,
      },
    )
  }
  if (within(path, '/etc/kubernetes/manifests')) {
    throw new PluginError(
      'usage',
      'CONFIG_PATH_INVALID',
      `The encryption config must not live in /etc/kubernetes/manifests (the kubelet would try to run it).`,
      {
        hint: `Use e.g. ${DEFAULT_CONFIG_PATH}.`,
      },
    )
  }
}

export function readManifestEncryption(text: string): ManifestEncryptionState {
  const c = findContainer(parseManifest(text))
  const configPath = flagValue(c.flags, CONFIG_FLAG)
  const reload = flagValue(c.flags, RELOAD_FLAG)
  return {
    configPath: configPath === '' ? undefined : configPath,
    automaticReload: reload !== undefined && ['', 'true', '1', 't', 'TRUE', 'True', 'T'].includes(reload),
    flagsIn: c.flagsIn,
  }
}

/** Points the apiserver at `configPath` and mounts its directory read-only. Idempotent. */
export function enableEncryptionInManifest(text: string, settings: ManifestEncryptionSettings): ManifestEdit {
  checkConfigPath(settings.configPath)
  const doc = parseManifest(text)
  const c = findContainer(doc)
  const changes: string[] = []
  setFlag(doc, c.flags, CONFIG_FLAG, settings.configPath, changes)
  if (settings.automaticReload === true) setFlag(doc, c.flags, RELOAD_FLAG, 'true', changes)
  if (settings.automaticReload === false) removeFlag(c.flags, RELOAD_FLAG, changes)

  const dir = posix.dirname(settings.configPath)
  if (!coveredBy(c, dir)) {
    // A mount at exactly this path from another host directory would hide ours: refuse, do not guess.
    const clash = mountsOf(c.container).find((m) => m.mountPath === dir)
    if (clash) {
      const host = volumesOf(c.podSpec).find((v) => v.name === clash.name)?.hostPath
      throw new PluginError(
        'precondition',
        'MANIFEST_MOUNT_CONFLICT',
        `The kube-apiserver container already mounts volume "${clash.name}" at ${dir}${host ? ` from ${host}` : ''}, not the host's ${dir}.`,
        {
          hint: 'Choose another config path with --config-path, or fix that volume by hand first.',
        },
      )
    }
    // Reuse a hostPath volume for this directory if there is one; otherwise add one under a free name.
    const existing = volumesOf(c.podSpec).find((v) => v.hostPath === dir)
    const name = existing?.name ?? freeVolumeName(c, settings.volumeName ?? 'enc')
    if (!existing) {
      ensureSeq(doc, c.podSpec, 'volumes').items.push(
        doc.createNode({hostPath: {path: dir, type: 'DirectoryOrCreate'}, name}),
      )
      changes.push(`added hostPath volume ${name} (${dir}, DirectoryOrCreate)`)
    }
    // `readOnly` (the seed's fragment spells it `readonly`, which the kubelet would ignore).
    ensureSeq(doc, c.container, 'volumeMounts').items.push(doc.createNode({mountPath: dir, name, readOnly: true}))
    changes.push(`added read-only volumeMount ${name} at ${dir}`)
  }
  for (const socketDir of settings.socketDirs ?? []) {
    if (coveredBy(c, socketDir)) continue
    const clash = mountsOf(c.container).find((m) => m.mountPath === socketDir)
    if (clash) {
      throw new PluginError(
        'precondition',
        'MANIFEST_MOUNT_CONFLICT',
        `The kube-apiserver container already mounts volume "${clash.name}" at ${socketDir}, not the host's ${socketDir} where the KMS plugin's socket is.`,
        {
          hint: 'Put the KMS socket in another directory, or fix that volume by hand first.',
        },
      )
    }
    const existing = volumesOf(c.podSpec).find((v) => v.hostPath === socketDir)
    const name = existing?.name ?? freeVolumeName(c, 'kms-socket')
    if (!existing) {
      ensureSeq(doc, c.podSpec, 'volumes').items.push(
        doc.createNode({hostPath: {path: socketDir, type: 'DirectoryOrCreate'}, name}),
      )
      changes.push(`added hostPath volume ${name} (${socketDir}, DirectoryOrCreate) for the KMS plugin socket`)
    }
    // Writable, as in the Kubernetes KMS task page: the apiserver connects to the plugin's socket there.
    ensureSeq(doc, c.container, 'volumeMounts').items.push(doc.createNode({mountPath: socketDir, name}))
    changes.push(`added volumeMount ${name} at ${socketDir}`)
  }
  if (changes.length === 0) return {text, changed: false, changes}
  return {text: toStringLikeSource(doc, text), changed: true, changes}
}

/** The directories of a config's KMS plugin sockets (`unix:///var/run/kmsplugin/socket.sock` -> `/var/run/kmsplugin`). */
export function kmsSocketDirs(config: EncryptionConfiguration | undefined): string[] {
  const dirs = new Set<string>()
  for (const entry of config?.resources ?? []) {
    for (const p of entry.providers ?? []) {
      const endpoint = p.kms?.endpoint
      if (!endpoint?.startsWith('unix:///')) continue
      dirs.add(posix.dirname(posix.normalize(endpoint.slice('unix://'.length))))
    }
  }
  return [...dirs].sort()
}

/**
 * Takes the flags out and the mount/volume of the config's directory, when nothing else uses them;
 * with `socketDirs` (the KMS plugin sockets of the config being removed), also the hostPath mount of
 * each socket directory that `enable`/`rotate` added (only a mount whose volume is that same host
 * directory: a wider mount such as /etc/kubernetes is not ours to remove).
 */
export function disableEncryptionInManifest(text: string, options: {socketDirs?: string[]} = {}): ManifestEdit {
  const doc = parseManifest(text)
  const c = findContainer(doc)
  const changes: string[] = []
  const configPath = flagValue(c.flags, CONFIG_FLAG)
  removeFlag(c.flags, CONFIG_FLAG, changes)
  removeFlag(c.flags, RELOAD_FLAG, changes)
  if (configPath) removeHostMount(c, posix.dirname(configPath), '', changes)
  for (const socketDir of options.socketDirs ?? []) removeHostMount(c, socketDir, ' for the KMS plugin socket', changes)
  if (changes.length === 0) return {text, changed: false, changes}
  return {text: toStringLikeSource(doc, text), changed: true, changes}
}

/** Removes the container's mount of host directory `dir` at `dir`, and its volume when nothing else mounts it. */
function removeHostMount(c: ApiserverContainer, dir: string, why: string, changes: string[]): void {
  const mounts = asSeq(c.container.get('volumeMounts', true))
  const volumes = asSeq(c.podSpec.get('volumes', true))
  const volumeFor = (name: string) => volumes?.items.find((v) => mapGetText(v, 'name') === name)
  const mountIndex =
    mounts?.items.findIndex(
      (m) =>
        mapGetText(m, 'mountPath') === dir &&
        mapGetText(mapGet(volumeFor(mapGetText(m, 'name') ?? ''), 'hostPath'), 'path') === dir,
    ) ?? -1
  if (!mounts || mountIndex < 0) return
  const name = mapGetText(mounts.items[mountIndex], 'name') ?? ''
  mounts.items.splice(mountIndex, 1)
  if (mounts.items.length === 0) c.container.delete('volumeMounts')
  changes.push(`removed volumeMount ${name} at ${dir}${why}`)
  // Drop the volume only when no container or init container still mounts it.
  const stillUsed = ['containers', 'initContainers'].some((key) =>
    (asSeq(c.podSpec.get(key, true))?.items ?? []).some((ctr) =>
      (asSeq(mapGet(ctr, 'volumeMounts'))?.items ?? []).some((m) => mapGetText(m, 'name') === name),
    ),
  )
  if (!stillUsed && volumes) {
    const vi = volumes.items.findIndex((v) => mapGetText(v, 'name') === name)
    if (vi >= 0) {
      volumes.items.splice(vi, 1)
      if (volumes.items.length === 0) c.podSpec.delete('volumes')
      changes.push(`removed hostPath volume ${name} (${dir})`)
    }
  }
}

/** Parses the manifest text and says whether it is still a Pod with a kube-apiserver container. */
export function checkManifest(text: string): void {
  const doc = parseManifest(text)
  if (!isMap(doc.contents) || mapGetText(doc.contents, 'kind') !== 'Pod')
    throw invalid('The edited manifest is not a Pod.')
  findContainer(doc)
}

/**
 * Annotation on the static pod carrying the hash of the encryption config it should run with.
 * Changing it changes the manifest, so the kubelet restarts the apiserver and it reads the new
 * config: the "restart all kube-apiserver processes" of the seed, without automatic reload.
 */
export const CONFIG_HASH_ANNOTATION = 'kubectl-encryption/config-hash'

export function setConfigHashAnnotation(text: string, hash: string | undefined): ManifestEdit {
  const doc = parseManifest(text)
  findContainer(doc)
  const metadata = asMap(doc.get('metadata', true))
  if (!metadata) throw invalid('The manifest has no metadata.')
  let annotations = asMap(metadata.get('annotations', true))
  const current = mapGetText(annotations, CONFIG_HASH_ANNOTATION)
  if (current === hash) return {text, changed: false, changes: []}
  if (hash === undefined) {
    annotations?.delete(CONFIG_HASH_ANNOTATION)
    if (annotations && annotations.items.length === 0) metadata.delete('annotations')
    return {
      text: toStringLikeSource(doc, text),
      changed: true,
      changes: [`removed annotation ${CONFIG_HASH_ANNOTATION}`],
    }
  }
  if (!annotations) {
    annotations = doc.createNode({}) as YAMLMap
    metadata.set('annotations', annotations)
  }
  annotations.flow = false
  annotations.set(CONFIG_HASH_ANNOTATION, hash)
  return {
    text: toStringLikeSource(doc, text),
    changed: true,
    changes: [`set annotation ${CONFIG_HASH_ANNOTATION}=${hash.slice(0, 19)}…`],
  }
}
