import {describeReader} from '../../etcd/etcd-reader.js'
import type {VerifyResult} from '../../usecases/verify.js'
import {formatFields} from '../render.js'

/** `verify` as text: the object, how its value is stored against what the config expects, the round trip. */
export function verifyView(result: VerifyResult): string {
  const stored = result.stored
    ? result.stored.encrypted
      ? `${result.stored.provider}${result.stored.kmsName || result.stored.keyName ? ':' + (result.stored.kmsName ?? result.stored.keyName) : ''} (${result.stored.prefix ?? ''}, ${result.stored.length} bytes)`
      : `plaintext (${result.stored.length} bytes)`
    : '-'
  const lines = [
    formatFields([
      ['Object', `${result.resource} ${result.namespace ? result.namespace + '/' : ''}${result.name}`],
      ['etcd key', result.etcdKey],
      ['etcd', result.etcd ? describeReader(result.etcd) : '-'],
      ['Stored as', stored],
      ['Expected', result.expected ? `${result.expected} (config: ${result.configSource})` : 'unknown (no config)'],
      [
        'KMS key ID',
        result.kms &&
          `${result.kms.keyIdHash} (${result.kms.keyId})${result.kms.currentKeyIdHash ? (result.kms.currentKeyIdHash === result.kms.keyIdHash ? ', current on every apiserver' : `, current: ${result.kms.currentKeyIdHash}`) : ', current not settled'}`,
      ],
      ['Round trip', result.roundTrip],
      ['Cleanup', result.cleanup],
      ['Result', result.ok ? 'OK' : 'FAILED'],
    ]),
  ]
  if (result.hexdump) lines.push('', result.hexdump.trimEnd())
  if (result.notes.length > 0) lines.push('', ...result.notes.map((n) => `Note: ${n}`))
  if (result.problems.length > 0) lines.push('', 'Problems:', ...result.problems.map((p) => `  - ${p}`))
  return lines.join('\n') + '\n'
}
