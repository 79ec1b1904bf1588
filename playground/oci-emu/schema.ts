// A small checker for request bodies: known fields only (an unknown field is 400 InvalidParameter, as
// the service's strict deserialiser would do), required fields (400 MissingParameter), JSON types,
// ranges, enums and discriminated unions. null is never accepted.

import { invalid, missing } from './errors.ts';
import { isOcidOf } from './ids.ts';

export type Check = (v: unknown, at: string) => void;
export interface Field {
  required: boolean;
  check: Check;
}
export type Fields = Record<string, Field>;

export const req = (check: Check): Field => ({ required: true, check });
export const opt = (check: Check): Field => ({ required: false, check });

const join = (at: string, key: string): string => (at === '' ? key : `${at}.${key}`);

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export const str =
  (o: { min?: number; max?: number; pattern?: RegExp } = {}): Check =>
  (v, at) => {
    if (typeof v !== 'string') throw invalid(`${at} must be a string`);
    if (v.length < (o.min ?? 1)) throw invalid(`${at} must not be empty`);
    if (o.max !== undefined && v.length > o.max) throw invalid(`${at} must be at most ${o.max} characters`);
    if (o.pattern && !o.pattern.test(v)) throw invalid(`${at} '${v}' does not match ${String(o.pattern)}`);
  };

export const int =
  (o: { min?: number; max?: number } = {}): Check =>
  (v, at) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid(`${at} must be an integer`);
    if (o.min !== undefined && v < o.min) throw invalid(`${at} must be at least ${o.min}, got ${v}`);
    if (o.max !== undefined && v > o.max) throw invalid(`${at} must be at most ${o.max}, got ${v}`);
  };

export const num =
  (o: { min?: number; max?: number } = {}): Check =>
  (v, at) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`${at} must be a number`);
    if (o.min !== undefined && v < o.min) throw invalid(`${at} must be at least ${o.min}, got ${v}`);
    if (o.max !== undefined && v > o.max) throw invalid(`${at} must be at most ${o.max}, got ${v}`);
  };

export const bool: Check = (v, at) => {
  if (typeof v !== 'boolean') throw invalid(`${at} must be a boolean`);
};

export const oneOf =
  (...values: string[]): Check =>
  (v, at) => {
    if (typeof v !== 'string' || !values.includes(v)) {
      throw invalid(`${at} must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
    }
  };

export const ocid =
  (...types: string[]): Check =>
  (v, at) => {
    if (!isOcidOf(v, ...types)) {
      throw invalid(`${at} must be the OCID of a ${types.join(' or ')}, got ${JSON.stringify(v)}`);
    }
  };

export const arrayOf =
  (item: Check, o: { min?: number; max?: number } = {}): Check =>
  (v, at) => {
    if (!Array.isArray(v)) throw invalid(`${at} must be an array`);
    if (o.min !== undefined && v.length < o.min) throw invalid(`${at} must have at least ${o.min} item(s)`);
    if (o.max !== undefined && v.length > o.max) {
      throw invalid(`${at} must have at most ${o.max} items, got ${v.length}`);
    }
    v.forEach((x, i) => {
      item(x, `${at}[${i}]`);
    });
  };

export const object =
  (fields: Fields): Check =>
  (v, at) => {
    if (!isRecord(v)) throw invalid(`${at === '' ? 'the body' : at} must be a JSON object`);
    for (const key of Object.keys(v)) {
      if (!(key in fields)) throw invalid(`Unknown field ${join(at, key)}`);
    }
    for (const [key, f] of Object.entries(fields)) {
      const x = v[key];
      if (x === undefined) {
        if (f.required) throw missing(`Missing required field ${join(at, key)}`);
        continue;
      }
      if (x === null) throw invalid(`${join(at, key)} must not be null`);
      f.check(x, join(at, key));
    }
  };

/** An object whose `key` field selects the variant; the variant's fields exclude `key` itself. */
export const union =
  (key: string, variants: Record<string, Fields>): Check =>
  (v, at) => {
    if (!isRecord(v)) throw invalid(`${at} must be a JSON object`);
    const d = v[key];
    if (d === undefined) throw missing(`Missing required field ${join(at, key)}`);
    const names = Object.keys(variants);
    if (typeof d !== 'string' || !names.includes(d)) {
      throw invalid(`${join(at, key)} must be one of ${names.join(', ')}, got ${JSON.stringify(d)}`);
    }
    object({ ...variants[d], [key]: req(oneOf(d)) })(v, at);
  };

export const stringMap =
  (o: { key?: Check; value?: Check } = {}): Check =>
  (v, at) => {
    if (!isRecord(v)) throw invalid(`${at} must be a JSON object`);
    for (const [k, x] of Object.entries(v)) {
      o.key?.(k, `${at} key`);
      if (typeof x !== 'string') throw invalid(`${at}.${k} must be a string`);
      o.value?.(x, `${at}.${k}`);
    }
  };

export const definedTagsCheck: Check = (v, at) => {
  if (!isRecord(v)) throw invalid(`${at} must be a JSON object`);
  for (const [ns, tags] of Object.entries(v)) {
    if (!isRecord(tags)) throw invalid(`${at}.${ns} must be a JSON object`);
  }
};

export const TAG_FIELDS: Fields = {
  freeformTags: opt(stringMap()),
  definedTags: opt(definedTagsCheck),
};

/** Checks `v` against `check` at the body's root and returns it typed (the check is the proof). */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- T is what `check` proves
export function validated<T>(v: unknown, check: Check): T {
  check(v, '');
  return v as T;
}
