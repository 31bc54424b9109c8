// Pure helpers shared by the table renderer; no DOM access here (unit-tested with node --test).

export function formatCell(value, precision = 2) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (Number.isInteger(value)) return value.toLocaleString('en-US');
    return value.toLocaleString('en-US', {
      minimumFractionDigits: precision,
      maximumFractionDigits: precision,
    });
  }
  return String(value);
}

export function isNumeric(value) {
  return typeof value === 'number' && !Number.isNaN(value);
}

// Compare two cell values; null/undefined always sort last regardless of direction.
export function compareValues(a, b, descending = false) {
  const aMissing = a === null || a === undefined;
  const bMissing = b === null || b === undefined;
  if (aMissing || bMissing) return aMissing === bMissing ? 0 : aMissing ? 1 : -1;
  let cmp;
  if (isNumeric(a) && isNumeric(b)) cmp = a - b;
  else cmp = String(a).localeCompare(String(b), 'en');
  return descending ? -cmp : cmp;
}

// Returns a new array; Array.prototype.sort is stable in ES2019+.
export function sortRows(rows, key, descending = false) {
  return [...rows].sort((r1, r2) => compareValues(r1[key], r2[key], descending));
}

// Next sort state after clicking a column header: asc -> desc -> asc ...; new column starts asc.
export function nextSort(current, column) {
  if (!current || current.column !== column) return { column, descending: false };
  return { column, descending: !current.descending };
}

export function sortIndicator(sort, column) {
  if (!sort || sort.column !== column) return '';
  return sort.descending ? ' ▼' : ' ▲';
}
