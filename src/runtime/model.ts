/**
 * The shape of a client-node model class as plain data: the same fields, with nested models as
 * plain objects too (Dates, including V1MicroTime, stay as they are).
 */
export type Plain<T> = T extends Date
  ? T
  : T extends readonly (infer U)[]
    ? Plain<U>[]
    : T extends object
      ? { [K in keyof T]: Plain<T[K]> }
      : T;

/**
 * Builds an instance of a client-node model class (V1Lease, CoreV1Event, ...) from plain data.
 * The generated API methods are typed with these classes; their serializer only looks at fields,
 * but lint (no-unsafe-class-instance-assignment) rightly refuses object literals posing as class
 * instances, so the top level is made by the constructor and nested data is copied onto it.
 */
export function model<C extends object>(ctor: new () => C, init: Plain<C>): C {
  return Object.assign(new ctor(), init);
}
