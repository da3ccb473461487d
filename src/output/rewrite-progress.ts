import {formatEstimate} from '../usecases/rewrite/estimate.js'
import type {RewriteEvent} from '../usecases/rewrite/rewrite.js'

/** Turns operation events into one progress line: done/total, rate, ETA. */
export class RewriteProgress {
  private started = performance.now()
  private doneAtStart?: number

  constructor(
    private readonly update: (text: string) => void,
    private readonly warn: (message: string) => void,
    /** A line of information on stderr (the estimate). */
    private readonly note: (line: string) => void,
    /** With --verbose: one line per retry, list restart and failure. */
    private readonly log?: (line: string) => void,
  ) {}

  on(event: RewriteEvent): void {
    switch (event.type) {
      case 'progress': {
        this.doneAtStart ??= event.done
        const seconds = (performance.now() - this.started) / 1000
        const rate = seconds > 0 ? (event.done - this.doneAtStart) / seconds : 0
        const of = event.total === undefined ? '' : `/${event.total}`
        const eta =
          event.total !== undefined && rate > 0 ? ` · ETA ${formatSeconds((event.total - event.done) / rate)}` : ''
        this.update(`rewrite: ${event.done}${of} objects · ${Math.round(rate)}/s${eta} · ${event.totals.failed} failed`)
        break
      }
      case 'start':
        this.doneAtStart = undefined
        this.started = performance.now()
        break
      case 'warning':
        this.warn(event.message)
        break
      case 'estimate':
        this.note(formatEstimate(event.estimate))
        break
      case 'migration':
        if (event.state === 'pending')
          this.update(
            `rewrite: waiting for the storage-version migrator to start ${event.name} · ${formatSeconds((event.waitedMs ?? 0) / 1000)}`,
          )
        else if (event.state === 'running') this.update(`rewrite: ${event.name} running`)
        // pending comes once a poll: only the changes go to the --verbose log
        if (event.state !== 'pending')
          this.log?.(
            `storageversionmigration/${event.name} (${event.resource}): ${event.state}${event.message ? `: ${event.message}` : ''}`,
          )
        break
      case 'retry':
        this.log?.(
          `retry ${event.attempt}: ${event.resource}${event.name ? `/${event.name}` : ' (list)'}${event.namespace ? ` -n ${event.namespace}` : ''} ` +
            `got ${event.status || 'no response'}; waiting ${(event.delayMs / 1000).toFixed(1)}s`,
        )
        break
      case 'listRestarted':
        this.log?.(
          `list of ${event.resource}${event.namespace ? ` -n ${event.namespace}` : ''} expired (410); restarted after ${event.afterKey ?? 'the start'} ` +
            `${event.usedContinueHint ? "with the server's continue hint" : 'by listing again'}`,
        )
        break
      case 'failure':
        this.log?.(
          `failed: ${event.failure.resource}/${event.failure.name ?? '(list)'}: ${event.failure.reason}: ${event.failure.message}`,
        )
        break
      default:
    }
  }
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?'
  if (s < 90) return `${Math.ceil(s)}s`
  return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`
}
