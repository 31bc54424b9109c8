// renderTable against a tiny fake DOM (node has no document); the real DOM is covered by e2e.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { renderTable } from '../src/table.js';

class FakeElement {
  constructor(tag) {
    this.tag = tag;
    this.children = [];
    this.dataset = {};
    this.listeners = {};
    this.textContent = '';
    this.className = '';
  }
  appendChild(child) {
    this.children.push(child);
    return child;
  }
  replaceChildren(...children) {
    this.children = children;
  }
  addEventListener(type, fn) {
    this.listeners[type] = fn;
  }
}

const doc = { createElement: (tag) => new FakeElement(tag) };
const data = {
  columns: ['name', 'stars'],
  rows: [{ name: 'b', stars: 2 }, { name: 'a', stars: 10 }],
};

test('renderTable builds header and body cells', () => {
  const container = new FakeElement('div');
  const table = renderTable(doc, container, data, null, () => {});
  assert.equal(container.children[0], table);
  const [thead, tbody] = table.children;
  assert.deepEqual(thead.children[0].children.map((th) => th.textContent), ['name', 'stars']);
  assert.deepEqual(tbody.children.map((tr) => tr.children[0].textContent), ['b', 'a']);
  assert.equal(tbody.children[1].children[1].className, 'num');
});

test('renderTable sorts and reports header clicks', () => {
  const container = new FakeElement('div');
  const clicked = [];
  const table = renderTable(doc, container, data, { column: 'stars', descending: true }, (c) =>
    clicked.push(c),
  );
  const [thead, tbody] = table.children;
  assert.deepEqual(tbody.children.map((tr) => tr.children[1].textContent), ['10', '2']);
  assert.equal(thead.children[0].children[1].textContent, 'stars ▼');
  thead.children[0].children[0].listeners.click();
  assert.deepEqual(clicked, ['name']);
});
