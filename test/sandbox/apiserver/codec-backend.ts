/**
 * The encryption backend main.ts uses: the plugin's own config loader and validator
 * (src/encryption/load-config.ts), so the stand-in refuses exactly the files the plugin says
 * kube-apiserver refuses. Values get the bare identity check until the plugin's value codec is on main.
 */
import {checkConfigFile} from '../../../src/encryption/load-config.js'
import {ConfigLoadError, type EncryptionBackend, type KmsProviderRef} from './encryption.js'
import {identityRegistry} from './storage/transformer.js'

export const codecBackend: EncryptionBackend = {
  async load(path, {reload, featureGates}) {
    const check = await checkConfigFile(path, {automaticReload: reload, featureGates})
    if (check.errors.length > 0 || !check.config || !check.hash) throw new ConfigLoadError(check.message)
    const kmsProviders: KmsProviderRef[] = []
    for (const entry of check.config.resources ?? [])
      for (const p of entry.providers ?? [])
        if (p.kms) kmsProviders.push({name: p.kms.name, apiVersion: p.kms.apiVersion ?? 'v1', endpoint: p.kms.endpoint})
    return {registry: identityRegistry, hash: check.hash, kmsProviders}
  },
}
