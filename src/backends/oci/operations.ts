/**
 * The SDK client's operations, wrapped. A Proxy rather than a wrapper class because the SDK's record
 * iterators call the operations on `this`: through the proxy, their pages are wrapped too.
 */
import type * as ds from 'oci-datascience';

/** Wraps every method whose name matches `pattern`; `call` runs the original. */
export function aroundOperations(
  client: ds.DataScienceClient,
  pattern: RegExp,
  wrap: (operation: string, call: () => unknown) => unknown,
): ds.DataScienceClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || typeof value !== 'function' || !pattern.test(prop)) return value;
      const fn = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => wrap(prop, () => fn.apply(receiver, args));
    },
  });
}
