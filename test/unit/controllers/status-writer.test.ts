import assert from 'node:assert/strict';
import { REASONS } from '../../../src/api/v1alpha1/reasons.ts';
import { eventType } from '../../../src/controllers/status-writer.ts';
import type { Condition } from '../../../src/runtime/conditions.ts';

const ready = (status: 'True' | 'False', reason: string): Condition => ({
  type: 'Ready',
  status,
  reason,
  message: '',
  lastTransitionTime: new Date(0).toISOString(),
});

describe('status writer: the Event a Ready move is worth', () => {
  it('is Normal when Ready turns True after a problem: the problem is over', () => {
    assert.equal(eventType(ready('False', 'MemberInvalid'), ready('True', 'Valid')), 'Normal');
    assert.equal(eventType(ready('False', 'NoSuchReason'), ready('True', 'Serving')), 'Normal');
  });

  it('is none when Ready turns True the first time, or after progress: the normal course', () => {
    assert.equal(eventType(undefined, ready('True', 'Valid')), undefined);
    assert.equal(eventType(ready('False', 'NoReplicaReady'), ready('True', 'Serving')), undefined);
    assert.equal(eventType(ready('True', 'Serving'), ready('True', 'ScaledToZero')), undefined);
  });

  it('is a Warning for a reason a user must act on, and for a reason missing from the list', () => {
    assert.equal(eventType(undefined, ready('False', 'MemberInvalid')), 'Warning');
    assert.equal(eventType(ready('True', 'Serving'), ready('False', 'ModelGroupFailed')), 'Warning');
    assert.equal(eventType(ready('True', 'Serving'), ready('False', 'NoSuchReason')), 'Warning');
  });

  it('is none for a step of progress, so creating an object costs no Event of its own', () => {
    assert.equal(eventType(ready('True', 'Serving'), ready('False', 'NoReplicaReady')), undefined);
    for (const r of REASONS.filter((x) => x.health === 'Progressing')) {
      assert.equal(eventType(undefined, ready('False', r.reason)), undefined, r.reason);
    }
  });
});
