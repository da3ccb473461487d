import type {GenerateResult} from '../../usecases/generate-config.js'
import {formatFields} from '../render.js'

/** `config generate` as text: the configuration itself, or what --output-file holds (never the key). */
export function generateView(result: GenerateResult): string {
  if ('config' in result) return result.text.replace(/\n$/, '')
  if (result.provider === 'kms') {
    return formatFields([
      ['File', result.file],
      ['Provider', `kms ${result.apiVersion}`],
      ['KMS name', result.kmsName],
      ['Endpoint', result.endpoint],
      ['Timeout', result.timeout],
      ['Resources', result.resources.join(', ')],
      ['Identity fallback', result.identityFallback ? 'yes' : 'no'],
    ])
  }
  return formatFields([
    ['File', result.file],
    ['Provider', result.provider],
    ['Key name', result.keyName],
    ['Key size', `${result.keySize * 8}-bit`],
    ['Fingerprint', result.fingerprint],
    ['Resources', result.resources.join(', ')],
    ['Identity fallback', result.identityFallback ? 'yes' : 'no'],
  ])
}
