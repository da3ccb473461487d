import {readFileSync} from 'node:fs'
import {parse} from 'yaml'
import {describe, expect, it} from 'vitest'

import {
  disableEncryptionInClusterConfiguration,
  enableEncryptionInClusterConfiguration,
} from '../../../src/controlplane/kubeadm-config.js'

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/manifests/${name}`, import.meta.url), 'utf8')
const settings = {configPath: '/etc/kubernetes/enc/enc.yaml', automaticReload: true}
const volume = {
  name: 'enc',
  hostPath: '/etc/kubernetes/enc',
  mountPath: '/etc/kubernetes/enc',
  readOnly: true,
  pathType: 'DirectoryOrCreate',
}

describe('kubeadm-config ClusterConfiguration editing (kubeadm issue 2867)', () => {
  it('v1beta3: extraArgs as a map, extraVolumes added; golden; idempotent; reversible', () => {
    const input = fixture('cluster-configuration-v1beta3.yaml')
    const edit = enableEncryptionInClusterConfiguration(input, settings)
    expect(edit.text).toBe(fixture('cluster-configuration-v1beta3.enabled.yaml'))
    const api = (parse(edit.text) as {apiServer: {extraArgs: Record<string, string>; extraVolumes: unknown[]}})
      .apiServer
    expect(api.extraArgs).toEqual({
      'authorization-mode': 'Node,RBAC',
      'encryption-provider-config': '/etc/kubernetes/enc/enc.yaml',
      'encryption-provider-config-automatic-reload': 'true',
    })
    expect(api.extraVolumes).toEqual([volume])
    expect(enableEncryptionInClusterConfiguration(edit.text, settings).changed).toBe(false)
    expect(disableEncryptionInClusterConfiguration(edit.text).text).toBe(input)
  })

  it('v1beta4: extraArgs as a list of {name, value}, from an empty apiServer: {}', () => {
    const input = fixture('cluster-configuration-v1beta4.yaml')
    const edit = enableEncryptionInClusterConfiguration(input, settings)
    expect(edit.text).toBe(fixture('cluster-configuration-v1beta4.enabled.yaml'))
    const api = (parse(edit.text) as {apiServer: {extraArgs: unknown[]; extraVolumes: unknown[]}}).apiServer
    expect(api.extraArgs).toEqual([
      {name: 'encryption-provider-config', value: '/etc/kubernetes/enc/enc.yaml'},
      {name: 'encryption-provider-config-automatic-reload', value: 'true'},
    ])
    expect(api.extraVolumes).toEqual([volume])
    expect(enableEncryptionInClusterConfiguration(edit.text, settings).changed).toBe(false)
    const off = disableEncryptionInClusterConfiguration(edit.text)
    expect(off.text).toBe(input)
  })

  it('updates an existing value in place and picks a free volume name', () => {
    const input = fixture('cluster-configuration-v1beta3.yaml').replace(
      '  timeoutForControlPlane: 4m0s',
      '  extraVolumes:\n  - name: enc\n    hostPath: /srv/audit\n    mountPath: /srv/audit\n  timeoutForControlPlane: 4m0s',
    )
    const edit = enableEncryptionInClusterConfiguration(input, {configPath: '/etc/kubernetes/enc/enc.yaml'})
    expect(edit.changes).toEqual([
      'set apiServer.extraArgs encryption-provider-config=/etc/kubernetes/enc/enc.yaml',
      'added apiServer.extraVolumes enc-2 (/etc/kubernetes/enc)',
    ])
  })

  it('KMS socket directories get their own extraVolumes (writable), unless inside one already there', () => {
    const edit = enableEncryptionInClusterConfiguration(fixture('cluster-configuration-v1beta3.yaml'), {
      ...settings,
      socketDirs: ['/var/run/kmsplugin', '/etc/kubernetes/enc'],
    })
    const api = (parse(edit.text) as {apiServer: {extraVolumes: unknown[]}}).apiServer
    expect(api.extraVolumes).toEqual([
      volume,
      {
        name: 'kms-socket',
        hostPath: '/var/run/kmsplugin',
        mountPath: '/var/run/kmsplugin',
        pathType: 'DirectoryOrCreate',
      },
    ])
    expect(
      enableEncryptionInClusterConfiguration(edit.text, {...settings, socketDirs: ['/var/run/kmsplugin']}).changed,
    ).toBe(false)
  })

  it('disable with the KMS socket directories takes their extraVolumes out too (round trip)', () => {
    const input = fixture('cluster-configuration-v1beta3.yaml')
    const socketDirs = ['/var/run/kmsplugin']
    const on = enableEncryptionInClusterConfiguration(input, {...settings, socketDirs})
    const off = disableEncryptionInClusterConfiguration(on.text, socketDirs)
    expect(off.changes).toContain('removed apiServer.extraVolumes kms-socket (/var/run/kmsplugin)')
    expect(off.text).toBe(input)
  })

  it('rejects something that is not a ClusterConfiguration', () => {
    expect(() => enableEncryptionInClusterConfiguration('kind: InitConfiguration\n', settings)).toThrow(
      expect.objectContaining({code: 'KUBEADM_CONFIG_INVALID', exitCode: 3}),
    )
    expect(() => enableEncryptionInClusterConfiguration('a: [', settings)).toThrow(/not valid YAML/)
  })
})
