// Runs an async function over many items with at most `limit` in flight: a fleet of a thousand records is
// checked at a pace the services allow (their throttling still applies per request, and each client honours it).

/** Results in the order of `items`; `fn` must not throw (a check reports its failure in its result). */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
