import { nextSort } from './format.js';
import { renderTable } from './table.js';

async function start() {
  const container = document.getElementById('app');
  const status = document.getElementById('status');
  let data;
  try {
    const resp = await fetch('/api/rows');
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    data = await resp.json();
  } catch (err) {
    status.textContent = `failed to load rows: ${err.message}`;
    return;
  }
  let sort = null;
  const draw = () => {
    renderTable(document, container, data, sort, (column) => {
      sort = nextSort(sort, column);
      draw();
    });
    status.textContent = `${data.rows.length} rows`;
  };
  draw();
}

start();
