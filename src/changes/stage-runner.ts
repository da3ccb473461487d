import {interruptedError, withPartialResult} from '../errors.js'

/**
 * One step of a workflow (rotate, decrypt-all, enable), in the spirit of kubeadm's phases: a name the
 * user sees (`--stage NAME`, "stopped at stage NAME"), the work, and how to tell that an earlier run
 * already did it, so that running the same command again continues where the last run stopped.
 */
export interface Stage<Name extends string> {
  name: Name
  /** Finished by an earlier run (recorded state or what the cluster shows): reported, not run again. */
  done?: () => boolean | Promise<boolean>
  /**
   * The work. 'stop' ends the workflow after this stage without an error: what follows depends on
   * something this stage did not reach (a dry run's plan, encrypted values left, an option not given).
   * 'pending': the stage did not do its work (a dry run reports it as pending): no done event, not
   * recorded as done, and the next stage follows.
   */
  run: () => Promise<StageOutcome>
  /** Where a stop before this stage leaves the run, for the interruption message (default: not started). */
  notStarted?: string
}

export type StageOutcome = undefined | 'stop' | 'pending'

export type StageEvent<Name extends string> = {type: 'stage'; stage: Name; status: 'start' | 'done'}

export interface StageRunOptions<Name extends string> {
  /** Ctrl-C or SIGTERM: checked before each stage (a stage's own work decides where inside it may stop). */
  signal?: AbortSignal
  onEvent?: (event: StageEvent<Name>) => void
  /** A stage an earlier run finished (its done-check said so). */
  onAlreadyDone?: (name: Name) => void
  /** Before a stage starts, after the interruption check (rotate records the stage as in progress). */
  before?: (name: Name) => Promise<void>
  /** After a stage finished without stopping the workflow (rotate records it as completed). */
  after?: (name: Name) => Promise<void>
  /** A stage failed or the run was interrupted before it: record it in the workflow's result (and state). */
  onFailure?: (name: Name, error: unknown) => void | Promise<void>
  /** The workflow's result so far, attached to any error (a failed run renders what it did); none yet: undefined. */
  partialResult?: () => object | undefined
}

export interface StageRun<Name extends string> {
  /** The stages run in this call, in order (already-done ones are not in it). */
  ran: Name[]
  /** The stage whose run returned 'stop', if one did. */
  stoppedAt?: Name
}

/** Runs `stages` in order: skip what is done, stop on a signal between stages, record failures. */
export async function runStages<Name extends string>(
  stages: Array<Stage<Name>>,
  options: StageRunOptions<Name> = {},
): Promise<StageRun<Name>> {
  const ran: Name[] = []
  for (const stage of stages) {
    try {
      if (stage.done && (await stage.done())) {
        options.onAlreadyDone?.(stage.name)
        continue
      }
      if (options.signal?.aborted) throw interruptedError(`stage ${stage.name} (${stage.notStarted ?? 'not started'})`)
      await options.before?.(stage.name)
      options.onEvent?.({type: 'stage', stage: stage.name, status: 'start'})
      ran.push(stage.name)
      const outcome = await stage.run()
      if (outcome === 'stop') return {ran, stoppedAt: stage.name}
      if (outcome === 'pending') continue
      options.onEvent?.({type: 'stage', stage: stage.name, status: 'done'})
      await options.after?.(stage.name)
    } catch (error) {
      await options.onFailure?.(stage.name, error)
      const partial = options.partialResult?.()
      throw partial ? withPartialResult(error, partial) : error
    }
  }
  return {ran}
}
