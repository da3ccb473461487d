import {describe, expect, it} from 'vitest'

import {kekView} from '../../../src/output/views/rotate.js'
import type {KekResult} from '../../../src/usecases/rotate-kek.js'

describe('rotate view of a KMS key rotation', () => {
  const result: KekResult & {context: string} = {
    context: 'sandbox',
    kind: 'kek',
    dryRun: false,
    provider: 'kms',
    newKey: 'vault',
    oldKey: {provider: 'kms', name: 'vault'},
    kmsProviders: ['vault'],
    fromKeyIdHash: {vault: 'sha256:aaaa'},
    toKeyIdHash: {vault: 'sha256:bbbb'},
    stages: [
      {stage: 'wait-key-id', status: 'already-done'},
      {stage: 'rewrite-stale', status: 'done', detail: '1200 stale object(s) of secrets rewritten'},
      {stage: 'scan', status: 'done', detail: '2100 value(s) scanned, none under an older key ID'},
    ],
    diffs: [],
    state: {status: 'done', stage: 'scan', completedStages: ['wait-key-id', 'rewrite-stale', 'scan']},
    scan: {scanned: 2100, stale: 0, byResource: {}},
  }
  it('names the key ID hashes before and after, the state, each stage and the proof', () => {
    const text = kekView(result)
    expect(text).toMatch(/^Key ID:\s+vault: sha256:aaaa -> sha256:bbbb$/m)
    expect(text).toMatch(/^State:\s+done \(last stage: scan\)$/m)
    expect(text).toMatch(/^Scan:\s+2100 value\(s\) scanned, 0 not under the current key ID$/m)
    expect(text).toMatch(/^rewrite-stale\s+done\s+1200 stale object/m)
    expect(kekView({...result, fromKeyIdHash: {}, toKeyIdHash: undefined, scan: undefined})).toMatch(
      /^Key ID:\s+vault: \(apiservers did not agree\)$/m,
    )
  })
})
