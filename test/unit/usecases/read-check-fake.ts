import type {StageConfig} from '../../../src/encryption/config/load.js'
import type {ConfigCheckResult} from '../../../src/usecases/scan/config-check.js'

/**
 * A fake `checkConfig` follow-up: `unreadable` values of secrets stored as `storedAs` whenever the
 * config checked lacks `needs` (a key name), or the error to throw when etcd cannot be read.
 */
export function fakeReadCheck(options: {needs?: string; storedAs?: string; unreadable?: number; fail?: string} = {}) {
  const seen: string[] = []
  const checkConfig = async ({text: configText}: StageConfig): Promise<ConfigCheckResult> => {
    seen.push(configText)
    if (options.fail) throw new Error(options.fail)
    const bad =
      options.needs !== undefined && !new RegExp(`name: ${options.needs}$`, 'm').test(configText)
        ? (options.unreadable ?? 3)
        : 0
    const examples = Array.from({length: bad}, (_, i) => `/registry/secrets/default/s${i}`)
    return {
      readable: bad === 0,
      file: 'the config to apply',
      hash: 'sha256:0',
      etcd: {transport: 'direct', endpoint: 'https://etcd:2379'} as ConfigCheckResult['etcd'],
      keys: 10,
      values: 10,
      unreadable: bad,
      kmsNotDecrypted: 0,
      resources: [
        {
          resource: 'secrets',
          values: 10,
          unreadable: bad,
          kmsNotDecrypted: 0,
          unreadableAs: bad ? {[options.storedAs ?? 'aescbc:key1']: bad} : {},
          errors: {},
          examples: examples.slice(0, 5),
        },
      ],
      examples: examples.slice(0, 5),
    }
  }
  return {checkConfig, seen}
}
