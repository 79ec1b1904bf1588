import assert from 'node:assert/strict';
import {
  type Condition,
  findCondition,
  isConditionTrue,
  removeCondition,
  rfc3339,
  setCondition,
} from '../../../src/runtime/conditions.ts';

const t0 = new Date('2026-03-01T10:00:00.789Z');
const t1 = new Date('2026-03-01T11:30:00.123Z');

describe('runtime/conditions', () => {
  it('formats times like the API server: RFC3339, whole seconds, UTC', () => {
    assert.equal(rfc3339(t0), '2026-03-01T10:00:00Z');
  });

  it('appends a new condition with lastTransitionTime = now', () => {
    const out = setCondition(
      [],
      { type: 'Ready', status: 'False', reason: 'Pending', message: 'waiting' },
      t0,
    );
    assert.deepEqual(out, [
      {
        type: 'Ready',
        status: 'False',
        reason: 'Pending',
        message: 'waiting',
        lastTransitionTime: '2026-03-01T10:00:00Z',
      },
    ]);
    assert.equal('observedGeneration' in out[0]!, false, 'no undefined observedGeneration key');
  });

  it('keeps lastTransitionTime when the status does not change, but updates reason/message/generation', () => {
    const first = setCondition(
      [],
      { type: 'Ready', status: 'False', reason: 'Pending', message: 'a', observedGeneration: 1 },
      t0,
    );
    const second = setCondition(
      first,
      { type: 'Ready', status: 'False', reason: 'StillPending', message: 'b', observedGeneration: 2 },
      t1,
    );
    assert.deepEqual(second[0], {
      type: 'Ready',
      status: 'False',
      reason: 'StillPending',
      message: 'b',
      observedGeneration: 2,
      lastTransitionTime: '2026-03-01T10:00:00Z',
    });
  });

  it('moves lastTransitionTime when the status flips', () => {
    const first = setCondition([], { type: 'Ready', status: 'False', reason: 'Pending', message: '' }, t0);
    const second = setCondition(first, { type: 'Ready', status: 'True', reason: 'Ready', message: '' }, t1);
    assert.equal(second[0]!.lastTransitionTime, '2026-03-01T11:30:00Z');
    assert.equal(second[0]!.status, 'True');
  });

  it('drops an observedGeneration that is no longer given', () => {
    const first = setCondition(
      [],
      { type: 'A', status: 'True', reason: 'R', message: '', observedGeneration: 3 },
      t0,
    );
    const second = setCondition(first, { type: 'A', status: 'True', reason: 'R', message: '' }, t1);
    assert.equal(second[0]!.observedGeneration, undefined);
  });

  it('keeps the order of the list and returns a new array without mutating the input', () => {
    const input: readonly Condition[] = Object.freeze([
      Object.freeze<Condition>({
        type: 'A',
        status: 'True',
        reason: 'R',
        message: '',
        lastTransitionTime: 'x',
      }),
      Object.freeze<Condition>({
        type: 'B',
        status: 'True',
        reason: 'R',
        message: '',
        lastTransitionTime: 'x',
      }),
      Object.freeze<Condition>({
        type: 'C',
        status: 'True',
        reason: 'R',
        message: '',
        lastTransitionTime: 'x',
      }),
    ]);
    const out = setCondition(input, { type: 'B', status: 'False', reason: 'Broken', message: 'm' }, t0);
    assert.notEqual(out, input);
    assert.deepEqual(
      out.map((c) => c.type),
      ['A', 'B', 'C'],
    );
    assert.equal(input[1]!.status, 'True');
    const appended = setCondition(out, { type: 'D', status: 'Unknown', reason: 'New', message: '' }, t0);
    assert.deepEqual(
      appended.map((c) => c.type),
      ['A', 'B', 'C', 'D'],
    );
  });

  it('sets a lastTransitionTime on an existing condition that has none', () => {
    const out = setCondition(
      [{ type: 'A', status: 'True', reason: 'R', message: '', lastTransitionTime: '' }],
      { type: 'A', status: 'True', reason: 'R', message: '' },
      t0,
    );
    assert.equal(out[0]!.lastTransitionTime, '2026-03-01T10:00:00Z');
  });

  it('finds, tests and removes conditions', () => {
    const list = setCondition(
      setCondition([], { type: 'Ready', status: 'True', reason: 'Ok', message: '' }, t0),
      { type: 'Degraded', status: 'False', reason: 'Ok', message: '' },
      t0,
    );
    assert.equal(findCondition(list, 'Ready')?.reason, 'Ok');
    assert.equal(findCondition(list, 'Nope'), undefined);
    assert.equal(findCondition(undefined, 'Ready'), undefined);
    assert.equal(isConditionTrue(list, 'Ready'), true);
    assert.equal(isConditionTrue(list, 'Degraded'), false);
    assert.equal(isConditionTrue(list, 'Missing'), false);
    assert.equal(isConditionTrue(undefined, 'Ready'), false);
    assert.deepEqual(
      removeCondition(list, 'Ready').map((c) => c.type),
      ['Degraded'],
    );
  });
});
