/**
 * Pure: which variant of an experiment a request goes to.
 *
 * With a sticky value (the experiment's stickyHeader), weighted rendezvous hashing: each variant
 * scores -ln(h) / weight, h a uniform hash of (value, variant) in (0, 1), and the lowest score wins.
 * A value therefore keeps its variant for as long as the weights do (no state, the same on every
 * router replica), a variant wins a share of values equal to its share of the weight, and when the
 * weights change only values that must move do move: raising one variant's weight only moves values
 * to it, and adding or removing a variant moves only values from or to that one.
 *
 * Without a sticky value, an independent draw by weight.
 */
import { createHash } from 'node:crypto';

export interface Weighted {
  /** What identifies the variant in the hash: its inference key, so reordering the list moves nothing. */
  key: string;
  weight: number;
}

const TWO_POW_53 = 2 ** 53;

/**
 * A uniform value in the open interval (0, 1) from (value, key). SHA-256 for its distribution, not
 * its secrecy: a 53-bit prefix, offset by half a step so it is never 0 (ln 0) or 1.
 */
export function hash01(value: string, key: string): number {
  const digest = createHash('sha256').update(value).update('\0').update(key).digest();
  const top53 = Number(digest.readBigUInt64BE(0) >> 11n);
  return (top53 + 0.5) / TWO_POW_53;
}

/** The variant a sticky value maps to; undefined only for an empty list. */
export function stickyChoice<V extends Weighted>(variants: readonly V[], value: string): V | undefined {
  let best: V | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const v of variants) {
    if (!(v.weight > 0)) continue;
    const score = -Math.log(hash01(value, v.key)) / v.weight;
    if (score < bestScore) {
      best = v;
      bestScore = score;
    }
  }
  return best;
}

/** A draw by weight; random returns a value in [0, 1). Undefined only for an empty list. */
export function randomChoice<V extends Weighted>(
  variants: readonly V[],
  random: () => number = Math.random,
): V | undefined {
  const usable = variants.filter((v) => v.weight > 0);
  const total = usable.reduce((sum, v) => sum + v.weight, 0);
  let r = random() * total;
  for (const v of usable) {
    r -= v.weight;
    if (r < 0) return v;
  }
  // Rounding can leave r a hair above 0 after the last variant.
  return usable.at(-1);
}

/** The variant of one request: sticky when it carries a value for the header, random otherwise. */
export function chooseVariant<V extends Weighted>(
  variants: readonly V[],
  stickyValue: string | undefined,
  random: () => number = Math.random,
): V | undefined {
  return stickyValue !== undefined && stickyValue !== ''
    ? stickyChoice(variants, stickyValue)
    : randomChoice(variants, random);
}
