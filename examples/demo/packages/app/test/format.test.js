import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  compareValues,
  formatCell,
  nextSort,
  sortIndicator,
  sortRows,
} from '../src/format.js';

test('formatCell renders like the Python side', () => {
  assert.equal(formatCell(null), '');
  assert.equal(formatCell(undefined), '');
  assert.equal(formatCell(true), 'true');
  assert.equal(formatCell(1234567), '1,234,567');
  assert.equal(formatCell(3.14159), '3.14');
  assert.equal(formatCell(Number.NaN), 'NaN');
  assert.equal(formatCell('x'), 'x');
});

test('compareValues puts missing values last in both directions', () => {
  assert.ok(compareValues(null, 1) > 0);
  assert.ok(compareValues(null, 1, true) > 0);
  assert.ok(compareValues(1, undefined, true) < 0);
  assert.equal(compareValues(null, undefined), 0);
});

test('sortRows sorts numbers numerically and strings lexically', () => {
  const rows = [{ n: 10, s: 'b' }, { n: 9, s: 'a' }, { n: null, s: 'c' }];
  assert.deepEqual(sortRows(rows, 'n').map((r) => r.n), [9, 10, null]);
  assert.deepEqual(sortRows(rows, 'n', true).map((r) => r.n), [10, 9, null]);
  assert.deepEqual(sortRows(rows, 's', true).map((r) => r.s), ['c', 'b', 'a']);
  assert.deepEqual(rows.map((r) => r.n), [10, 9, null], 'input not mutated');
});

test('nextSort toggles direction on the same column and resets on a new one', () => {
  let s = nextSort(null, 'a');
  assert.deepEqual(s, { column: 'a', descending: false });
  s = nextSort(s, 'a');
  assert.deepEqual(s, { column: 'a', descending: true });
  s = nextSort(s, 'b');
  assert.deepEqual(s, { column: 'b', descending: false });
  assert.equal(sortIndicator(s, 'b'), ' ▲');
  assert.equal(sortIndicator(s, 'a'), '');
});
