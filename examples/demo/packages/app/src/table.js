import { formatCell, isNumeric, sortIndicator, sortRows } from './format.js';

// Render `data` ({columns, rows}) as a <table> into `container`.
// Clicking a header calls onSort(column).
export function renderTable(doc, container, data, sort, onSort) {
  const rows = sort ? sortRows(data.rows, sort.column, sort.descending) : data.rows;
  const table = doc.createElement('table');
  table.id = 'data-table';

  const thead = doc.createElement('thead');
  const headRow = doc.createElement('tr');
  for (const column of data.columns) {
    const th = doc.createElement('th');
    th.dataset.column = column;
    th.textContent = column + sortIndicator(sort, column);
    th.addEventListener('click', () => onSort(column));
    headRow.appendChild(th);
  }
  thead.appendChild(headRow);
  table.appendChild(thead);

  const tbody = doc.createElement('tbody');
  for (const row of rows) {
    const tr = doc.createElement('tr');
    for (const column of data.columns) {
      const td = doc.createElement('td');
      const value = row[column];
      td.textContent = formatCell(value);
      if (isNumeric(value)) td.className = 'num';
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  }
  table.appendChild(tbody);

  container.replaceChildren(table);
  return table;
}
