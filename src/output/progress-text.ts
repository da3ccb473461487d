import type {RolloutEvent} from '../changes/rollout.js'

type ChangeEvent =
  | RolloutEvent
  | {type: 'stage'; stage: string; status: string}
  | {type: 'info'; message: string}
  | {type: 'warning'; message: string}

/** One line of progress per event, for the spinner or --verbose (never key material: events carry none). */
export function describeEvent(event: ChangeEvent): string {
  switch (event.type) {
    case 'node-start':
      return `${event.node}: changing ${event.files.join(', ')}`
    case 'backup':
      return `${event.node}: backed up ${event.path} to ${event.backup}`
    case 'write':
      return `${event.node}: wrote ${event.path}`
    case 'wait':
      return `${event.node}: waiting for the kube-apiserver (${event.effect})`
    case 'node-done':
      return `${event.node}: ${event.status}`
    case 'rollback':
      return `${event.node}: rolling back (${event.reason})`
    case 'stage':
      return `stage ${event.stage}: ${event.status}`
    case 'info':
      return event.message
    case 'warning':
      return `warning: ${event.message}`
  }
}
