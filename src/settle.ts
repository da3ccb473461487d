/** A promise's outcome as a value, so that it can be started now and awaited later without an unhandled rejection. */
export type Settled<T> = {value: T} | {error: unknown}

export function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({value}),
    (error: unknown) => ({error}),
  )
}
