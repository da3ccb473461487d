import {mkdtemp, readFile, readdir, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

import {KubeApiError} from '../../../src/kube/types.js'
import {classifyApiError} from '../../../src/usecases/rewrite/api-errors.js'
import {CompletionWindow, objectKey} from '../../../src/usecases/rewrite/completion-window.js'
import {
  checkpointPath,
  defaultStateDir,
  emptyCounters,
  FileCheckpointStore,
} from '../../../src/usecases/rewrite/checkpoint.js'
import {TokenBucket} from '../../../src/usecases/rewrite/token-bucket.js'
import {continueAfter} from '../../../src/usecases/rewrite/rewrite.js'
import {FakeClock} from '../helpers/fake-cluster.js'

describe('completion window', () => {
  it('advances the low-water mark only past keys whose predecessors are all done', () => {
    const w = new CompletionWindow('a/0')
    const [b, c, d] = ['a/1', 'a/2', 'b/0'].map((k) => w.add(k))
    w.complete(c!)
    w.complete(d!)
    expect(w.after).toBe('a/0')
    expect(w.doneAhead()).toEqual(['a/2', 'b/0'])
    w.complete(b!)
    expect(w.after).toBe('b/0')
    expect(w.doneAhead()).toEqual([])
    expect(w.size).toBe(0)
  })

  it('orders keys as etcd does (namespace/name as bytes)', () => {
    expect(objectKey('a-b', 'y') < objectKey('a', 'x')).toBe(true) // '-' sorts before '/'
    expect(objectKey(undefined, 'node-1')).toBe('node-1')
  })
})

describe('token bucket', () => {
  it('lets a burst through, then paces at qps, in arrival order', async () => {
    const clock = new FakeClock()
    const bucket = new TokenBucket(10, 3, clock)
    const times: number[] = []
    await Promise.all(Array.from({length: 8}, () => bucket.take().then(() => times.push(clock.now()))))
    expect(times.slice(0, 3)).toEqual([0, 0, 0])
    expect(times.at(-1)).toBeCloseTo(500, 0)
    expect([...times].sort((a, b) => a - b)).toEqual(times)
  })
  it('is a no-op when qps is 0', async () => {
    const clock = new FakeClock()
    const bucket = new TokenBucket(0, 1, clock)
    for (let i = 0; i < 100; i++) await bucket.take()
    expect(clock.t).toBe(0)
  })
})

describe('api error classification', () => {
  const cases: [KubeApiError | Error, string][] = [
    [new KubeApiError(409, 'Conflict', 'the object has been modified'), 'conflict'],
    [new KubeApiError(404, 'NotFound', 'secrets "x" not found'), 'notFound'],
    [new KubeApiError(404, 'NotFound', 'namespaces "gone" not found'), 'fail:NamespaceGone'],
    [
      new KubeApiError(404, 'NotFound', 'whatever', undefined, undefined, undefined, {
        kind: 'namespaces',
        name: 'gone',
      }),
      'fail:NamespaceGone',
    ],
    [new KubeApiError(410, 'Expired', 'too old', undefined, 'tok'), 'expired'],
    [new KubeApiError(403, 'Forbidden', 'User "u" cannot update resource "secrets"'), 'fail:Forbidden'],
    [new KubeApiError(400, 'BadRequest', 'admission webhook "a.b" denied the request: no'), 'fail:AdmissionDenied'],
    [new KubeApiError(422, 'Invalid', 'Secret "x" is invalid: data: Too long'), 'fail:Invalid'],
    [new KubeApiError(500, 'InternalError', 'Internal error occurred: no matching prefix found'), 'fail:Undecryptable'],
    [new KubeApiError(500, 'InternalError', 'Internal error occurred: etcdserver: request timed out'), 'transient'],
    [
      new KubeApiError(
        500,
        'InternalError',
        'Internal error occurred: encryptedDEKSource with keyID hash "sha256:ab" expired at 2026-12-06T03:00:00Z (current time is 2026-12-06T03:01:00Z)',
      ),
      'fail:Unavailable',
    ],
    [
      new KubeApiError(
        500,
        'InternalError',
        'Internal error occurred: failed to decrypt DEK, error: rpc error: code = Unavailable desc = connection error',
      ),
      'fail:Unavailable',
    ],
    [
      new KubeApiError(500, 'InternalError', 'Internal error occurred: failed to decrypt DEK, error: no key with ID'),
      'fail:Undecryptable',
    ],
    [new KubeApiError(429, 'TooManyRequests', 'slow down', 3), 'transient'],
    [new KubeApiError(0, 'ConnectionFailed', 'ECONNREFUSED'), 'transient'],
    [Object.assign(new Error('x'), {code: 'ECONNRESET'}), 'transient'],
    [new Error('bug'), 'fail:Error'],
  ]
  for (const [error, want] of cases)
    it(`${error.message} -> ${want}`, () => {
      const d = classifyApiError(error)
      expect(d.kind === 'fail' ? `fail:${d.reason}` : d.kind).toBe(want)
    })
  it('carries Retry-After and the continue hint', () => {
    expect(classifyApiError(new KubeApiError(429, 'TooManyRequests', 'x', 3))).toEqual({
      kind: 'transient',
      retryAfterMs: 3000,
    })
    expect(classifyApiError(new KubeApiError(410, 'Expired', 'x', undefined, 'tok'))).toEqual({
      kind: 'expired',
      continueHint: 'tok',
    })
  })
})

describe('checkpoint file', () => {
  it('lives under XDG_STATE_HOME, one file per scope, mode 0600 in a 0700 directory, replaced atomically', async () => {
    const home = await mkdtemp(join(tmpdir(), 'rw-'))
    try {
      const dir = defaultStateDir({XDG_STATE_HOME: home})
      expect(dir).toBe(join(home, 'kubectl-encryption'))
      const a = checkpointPath(dir, 'cluster-a')
      expect(checkpointPath(dir, 'cluster-b')).not.toBe(a)
      const store = new FileCheckpointStore(a)
      expect(await store.load()).toBeUndefined()
      const cp = {
        version: 1 as const,
        scope: 's',
        updatedAt: 'now',
        units: {u: {after: 'x', doneAhead: [], complete: false, counters: emptyCounters()}},
        failures: [],
        failuresTruncated: 0,
      }
      await store.save(cp)
      await store.save({...cp, scope: 's2'})
      expect(JSON.parse(await readFile(a, 'utf8')).scope).toBe('s2')
      expect((await stat(a)).mode & 0o777).toBe(0o600)
      expect((await stat(dir)).mode & 0o777).toBe(0o700)
      expect(await readdir(dir)).toEqual([a.split('/').at(-1)])
      await writeFile(`${a}.4242.tmp`, '{half') // a killed run's temp file
      await store.clear()
      expect(await store.load()).toBeUndefined()
      expect(await readdir(dir)).toEqual([])
    } finally {
      await rm(home, {recursive: true, force: true})
    }
  })
})

describe('continueAfter', () => {
  // kube-apiserver's DecodeContinue: base64.RawURLEncoding, then JSON {v, rv, start}.
  const decodeLikeApiserver = (token: string) => {
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/) // RawURLEncoding's alphabet, no '=' padding
    return JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as {v: string; rv: number; start: string}
  }

  it('is unpadded URL-safe base64 that names the key after start at the latest revision', () => {
    // keys whose standard base64 needs '+', '/' or '=' padding
    for (const start of ['default/s~~~?', 'ns/a>>>', 'kube-system/x', 'default/secret-1']) {
      const token = continueAfter(start)
      expect(decodeLikeApiserver(token)).toEqual({v: 'meta.k8s.io/v1', rv: -1, start: `${start}\u0000`})
    }
  })
})
