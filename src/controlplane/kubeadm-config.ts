import {posix} from 'node:path'

import {type Document, isMap, parseDocument, type YAMLMap, type YAMLSeq} from 'yaml'

import {PluginError} from '../errors.js'
import {CONFIG_FLAG, type ManifestEdit, type ManifestEncryptionSettings, RELOAD_FLAG} from './apiserver-manifest.js'
import {asMap, asSeq, mapGetText, toStringLikeSource} from './yaml-layout.js'

/**
 * kubeadm regenerates the apiserver manifest from the `ClusterConfiguration` in the kube-system
 * ConfigMap `kubeadm-config` on `kubeadm upgrade`, dropping hand-made flags (kubeadm issue 2867).
 * Keeping `apiServer.extraArgs` and `apiServer.extraVolumes` in step prevents that. extraArgs is a
 * map in v1beta3 and a list of {name, value} in v1beta4; both are handled in the document's own form.
 */
export const KUBEADM_CONFIG = {namespace: 'kube-system', name: 'kubeadm-config', key: 'ClusterConfiguration'} as const

function invalid(message: string): PluginError {
  return new PluginError('precondition', 'KUBEADM_CONFIG_INVALID', message, {
    hint: 'Check `kubectl -n kube-system get configmap kubeadm-config -o yaml`; fix it or pass --skip-kubeadm-config.',
  })
}

function parse(text: string): {doc: Document; apiServer: YAMLMap; v1beta4: boolean} {
  const doc = parseDocument(text)
  if (doc.errors.length > 0)
    throw invalid(`kubeadm-config's ClusterConfiguration is not valid YAML: ${doc.errors[0]?.message.split('\n')[0]}`)
  const root = asMap(doc.contents)
  if (!root || mapGetText(root, 'kind') !== 'ClusterConfiguration')
    throw invalid('kubeadm-config does not hold a ClusterConfiguration.')
  const apiVersion = mapGetText(root, 'apiVersion') ?? ''
  let apiServer = asMap(root.get('apiServer', true))
  if (!apiServer) {
    apiServer = doc.createNode({}) as YAMLMap
    root.set('apiServer', apiServer)
  }
  apiServer.flow = false
  const extraArgs = apiServer.get('extraArgs', true)
  const v1beta4 = asSeq(extraArgs) !== undefined || (!isMap(extraArgs) && /v1beta4|v1$/.test(apiVersion))
  return {doc, apiServer, v1beta4}
}

function setArg(
  doc: Document,
  apiServer: YAMLMap,
  v1beta4: boolean,
  name: string,
  value: string | undefined,
  changes: string[],
): void {
  if (v1beta4) {
    let list = asSeq(apiServer.get('extraArgs', true))
    const index = list?.items.findIndex((item) => mapGetText(item, 'name') === name) ?? -1
    if (value === undefined) {
      if (list && index >= 0) {
        list.items.splice(index, 1)
        if (list.items.length === 0) apiServer.delete('extraArgs')
        changes.push(`removed apiServer.extraArgs ${name}`)
      }
      return
    }
    if (!list) {
      list = doc.createNode([]) as YAMLSeq
      apiServer.set('extraArgs', list)
    }
    list.flow = false
    const item = asMap(list.items[index])
    if (item) {
      if (mapGetText(item, 'value') === value) return
      item.set('value', value)
    } else list.items.push(doc.createNode({name, value}))
    changes.push(`set apiServer.extraArgs ${name}=${value}`)
    return
  }
  let map = asMap(apiServer.get('extraArgs', true))
  if (value === undefined) {
    if (map?.has(name)) {
      map.delete(name)
      if (map.items.length === 0) apiServer.delete('extraArgs')
      changes.push(`removed apiServer.extraArgs ${name}`)
    }
    return
  }
  if (!map) {
    map = doc.createNode({}) as YAMLMap
    apiServer.set('extraArgs', map)
  }
  map.flow = false
  if (mapGetText(map, name) === value) return
  map.set(name, value)
  changes.push(`set apiServer.extraArgs ${name}=${value}`)
}

export function enableEncryptionInClusterConfiguration(
  text: string,
  settings: ManifestEncryptionSettings,
): ManifestEdit {
  const {doc, apiServer, v1beta4} = parse(text)
  const changes: string[] = []
  const flag = (f: string) => f.replace(/^--/, '')
  setArg(doc, apiServer, v1beta4, flag(CONFIG_FLAG), settings.configPath, changes)
  if (settings.automaticReload === true) setArg(doc, apiServer, v1beta4, flag(RELOAD_FLAG), 'true', changes)
  if (settings.automaticReload === false) setArg(doc, apiServer, v1beta4, flag(RELOAD_FLAG), undefined, changes)
  const dir = posix.dirname(settings.configPath)
  let volumes = asSeq(apiServer.get('extraVolumes', true))
  const present = volumes?.items.some((v) => mapGetText(v, 'hostPath') === dir && mapGetText(v, 'mountPath') === dir)
  if (!present) {
    if (!volumes) {
      volumes = doc.createNode([]) as YAMLSeq
      apiServer.set('extraVolumes', volumes)
    }
    volumes.flow = false
    const taken = new Set(volumes.items.map((v) => mapGetText(v, 'name')))
    let name = settings.volumeName ?? 'enc'
    for (let n = 2; taken.has(name); n++) name = `${settings.volumeName ?? 'enc'}-${n}`
    volumes.items.push(
      doc.createNode({name, hostPath: dir, mountPath: dir, readOnly: true, pathType: 'DirectoryOrCreate'}),
    )
    changes.push(`added apiServer.extraVolumes ${name} (${dir})`)
  }
  // KMS plugin sockets: the same hostPath mounts the manifest gets, so 'kubeadm upgrade' keeps them.
  for (const socketDir of settings.socketDirs ?? []) {
    const seq = volumes!
    const shown = seq.items.some((v) => {
      const host = mapGetText(v, 'hostPath')
      return (
        host !== undefined &&
        host === mapGetText(v, 'mountPath') &&
        (socketDir === host || socketDir.startsWith(`${host.replace(/\/$/, '')}/`))
      )
    })
    if (shown) continue
    const taken = new Set(seq.items.map((v) => mapGetText(v, 'name')))
    let name = 'kms-socket'
    for (let n = 2; taken.has(name); n++) name = `kms-socket-${n}`
    seq.items.push(doc.createNode({name, hostPath: socketDir, mountPath: socketDir, pathType: 'DirectoryOrCreate'}))
    changes.push(`added apiServer.extraVolumes ${name} (${socketDir})`)
  }
  if (changes.length === 0) return {text, changed: false, changes}
  return {text: toStringLikeSource(doc, text), changed: true, changes}
}

/** The flags out, and the extraVolumes of the config's directory and of `socketDirs` (the KMS plugin sockets enable added). */
export function disableEncryptionInClusterConfiguration(text: string, socketDirs: string[] = []): ManifestEdit {
  const {doc, apiServer, v1beta4} = parse(text)
  const changes: string[] = []
  const configArg = CONFIG_FLAG.replace(/^--/, '')
  const args = apiServer.get('extraArgs', true)
  const configPath = v1beta4
    ? mapGetText(
        asSeq(args)?.items.find((item) => mapGetText(item, 'name') === configArg),
        'value',
      )
    : mapGetText(args, configArg)
  setArg(doc, apiServer, v1beta4, configArg, undefined, changes)
  setArg(doc, apiServer, v1beta4, RELOAD_FLAG.replace(/^--/, ''), undefined, changes)
  for (const dir of [...(configPath ? [posix.dirname(configPath)] : []), ...socketDirs]) {
    const volumes = asSeq(apiServer.get('extraVolumes', true))
    const index =
      volumes?.items.findIndex((v) => mapGetText(v, 'hostPath') === dir && mapGetText(v, 'mountPath') === dir) ?? -1
    if (volumes && index >= 0) {
      changes.push(`removed apiServer.extraVolumes ${mapGetText(volumes.items[index], 'name')} (${dir})`)
      volumes.items.splice(index, 1)
      if (volumes.items.length === 0) apiServer.delete('extraVolumes')
    }
  }
  if (apiServer.items.length === 0) apiServer.flow = true // back to kubeadm's `apiServer: {}`
  if (changes.length === 0) return {text, changed: false, changes}
  return {text: toStringLikeSource(doc, text), changed: true, changes}
}
