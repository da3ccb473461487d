import {describe, expect, it} from 'vitest'
import {runStages, type Stage, type StageOutcome} from '../../../src/changes/stage-runner.js'
import {isPluginError, partialResultOf} from '../../../src/errors.js'

type Name = 'one' | 'two' | 'three'

/** Stages that record what ran into `log`; `behaviour` changes one stage's run. */
function stages(log: string[], behaviour: Partial<Record<Name, () => Promise<StageOutcome>>> = {}) {
  return (['one', 'two', 'three'] as const).map(
    (name): Stage<Name> => ({
      name,
      run:
        behaviour[name] ??
        (async () => {
          log.push(name)
          return undefined
        }),
    }),
  )
}

describe('runStages', () => {
  it('runs every stage in order, with start and done events and the before/after hooks around each', async () => {
    const log: string[] = []
    const run = await runStages(stages(log), {
      onEvent: (e) => log.push(`${e.stage}:${e.status}`),
      before: async (n) => void log.push(`before ${n}`),
      after: async (n) => void log.push(`after ${n}`),
    })
    expect(run).toEqual({ran: ['one', 'two', 'three']})
    expect(log).toEqual([
      ...['before one', 'one:start', 'one', 'one:done', 'after one'],
      ...['before two', 'two:start', 'two', 'two:done', 'after two'],
      ...['before three', 'three:start', 'three', 'three:done', 'after three'],
    ])
  })

  it('skips a stage an earlier run finished (its done-check), and says so', async () => {
    const log: string[] = []
    const list = stages(log)
    list[0]!.done = () => true
    list[1]!.done = async () => false
    const run = await runStages(list, {onAlreadyDone: (n) => log.push(`already ${n}`)})
    expect(run.ran).toEqual(['two', 'three'])
    expect(log).toEqual(['already one', 'two', 'three'])
  })

  it("a stage that returns 'stop' ends the workflow without an error and without its done event", async () => {
    const log: string[] = []
    const run = await runStages(
      stages(log, {
        two: async () => {
          log.push('two')
          return 'stop'
        },
      }),
      {onEvent: (e) => log.push(`${e.stage}:${e.status}`), after: async (n) => void log.push(`after ${n}`)},
    )
    expect(run).toEqual({ran: ['one', 'two'], stoppedAt: 'two'})
    expect(log).toEqual(['one:start', 'one', 'one:done', 'after one', 'two:start', 'two'])
  })

  it("a stage that returns 'pending' (a dry run's later stage) gets no done event and no after hook; the next one runs", async () => {
    const log: string[] = []
    const run = await runStages(
      stages(log, {
        two: async () => {
          log.push('two')
          return 'pending'
        },
      }),
      {onEvent: (e) => log.push(`${e.stage}:${e.status}`), after: async (n) => void log.push(`after ${n}`)},
    )
    expect(run).toEqual({ran: ['one', 'two', 'three']})
    expect(log).toEqual([
      ...['one:start', 'one', 'one:done', 'after one'],
      ...['two:start', 'two'],
      ...['three:start', 'three', 'three:done', 'after three'],
    ])
  })

  it('a signal between stages stops before the next one: exit 4, the stage named, the result attached', async () => {
    const controller = new AbortController()
    const log: string[] = []
    const failures: string[] = []
    const list = stages(log, {
      one: async () => {
        log.push('one')
        controller.abort()
        return undefined
      },
    })
    list[1]!.notStarted = 'nothing of it done'
    const error = await runStages(list, {
      signal: controller.signal,
      onFailure: (n) => void failures.push(n),
      partialResult: () => ({log: [...log]}),
    }).catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('INTERRUPTED')
    expect(isPluginError(error) && error.exitCode).toBe(4)
    expect((error as Error).message).toContain('stopped at stage two (nothing of it done)')
    expect(log).toEqual(['one'])
    expect(failures).toEqual(['two'])
    expect(partialResultOf(error)).toEqual({log: ['one']})
  })

  it('a failing stage is recorded and its error rethrown with the result so far; later stages do not run', async () => {
    const log: string[] = []
    const boom = new Error('node cp-2 did not come back')
    const error = await runStages(
      stages(log, {
        two: async () => {
          throw boom
        },
      }),
      {
        onFailure: (n, e) => void log.push(`failed ${n}: ${(e as Error).message}`),
        partialResult: () => ({n: log.length}),
      },
    ).catch((e: unknown) => e)
    expect(error).toBe(boom)
    expect(log).toEqual(['one', 'failed two: node cp-2 did not come back'])
    expect(partialResultOf(error)).toEqual({n: 2})
  })
})
